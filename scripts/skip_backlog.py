#!/usr/bin/env python3
"""Create a subscription at the end of every topic of some namespaces that does not have it yet.

    skip_backlog.py ADMIN_URL SUBSCRIPTION TENANT/NAMESPACE...

`make up` and `make demo` share the local Pulsar with `make test`, whose topics hold test data.
A service joining a topic for the first time with a new subscription would read that backlog
(the sink would store test ticks in the demo's database). Creating the subscription at the
latest message first makes the local stack start from "now" on topics it has never read; a
subscription that exists already (409) keeps its position, so nothing of the stack's own is lost.
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def request(method, url):
    req = urllib.request.Request(url, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    admin, subscription, namespaces = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3:]
    topics = []
    for ns in namespaces:
        status, body = request("GET", f"{admin}/admin/v2/persistent/{ns}")
        if status == 404:
            continue  # the namespace does not exist yet: nothing to skip
        if status != 200:
            sys.exit(f"skip_backlog: listing {ns} failed with HTTP {status}: {body[:200]!r}")
        topics += json.loads(body)

    def create(topic):
        path = topic.removeprefix("persistent://")
        sub = urllib.parse.quote(subscription, safe="")
        status, body = request("PUT", f"{admin}/admin/v2/persistent/{path}/subscription/{sub}")
        if status not in (204, 409):
            return f"{topic}: HTTP {status} {body[:200]!r}"
        return "created" if status == 204 else None

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(create, topics))
    errors = [r for r in results if r not in (None, "created")]
    created = results.count("created")
    for e in errors[:10]:
        print(f"skip_backlog: {e}", file=sys.stderr)
    print(f"{subscription}: {len(topics)} topics, {created} joined at their end")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
