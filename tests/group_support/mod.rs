//! Helpers shared by the `spool group` and `spool offsets` tests: group members as running
//! `spool consume --group` processes, waits with deadlines, and JSON output parsed.

#![allow(dead_code)]

pub mod synthetic;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::common::Store;

/// Quick heartbeats so that tests about liveness finish fast.
pub const FAST: [&str; 4] = ["--heartbeat-interval", "200ms", "--session-timeout", "2s"];
pub const WAIT: Duration = Duration::from_secs(20);

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `spool` whose stdout and stderr are collected line by line; killed when dropped.
pub struct Proc {
    pub child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(reader: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            match line {
                Ok(l) => sink.lock().unwrap().push(l),
                Err(_) => break,
            }
        }
    });
    lines
}

impl Proc {
    pub fn spawn(store: &Store, args: &[&str]) -> Proc {
        let mut child = store
            .spool_process()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spool");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Proc {
            child,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn wait_stderr(&self, needle: &str) {
        let ok = wait_until(WAIT, || self.stderr_text().contains(needle));
        assert!(ok, "no {needle:?} on stderr:\n{}", self.stderr_text());
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a child we spawned.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the exit (killing the process after `WAIT`).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50)); // let the readers drain
                return status;
            }
            if Instant::now() > deadline {
                self.signal(libc::SIGKILL);
                panic!("process did not exit; stderr:\n{}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `spool consume TOPIC --group GROUP` member with fast heartbeats, once it has joined
/// (its lease exists and its first generation was reported).
pub fn member(store: &Store, topic: &str, group: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["consume", topic, "--group", group];
    args.extend_from_slice(&FAST);
    args.extend_from_slice(extra);
    let p = Proc::spawn(store, &args);
    p.wait_stderr("Generation");
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

/// The library's view of the store.
pub fn lib_store(store: &Store) -> spool::store::Store {
    spool::store::Store::open(store.dir()).unwrap()
}

/// Committed offsets of a group: (topic, partition) to offset.
pub fn committed(store: &Store, group: &str) -> Vec<(String, i32, i64)> {
    let s = lib_store(store);
    let offsets = spool::group::state::GroupDir::new(&s, group)
        .unwrap()
        .load_offsets()
        .unwrap();
    offsets
        .iter()
        .flat_map(|(t, m)| m.iter().map(move |(p, c)| (t.clone(), *p, c.offset)))
        .collect()
}

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
