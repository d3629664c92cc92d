#!/usr/bin/env bash
# Read-path benchmarks for `spool consume` (issue 3), side by side in one run.
#
#   scripts/bench-consume.sh [RECORDS] [RUNS]        (defaults: 1000000 records, 11 runs)
#
# 1. Throughput. A fresh store gets RECORDS records of 100-byte values, produced from a file
#    (so in 1 MiB batches, one segment). With the page cache warm, it times RUNS runs each of
#      cat <the partition's .log files> > /dev/null
#      spool consume bench -e -q > /dev/null          (default template, value + newline)
#    with hyperfine when it is installed (`apt-get install hyperfine`; the commands run back to
#    back, no shell in between), else alternately from this shell, and reports the median wall
#    time of each and their ratio (goal: <= 2x cat). Reading uses two threads (one reads and
#    checks ahead): on a virtual machine whose second CPU was idle, runs started from a shell
#    one by one vary more than hyperfine's.
#    For reference it also times --output json and -F '%p %o %k %v\n', and prints the peak
#    RSS of a full read next to the log size (memory stays flat whatever the topic size).
# 2. Start-up at any offset: `consume -o N -n 1` at the start, middle and end of the log,
#    which must not depend on the position (the offset index is searched, nothing scanned).
# 3. Latency: examples/latency.rs, a following consumer and a producer sending one record at a
#    time (values carry the CLOCK_REALTIME send time in ns): p50/p99 of produce-to-print time
#    (goal: p99 < 5 ms on an idle machine).
#
# Timings are wall-clock medians from this machine; nothing here is a pass/fail test, but the
# two goals are reported as "ok" or "SLOWER". CARGO_TARGET_DIR is honoured.
set -euo pipefail

records=${1:-1000000}
runs=${2:-11}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin spool --example latency
spool=$target/release/spool
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SPOOL_DIR=$work/store

# Nanoseconds of wall time for one run of "$@" with stdout to /dev/null.
time_ns() {
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null
    end=$(date +%s%N)
    echo $((end - start))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f ms", ns / 1e6 }'; }

echo "== preparing $records records of 100 bytes"
python3 -c "
import sys
line = b'v' * 100 + b'\n'
sys.stdout.buffer.write(line * $records)" >"$work/input"
"$spool" topic create bench >/dev/null
"$spool" produce bench -q -f "$work/input" --fsync never
logs=("$SPOOL_DIR"/topics/bench/0/*.log)
size=$(cat "${logs[@]}" | wc -c)
echo "log: ${#logs[@]} segment(s), $((size / 1024 / 1024)) MiB"

# Check the output once, and warm the page cache.
lines=$("$spool" consume bench -e -q | wc -l)
[ "$lines" -eq "$records" ] || { echo "consume printed $lines lines, expected $records" >&2; exit 1; }
cat "${logs[@]}" >/dev/null

echo "== throughput: median of $runs runs, page cache warm"
: >"$work/cat"; : >"$work/consume"; : >"$work/json"; : >"$work/fmt"
if command -v hyperfine >/dev/null; then
    echo "(hyperfine)"
    hyperfine -N -w 3 -r "$runs" --export-json "$work/h.json" \
        "cat ${logs[*]}" \
        "$spool consume bench -e -q" \
        "$spool consume bench -e -q --output json" \
        "$spool consume bench -e -q -F '%p %o %k %v\n'" >/dev/null
    python3 -c "
import json, sys
results = json.load(open(sys.argv[1]))['results']
for name, r in zip(['cat', 'consume', 'json', 'fmt'], results):
    open(sys.argv[2] + '/' + name, 'w').write('%d\n' % (r['median'] * 1e9))" "$work/h.json" "$work"
else
    for _ in $(seq "$runs"); do
        time_ns cat "${logs[@]}" >>"$work/cat"
        time_ns "$spool" consume bench -e -q >>"$work/consume"
        time_ns "$spool" consume bench -e -q --output json >>"$work/json"
        time_ns "$spool" consume bench -e -q -F '%p %o %k %v\n' >>"$work/fmt"
    done
fi
cat_ns=$(median <"$work/cat")
consume_ns=$(median <"$work/consume")
ratio=$(awk -v a="$consume_ns" -v b="$cat_ns" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 2 ? "ok" : "SLOWER than the 2x goal") }')
printf '%-44s %s\n' "cat segment files > /dev/null" "$(ms "$cat_ns")"
printf '%-44s %s   (%sx cat: %s)\n' "consume -e > /dev/null" "$(ms "$consume_ns")" "$ratio" "$verdict"
printf '%-44s %s\n' "consume -e --output json > /dev/null" "$(ms "$(median <"$work/json")")"
printf '%-44s %s\n' "consume -e -F '%p %o %k %v\\n' > /dev/null" "$(ms "$(median <"$work/fmt")")"
if [ -x /usr/bin/time ]; then
    rss=$(/usr/bin/time -f %M "$spool" consume bench -e -q 2>&1 >/dev/null)
    echo "peak RSS of a full read: $((rss / 1024)) MiB for a $((size / 1024 / 1024)) MiB log"
fi

echo "== start-up at an offset: median of $runs runs of consume -o N -n 1"
for offset in 0 $((records / 2)) $((records - 1)); do
    : >"$work/seek"
    for _ in $(seq "$runs"); do
        time_ns "$spool" consume bench -q -o "$offset" -n 1 >>"$work/seek"
    done
    printf '%-44s %s\n' "-o $offset" "$(ms "$(median <"$work/seek")")"
done

echo "== produce-to-consume latency of a following consumer"
"$target/release/examples/latency" --spool "$spool" --records 1000 --pause-us 2000 |
    tee "$work/latency"
p99=$(sed -n 's/.* p99 \([0-9]*\) .*/\1/p' "$work/latency")
[ -n "$p99" ] && awk -v p="$p99" 'BEGIN { print (p < 5000 ? "p99 < 5 ms: ok" : "p99 >= 5 ms: SLOWER than the goal") }'
