//! Shared helpers for the integration tests: every test gets its own store in a temporary
//! directory, and commands run the real `spool` binary against it.

#![allow(dead_code)]

pub mod checker;
pub mod kafka;
pub mod process;
pub mod serve;

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

/// Reads `stdout` as a slow consumer of a pipe would (64 KiB every 5 ms) until `bytes` or more
/// were read, and returns them; panics if the output ends first.
pub fn read_slowly(stdout: &mut impl std::io::Read, bytes: usize) -> Vec<u8> {
    let mut printed = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    while printed.len() < bytes {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the output ended after {} bytes", printed.len());
        printed.extend_from_slice(&buf[..n]);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    printed
}

/// Reads a whole file.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

impl Store {
    /// Runs `spool ARGS` and parses its stdout as JSON, asserting success.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.spool().args(args).output().expect("run spool");
        assert!(
            out.status.success(),
            "spool {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "spool {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// `topic describe TOPIC -o json`.
    pub fn describe(&self, topic: &str) -> serde_json::Value {
        self.json(&["topic", "describe", topic, "-o", "json"])
    }

    /// `(offset, value)` of every record of a partition, read with `consume -e`.
    pub fn offsets_and_values(&self, topic: &str, partition: u32) -> Vec<(i64, Vec<u8>)> {
        let out = self.consume(
            topic,
            &[
                "-p",
                &partition.to_string(),
                "--output",
                "json",
                "--encoding",
                "base64",
            ],
        );
        json_lines(&out)
            .into_iter()
            .map(|r| {
                (
                    r["offset"].as_i64().expect("offset"),
                    b64(&r["value"]).unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Parses JSON lines.
pub fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("bad JSON line {}: {e}", String::from_utf8_lossy(l)))
        })
        .collect()
}

/// Decodes a base64 JSON string; `None` for JSON null.
pub fn b64(v: &serde_json::Value) -> Option<Vec<u8>> {
    use base64::Engine;
    v.as_str().map(|s| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
    })
}

/// One batch found in a `.log` file by walking its length fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub position: u64,
    pub len: u64,
    pub base_offset: i64,
    pub records: i32,
}

/// Walks the batches of a `.log` file (no CRC check; a short tail ends the walk).
pub fn batch_spans(log: &[u8]) -> Vec<BatchSpan> {
    let mut spans = Vec::new();
    let mut pos = 0usize;
    while pos + 61 <= log.len() {
        let len = 12 + i32::from_be_bytes(log[pos + 8..pos + 12].try_into().unwrap()) as usize;
        if pos + len > log.len() {
            break;
        }
        spans.push(BatchSpan {
            position: pos as u64,
            len: len as u64,
            base_offset: i64::from_be_bytes(log[pos..pos + 8].try_into().unwrap()),
            records: i32::from_be_bytes(log[pos + 57..pos + 61].try_into().unwrap()),
        });
        pos += len;
    }
    spans
}

/// XORs one byte of a file with 0xff.
pub fn flip_byte(path: &Path, position: u64) {
    let mut bytes = read(path);
    bytes[position as usize] ^= 0xff;
    std::fs::write(path, bytes).expect("write back");
}

/// Kafka's published `murmur2` vectors (`UtilsTest.testMurmur2`): key and 32-bit hash.
pub const MURMUR2_VECTORS: [(&str, i32); 6] = [
    ("21", -973_932_308),
    ("foobar", -790_332_482),
    ("a-little-bit-long-string", -985_981_536),
    ("a-little-bit-longer-string", -1_486_304_829),
    (
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        -58_897_971,
    ),
    ("abc", 479_470_107),
];

/// Kafka's partition for a key hash: `toPositive(h) % n`.
pub fn kafka_partition(hash: i32, partitions: i32) -> i32 {
    (hash & 0x7fff_ffff) % partitions
}

/// The library's view of a test store.
pub fn lib_store(store: &Store) -> spool::store::Store {
    spool::store::Store::open(store.dir()).expect("open the store")
}

/// Committed offsets of a group, read through the library: (topic, partition, offset).
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
