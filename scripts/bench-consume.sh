#!/usr/bin/env bash
# Read-path benchmarks for `spool consume` (issues 3 and 16), side by side in one run.
#
#   scripts/bench-consume.sh [RECORDS] [RUNS]        (defaults: 1000000 records, 11 runs)
#   BASELINE=/path/to/older/spool scripts/bench-consume.sh   # an older build beside this one
#
# 1. Throughput. Two fresh stores get RECORDS records of 100-byte values, produced from a file
#    (so in 1 MiB batches): topic `bench` with 1 partition and topic `bench8` with 8. With the
#    page cache warm, hyperfine times RUNS runs each (the commands back to back, no shell in
#    between; `apt-get install hyperfine`), per topic:
#      cat <the topic's .log files>                   (stdout to /dev/null)
#      spool consume TOPIC -e -q                      (default template: value + newline)
#      [$BASELINE consume TOPIC -e -q]
#    and, on the 1-partition topic, --output json, -F '%p %o %k %v\n' and -K : (the key, a
#    separator and the value, as `spool produce -K :` reads them back; and the baseline's),
#    and reports min and median of each and the ratios to cat (goals: 1 partition <= 1.4x,
#    8 partitions <= 1.5x, JSON <= 3x, the template <= 2x).
# 2. Memory: peak RSS and minor page faults of a full read of each topic (/usr/bin/time): the
#    8-partition read should stay near the 1-partition one, and neither grows with the topic.
# 3. Start-up at any offset: `consume -o N -n 1` at the start, middle and end of the log,
#    which must not depend on the position (the offset index is searched, nothing scanned).
# 4. Latency: examples/latency.rs, a following consumer and a producer sending one record at a
#    time (values carry the CLOCK_REALTIME send time in ns): p50/p99 of produce-to-print time
#    (goal: p99 < 0.5 ms on an idle machine).
#
# Timings are wall-clock figures from this machine (say how loaded it was: `uptime` is printed);
# nothing here is a pass/fail test. CARGO_TARGET_DIR is honoured.
set -euo pipefail

records=${1:-1000000}
runs=${2:-11}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin spool --example latency
spool=$target/release/spool
baseline=${BASELINE:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SPOOL_DIR=$work/store
command -v hyperfine >/dev/null || { echo "error: hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }

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
"$spool" topic create bench8 -p 8 >/dev/null
"$spool" produce bench -q -f "$work/input" --fsync never
"$spool" produce bench8 -q -f "$work/input" --fsync never
logs=("$SPOOL_DIR"/topics/bench/0/*.log)
logs8=("$SPOOL_DIR"/topics/bench8/*/*.log)
size=$(cat "${logs[@]}" | wc -c)
echo "log: ${#logs[@]} segment(s), $((size / 1024 / 1024)) MiB; 8 partitions: ${#logs8[@]} segments"

# Check the output once, and warm the page cache.
for topic in bench bench8; do
    lines=$("$spool" consume $topic -e -q | wc -l)
    [ "$lines" -eq "$records" ] || { echo "$topic: consume printed $lines lines, expected $records" >&2; exit 1; }
done
cat "${logs[@]}" "${logs8[@]}" >/dev/null
# The logs were produced without fsync: the kernel would write their 210 MiB back in the middle
# of the timings (after 30 s), slowing whichever commands run then.
sync

echo "== throughput: $runs runs each, page cache warm; load: $(uptime | sed 's/.*load/load/')"
# One hyperfine run of "$@" (name=command pairs); prints min and median, and the ratio of each
# median to the first command's.
side_by_side() {
    local args=() names=()
    for pair in "$@"; do
        names+=("${pair%%=*}")
        args+=(-n "${pair%%=*}" "${pair#*=}")
    done
    hyperfine -N -w 3 -r "$runs" --export-json "$work/h.json" "${args[@]}" >/dev/null 2>"$work/h.err"
    python3 -c "
import json, sys
results = json.load(open(sys.argv[1]))['results']
first = results[0]['median']
for r in results:
    print('  %-40s min %6.1f ms  median %6.1f ms  %5.2fx %s' % (r['command'], r['min'] * 1e3,
          r['median'] * 1e3, r['median'] / first, results[0]['command']))" "$work/h.json"
}
with_baseline() { # NAME ARGS: the command for this build and, with BASELINE, for that one
    local name=$1
    shift
    echo "$name=$spool $*"
    [ -n "$baseline" ] && echo "$name (baseline)=$baseline $*"
    return 0
}
echo "1 partition:"
mapfile -t one < <(
    echo "cat=cat ${logs[*]}"
    with_baseline "consume -e -q" consume bench -e -q
    with_baseline "consume -e -q --output json" consume bench -e -q --output json
    with_baseline "consume -e -q -F '%p %o %k %v\n'" consume bench -e -q -F "'%p %o %k %v\n'"
    with_baseline "consume -e -q -K :" consume bench -e -q -K :
)
side_by_side "${one[@]}"
echo "8 partitions:"
mapfile -t eight < <(
    echo "cat (8 files)=cat ${logs8[*]}"
    with_baseline "consume -e -q (8 partitions)" consume bench8 -e -q
)
side_by_side "${eight[@]}"

echo "== memory of a full read (peak RSS, minor page faults)"
for topic in bench bench8; do
    for binary in "$spool" ${baseline:+"$baseline"}; do
        /usr/bin/time -f '%M %R' -o "$work/mem" "$binary" consume $topic -e -q >/dev/null
        read -r rss faults <"$work/mem"
        printf '  %-8s %-40s peak RSS %5.1f MiB, %6d minor faults\n' "$topic" "$binary" \
            "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$faults"
    done
done

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
[ -n "$p99" ] && awk -v p="$p99" 'BEGIN { print (p < 500 ? "p99 < 0.5 ms: ok" : "p99 >= 0.5 ms: SLOWER than the goal") }'
