#!/bin/sh
# Times `spool group describe` (and --members, -o json, `group list`) on a synthetic group of
# 100 live members over 1,000 partitions (10 topics x 100 partitions, 20 records each, all
# committed), built through the library by tests/group_support/synthetic.rs. Release build;
# prints min / median / max of 20 runs of the whole `spool` process.
set -eu
cd "$(dirname "$0")/.."
exec cargo test --release --test group_cli -- --ignored --exact bench_group_describe --nocapture
