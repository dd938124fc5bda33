#!/usr/bin/env bash
# Fuzzes the decoders of outside data with libFuzzer (cargo-fuzz; needs a nightly toolchain).
# Seeds each target's corpus from ../shared/fixtures (never copied into the repo: the corpus
# lives under fuzz/corpus, which git ignores). FUZZ_SECONDS (default 60) per target.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
seconds="${FUZZ_SECONDS:-60}"
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly --profile minimal" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
corpus=fuzz/corpus/kraken_frame
mkdir -p "$corpus"
n=0
for f in "$ROOT"/../shared/fixtures/kraken/v2/*.ndjson "$ROOT"/../shared/fixtures/kraken/v1/*.ndjson; do
    while IFS= read -r line; do
        n=$((n + 1))
        printf '%s' "$line" > "$corpus/seed-$n"
    done < "$f"
done
echo "kraken_frame: $n seed frames; fuzzing for ${seconds}s"
cd fuzz
cargo +nightly fuzz run kraken_frame "../$corpus" -- -max_total_time="$seconds" -max_len=4096
