//! Shared helpers for the integration tests: every test gets its own store in a temporary
//! directory, and commands run the real `spool` binary against it.

#![allow(dead_code)]

pub mod checker;
pub mod process;

use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};

use assert_cmd::Command;

/// A temporary store, removed when dropped.
pub struct Store {
    pub tmp: tempfile::TempDir,
}

impl Store {
    pub fn new() -> Store {
        Store {
            tmp: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// The store directory (`--dir`).
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("store")
    }

    /// `spool` with this store, a clean environment for the store's location, and no colour.
    pub fn spool(&self) -> Command {
        let mut cmd = Command::cargo_bin("spool").expect("spool binary");
        cmd.env("SPOOL_DIR", self.dir())
            .env("NO_COLOR", "1")
            .env_remove("XDG_DATA_HOME");
        cmd
    }

    /// `spool` as a std process (for processes running side by side, killed or stopped).
    pub fn spool_process(&self) -> StdCommand {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("spool"));
        cmd.env("SPOOL_DIR", self.dir())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }

    /// Creates a topic with `partitions` partitions and extra args.
    pub fn create_topic(&self, topic: &str, partitions: u32, extra: &[&str]) {
        self.spool()
            .args(["topic", "create", topic, "-p", &partitions.to_string()])
            .args(extra)
            .assert()
            .success();
    }

    /// Produces `input` to `topic` with extra args, asserting success.
    pub fn produce(&self, topic: &str, input: impl Into<Vec<u8>>, extra: &[&str]) {
        self.spool()
            .args(["produce", topic, "-q"])
            .args(extra)
            .write_stdin(input.into())
            .assert()
            .success();
    }

    /// `consume -e -q` with extra args; returns stdout.
    pub fn consume(&self, topic: &str, extra: &[&str]) -> Vec<u8> {
        let out = self
            .spool()
            .args(["consume", topic, "-e", "-q"])
            .args(extra)
            .output()
            .expect("run spool consume");
        assert!(
            out.status.success(),
            "consume failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Path of a partition directory.
    pub fn partition_dir(&self, topic: &str, partition: u32) -> PathBuf {
        self.dir()
            .join("topics")
            .join(topic)
            .join(partition.to_string())
    }

    /// Segment `.log` files of a partition, sorted.
    pub fn segments(&self, topic: &str, partition: u32) -> Vec<PathBuf> {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.partition_dir(topic, partition))
            .expect("partition dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        logs
    }
}

/// Lines of output as strings.
pub fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Sends a signal to a child process.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a pid we spawned.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Reads a whole file.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
