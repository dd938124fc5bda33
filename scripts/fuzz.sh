#!/usr/bin/env bash
# Fuzzes the decoders of outside data with libFuzzer (cargo-fuzz; needs a nightly toolchain).
# Seeds each target's corpus from ../shared/fixtures (never copied into the repo: the corpus
# lives under fuzz/corpus, which git ignores). FUZZ_SECONDS (default 60) per target;
# FUZZ_TARGETS (default: all) picks targets, e.g. FUZZ_TARGETS=oanda_line.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-kraken_frame oanda_line dukascopy_bi5 dukascopy_json}"
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly --profile minimal" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# seed CORPUS FILE...: one seed file per line of the given NDJSON files; prints the count.
seed() {
    local corpus=$1 n=0 f line
    shift
    mkdir -p "$corpus"
    for f in "$@"; do
        while IFS= read -r line || [ -n "$line" ]; do
            n=$((n + 1))
            printf '%s' "$line" > "$corpus/seed-$n"
        done < "$f"
    done
    echo "$n"
}

# seed_files CORPUS FILE...: one seed per whole file (binary bodies); prints the count.
seed_files() {
    local corpus=$1 n=0 f
    shift
    mkdir -p "$corpus"
    for f in "$@"; do
        n=$((n + 1))
        cp "$f" "$corpus/seed-file-$n"
    done
    echo "$n"
}

dk="$ROOT/../shared/fixtures/dukascopy"
for target in $targets; do
    corpus="fuzz/corpus/$target"
    max_len=4096
    case "$target" in
        kraken_frame)
            n=$(seed "$corpus" "$ROOT"/../shared/fixtures/kraken/v2/*.ndjson "$ROOT"/../shared/fixtures/kraken/v1/*.ndjson)
            ;;
        oanda_line)
            n=$(seed "$corpus" "$ROOT"/../shared/fixtures/oanda/*.ndjson)
            # The shapes the captures lack: a CRLF line and `Accept-Datetime-Format: UNIX` times.
            first="$(head -n 1 "$ROOT"/../shared/fixtures/oanda/pricing_stream_EURUSD_2020-10-23_after_friday_close.ndjson)"
            printf '%s\r' "$first" > "$corpus/seed-crlf"
            printf '%s' "$first" | sed -E 's/"time":"[^"]*"/"time":"1603486922.692522548"/' > "$corpus/seed-unix-time"
            n=$((n + 2))
            ;;
        dukascopy_bi5)
            # Whole fixture bodies (the largest tick hour is 41 kB), the empty hour, and short
            # hours re-compressed by xz (unknown size, end marker) when xz is installed.
            max_len=65536
            n=$(seed_files "$corpus" "$dk"/*/*/*/*/*_ticks.bi5 "$dk"/*/*/*/*/*_candles_*.bi5 "$dk"/empty.bi5)
            if command -v xz >/dev/null; then
                for f in "$dk"/*/*/*/*/*_ticks.bi5; do
                    n=$((n + 1))
                    # `head` closing the pipe early is expected (SIGPIPE under pipefail).
                    { xz -dc --format=lzma "$f" || true; } | head -c 200 | xz -c --format=lzma > "$corpus/seed-short-$n"
                done
            fi
            ;;
        dukascopy_json)
            # The JSON API fixtures (99 kB) and two small answers for the target's hour.
            max_len=131072
            n=$(seed_files "$corpus" "$dk"/jetta_json/*.json)
            printf '%s' '{"timestamp":1783944000000,"multiplier":1.0E-5,"ask":1.14277,"bid":1.14273,"times":[93,104],"asks":[0,-2],"bids":[0,-2],"askVolumes":[1800000.0,900000.0],"bidVolumes":[2700000.0,900000.0]}' > "$corpus/seed-two-ticks"
            printf '%s' '{"timestamp":1783944000000,"multiplier":1.0E-5,"ask":null,"bid":null,"times":[],"asks":[],"bids":[],"askVolumes":[],"bidVolumes":[]}' > "$corpus/seed-empty-hour"
            n=$((n + 2))
            ;;
        *)
            echo "unknown fuzz target $target (known: kraken_frame oanda_line dukascopy_bi5 dukascopy_json)" >&2
            exit 1
            ;;
    esac
    echo "$target: $n seeds; fuzzing for ${seconds}s"
    (cd fuzz && cargo +nightly fuzz run "$target" "../$corpus" -- -max_total_time="$seconds" -max_len="$max_len")
done
