"""What the tickflow binaries really read, taken from the Rust sources, for the deployment checks.

scripts/validate_compose.py and scripts/validate_k8s.py use this to check that every environment
variable a deployment sets is one the binary reads, so that a misspelt or unsupported variable
(`TICKFLOW_API_TOKEN_FILE` for a binary that has no such variable, `CONTROL_PLANE_URL` reaching
the control plane, whose config loader rejects unknown `CONTROL_PLANE_*` keys) fails the check
instead of a container at start. Also the admin port of each service (its `/healthz`, `/readyz`,
`/metrics`) and the binaries the image contains.

Sources of truth, all parsed from the code (nothing here is a hand-kept copy, except venue-sim's
variables while its binary is still being written):

- `#[arg(long, env = "NAME")]` in `crates/<bin>/src/main.rs`: the well-known variables;
- `SecretString::from_env("NAME")` (or the older `secret("NAME")` helper) in a main.rs: `NAME` and
  `NAME_FILE`;
- `.env_prefix("PREFIX")` and `.ignore_env("NAME")`: the layered config loader of
  tickflow-runtime reads every `PREFIX_*` variable as a config key (`__` between nested keys; a
  secret field also takes a `__FILE` sub-key) and refuses any key its structs do not have;
- the `pub struct` definitions reachable from the crate's `Config` struct: which keys exist;
- `lookup("NAME")` in tickflow-runtime's telemetry.rs: `RUST_LOG`, `OTEL_EXPORTER_OTLP_ENDPOINT`;
- `SocketAddr::from(([0, 0, 0, 0], PORT))` in the crate's config.rs: the default admin port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The five services: binary name = crate name.
SERVICES = (
    "control-plane",
    "kraken-ingester",
    "oanda-ingester",
    "dukascopy-backfill",
    "timescale-sink",
)
# The ingesters, the backfill and the sink run as any number of replicas.
SCALABLE = ("kraken-ingester", "oanda-ingester", "dukascopy-backfill", "timescale-sink")

# venue-sim's contract (its binary is being written; until crates/venue-sim/src/main.rs exists
# these names cannot be checked against the code). Admin port 9200 serves /healthz and /metrics.
VENUE_SIM_ENV = {
    "VENUE_SIM_HOST",
    "VENUE_SIM_ADMIN_PORT",
    "VENUE_SIM_KRAKEN_PORT",
    "VENUE_SIM_OANDA_PORT",
    "VENUE_SIM_DUKASCOPY_PORT",
    "VENUE_SIM_RATE",
    "VENUE_SIM_SEED",
    "VENUE_SIM_HISTORY_DAYS",
}
VENUE_SIM_ADMIN_PORT = 9200

LEAF_TYPES = {
    "String", "PathBuf", "SocketAddr", "bool", "u8", "u16", "u32", "u64", "usize", "i32", "i64",
    "f64", "Duration", "Vec",
}
SECRET_TYPES = {"SecretString", "Secret"}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


@dataclass
class Struct:
    name: str
    crate: str
    fields: dict[str, str]


def _parse_structs() -> dict[str, list[Struct]]:
    """Every `pub struct Name { pub field: Type, ... }` of the workspace, by name."""
    out: dict[str, list[Struct]] = {}
    for path in sorted(ROOT.glob("crates/*/src/**/*.rs")):
        crate = path.relative_to(ROOT).parts[1]
        text = _strip_comments(_read(path))
        for m in re.finditer(r"pub struct (\w+)\s*\{(.*?)\n\}", text, re.S):
            fields = {}
            for f in re.finditer(r"^\s*pub (\w+):\s*([^,\n]+),?\s*$", m.group(2), re.M):
                fields[f.group(1)] = f.group(2).strip()
            out.setdefault(m.group(1), []).append(Struct(m.group(1), crate, fields))
    return out


_STRUCTS: dict[str, list[Struct]] | None = None


def structs() -> dict[str, list[Struct]]:
    global _STRUCTS
    if _STRUCTS is None:
        _STRUCTS = _parse_structs()
    return _STRUCTS


def _unwrap(ty: str) -> str:
    """`Option<std::path::PathBuf>` -> `PathBuf`; `telemetry::TelemetryConfig` -> `TelemetryConfig`."""
    ty = ty.strip()
    while True:
        m = re.fullmatch(r"(?:[\w:]+::)?Option<(.*)>", ty)
        if not m:
            break
        ty = m.group(1).strip()
    if re.match(r"(?:[\w:]+::)?Vec<", ty):
        return "Vec"
    if re.match(r"(?:[\w:]+::)?Secret<", ty):
        return "Secret"
    return ty.split("<")[0].split("::")[-1]


@dataclass
class Binary:
    """What one binary reads from its environment."""

    name: str
    well_known: set[str] = field(default_factory=set)
    prefix: str | None = None
    ignored: set[str] = field(default_factory=set)
    root: Struct | None = None
    admin_port: int | None = None
    checked_against_code: bool = True

    def explain(self, var: str) -> str | None:
        """None when `var` is read by this binary, else why it is not."""
        if var in self.well_known or var in self.ignored or var in STANDARD_ENV:
            return None
        if self.prefix and var.startswith(self.prefix + "_"):
            keys = var[len(self.prefix) + 1:].split("__")
            return self._explain_keys(var, keys)
        return f"{self.name} does not read {var}"

    def _explain_keys(self, var: str, keys: list[str]) -> str | None:
        if self.root is None:
            return f"{self.name}: no config struct found for {var}"
        current: Struct | None = self.root
        path: list[str] = []
        for i, raw in enumerate(keys):
            key = raw.lower()
            if not key:
                return f"{var}: empty key (a doubled or trailing __)"
            if current is None:
                return f"{var}: {'.'.join(path)} has no sub-keys"
            if key not in current.fields:
                known = ", ".join(sorted(current.fields))
                where = ".".join(path) or "the top level"
                return f"{self.name} has no config key {'.'.join(path + [key])} ({var}); {where} has: {known}"
            path.append(key)
            ty = _unwrap(current.fields[key])
            rest = keys[i + 1:]
            if ty in SECRET_TYPES:
                if not rest or [k.lower() for k in rest] == ["file"]:
                    return None
                return f"{var}: a secret takes only a __FILE sub-key"
            if ty in LEAF_TYPES or ty not in structs():
                return None if not rest else f"{var}: {'.'.join(path)} is a value, not a section"
            current = _pick(ty, current.crate)
        return f"{var}: {'.'.join(path)} is a section; name one of its keys"


def _pick(name: str, crate: str) -> Struct:
    candidates = structs()[name]
    for s in candidates:
        if s.crate == crate:
            return s
    return candidates[0]


def _standard_env() -> set[str]:
    text = _read(ROOT / "crates/tickflow-runtime/src/telemetry.rs")
    return set(re.findall(r'lookup\("([A-Z0-9_]+)"\)', text))


STANDARD_ENV = _standard_env()


def binary(name: str) -> Binary:
    if name == "venue-sim":
        main = ROOT / "crates/venue-sim/src/main.rs"
        b = Binary(name, well_known=set(VENUE_SIM_ENV), admin_port=VENUE_SIM_ADMIN_PORT)
        if main.exists():
            text = _read(main)
            b.well_known = {v for v in VENUE_SIM_ENV if v in text} | set(
                re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', text))
        else:
            b.checked_against_code = False
        return b
    crate = ROOT / "crates" / name
    main = _read(crate / "src/main.rs")
    b = Binary(name)
    b.well_known = set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', main))
    for s in re.findall(r'(?:\bsecret|from_env)\(\s*"([A-Z0-9_]+)"\s*\)', main):
        b.well_known |= {s, s + "_FILE"}
    m = re.search(r'\.env_prefix\("([A-Z0-9_]+)"\)', main)
    if m:
        b.prefix = m.group(1).rstrip("_")
        b.ignored = set(re.findall(r'\.ignore_env\("([A-Z0-9_]+)"\)', main))
        for s in structs().get("Config", []):
            if s.crate == name:
                b.root = s
    config = crate / "src/config.rs"
    if config.exists():
        m = re.search(r"SocketAddr::from\(\(\[0, 0, 0, 0\], (\d+)\)\)", _read(config))
        if m:
            b.admin_port = int(m.group(1))
    return b


def image_binaries(dockerfile: Path | None = None) -> list[str]:
    """The binaries deploy/Dockerfile builds into the image (its BINS build argument)."""
    text = _read(dockerfile or ROOT / "deploy/Dockerfile")
    m = re.search(r'^ARG BINS="([^"]+)"', text, re.M)
    if not m:
        raise ValueError("deploy/Dockerfile has no ARG BINS=\"...\" line")
    return m.group(1).split()


def binary_targets() -> set[str]:
    """The bin targets of the workspace: src/main.rs of a crate (named after it) or src/bin/*.rs."""
    out = set()
    for crate in (ROOT / "crates").iterdir():
        if (crate / "src/main.rs").exists():
            out.add(crate.name)
        for b in (crate / "src/bin").glob("*.rs") if (crate / "src/bin").is_dir() else []:
            out.add(b.stem)
        manifest = crate / "Cargo.toml"
        if manifest.exists():
            for m in re.finditer(r'\[\[bin\]\][^\[]*?name\s*=\s*"([^"]+)"', _read(manifest), re.S):
                out.add(m.group(1))
    return out


def listen_port(value: str) -> int | None:
    m = re.fullmatch(r"(?:\[[0-9a-fA-F:]+\]|[0-9.]+|[\w.-]+):(\d+)", value.strip())
    return int(m.group(1)) if m else None


def is_loopback(value: str) -> bool:
    host = value.rsplit(":", 1)[0].strip("[]")
    return host.startswith("127.") or host in ("::1", "localhost")


def admin_port(b: Binary, env: dict[str, str]) -> int | None:
    """The admin port a container of `b` listens on, given its environment."""
    if b.prefix:
        for var in (f"{b.prefix}_ADMIN_LISTEN", f"{b.prefix}_RUNTIME__ADMIN__LISTEN"):
            if env.get(var):
                return listen_port(env[var])
    if b.name == "venue-sim" and env.get("VENUE_SIM_ADMIN_PORT"):
        return int(env["VENUE_SIM_ADMIN_PORT"])
    return b.admin_port


URL_RE = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^@/]*@)?(?P<host>[^:/?#]+)(?::(?P<port>\d+))?")


def url_host_port(value: str) -> tuple[str, str, int | None] | None:
    m = URL_RE.match(value.strip())
    if not m:
        return None
    port = int(m.group("port")) if m.group("port") else None
    return m.group("scheme"), m.group("host"), port
