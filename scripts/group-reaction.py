#!/usr/bin/env python3
"""Measures how fast a consumer group reacts, end to end through the real binary.

- join: from starting a second member to its first printed record, while records flow;
- kill: from SIGKILL of a member to the first record printed by the survivor from one of the
  killed member's partitions.

Usage: scripts/group-reaction.py [path/to/spool]  (default: target/release/spool)
Each figure is the median of 5 runs; the store lives in a temporary directory.
"""
import os, signal, subprocess, sys, tempfile, threading, time, statistics

SPOOL = sys.argv[1] if len(sys.argv) > 1 else "target/release/spool"


def run(env, *args, **kw):
    return subprocess.run([SPOOL, *args], env=env, check=True, capture_output=True, **kw)


def member(env, first_line_event, lines):
    p = subprocess.Popen([SPOOL, "consume", "t", "--group", "g", "-F", "%p %o\n",
                          "--heartbeat-interval", "1s"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def reader():
        for line in p.stdout:
            lines.append((time.monotonic(), line.split()))
            first_line_event.set()
    threading.Thread(target=reader, daemon=True).start()
    return p


def feeder(env, stop):
    i = 0
    while not stop.is_set():
        run(env, "produce", "t", "-q", "--partitioner", "round-robin", "--fsync", "never",
            input=("".join(f"{i + k}\n" for k in range(4))).encode())
        i += 4
        time.sleep(0.005)


def once():
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, SPOOL_DIR=d)
        run(env, "topic", "create", "t", "-p", "4")
        stop = threading.Event()
        threading.Thread(target=feeder, args=(env, stop), daemon=True).start()
        a_first, a_lines = threading.Event(), []
        a = member(env, a_first, a_lines)
        a_first.wait(10)
        b_first, b_lines = threading.Event(), []
        t0 = time.monotonic()
        b = member(env, b_first, b_lines)
        b_first.wait(10)
        join = b_lines[0][0] - t0
        time.sleep(0.5)
        b_parts = {l[1][0] for l in b_lines}
        t1 = time.monotonic()
        b.send_signal(signal.SIGKILL)
        deadline = time.time() + 10
        kill = None
        while time.time() < deadline and kill is None:
            for ts, l in list(a_lines):
                if ts > t1 and l[0] in b_parts:
                    kill = ts - t1
                    break
            time.sleep(0.001)
        stop.set()
        a.send_signal(signal.SIGTERM)
        a.wait()
        return join, kill


results = [once() for _ in range(5)]
print(f"join -> first record of the new member: median {statistics.median(r[0] for r in results) * 1000:.0f} ms")
print(f"SIGKILL -> survivor prints the dead member's partitions: median {statistics.median(r[1] for r in results) * 1000:.0f} ms")
