#!/usr/bin/env bash
# Produce and consume with each compression codec against uncompressed (issue 15).
#
#   scripts/bench-compression.sh [LINES] [RUNS]       (defaults: 1000000 lines, 7 runs)
#
# LINES lines of 100 bytes (a 12-byte key `user-NNNNNN:` with 10,000 distinct keys and an
# 88-byte value, as scripts/bench-produce.sh generates them) are produced with
#   spool produce bench -q -K : -z CODEC --fsync never       (8 partitions, a fresh store)
# and read back, with the page cache warm, with
#   spool consume bench -e -q > /dev/null
# for CODEC in none, gzip, snappy, lz4 and zstd. The codecs take turns within each round (so a
# machine whose speed drifts treats them alike); the script reports the median wall time of
# each, its ratio to `none`, the median CPU time (user + system, all threads: less sensitive to
# a machine shared with other work than wall time), and the bytes on disk (the .log files).
# Goals: lz4 and zstd produce <= 1.5x and consume <= 2x the uncompressed (wall) time.
# CARGO_TARGET_DIR is honoured.
set -euo pipefail

lines=${1:-1000000}
runs=${2:-7}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
codecs=(none gzip snappy lz4 zstd)

if [[ -z ${SPOOL_SKIP_BUILD:-} ]]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin spool
fi
spool=$target/release/spool
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# "wall-ns cpu-ns" of one run of "$@" with stdout to /dev/null.
time_ns() {
    local TIMEFORMAT='%3R %3U %3S'
    { time "$@" >/dev/null; } 2>&1 | awk '{ printf "%d %d\n", $1 * 1e9, ($2 + $3) * 1e9 }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
wall() { cut -d' ' -f1 "$1" | median; }
cpu() { cut -d' ' -f2 "$1" | median; }

echo "== generating $lines lines of 100 bytes"
awk -v n="$lines" 'BEGIN {
    pad = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
    for (i = 0; i < n; i++) {
        v = sprintf("%010d-", i) substr(pad, 1 + i % 10, 77);
        printf "user-%06d:%s\n", i % 10000, v;
    }
}' >"$work/input"

produce() { # codec store
    rm -rf "$2"
    SPOOL_DIR=$2 "$spool" topic create bench -p 8 >/dev/null
    sync
    time_ns env SPOOL_DIR="$2" "$spool" produce bench -q -K : -z "$1" --fsync never -f "$work/input"
}
consume() { # store
    time_ns env SPOOL_DIR="$1" "$spool" consume bench -e -q
}

for codec in "${codecs[@]}"; do : >"$work/produce-$codec"; : >"$work/consume-$codec"; done
for round in $(seq "$runs"); do
    for codec in "${codecs[@]}"; do
        produce "$codec" "$work/store-$codec" >>"$work/produce-$codec"
    done
    for codec in "${codecs[@]}"; do
        consume "$work/store-$codec" >>"$work/consume-$codec"
    done
    echo "   round $round of $runs done" >&2
done

base_p=$(wall "$work/produce-none")
base_c=$(wall "$work/consume-none")
printf '\n| codec | produce | vs none | CPU | consume -e | vs none | CPU | bytes on disk |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- |\n'
for codec in "${codecs[@]}"; do
    p=$(wall "$work/produce-$codec")
    c=$(wall "$work/consume-$codec")
    pc=$(cpu "$work/produce-$codec")
    cc=$(cpu "$work/consume-$codec")
    bytes=$(cat "$work/store-$codec"/topics/bench/*/*.log | wc -c)
    verdict=""
    if [[ $codec == lz4 || $codec == zstd ]]; then
        verdict=$(awk -v p="$p" -v bp="$base_p" -v c="$c" -v bc="$base_c" 'BEGIN {
            printf " (%s / %s)", (p <= 1.5 * bp ? "ok" : "SLOWER"), (c <= 2 * bc ? "ok" : "SLOWER") }')
    fi
    awk -v codec="$codec" -v p="$p" -v bp="$base_p" -v c="$c" -v bc="$base_c" -v b="$bytes" -v v="$verdict" \
        -v pc="$pc" -v cc="$cc" 'BEGIN {
        printf "| %s | %.0f ms | %.2fx | %.0f ms | %.0f ms | %.2fx | %.0f ms | %.1f MiB |%s\n",
            codec, p / 1e6, p / bp, pc / 1e6, c / 1e6, c / bc, cc / 1e6, b / 1048576, v }'
done
echo "(medians of $runs runs; input $(($(stat -c %s "$work/input") / 1048576)) MiB)"
