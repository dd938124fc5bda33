#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests that `kustomize build` made of k8s/ (base, overlays).

Run by scripts/deploy-check.sh (which installs the tools and builds the overlays); no cluster is
needed or used. For every built manifest:

1. Every object against the JSON schema of its kind for a pinned Kubernetes version, strict
   (an unknown or misspelt field fails), with kubernetes-validate; a kind without a schema fails.
2. tickflow's rules:
   - each Deployment's containers have resource requests and limits (cpu, memory), run as
     non-root with a read-only root filesystem, no privilege escalation and no capabilities;
   - a tickflow service has a readiness probe on /readyz and a liveness probe on /healthz, on its
     own admin port; pods set enableServiceLinks: false (a Service named like a service would
     inject <NAME>_SERVICE_HOST & co., which its config loader refuses as unknown keys);
   - every environment variable (from env and from the ConfigMaps of envFrom, which must exist)
     is one the binary reads (scripts/deploy_rules.py, from the Rust sources); every *_FILE names
     a file of a mounted volume; listen addresses are not loopback; URLs to in-cluster names name
     a Service of the build and one of its ports;
   - the control plane runs exactly one replica with the Recreate strategy; a Deployment an HPA
     scales sets no replicas; the ingesters, the backfill and the sink have a PodDisruptionBudget
     and a HorizontalPodAutoscaler (except where an overlay removes autoscaling);
   - Services, PDBs and HPAs point at Deployments that exist, with ports that exist;
   - everything is in the namespace tickflow; the production overlay pins an image tag.

Exit status 1 on any problem; every check prints what it checked.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml
from kubernetes_validate import utils as kv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deploy_rules as rules  # noqa: E402

NAMESPACE = "tickflow"
SECRET_NAME = "tickflow-secrets"

errors: list[str] = []


def ok(msg: str) -> None:
    print(f"  ok    {msg}")


def fail(msg: str) -> None:
    errors.append(msg)
    print(f"  FAIL  {msg}")


def documented_secret_keys() -> set[str]:
    doc = yaml.safe_load((rules.ROOT / "k8s/base/secret.example.yaml").read_text())
    return set((doc.get("stringData") or {}) | (doc.get("data") or {}))


def schema_check(label: str, docs: list[dict], version: str) -> None:
    before = len(errors)
    for d in docs:
        name = f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
        try:
            kv.validate(d, version, strict=True)
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(top level)"
            fail(f"{label}: {name}: {path}: {e.message}")
        except kv.SchemaNotFoundError as e:
            fail(f"{label}: {name}: {e.message}")
    if len(errors) == before:
        ok(f"{label}: {len(docs)} objects valid against Kubernetes {version} (strict)")


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def rule_check(label: str, docs: list[dict], production: bool) -> None:
    before = len(errors)
    by_kind: dict[str, dict[str, dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        ns = d["metadata"].get("namespace")
        if d["kind"] != "Namespace" and ns != NAMESPACE:
            fail(f"{label}: {d['kind']}/{d['metadata']['name']} is in namespace {ns!r}, not {NAMESPACE}")
    deployments = by_kind.get("Deployment", {})
    services = by_kind.get("Service", {})
    configmaps = by_kind.get("ConfigMap", {})
    hpas = by_kind.get("HorizontalPodAutoscaler", {})
    pdbs = by_kind.get("PodDisruptionBudget", {})
    secret_keys = documented_secret_keys()
    image_bins = rules.image_binaries()

    service_ports: dict[str, set[int] | None] = {}
    for name, s in services.items():
        if s["spec"].get("type") == "ExternalName":
            service_ports[name] = None  # the target's ports
        else:
            service_ports[name] = {int(p["port"]) for p in s["spec"].get("ports") or []}

    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()}
    autoscaling = bool(hpas)

    for required in ("control-plane",) + tuple(n for n in rules.SERVICES if n != "control-plane" and n != "oanda-ingester"):
        if required not in deployments:
            fail(f"{label}: no Deployment {required}")
    if "pulsar" not in services or "timescaledb" not in services:
        fail(f"{label}: the Services pulsar and timescaledb (ExternalName) are missing")

    for name, dep in sorted(deployments.items()):
        where = f"{label}: Deployment {name}"
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        pod_labels = spec["template"]["metadata"].get("labels") or {}
        if not matches(spec["selector"].get("matchLabels") or {}, pod_labels):
            fail(f"{where}: selector does not match its pod labels")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        pod_sc = pod.get("securityContext") or {}

        if name == "control-plane":
            if spec.get("replicas") != 1:
                fail(f"{where}: must run exactly 1 replica (assignments live in its memory; no leader election)")
            if (spec.get("strategy") or {}).get("type") != "Recreate":
                fail(f"{where}: needs strategy Recreate, so that a rollout never runs two")
        if name in hpa_targets and "replicas" in spec:
            fail(f"{where}: sets replicas although an HPA scales it (every apply would reset the count)")
        if name in rules.SCALABLE:
            if not any(matches(p["spec"]["selector"].get("matchLabels") or {}, pod_labels) for p in pdbs.values()):
                fail(f"{where}: no PodDisruptionBudget")
            if autoscaling and name not in hpa_targets:
                fail(f"{where}: no HorizontalPodAutoscaler")

        for c in pod.get("containers") or []:
            cw = f"{where}/{c['name']}"
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(part) or {}):
                        fail(f"{cw}: no {part}.{r}")
            sc = c.get("securityContext") or {}
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                fail(f"{cw}: runAsNonRoot is not set")
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(f"{cw}: readOnlyRootFilesystem is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(f"{cw}: allowPrivilegeEscalation is not false")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                fail(f"{cw}: capabilities are not dropped (drop: [ALL])")

            image = c.get("image", "")
            repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
            command = c.get("command") or c.get("args") or []
            binary = command[0] if command and command[0] in image_bins else None
            if repo.split("/")[-1] != "tickflow":
                continue
            if binary is None:
                fail(f"{cw}: runs {command}, which is no binary of the image ({' '.join(image_bins)})")
                continue
            if production and tag in ("", "latest"):
                fail(f"{cw}: production runs {image}: pin a tag")
            if pod.get("enableServiceLinks") is not False:
                fail(f"{where}: enableServiceLinks must be false (Service env vars such as "
                     f"{name.upper().replace('-', '_')}_SERVICE_HOST would reach the config loader)")
            info = rules.binary(binary)

            # environment
            env: dict[str, str | None] = {}
            for e in c.get("env") or []:
                env[e["name"]] = e.get("value")
                ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
                if ref:
                    cm = configmaps.get(ref["name"])
                    if cm is None or ref["key"] not in (cm.get("data") or {}):
                        fail(f"{cw}: {e['name']} refers to {ref['name']}/{ref['key']}, which the build does not have")
                    else:
                        env[e["name"]] = cm["data"][ref["key"]]
            for src in c.get("envFrom") or []:
                if "configMapRef" in src:
                    cm = configmaps.get(src["configMapRef"]["name"])
                    if cm is None:
                        fail(f"{cw}: envFrom ConfigMap {src['configMapRef']['name']} is not in the build")
                        continue
                    for k, v in (cm.get("data") or {}).items():
                        env.setdefault(k, v)
                else:
                    fail(f"{cw}: envFrom {list(src)}: only ConfigMaps (secrets are files, named by *_FILE)")
            mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts") or []}
            for m in mounts.values():
                if m["name"] not in volumes:
                    fail(f"{cw}: mounts volume {m['name']}, which the pod does not have")
            for var, value in sorted(env.items()):
                why = info.explain(var)
                if why:
                    fail(f"{cw}: {why}")
                if value is None:
                    continue
                if var.endswith("_FILE"):
                    check_file(cw, var, value, mounts, volumes, secret_keys)
                if var.endswith("_LISTEN") and rules.is_loopback(value):
                    fail(f"{cw}: {var}={value} listens on loopback only")
                parsed = rules.url_host_port(value)
                if parsed:
                    _, host, port = parsed
                    if "." not in host:
                        if host not in services:
                            fail(f"{cw}: {var}={value}: no Service {host!r} in the build")
                        elif port and service_ports[host] is not None and port not in service_ports[host]:
                            fail(f"{cw}: {var}={value}: Service {host} has ports {sorted(service_ports[host])}")
            if binary == "control-plane":
                listen = env.get("CONTROL_PLANE_LISTEN")
                if not listen or rules.is_loopback(listen):
                    fail(f"{cw}: CONTROL_PLANE_LISTEN must be 0.0.0.0:<port> (the default is 127.0.0.1:50051)")

            # probes
            port = rules.admin_port(info, {k: v for k, v in env.items() if v is not None})
            named = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
            ready_paths = ("/readyz",) if binary in rules.SERVICES else ("/readyz", "/healthz")
            for probe, paths in (("readinessProbe", ready_paths), ("livenessProbe", ("/healthz",))):
                http = (c.get(probe) or {}).get("httpGet")
                if not http:
                    fail(f"{cw}: no {probe} (httpGet {paths[0]})")
                    continue
                p = http.get("port")
                p = named.get(p) if isinstance(p, str) else p
                if http.get("path") not in paths or p != port:
                    fail(f"{cw}: {probe} asks port {http.get('port')} for {http.get('path')}; "
                         f"expected {' or '.join(paths)} on the admin port {port}")

        # secret volumes: the one external Secret, documented keys only
        for v in volumes.values():
            secret = v.get("secret")
            if secret:
                if secret["secretName"] != SECRET_NAME and secret["secretName"] not in by_kind.get("Secret", {}):
                    fail(f"{where}: volume {v['name']} uses Secret {secret['secretName']}, which is neither "
                         f"{SECRET_NAME} nor in the build")
                for item in secret.get("items") or []:
                    if item["key"] not in secret_keys:
                        fail(f"{where}: Secret key {item['key']} is not in k8s/base/secret.example.yaml")
            cm = v.get("configMap")
            if cm and cm["name"] not in configmaps:
                fail(f"{where}: volume {v['name']} uses ConfigMap {cm['name']}, which is not in the build")

    for name, s in sorted(services.items()):
        sel = s["spec"].get("selector")
        if s["spec"].get("type") == "ExternalName" or not sel:
            continue
        pods = [d for d in deployments.values() if matches(sel, d["spec"]["template"]["metadata"].get("labels") or {})]
        if not pods:
            fail(f"{label}: Service {name} selects no Deployment")
            continue
        for p in s["spec"].get("ports") or []:
            tp = p.get("targetPort", p["port"])
            for d in pods:
                ports = [cp for c in d["spec"]["template"]["spec"]["containers"] for cp in c.get("ports") or []]
                if not any(cp.get("name") == tp or cp["containerPort"] == tp for cp in ports):
                    fail(f"{label}: Service {name} port {p.get('name')}: {tp} is no port of Deployment {d['metadata']['name']}")
    for name, h in sorted(hpas.items()):
        ref = h["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or ref.get("name") not in deployments:
            fail(f"{label}: HPA {name} scales {ref.get('kind')}/{ref.get('name')}, which is not in the build")
        if h["spec"].get("minReplicas", 1) > h["spec"]["maxReplicas"]:
            fail(f"{label}: HPA {name}: minReplicas > maxReplicas")
    for name, p in sorted(pdbs.items()):
        sel = p["spec"]["selector"].get("matchLabels") or {}
        if not any(matches(sel, d["spec"]["template"]["metadata"].get("labels") or {}) for d in deployments.values()):
            fail(f"{label}: PodDisruptionBudget {name} selects no Deployment")

    if len(errors) == before:
        counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items()))
        ok(f"{label}: rules hold ({counts})")


def check_file(where: str, var: str, value: str, mounts: dict, volumes: dict, secret_keys: set[str]) -> None:
    """`value` must be a file that a mounted volume provides."""
    parent, _, filename = value.rpartition("/")
    mount = mounts.get(parent)
    if mount is None:
        if not any(value.startswith(m + "/") for m in mounts):
            fail(f"{where}: {var}={value} is under no volume mount")
        return
    volume = volumes.get(mount["name"]) or {}
    secret = volume.get("secret")
    if secret:
        items = secret.get("items")
        names = {i.get("path", i["key"]) for i in items} if items else secret_keys
        if filename not in names:
            fail(f"{where}: {var}={value}: volume {mount['name']} has no file {filename} (it has {sorted(names)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kubernetes-version", required=True)
    ap.add_argument("manifests", nargs="+", type=Path, help="outputs of kustomize build, one per overlay")
    args = ap.parse_args()
    for path in args.manifests:
        label = path.stem
        print(f"kubernetes manifests: {label}")
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        schema_check(label, docs, args.kubernetes_version)
        rule_check(label, docs, production="production" in label)
    if errors:
        print(f"kubernetes checks: {len(errors)} problem(s)")
        return 1
    print("kubernetes checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
