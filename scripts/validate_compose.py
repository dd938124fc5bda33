#!/usr/bin/env python3
"""Offline checks of docker-compose.yml, docker-compose.demo.yml, deploy/Dockerfile and .dockerignore.

Run by scripts/deploy-check.sh (which installs the tools); no Docker engine is needed or used.

1. Each compose file against the Compose specification's JSON schema (the one compose-go, and so
   Docker Compose, ships), as written (before interpolation and merging).
2. Every scenario docs/deploy.md promises (base, `--profile oanda`, `--profile tools`, the demo
   override), loaded the way `docker compose` loads it (scripts/compose-check, built on compose-go:
   interpolation, override merging with !reset/!override, profiles, env_file, consistency), in a
   copy of the project as a user has it: once right after `deploy/init-secrets.sh` with no env
   file and no OANDA credentials, once with every env file copied from its template and OANDA
   credentials given. On each resolved project, tickflow's rules:
   - ingesters, backfill and sink publish no ports and have no container_name (so --scale works);
   - every long-running service has a health check; a tickflow service's probes its own admin
     port's /readyz; one-shot services say `healthcheck: disable: true`;
   - every depends_on waits for service_healthy, on a service that has a health check;
   - every environment variable (env files included) is one the binary reads (scripts/deploy_rules.py
     reads that from the Rust sources), every *_FILE names a mounted secret, listen addresses are
     not loopback, every URL to a service of the project names an enabled service and a port it
     serves;
   - every secret file exists after init-secrets.sh and is gitignored; every env_file has a
     committed *.example template and is gitignored.
3. The image: every binary the Dockerfile builds is a bin target of the workspace, every service
   runs one of them, and .dockerignore keeps target/, .tickflow/, fuzz/, .git/ and the secrets out
   of the build context while keeping what the Dockerfile copies in.

Exit status 1 on any problem; every check prints what it checked.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deploy_rules as rules  # noqa: E402

ROOT = rules.ROOT
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.demo.yml"]
TICKFLOW_IMAGE = "tickflow:latest"
# Ports of the third-party services, for the URL check.
INFRA_PORTS = {"pulsar": {6650, 8080}, "timescaledb": {5432}}

errors: list[str] = []


def ok(msg: str) -> None:
    print(f"  ok    {msg}")


def fail(msg: str) -> None:
    errors.append(msg)
    print(f"  FAIL  {msg}")


# --- 1. schema --------------------------------------------------------------------------------


class ComposeLoader(yaml.SafeLoader):
    """PyYAML with Compose's merge tags: `!reset` and `!override` keep the value they tag."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    value = loader.construct_scalar(node)
    return None if value in ("", "null", "~") else value


ComposeLoader.add_constructor("!reset", _tagged)
ComposeLoader.add_constructor("!override", _tagged)


def check_schema(schema_path: Path) -> None:
    print(f"compose schema ({schema_path.name})")
    schema = json.loads(schema_path.read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    for name in COMPOSE_FILES:
        data = yaml.load((ROOT / name).read_text(), Loader=ComposeLoader)
        problems = sorted(validator_cls(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
        if problems:
            for e in problems:
                where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
                fail(f"{name}: {where}: {e.message}")
        else:
            ok(f"{name} is valid against the Compose specification ({len(data.get('services', {}))} services)")


# --- 2. scenarios -----------------------------------------------------------------------------


def prepare(workdir: Path, with_env_files: bool, with_oanda: bool) -> Path:
    """A copy of the project as a user has it after init-secrets.sh (and the env file templates)."""
    d = workdir / ("configured" if with_env_files else "fresh")
    shutil.rmtree(d, ignore_errors=True)
    (d / "deploy/env").mkdir(parents=True)
    for name in COMPOSE_FILES:
        shutil.copy(ROOT / name, d / name)
    shutil.copy(ROOT / "deploy/Dockerfile", d / "deploy/Dockerfile")
    if with_env_files:
        for example in sorted((ROOT / "deploy/env").glob("*.env.example")):
            shutil.copy(example, d / "deploy/env" / example.name[: -len(".example")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OANDA_")}
    if with_oanda:
        env |= {"OANDA_API_TOKEN": "check-token", "OANDA_ACCOUNT_ID": "101-000-0000000-001"}
    subprocess.run(["bash", str(ROOT / "deploy/init-secrets.sh"), str(d / "deploy/secrets")],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return d


def load(compose_check: Path, d: Path, files: list[str], profiles: list[str]) -> dict | None:
    cmd = [str(compose_check), "-C", str(d)]
    for f in files:
        cmd += ["-f", f]
    for p in profiles:
        cmd += ["-p", p]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"docker compose would reject it: {r.stderr.strip()}")
        return None
    return json.loads(r.stdout)


def git_ignored(rel: str) -> bool:
    r = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", rel])
    return r.returncode == 0


def shell_script(svc: dict) -> str | None:
    """The script of a `sh -c SCRIPT` entrypoint or command, if that is how the service runs."""
    argv = (svc.get("entrypoint") or []) + (svc.get("command") or [])
    if len(argv) >= 3 and argv[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and argv[1] == "-c":
        return argv[2]
    return None


def binaries_of(svc: dict, image_bins: list[str]) -> list[str]:
    script = shell_script(svc)
    if script is not None:
        return [b for b in image_bins if re.search(rf"(^|[\s;&|]){re.escape(b)}(\s|$)", script)]
    argv = svc.get("entrypoint") or svc.get("command") or []
    return [argv[0]] if argv and argv[0] in image_bins else []


def container_ports(name: str, svc: dict, bins: list[str], scenario_env: dict) -> set[int]:
    """The ports a service of the project listens on (for checking URLs to it)."""
    if name in INFRA_PORTS:
        return INFRA_PORTS[name]
    env = svc.get("environment") or {}
    ports: set[int] = set()
    for b in bins:
        info = rules.binary(b)
        p = rules.admin_port(info, env)
        if p:
            ports.add(p)
        if b == "control-plane":
            ports.add(rules.listen_port(env.get("CONTROL_PLANE_LISTEN", "127.0.0.1:50051")) or 50051)
        if b == "venue-sim":
            for var, default in (("VENUE_SIM_KRAKEN_PORT", 9201), ("VENUE_SIM_OANDA_PORT", 9202),
                                 ("VENUE_SIM_DUKASCOPY_PORT", 9203)):
                ports.add(int(env.get(var, default)))
    return ports


def check_url(where: str, value: str, services: dict, ports: dict[str, set[int]]) -> None:
    parsed = rules.url_host_port(value)
    if not parsed:
        return
    scheme, host, port = parsed
    if "." in host or host == "localhost":
        if host.startswith("127.") or host == "localhost":
            fail(f"{where}: {value} points at the container itself, not at another service")
        return
    if host not in services:
        fail(f"{where}: {value}: no enabled service {host!r} in this scenario")
        return
    if port is not None and ports.get(host) and port not in ports[host]:
        fail(f"{where}: {value}: {host} serves {sorted(ports[host])}, not {port}")


def check_scenario(label: str, project: dict, d: Path, image_bins: list[str]) -> None:
    services: dict = project["services"]
    secrets: dict = project.get("secrets") or {}
    bins = {n: binaries_of(s, image_bins) for n, s in services.items()}
    ports = {n: container_ports(n, s, bins[n], {}) for n, s in services.items()}
    problems_before = len(errors)

    for name, svc in sorted(services.items()):
        where = f"[{label}] {name}"
        tickflow = svc.get("image") == TICKFLOW_IMAGE
        long_running = svc.get("restart") in ("unless-stopped", "always")

        if tickflow:
            build = svc.get("build") or {}
            if Path(build.get("context", "")).resolve() != d.resolve() or build.get("dockerfile") != "deploy/Dockerfile":
                fail(f"{where}: builds {build} instead of context . with deploy/Dockerfile")
            if not bins[name]:
                fail(f"{where}: runs {svc.get('entrypoint') or svc.get('command')}, which is no binary of the image")
            if svc.get("container_name"):
                fail(f"{where}: container_name is set (one container only; compose cannot scale it)")
            if not svc.get("read_only") or "ALL" not in (svc.get("cap_drop") or []):
                fail(f"{where}: not hardened (read_only: true and cap_drop: [ALL] expected)")
        if name in rules.SCALABLE:
            if svc.get("ports"):
                fail(f"{where}: publishes ports {svc['ports']}: replicas would collide on the host (--scale)")
            if svc.get("container_name"):
                fail(f"{where}: has container_name: --scale needs generated names")

        # health checks
        hc = svc.get("healthcheck") or {}
        if long_running:
            if hc.get("disable") or not hc.get("test"):
                fail(f"{where}: a long-running service without a health check")
            elif tickflow and bins[name]:
                b = rules.binary(bins[name][0])
                port = rules.admin_port(b, svc.get("environment") or {})
                want = ("/readyz",) if b.name in rules.SERVICES else ("/readyz", "/healthz")
                test = " ".join(hc["test"])
                urls = re.findall(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/\S*)", test)
                if not any(int(p) == port and path in want for p, path in urls):
                    fail(f"{where}: health check {hc['test']} does not ask {b.name}'s admin port {port} for {' or '.join(want)}")
        elif not hc.get("disable"):
            fail(f"{where}: a one-shot service (restart {svc.get('restart')!r}) should say healthcheck: disable: true")

        # depends_on
        for dep, cond in (svc.get("depends_on") or {}).items():
            if cond.get("condition") != "service_healthy":
                fail(f"{where}: depends_on {dep} with {cond.get('condition')}, not service_healthy")
            target = services.get(dep)
            if target is None:
                fail(f"{where}: depends_on {dep}, which is not enabled in this scenario")
            elif (target.get("healthcheck") or {}).get("disable") or not (target.get("healthcheck") or {}).get("test"):
                fail(f"{where}: waits for {dep} to be healthy, but {dep} has no health check")

        # secrets
        mounted = {}
        for s in svc.get("secrets") or []:
            target = s.get("target") or f"/run/secrets/{s['source']}"
            mounted[target] = s["source"]
            spec = secrets.get(s["source"]) or {}
            f = spec.get("file")
            if not f:
                fail(f"{where}: secret {s['source']} has no file")
                continue
            path = Path(f)
            if not path.is_file() or path.stat().st_size == 0:
                fail(f"{where}: secret file {path.relative_to(d)} does not exist after deploy/init-secrets.sh")
            rel = str(path.relative_to(d))
            if not git_ignored(rel):
                fail(f"{where}: secret file {rel} is not gitignored")
        mounts = {v.get("target") for v in svc.get("volumes") or []}

        # environment
        env: dict = svc.get("environment") or {}
        if tickflow and bins[name]:
            infos = [rules.binary(b) for b in bins[name]]
            script = shell_script(svc) or ""
            referenced = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", script))
            for var, value in sorted(env.items()):
                reasons = [i.explain(var) for i in infos]
                if all(reasons) and var not in referenced:
                    fail(f"{where}: {reasons[0]}")
                if value is None:
                    continue
                if var.endswith("_FILE"):
                    if value not in mounted and not any(value.startswith(m.rstrip("/") + "/") for m in mounts if m):
                        fail(f"{where}: {var}={value} is neither a mounted secret nor under a volume")
                if var.endswith("_LISTEN") and rules.is_loopback(value):
                    fail(f"{where}: {var}={value} listens on loopback only; nothing outside the container reaches it")
                check_url(f"{where}: {var}", value, services, ports)
            if "control-plane" in bins[name] and shell_script(svc) is None:
                listen = env.get("CONTROL_PLANE_LISTEN")
                if not listen or rules.is_loopback(listen):
                    fail(f"{where}: CONTROL_PLANE_LISTEN must be set to 0.0.0.0:<port> (the default is 127.0.0.1:50051)")
                if name == "control-plane" and svc.get("ports"):
                    published = {int(p["target"]) for p in svc["ports"]}
                    if rules.listen_port(listen or "") not in published:
                        fail(f"{where}: the gRPC port {listen} is not published")

        # env files
        for ef in svc.get("env_file") or []:
            path = Path(ef["path"])
            rel = str(path.relative_to(d))
            if not (ROOT / (rel + ".example")).is_file():
                fail(f"{where}: env_file {rel} has no template {rel}.example in the repository")
            if not git_ignored(rel):
                fail(f"{where}: env_file {rel} is not gitignored")

        # the database URL the secrets hold
        for target, source in mounted.items():
            if source == "database_url":
                value = Path(secrets[source]["file"]).read_text().strip()
                check_url(f"{where}: secret {source}", value, services, ports)

    if len(errors) == problems_before:
        ok(f"{label}: {len(services)} services: " + ", ".join(sorted(services)))


def check_env_templates() -> None:
    """Every variable in a template (commented-out ones too) is read by the services that load it."""
    print("env file templates (deploy/env/*.env.example)")
    compose = yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=ComposeLoader)
    users: dict[str, set[str]] = {}
    for name, svc in (compose.get("services") or {}).items():
        for ef in svc.get("env_file") or []:
            path = ef["path"] if isinstance(ef, dict) else ef
            cmd = svc.get("command") or []
            if svc.get("image") == TICKFLOW_IMAGE and cmd and cmd[0] in rules.SERVICES:
                users.setdefault(path, set()).add(cmd[0])
            else:
                users.setdefault(path, set())
    for example in sorted((ROOT / "deploy/env").glob("*.env.example")):
        rel = str(example.relative_to(ROOT))[: -len(".example")]
        if rel not in users:
            fail(f"{example.relative_to(ROOT)}: no service of docker-compose.yml uses {rel}")
            continue
        names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example.read_text(), re.M)
        before = len(errors)
        for var in names:
            for b in sorted(users[rel]):
                why = rules.binary(b).explain(var)
                if why:
                    fail(f"{example.relative_to(ROOT)}: {why}")
        if len(errors) == before:
            readers = ", ".join(sorted(users[rel])) or "a third-party image"
            ok(f"{example.relative_to(ROOT)}: {len(names)} variables, all read by {readers}")


# --- 3. the image -------------------------------------------------------------------------------


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore semantics: the last pattern matching the path or a parent decides."""
    excluded = False
    parts = path.split("/")
    for raw in patterns:
        neg = raw.startswith("!")
        pat = raw[1:] if neg else raw
        pat = pat.strip().strip("/")
        if not pat:
            continue
        regex = re.escape(pat).replace(r"\*\*", "\x00").replace(r"\*", "[^/]*").replace(r"\?", "[^/]").replace("\x00", ".*")
        for i in range(1, len(parts) + 1):
            if re.fullmatch(regex, "/".join(parts[:i])):
                excluded = not neg
                break
    return excluded


def check_image() -> list[str]:
    print("image (deploy/Dockerfile, .dockerignore)")
    image_bins = rules.image_binaries()
    targets = rules.binary_targets()
    missing = [b for b in image_bins if b not in targets]
    if missing:
        fail(f"deploy/Dockerfile builds {missing}, which are no bin targets of the workspace")
    else:
        ok(f"the Dockerfile's binaries are bin targets of the workspace: {' '.join(image_bins)}")
    not_built = sorted(t for t in targets if t not in image_bins)
    if not_built:
        fail(f"bin targets not in the image (add them to BINS in deploy/Dockerfile): {not_built}")

    patterns = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.strip().startswith("#")]
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    copied = []
    for m in re.finditer(r"^COPY\s+(?!--from)(.+)$", dockerfile, re.M):
        args = [a for a in m.group(1).split() if not a.startswith("--")]
        copied += args[:-1]
    must_in = [c.rstrip("/") for c in copied] + ["crates/control-plane/src/main.rs", "proto/tickflow/v1/ticks.proto"]
    must_out = ["target/release/control-plane", ".tickflow/env", "fuzz/target/x", "fuzz/corpus/x", ".git/HEAD",
                "deploy/secrets/database_url", "deploy/env/tickflow.env", "docker-compose.yml", "k8s/base/kustomization.yaml"]
    bad_in = [p for p in must_in if dockerignore_excludes(patterns, p)]
    bad_out = [p for p in must_out if not dockerignore_excludes(patterns, p)]
    for p in bad_in:
        fail(f".dockerignore leaves out {p}, which the build needs")
    for p in bad_out:
        fail(f".dockerignore lets {p} into the build context")
    if not bad_in and not bad_out:
        ok(f".dockerignore keeps {', '.join(sorted(set(copied)))} in and target/, .tickflow/, fuzz/, .git/, deploy/secrets/, deploy/env/*.env out")
    return image_bins


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schema", required=True, type=Path, help="the Compose specification's JSON schema")
    ap.add_argument("--compose-check", required=True, type=Path, help="the compose-check binary")
    args = ap.parse_args()

    check_schema(args.schema)
    image_bins = check_image()
    check_env_templates()

    print("compose scenarios (resolved by compose-go, as `docker compose config` would)")
    with tempfile.TemporaryDirectory(prefix="tickflow-compose-") as tmp:
        work = Path(tmp)
        fresh = prepare(work, with_env_files=False, with_oanda=False)
        configured = prepare(work, with_env_files=True, with_oanda=True)
        demo = ["docker-compose.yml", "docker-compose.demo.yml"]
        scenarios = [
            ("up (fresh: no env files, no OANDA)", fresh, ["docker-compose.yml"], []),
            ("run tickctl (--profile tools)", fresh, ["docker-compose.yml"], ["tools"]),
            ("demo override (fresh)", fresh, demo, []),
            ("demo override + tools", fresh, demo, ["tools"]),
            ("up with env files", configured, ["docker-compose.yml"], []),
            ("--profile oanda with env files", configured, ["docker-compose.yml"], ["oanda"]),
            ("demo override with env files", configured, demo, []),
        ]
        for label, d, files, profiles in scenarios:
            project = load(args.compose_check, d, files, profiles)
            if project is not None:
                check_scenario(label, project["project"], d, image_bins)

    if errors:
        print(f"compose checks: {len(errors)} problem(s)")
        return 1
    print("compose checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
