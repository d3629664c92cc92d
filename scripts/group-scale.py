#!/usr/bin/env python3
"""Measures a consumer group at scale, end to end through the real binary.

Starts N `spool consume --group g` members (default timings unless told otherwise) on a
P-partition topic while a producer keeps records flowing, and prints:

- all in the generation: from starting the last member to N members in the generation (the
  last join done: process start-up and the joins themselves);
- settle after join: from starting the last member to a balanced group (N members in the
  generation, every partition owned, owner counts differing by at most one, owners = target),
  and the same from the moment all N were in the generation (the last join done);
- settle after kill -9 of one member, and after SIGTERM of one member (the group has N-1,
  then N-2 members, none of them the stopped one);
- exit after SIGTERM to all: until every member process has exited;
- threads per member (/proc/PID/status) and idle CPU per member (utime+stime over a quiet
  window, no records flowing, in % of one core);
- the load average before and after each run (the machine may be shared).

Ownership is read from groups/g/group.yaml (what `spool group describe g --members` shows).
Each phase gives up after --cap seconds and prints "> cap".

Usage: scripts/group-scale.py [--spool target/release/spool] [-n 20,50,100] [-p 100]
       [--idle 10] [--cap 60] [-- extra consume flags...]
"""
import argparse, os, random, signal, subprocess, sys, tempfile, threading, time

import yaml

try:
    Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    Loader = yaml.SafeLoader


def args():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--spool", default="target/release/spool")
    a.add_argument("-n", "--members", default="20,50,100", help="comma-separated group sizes")
    a.add_argument("-p", "--partitions", type=int, default=100)
    a.add_argument("--idle", type=float, default=10.0, help="seconds of the idle CPU window")
    a.add_argument("--cap", type=float, default=60.0, help="give up a phase after this many seconds")
    a.add_argument("extra", nargs="*", help="more flags for each `spool consume` member")
    return a.parse_args()


def load_state(store):
    path = os.path.join(store, "groups", "g", "group.yaml")
    try:
        with open(path) as f:
            return yaml.load(f, Loader=Loader) or {}
    except (OSError, yaml.YAMLError):
        return {}


def lease_pids(store):
    """member id -> pid, from the lease files."""
    d = os.path.join(store, "groups", "g", "members")
    out = {}
    for name in os.listdir(d):
        if name.startswith(".") or not name.endswith(".yaml"):
            continue
        try:
            with open(os.path.join(d, name)) as f:
                lease = yaml.load(f, Loader=Loader)
            out[lease["member_id"]] = lease["pid"]
        except (OSError, yaml.YAMLError, TypeError, KeyError):
            pass
    return out


def balanced(state, n, partitions, excluded=()):
    members = state.get("members") or {}
    if len(members) != n or any(m in members for m in excluded):
        return False
    owners = {}
    for topic, parts in (state.get("owners") or {}).items():
        for p, m in parts.items():
            owners[(topic, p)] = m
    if len(owners) != partitions or any(m not in members for m in owners.values()):
        return False
    counts = {m: 0 for m in members}
    for m in owners.values():
        counts[m] += 1
    if max(counts.values()) - min(counts.values()) > 1:
        return False
    target = {}
    for m, tps in (state.get("assignment") or {}).items():
        for tp in tps or []:
            target[(tp["topic"], tp["partition"])] = m
    return target == owners


def wait_members(store, n, t0, cap):
    while time.monotonic() - t0 < cap:
        if len(load_state(store).get("members") or {}) == n:
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def wait_balanced(store, n, partitions, t0, cap, excluded=()):
    while time.monotonic() - t0 < cap:
        if balanced(load_state(store), n, partitions, excluded):
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def feeder(spool, env, stop, partitions):
    i = 0
    while not stop.is_set():
        lines = "".join(f"{i + k}\n" for k in range(partitions))
        subprocess.run([spool, "produce", "t", "-q", "--partitioner", "round-robin", "--fsync", "never"],
                       env=env, input=lines.encode(), check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        i += partitions
        time.sleep(0.05)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def fmt(t, cap):
    return f"> {cap:.0f} s" if t is None else f"{t:.2f} s"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run(opts, n):
    spool = os.path.abspath(opts.spool)
    load_before = loadavg()
    with tempfile.TemporaryDirectory() as store:
        env = dict(os.environ, SPOOL_DIR=store)
        subprocess.run([spool, "topic", "create", "t", "-p", str(opts.partitions)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        stop = threading.Event()
        feed = threading.Thread(target=feeder, args=(spool, env, stop, opts.partitions), daemon=True)
        feed.start()
        procs = []
        try:
            for _ in range(n):
                procs.append(subprocess.Popen(
                    [spool, "consume", "t", "--group", "g", "-q", "-F", "%p %o\n", *opts.extra],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            t0 = time.monotonic()
            joined = wait_members(store, n, t0, opts.cap)
            join = wait_balanced(store, n, opts.partitions, t0, opts.cap)
            ids = {pid: m for m, pid in lease_pids(store).items()}
            victims = random.sample(procs, 2)

            t0 = time.monotonic()
            victims[0].send_signal(signal.SIGKILL)
            killed = [ids.get(victims[0].pid)]
            kill = wait_balanced(store, n - 1, opts.partitions, t0, opts.cap, killed)

            t0 = time.monotonic()
            victims[1].send_signal(signal.SIGTERM)
            killed.append(ids.get(victims[1].pid))
            term = wait_balanced(store, n - 2, opts.partitions, t0, opts.cap, killed)
            for v in victims:
                v.wait()
            live = [p for p in procs if p not in victims]

            stop.set()
            feed.join()
            time.sleep(2)  # let the members drain what was produced
            nthreads = [threads(p.pid) for p in live]
            before = {p.pid: cpu_ticks(p.pid) for p in live}
            time.sleep(opts.idle)
            hz = os.sysconf("SC_CLK_TCK")
            cpu = sum(cpu_ticks(p.pid) - before[p.pid] for p in live) / hz / opts.idle / len(live) * 100

            t0 = time.monotonic()
            for p in live:
                p.send_signal(signal.SIGTERM)
            deadline = t0 + opts.cap
            exited = None
            for p in live:
                try:
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    break
            else:
                exited = time.monotonic() - t0
            generation = load_state(store).get("generation")
        finally:
            stop.set()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        after_join = None if joined is None or join is None else max(0.0, join - joined)
        print(f"| {n} | {opts.partitions} | {fmt(joined, opts.cap)} | {fmt(join, opts.cap)} | "
              f"{fmt(after_join, opts.cap)} | {fmt(kill, opts.cap)} | "
              f"{fmt(term, opts.cap)} | {fmt(exited, opts.cap)} | {min(nthreads)}-{max(nthreads)} | "
              f"{cpu:.3f}% | {generation} | {load_before} / {loadavg()} |", flush=True)


def main():
    opts = args()
    print("| members | partitions | all in the generation | settled after last start | settled after last join "
          "| after kill -9 of one | after SIGTERM of one | all exited after SIGTERM | threads per member "
          "| idle CPU per member | last generation | load before / after |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for n in [int(x) for x in opts.members.split(",")]:
        run(opts, n)


if __name__ == "__main__":
    main()
