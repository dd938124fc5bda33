#!/usr/bin/env bash
# Offline checks of the deployment files: docker-compose.yml and docker-compose.demo.yml,
# deploy/Dockerfile and .dockerignore, and the Kubernetes manifests under k8s/. Nothing here runs
# a container or needs a cluster: the files are validated as Docker Compose, kustomize and the
# Kubernetes API server would read them, plus tickflow's own rules (see the docstrings of
# scripts/validate_compose.py and scripts/validate_k8s.py). TimescaleDB itself is exercised only
# by a real compose or Kubernetes deployment, never here.
#
#   bash scripts/deploy-check.sh
#
# Installs its own tools, pinned and idempotently, into .tickflow/tools/ (TICKFLOW_TOOLS_DIR):
#   - a Python venv with jsonschema, PyYAML and kubernetes-validate (scripts/deploy-check-requirements.txt);
#   - kustomize, built with `go install` from the Go module proxy;
#   - scripts/compose-check (compose-go, the library Docker Compose is built on), and the Compose
#     specification's JSON schema from the same pinned compose-go module.
# Needs python3 (with venv) and Go >= 1.24. Go's module and build caches live under the tools
# directory too, so deleting it is a clean start. Exits non-zero on any problem.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

KUSTOMIZE_VERSION=v5.8.1          # the newest kustomize that builds with Go 1.24/1.25 (5.8.2 needs 1.26)
COMPOSE_GO_MODULE=github.com/compose-spec/compose-go/v2   # version: scripts/compose-check/go.mod
KUBERNETES_VERSION="${TICKFLOW_K8S_VERSION:-1.33.0}"      # the API the manifests are validated against
TOOLS="${TICKFLOW_TOOLS_DIR:-$STATE/tools}"
REQUIREMENTS=scripts/deploy-check-requirements.txt

started=$SECONDS
mkdir -p "$TOOLS/bin"
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ beside scripts/deploy_rules.py

# --- tools ---------------------------------------------------------------------------------------

# stamp NAME CONTENT: true when $TOOLS/NAME.stamp holds CONTENT (the tool is installed as pinned).
stamp_ok() { [ -f "$TOOLS/$1.stamp" ] && [ "$(cat "$TOOLS/$1.stamp")" = "$2" ]; }
stamp_set() { printf '%s' "$2" >"$TOOLS/$1.stamp"; }

install_python() {
  local want; want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  if stamp_ok venv "$want" && "$TOOLS/venv/bin/python" -c 'import jsonschema, yaml, kubernetes_validate' 2>/dev/null; then
    return 0
  fi
  log "deploy-check: installing the Python tools into $TOOLS/venv ($REQUIREMENTS)"
  rm -rf "$TOOLS/venv"
  if ! python3 -m venv "$TOOLS/venv" >/dev/null 2>&1; then
    apt_install python3-venv
    python3 -m venv "$TOOLS/venv"
  fi
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$REQUIREMENTS"
  stamp_set venv "$want"
}

go_env() {
  # Module and build caches of our own; writable module cache (so `rm -rf` works); never fetch
  # another Go toolchain.
  export GOMODCACHE="$TOOLS/go/mod" GOCACHE="$TOOLS/go/cache" GOFLAGS=-modcacherw GOTOOLCHAIN=local
}

install_go_tools() {
  command -v go >/dev/null || die "deploy-check needs Go (>= 1.24) for kustomize and compose-check"
  go_env
  if ! stamp_ok kustomize "$KUSTOMIZE_VERSION" || [ ! -x "$TOOLS/bin/kustomize" ]; then
    log "deploy-check: building kustomize $KUSTOMIZE_VERSION (go install, once)"
    GOBIN="$TOOLS/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
    stamp_set kustomize "$KUSTOMIZE_VERSION"
  fi
  local src; src="$(cat scripts/compose-check/go.mod scripts/compose-check/go.sum scripts/compose-check/*.go | sha256sum | cut -d' ' -f1)"
  if ! stamp_ok compose-check "$src" || [ ! -x "$TOOLS/bin/compose-check" ] || [ ! -f "$TOOLS/compose-spec.json" ]; then
    log "deploy-check: building scripts/compose-check ($COMPOSE_GO_MODULE)"
    (cd scripts/compose-check && go build -o "$TOOLS/bin/compose-check" .)
    # The schema Docker Compose validates with, from the same pinned module.
    local version dir
    version="$(cd scripts/compose-check && go list -m -f '{{.Version}}' "$COMPOSE_GO_MODULE")"
    dir="$(go mod download -json "$COMPOSE_GO_MODULE@$version" | "$TOOLS/venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    cp "$dir/schema/compose-spec.json" "$TOOLS/compose-spec.json"
    printf '%s\n' "$version" >"$TOOLS/compose-spec.version"
    stamp_set compose-check "$src"
  fi
}

install_python
install_go_tools
tools_ready=$SECONDS
log "deploy-check: tools ready in $((tools_ready - started))s: kustomize $("$TOOLS/bin/kustomize" version), compose-go $(cat "$TOOLS/compose-spec.version"), $("$TOOLS/venv/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -iE '^(kubernetes-validate|jsonschema) ' | tr -s ' ' | tr '\n' ' ')"

# --- checks --------------------------------------------------------------------------------------

failed=()

echo "== shell syntax"
for f in deploy/init-secrets.sh scripts/deploy-check.sh; do
  if bash -n "$f"; then echo "  ok    $f"; else failed+=("bash -n $f"); fi
done

echo "== docker compose, Dockerfile, .dockerignore"
"$TOOLS/venv/bin/python" scripts/validate_compose.py \
  --schema "$TOOLS/compose-spec.json" --compose-check "$TOOLS/bin/compose-check" || failed+=(compose)

echo "== kustomize build (kustomize $KUSTOMIZE_VERSION)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
builds=()
for dir in k8s/base k8s/overlays/*/; do
  dir="${dir%/}"
  [ -f "$dir/kustomization.yaml" ] || continue
  name="$(echo "${dir#k8s/}" | tr / -)"
  if "$TOOLS/bin/kustomize" build "$dir" >"$out/$name.yaml" 2>"$out/$name.err"; then
    echo "  ok    $dir: $(grep -c '^kind:' "$out/$name.yaml") objects"
    builds+=("$out/$name.yaml")
  else
    echo "  FAIL  $dir: $(cat "$out/$name.err")"
    failed+=("kustomize build $dir")
  fi
done

echo "== kubernetes manifests (schemas of Kubernetes $KUBERNETES_VERSION, strict)"
if [ ${#builds[@]} -gt 0 ]; then
  "$TOOLS/venv/bin/python" scripts/validate_k8s.py --kubernetes-version "$KUBERNETES_VERSION" "${builds[@]}" \
    || failed+=(kubernetes)
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "deploy-check: FAILED (${failed[*]}) after $((SECONDS - started))s"
  exit 1
fi
echo "deploy-check: all passed in $((SECONDS - started))s (checks $((SECONDS - tools_ready))s)"
