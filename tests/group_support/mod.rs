//! Helpers shared by the `spool group` and `spool offsets` tests: group members as running
//! `spool consume --group` processes, waits with deadlines, and JSON output parsed.

#![allow(dead_code)]

pub mod synthetic;

use std::time::Duration;

use super::common::Store;

/// Quick heartbeats so that tests about liveness finish fast.
pub const FAST: [&str; 4] = ["--heartbeat-interval", "200ms", "--session-timeout", "2s"];
pub const WAIT: Duration = Duration::from_secs(20);

pub use super::common::process::wait_until;

pub use super::common::process::Running as Proc;

/// Starts `spool ARGS` against `store`, collecting its output.
pub fn spawn(store: &Store, args: &[&str]) -> Proc {
    let mut cmd = store.spool_process();
    cmd.args(args);
    Proc::spawn(cmd)
}

/// A `spool consume TOPIC --group GROUP` member with fast heartbeats, once it has joined
/// (its lease exists and its first generation was reported).
pub fn member(store: &Store, topic: &str, group: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["consume", topic, "--group", group];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    let p = spawn(store, &args);
    p.wait_stderr("Generation", WAIT);
    p
}

/// Runs spool with args; returns (exit code, stdout, stderr).
pub fn run(store: &Store, args: &[&str]) -> (i32, String, String) {
    let out = store.spool().args(args).output().expect("run spool");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs spool with args, expecting success, and parses stdout as JSON.
pub fn json(store: &Store, args: &[&str]) -> serde_json::Value {
    let (code, out, err) = run(store, args);
    assert_eq!(code, 0, "spool {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

pub use super::common::committed;

/// `n` lines `0..n` produced round-robin.
pub fn produce_numbers(store: &Store, topic: &str, from: u32, to: u32) {
    let input: String = (from..to).map(|i| format!("{i}\n")).collect();
    store.produce(topic, input, &["--partitioner", "round-robin"]);
}

/// Reads a whole group to its end with `consume --group -e`, committing on exit.
pub fn consume_group(store: &Store, topic: &str, group: &str) -> Vec<String> {
    let out = store
        .spool()
        .args([
            "consume",
            topic,
            "--group",
            group,
            "-e",
            "-q",
            "-F",
            "%p:%o:%v\\n",
        ])
        .output()
        .expect("consume");
    assert!(
        out.status.success(),
        "consume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
