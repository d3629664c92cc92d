#!/usr/bin/env bash
# Throughput and memory of `spool produce` against `cat` on the same disk.
#
#   scripts/bench-produce.sh            # builds the release binary, runs everything
#   LINES=200000 scripts/bench-produce.sh   # a smaller run
#   BASELINE=/path/to/older/spool scripts/bench-produce.sh   # an older build beside this one
#
# What it does:
#   1. generates LINES (default 1,000,000) lines of 100 bytes, each `user-NNNNNN:` + value;
#   2. times, side by side in one run, `spool produce bench -K :` into an 8-partition topic
#      (with --fsync never, which is what cat does, and with the default --fsync exit) and
#      `cat input > file` (and `cat input > file && sync file`, the default's equivalent), all
#      in the same directory (BENCH_DIR, default: a new directory
#      under /tmp), with hyperfine when installed, else bash's `time`;
#   3. reports the peak RSS of `spool produce` for 1x and 4x LINES with /usr/bin/time -v, to
#      show that memory stays flat however much is produced.
#
# Needs: cargo, awk; optional: hyperfine (`apt-get install hyperfine`); /usr/bin/time for the
# memory figures (`apt-get install time` on Debian/Ubuntu, where it is not installed by default).
# The target is produce <= 2x cat.

set -euo pipefail

LINES=${LINES:-1000000}
PARTITIONS=${PARTITIONS:-8}
RUNS=${RUNS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SPOOL=${SPOOL:-$TARGET/release/spool}
BASELINE=${BASELINE:-}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/spool-bench.XXXXXX)}
mkdir -p "$WORK"

if [[ -z ${SPOOL_SKIP_BUILD:-} ]]; then
    echo "== building the release binary" >&2
    (cd "$ROOT" && cargo build --release --quiet)
fi
[[ -x $SPOOL ]] || { echo "error: no spool binary at $SPOOL" >&2; exit 1; }

# LINES lines of exactly 100 bytes (plus the newline): a 12-byte key `user-NNNNNN:` with
# 10,000 distinct keys, and 88 bytes of value.
generate() {
    local n=$1 out=$2
    [[ -s $out ]] && return
    awk -v n="$n" 'BEGIN {
        pad = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
        for (i = 0; i < n; i++) {
            v = sprintf("%010d-", i) substr(pad, 1 + i % 10, 77);
            printf "user-%06d:%s\n", i % 10000, v;
        }
    }' > "$out"
}

echo "== generating $LINES lines in $WORK" >&2
INPUT=$WORK/input-1x.txt
INPUT4=$WORK/input-4x.txt
generate "$LINES" "$INPUT"
size=$(stat -c %s "$INPUT")
echo "   $(numfmt --to=iec "$size") ($size bytes), $(awk 'NR==1 {print length($0)}' "$INPUT") bytes a line" >&2

STORE=$WORK/store
export SPOOL_DIR=$STORE
# Each run starts with nothing dirty: the previous run's writeback would otherwise compete with it.
reset_store="rm -rf '$STORE' && '$SPOOL' topic create bench -p $PARTITIONS >/dev/null && sync"
reset_cat="rm -f '$WORK/cat-out' && sync"
produce_never="'$SPOOL' produce bench -q -K : --fsync never < '$INPUT'"
produce_exit="'$SPOOL' produce bench -q -K : < '$INPUT'"
cat_cmd="cat '$INPUT' > '$WORK/cat-out'"
# cat plus an fsync of its output: what `spool produce` does by default (--fsync exit).
cat_sync_cmd="cat '$INPUT' > '$WORK/cat-out' && sync '$WORK/cat-out'"
baseline_runs=()
if [[ -n $BASELINE ]]; then
    baseline_runs=(
        --prepare "$reset_store" -n "baseline produce -K : --fsync never"
        "'$BASELINE' produce bench -q -K : --fsync never < '$INPUT'"
        --prepare "$reset_store" -n "baseline produce -K : (fsync at exit)"
        "'$BASELINE' produce bench -q -K : < '$INPUT'"
    )
fi

echo "== time: produce vs cat ($RUNS runs each, same directory)" >&2
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 1 --runs "$RUNS" --export-markdown "$WORK/times.md" \
        --export-json "$WORK/times.json" \
        --prepare "$reset_cat" -n "cat input > file" "$cat_cmd" \
        --prepare "$reset_store" -n "spool produce -K : --fsync never" "$produce_never" \
        --prepare "$reset_store" -n "spool produce -K : (fsync at exit)" "$produce_exit" \
        --prepare "$reset_cat" -n "cat input > file && sync file" "$cat_sync_cmd" \
        "${baseline_runs[@]}"
    cat "$WORK/times.md"
    # Min and median of each, and their ratios to `cat input > file`'s (the issue's measure).
    python3 - "$WORK/times.json" <<'PY'
import json, statistics, sys
results = json.load(open(sys.argv[1]))["results"]
base = results[0]
bmin, bmed = min(base["times"]), statistics.median(base["times"])
for r in results:
    t = r["times"]
    lo, med = min(t), statistics.median(t)
    print(f"   {r['command']:<42} min {lo * 1e3:6.1f} ms  median {med * 1e3:6.1f} ms"
          f"   {lo / bmin:4.2f}x / {med / bmed:4.2f}x cat")
PY
else
    TIMEFORMAT='%R s'
    for i in $(seq "$RUNS"); do
        eval "$reset_cat"
        echo -n "cat input > file:                 " >&2; time (eval "$cat_cmd")
        eval "$reset_store"
        echo -n "spool produce --fsync never:      " >&2; time (eval "$produce_never")
        eval "$reset_store"
        echo -n "spool produce (fsync at exit):    " >&2; time (eval "$produce_exit")
        eval "$reset_cat"
        echo -n "cat input > file && sync file:    " >&2; time (eval "$cat_sync_cmd")
    done
fi

echo "== check: every line was produced" >&2
eval "$reset_store"
eval "$produce_exit"
records=$("$SPOOL" topic list -o json | awk -F: '/"records"/ {gsub(/[ ,]/, "", $2); print $2}')
echo "   $records records in topic bench (expected $LINES)" >&2
[[ $records == "$LINES" ]] || { echo "error: record count mismatch" >&2; exit 1; }

if [[ -x /usr/bin/time ]]; then
    echo "== peak RSS of spool produce (1x and 4x the input)" >&2
    generate "$((LINES * 4))" "$INPUT4"
    for input in "$INPUT" "$INPUT4"; do
        eval "$reset_store"
        lines=$(wc -l < "$input")
        /usr/bin/time -v "$SPOOL" produce bench -q -K : --fsync never < "$input" 2> "$WORK/time-v.txt"
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-v.txt")
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time-v.txt")
        printf '   %9d lines: peak RSS %6d KiB, wall %s\n' "$lines" "$rss" "$wall"
    done
else
    echo "== no /usr/bin/time: install it (apt-get install time) for the peak RSS figures" >&2
fi

if [[ -z ${BENCH_DIR:-} ]]; then
    rm -rf "$WORK"
fi
