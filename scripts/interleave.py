#!/usr/bin/env python3
"""Times commands run in turn, round after round, and prints each one's median.

    scripts/interleave.py ROUNDS NAME=COMMAND [NAME=COMMAND ...]

For comparing two builds (or a build and `cat`) on a machine whose speed drifts from one
minute to the next: running them alternately puts each through the same drift, where
running one's runs and then the other's does not. Stdout of the commands goes to /dev/null;
commands are split on spaces (no shell).

    scripts/interleave.py 30 "cat=cat $LOG" "old=old/spool consume bench -e -q" \\
        "new=target/release/spool consume bench -e -q"
"""
import os
import statistics
import subprocess
import sys
import time


def main() -> None:
    if len(sys.argv) < 3 or "=" not in "".join(sys.argv[2:]):
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    commands = dict(arg.split("=", 1) for arg in sys.argv[2:])
    times = {name: [] for name in commands}
    with open(os.devnull, "w") as devnull:
        for _ in range(rounds):
            for name, command in commands.items():
                start = time.perf_counter()
                subprocess.run(command.split(), stdout=devnull, check=True)
                times[name].append((time.perf_counter() - start) * 1000)
    for name, ms in times.items():
        ms.sort()
        print(f"{name:<10} median {statistics.median(ms):6.1f} ms   "
              f"quartiles {ms[len(ms) // 4]:6.1f} / {ms[3 * len(ms) // 4]:6.1f}   min {ms[0]:6.1f}")


if __name__ == "__main__":
    main()
