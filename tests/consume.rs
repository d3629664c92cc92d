//! `spool consume` without a group: the read path (issue 3).
//!
//! Every flag, the offset forms and their clamping, the output templates and JSON lines (with a
//! byte-for-byte round trip through `produce --input json`), stopping conditions, following a
//! topic while it is produced to, `| head`, bad input, damaged batches, batches caught half
//! written, and retention deleting segments under a reader.
//!
//! Tests that wait for a following consumer never sleep and hope: they wait for the lines they
//! expect with a generous deadline, so they fail only when the feature is broken.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{lines, signal, Store};

/// How long a test waits for something that should happen within milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `spool consume <args>` to completion: (exit code, stdout, stderr).
fn run(store: &Store, args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = store
        .spool()
        .arg("consume")
        .args(args)
        .timeout(PATIENCE)
        .output()
        .expect("run spool consume");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        text(&out.stderr),
    )
}

/// `consume <args> -e -q` as lines.
fn read_lines(store: &Store, topic: &str, extra: &[&str]) -> Vec<String> {
    lines(&store.consume(topic, extra))
}

/// Produces one JSON line per record (`produce --input json`).
fn produce_json(store: &Store, topic: &str, json_lines: &[String], extra: &[&str]) {
    let mut input = json_lines.join("\n");
    input.push('\n');
    let mut args = vec!["--input", "json"];
    args.extend_from_slice(extra);
    store.produce(topic, input, &args);
}

/// Produces `values` to a partition, one produce run, so one batch.
fn produce_to(store: &Store, topic: &str, partition: u32, values: &[&str]) {
    let mut input = values.join("\n");
    input.push('\n');
    store.produce(topic, input, &["-p", &partition.to_string()]);
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A consumer running in the background, its stdout read line by line on a thread.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Follower {
    fn start(store: &Store, args: &[&str]) -> Follower {
        let mut child = store
            .spool_process()
            .arg("consume")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spool consume");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                if tx.send(text(&line)).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Follower {
            child,
            lines: rx,
            stderr: Some(stderr),
        }
    }

    /// The next line, or `None` if none comes within `timeout`.
    fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits for exactly these lines, in this order.
    fn expect(&self, expected: &[&str]) {
        for want in expected {
            match self.next_line(PATIENCE) {
                Some(got) => assert_eq!(&got, want),
                None => panic!("no line {want:?} within {PATIENCE:?}"),
            }
        }
    }

    /// Waits for the process to exit by itself; returns its status and stderr.
    fn wait(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let stderr = self.stderr.take().unwrap().join().unwrap();
                return (status, stderr);
            }
            assert!(
                Instant::now() < deadline,
                "consumer did not exit within {PATIENCE:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Every line still to come until the process exits.
    fn rest(&self) -> Vec<String> {
        self.lines.iter().collect()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Offsets of `-F '%p %o ...'` lines, per partition.
fn offsets_by_partition(lines: &[String]) -> std::collections::BTreeMap<i32, Vec<i64>> {
    let mut map = std::collections::BTreeMap::<i32, Vec<i64>>::new();
    for line in lines {
        let mut parts = line.split(' ');
        let p: i32 = parts.next().unwrap().parse().unwrap();
        let o: i64 = parts.next().unwrap().parse().unwrap();
        map.entry(p).or_default().push(o);
    }
    map
}

/// Positions and lengths of the batches of a segment file.
fn batches(log: &Path) -> Vec<(usize, usize)> {
    let bytes = common::read(log);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize + 12;
        out.push((pos, len));
        pos += len;
    }
    out
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = common::read(path);
    bytes[at] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Topics and partitions

#[test]
fn reads_every_partition_or_the_chosen_ones() {
    let s = Store::new();
    s.create_topic("t", 3, &[]);
    produce_to(&s, "t", 0, &["a0", "a1"]);
    produce_to(&s, "t", 1, &["b0"]);
    produce_to(&s, "t", 2, &["c0", "c1", "c2"]);

    let mut all = read_lines(&s, "t", &["-F", "%p:%o:%v\\n"]);
    all.sort();
    assert_eq!(
        all,
        ["0:0:a0", "0:1:a1", "1:0:b0", "2:0:c0", "2:1:c1", "2:2:c2"]
    );

    assert_eq!(read_lines(&s, "t", &["-p", "2"]), ["c0", "c1", "c2"]);
    let mut some = read_lines(&s, "t", &["-p", "0", "--partition", "1"]);
    some.sort();
    assert_eq!(some, ["a0", "a1", "b0"]);
    // A partition named twice is read once.
    assert_eq!(read_lines(&s, "t", &["-p", "1", "-p", "1"]), ["b0"]);
}

#[test]
fn reads_several_topics() {
    let s = Store::new();
    s.produce("one", "x\ny\n", &[]);
    s.produce("two", "z\n", &[]);
    let (code, out, err) = run(&s, &["one", "two", "-e", "-F", "%t=%v\\n"]);
    assert_eq!(code, 0, "{err}");
    let mut got = lines(&out);
    got.sort();
    assert_eq!(got, ["one=x", "one=y", "two=z"]);
    assert!(err.contains("Processed 3 records"), "{err}");
    // The same topic twice is read once.
    let (_, out, _) = run(&s, &["one", "one", "-e", "-q"]);
    assert_eq!(lines(&out), ["x", "y"]);
}

#[test]
fn empty_topic_exits_at_end_with_nothing() {
    let s = Store::new();
    s.create_topic("empty", 2, &[]);
    let (code, out, err) = run(&s, &["empty", "-e"]);
    assert_eq!(code, 0);
    assert!(out.is_empty());
    assert_eq!(err, "Processed 0 records\n");
}

// ---------------------------------------------------------------------------------------------
// Offsets

fn ten_records(s: &Store) {
    s.create_topic("t", 1, &[]);
    let input: String = (0..10).map(|i| format!("v{i}\n")).collect();
    s.produce("t", input, &[]);
}

#[test]
fn offset_words() {
    let s = Store::new();
    ten_records(&s);
    let all: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    assert_eq!(read_lines(&s, "t", &[]), all, "earliest is the default");
    for word in ["earliest", "beginning", "start", "EARLIEST", "Beginning"] {
        assert_eq!(read_lines(&s, "t", &["-o", word]), all, "{word}");
    }
    for word in ["latest", "end", "END"] {
        assert!(
            read_lines(&s, "t", &["--offset", word]).is_empty(),
            "{word}"
        );
    }
}

#[test]
fn offset_numbers() {
    let s = Store::new();
    ten_records(&s);
    assert_eq!(read_lines(&s, "t", &["-o", "7"]), ["v7", "v8", "v9"]);
    assert_eq!(read_lines(&s, "t", &["-o", "0", "-n", "1"]), ["v0"]);
    assert_eq!(read_lines(&s, "t", &["-o", "-2"]), ["v8", "v9"]);
    assert_eq!(read_lines(&s, "t", &["-o", "+8"]), ["v8", "v9"]);
    assert_eq!(read_lines(&s, "t", &["-o", "-0"]), Vec::<String>::new());
    assert_eq!(read_lines(&s, "t", &["-o", "+0"]).len(), 10);
    // -N and +N beyond the partition stop at its ends, with a warning like any offset outside
    // the log; one that stays inside warns of nothing.
    let (code, out, err) = run(&s, &["t", "-e", "-o", "-100"]);
    assert_eq!((code, lines(&out).len()), (0, 10));
    assert!(
        err.contains(
            "warning: t/0: -100 (10 records there) goes back past the log start; starting at 0"
        ),
        "{err}"
    );
    let (code, out, err) = run(&s, &["t", "-e", "-o", "+100"]);
    assert_eq!((code, out.len()), (0, 0));
    assert!(
        err.contains("warning: t/0: +100 (10 records there) goes past the log end; starting at 10"),
        "{err}"
    );
    let (_, _, err) = run(&s, &["t", "-e", "-o", "-10"]);
    assert!(!err.contains("warning"), "{err}");
}

#[test]
fn relative_offsets_apply_to_each_partition() {
    let s = Store::new();
    s.create_topic("t", 2, &[]);
    produce_to(&s, "t", 0, &["a0", "a1", "a2", "a3"]);
    produce_to(&s, "t", 1, &["b0", "b1"]);
    let mut last = read_lines(&s, "t", &["-o", "-1"]);
    last.sort();
    assert_eq!(last, ["a3", "b1"]);
    let mut after = read_lines(&s, "t", &["-o", "+1"]);
    after.sort();
    assert_eq!(after, ["a1", "a2", "a3", "b1"]);
}

#[test]
fn offset_past_the_end_is_clamped_with_a_warning() {
    let s = Store::new();
    ten_records(&s);
    let (code, out, err) = run(&s, &["t", "-e", "-o", "100"]);
    assert_eq!(code, 0);
    assert!(out.is_empty());
    assert!(
        err.contains("warning: t/0: offset 100 is past the log end; starting at 10"),
        "{err}"
    );
    // -q silences the warning and the summary.
    let (code, _, err) = run(&s, &["t", "-e", "-q", "-o", "100"]);
    assert_eq!(code, 0);
    assert_eq!(err, "");
}

#[test]
fn offset_below_the_log_start_is_clamped_with_a_warning() {
    let s = Store::new();
    s.create_topic("t", 1, &["--segment-bytes", "1024"]);
    // Small batches, so there are many segments.
    let input: String = (0..100).map(|i| format!("{i:0>50}\n")).collect();
    s.produce("t", input, &["--batch-size", "300"]);
    s.spool()
        .args(["topic", "alter", "t", "--config", "retention.bytes=2048"])
        .assert()
        .success();
    s.spool().args(["topic", "prune", "t"]).assert().success();
    let start = first_offset(&s, "t");
    assert!(start > 0, "retention deleted nothing");

    let (code, out, err) = run(&s, &["t", "-e", "-o", "3", "-F", "%o\\n"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(&out)[0], start.to_string());
    assert!(
        err.contains(&format!(
            "warning: t/0: offset 3 is below the log start; starting at {start}"
        )),
        "{err}"
    );
    assert_eq!(lines(&out).len() as i64, 100 - start);
    // Earliest is the new log start, without a warning.
    let (_, out, err) = run(&s, &["t", "-e", "-F", "%o\\n"]);
    assert_eq!(lines(&out)[0], start.to_string());
    assert!(!err.contains("warning"), "{err}");
}

/// The first offset `consume` delivers.
fn first_offset(s: &Store, topic: &str) -> i64 {
    let out = s.consume(topic, &["-n", "1", "-F", "%o"]);
    text(&out).parse().unwrap()
}

#[test]
fn offset_at_a_time() {
    let s = Store::new();
    s.create_topic("t", 2, &[]);
    let base = 1_795_514_400_000i64; // 2026-11-24T10:00:00Z
    let records: Vec<String> = (0..6)
        .map(|i| {
            format!(
                r#"{{"value":"r{i}","timestamp":{},"partition":{}}}"#,
                base + i * 60_000,
                i % 2
            )
        })
        .collect();
    produce_json(&s, "t", &records, &[]);
    let at = |spec: &str| {
        let mut got = read_lines(&s, "t", &["-o", spec]);
        got.sort();
        got
    };
    // Epoch ms, exactly on a record and between two.
    assert_eq!(at(&format!("@{}", base + 3 * 60_000)), ["r3", "r4", "r5"]);
    assert_eq!(at(&format!("@{}", base + 3 * 60_000 + 1)), ["r4", "r5"]);
    // RFC 3339, with a zone offset and with fractions.
    assert_eq!(at("@2026-11-24T10:04:00Z"), ["r4", "r5"]);
    assert_eq!(at("@2026-11-24T12:04:00+02:00"), ["r4", "r5"]);
    assert_eq!(at("@2026-11-24T10:03:59.999Z"), ["r4", "r5"]);
    // Before every record: all of them; after every record: none.
    assert_eq!(at("@2026-11-24").len(), 6);
    assert!(at("@2026-11-25T00:00:00Z").is_empty());
}

#[test]
fn offset_at_a_time_ago() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    let now = now_ms();
    let records: Vec<String> = [("old", now - 3 * 3_600_000), ("recent", now - 60_000)]
        .iter()
        .map(|(v, ts)| format!(r#"{{"value":"{v}","timestamp":{ts}}}"#))
        .collect();
    produce_json(&s, "t", &records, &[]);
    s.produce("t", "new\n", &[]);
    assert_eq!(read_lines(&s, "t", &["-o", "@-1h"]), ["recent", "new"]);
    assert_eq!(
        read_lines(&s, "t", &["-o", "@-5h"]),
        ["old", "recent", "new"]
    );
    assert_eq!(read_lines(&s, "t", &["-o", "@-10s"]), ["new"]);
}

#[test]
fn offset_at_a_time_across_many_segments() {
    // The time index of every segment is consulted, not only the active one.
    let s = Store::new();
    s.create_topic("t", 1, &["--segment-bytes", "1024"]);
    let base = 1_700_000_000_000i64;
    let records: Vec<String> = (0..300)
        .map(|i| format!(r#"{{"value":"{i:0>40}","timestamp":{}}}"#, base + i * 1000))
        .collect();
    produce_json(&s, "t", &records, &["--batch-size", "400"]);
    assert!(s.segments("t", 0).len() > 10);
    for i in [0i64, 1, 57, 150, 298, 299] {
        let got = read_lines(
            &s,
            "t",
            &[
                "-o",
                &format!("@{}", base + i * 1000),
                "-n",
                "1",
                "-F",
                "%o\\n",
            ],
        );
        assert_eq!(got, [i.to_string()], "@{i}");
    }
}

#[test]
fn starts_at_any_offset_of_a_large_multi_segment_partition() {
    // The start is found through the offset index of the right segment.
    let s = Store::new();
    s.create_topic("t", 1, &["--segment-bytes", "64KiB"]);
    let input: String = (0..20_000).map(|i| format!("value-{i}\n")).collect();
    s.produce("t", input, &["--batch-size", "2KiB"]);
    assert!(s.segments("t", 0).len() > 3);
    for offset in [0, 1, 4095, 4096, 9999, 12_345, 19_999] {
        let got = read_lines(
            &s,
            "t",
            &["-o", &offset.to_string(), "-n", "2", "-F", "%o %v\\n"],
        );
        let mut want = vec![format!("{offset} value-{offset}")];
        if offset + 1 < 20_000 {
            want.push(format!("{} value-{}", offset + 1, offset + 1));
        }
        assert_eq!(got, want);
    }
}

// ---------------------------------------------------------------------------------------------
// Stopping

#[test]
fn max_messages_stops_after_n_records() {
    let s = Store::new();
    s.create_topic("t", 3, &[]);
    for p in 0..3 {
        produce_to(&s, "t", p, &["x", "y", "z"]);
    }
    let (code, out, err) = run(&s, &["t", "-n", "4"]);
    assert_eq!(code, 0);
    assert_eq!(lines(&out).len(), 4);
    assert_eq!(err, "Processed 4 records\n");
    let (_, out, err) = run(&s, &["t", "--max-messages", "1", "-e"]);
    assert_eq!(lines(&out).len(), 1);
    assert_eq!(err, "Processed 1 record\n");
    // -n larger than the topic with -e: stops at the end.
    let (_, out, _) = run(&s, &["t", "-n", "100", "-e"]);
    assert_eq!(lines(&out).len(), 9);
}

#[test]
fn max_messages_waits_for_records_when_following() {
    let s = Store::new();
    s.produce("t", "first\n", &[]);
    let mut f = Follower::start(&s, &["t", "-n", "3"]);
    f.expect(&["first"]);
    s.produce("t", "second\n", &[]);
    f.expect(&["second"]);
    s.produce("t", "third\nfourth\n", &[]);
    f.expect(&["third"]);
    let (status, err) = f.wait();
    assert!(status.success());
    assert_eq!(err, "Processed 3 records\n");
}

#[test]
fn timeout_exits_after_a_quiet_spell() {
    let s = Store::new();
    s.produce("t", "a\nb\n", &[]);
    let started = Instant::now();
    let (code, out, err) = run(&s, &["t", "--timeout", "300ms"]);
    assert_eq!(code, 0);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(lines(&out), ["a", "b"]);
    assert_eq!(err, "Processed 2 records\n");
}

#[test]
fn timeout_is_reset_by_each_new_record() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    let mut f = Follower::start(&s, &["t", "--timeout", "2s"]);
    // Records keep coming faster than the timeout: the consumer keeps going.
    for i in 0..3 {
        s.produce("t", format!("r{i}\n"), &[]);
        f.expect(&[&format!("r{i}")]);
    }
    let (status, err) = f.wait();
    assert!(status.success());
    assert_eq!(err, "Processed 3 records\n");
}

#[test]
fn exit_at_end_reads_everything_there_is() {
    let s = Store::new();
    s.create_topic("t", 4, &[]);
    let input: String = (0..1000).map(|i| format!("{i}\n")).collect();
    s.produce("t", input, &["--partitioner", "round-robin"]);
    let (code, out, err) = run(&s, &["t", "--exit-at-end"]);
    assert_eq!(code, 0);
    let mut got: Vec<i32> = lines(&out).iter().map(|l| l.parse().unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert_eq!(err, "Processed 1000 records\n");
}

/// Lines `value-<i>` padded to 120 bytes, for logs of several MiB.
fn padded_lines(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("value-{i:0>114}")).collect()
}

#[test]
fn a_backlog_of_many_chunks_reads_back_exactly_from_anywhere() {
    // ~5 MiB per partition in 16 KiB batches: read in growing reads, then 1 MiB chunks read and
    // checked ahead on the helper thread.
    let s = Store::new();
    s.create_topic("big", 2, &[]);
    let values = padded_lines(40_000);
    for p in 0..2 {
        let input: String = values.iter().map(|v| format!("{v}\n")).collect();
        s.produce(
            "big",
            input,
            &["-p", &p.to_string(), "--batch-size", "16KiB"],
        );
    }
    assert!(std::fs::metadata(&s.segments("big", 0)[0]).unwrap().len() > 4 << 20);

    let got = read_lines(&s, "big", &["-p", "0"]);
    assert_eq!(got, values, "every record once, in order");
    let got = read_lines(&s, "big", &["-p", "1", "-o", "23456"]);
    assert_eq!(got, values[23_456..], "from the middle of a batch");
    let got = read_lines(&s, "big", &["-p", "0", "-n", "31000"]);
    assert_eq!(got, values[..31_000]);

    // Both partitions, interleaved: each in order, nothing lost or doubled.
    let out = s.consume("big", &["-F", "%p %v\\n"]);
    for p in ["0", "1"] {
        let mine: Vec<String> = lines(&out)
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{p} ")).map(str::to_owned))
            .collect();
        assert_eq!(mine, values, "partition {p}");
    }
}

#[test]
fn damage_deep_in_a_backlog_stops_the_read_right_before_it() {
    let s = Store::new();
    s.create_topic("big", 1, &[]);
    let values = padded_lines(40_000);
    let input: String = values.iter().map(|v| format!("{v}\n")).collect();
    s.produce("big", input, &["--batch-size", "16KiB"]);
    let log = &s.segments("big", 0)[0];
    let spans = common::batch_spans(&common::read(log));
    // A batch about 3.5 MiB in: well past the first reads, inside a chunk read ahead.
    let damaged = spans
        .iter()
        .find(|b| b.position > 3_500_000)
        .copied()
        .expect("a batch 3.5 MiB in");
    common::flip_byte(log, damaged.position + damaged.len - 10);

    let (code, out, err) = run(&s, &["big", "-e"]);
    assert_eq!(code, 1, "{err}");
    let before = damaged.base_offset as usize;
    assert_eq!(
        lines(&out),
        values[..before],
        "everything before the damage"
    );
    assert!(err.contains(&format!("offset {before}")), "{err}");
    assert!(err.contains("CRC"), "{err}");
    assert!(err.contains("spool topic verify"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Following

#[test]
fn following_consumer_sees_new_records_at_once() {
    let s = Store::new();
    s.create_topic("t", 2, &[]);
    produce_to(&s, "t", 0, &["old"]);
    let f = Follower::start(&s, &["t", "-F", "%p %v\\n"]);
    f.expect(&["0 old"]);
    for i in 0..5 {
        let p = i % 2;
        produce_to(&s, "t", p, &[&format!("new{i}")]);
        f.expect(&[&format!("{p} new{i}")]);
    }
}

#[test]
fn following_from_latest_prints_only_new_records() {
    let s = Store::new();
    s.produce("t", "old1\nold2\n", &[]);
    let f = Follower::start(&s, &["t", "-o", "latest"]);
    // The consumer is positioned once any probe comes through; everything after it follows.
    let mut probe = 0;
    loop {
        s.produce("t", format!("probe{probe}\n"), &[]);
        if let Some(line) = f.next_line(Duration::from_millis(200)) {
            assert!(line.starts_with("probe"), "{line}");
            break;
        }
        probe += 1;
        assert!(probe < 50, "the consumer never printed a probe");
    }
    s.produce("t", "after\n", &[]);
    let mut rest = Vec::new();
    while let Some(line) = f.next_line(PATIENCE) {
        if line == "after" {
            break;
        }
        assert!(line.starts_with("probe"), "{line}");
        rest.push(line);
    }
}

#[test]
fn interrupt_prints_the_summary() {
    let s = Store::new();
    s.produce("t", "a\nb\n", &[]);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let mut f = Follower::start(&s, &["t"]);
        f.expect(&["a", "b"]);
        signal(&f.child, sig);
        let (status, err) = f.wait();
        assert!(status.success(), "{sig}: {status:?} {err}");
        assert_eq!(err, "Processed 2 records\n");
    }
    let mut f = Follower::start(&s, &["t", "-q"]);
    f.expect(&["a", "b"]);
    signal(&f.child, libc::SIGINT);
    let (status, err) = f.wait();
    assert!(status.success());
    assert_eq!(err, "");
}

// ---------------------------------------------------------------------------------------------
// Output: templates

/// A record with a key, a header and a null header value, and one with null key and value.
fn two_records(s: &Store) {
    s.create_topic("t", 1, &[]);
    produce_json(
        s,
        "t",
        &[
            r#"{"key":"k1","value":"v1","timestamp":1795514400123,"headers":[{"key":"h","value":"x"},{"key":"n","value":null}]}"#.into(),
            r#"{"key":null,"value":null,"timestamp":5}"#.into(),
        ],
        &[],
    );
}

#[test]
fn default_output_is_the_value_and_a_newline() {
    let s = Store::new();
    s.produce("t", "a b\n\nc\n", &[]);
    assert_eq!(s.consume("t", &[]), b"a b\n\nc\n");
}

#[test]
fn every_format_token() {
    let s = Store::new();
    two_records(&s);
    let out = |format: &str| text(&s.consume("t", &["-F", format]));
    assert_eq!(out("%t|%p|%o\\n"), "t|0|0\nt|0|1\n");
    assert_eq!(out("%k=%v\\n"), "k1=v1\n=\n");
    assert_eq!(out("%s;"), "v1;;");
    assert_eq!(out("%K %V %S\\n"), "2 2 2\n-1 -1 -1\n");
    assert_eq!(out("%T\\n"), "1795514400123\n5\n");
    assert_eq!(
        out("%d\\n"),
        "2026-11-24T10:00:00.123Z\n1970-01-01T00:00:00.005Z\n"
    );
    assert_eq!(out("[%h]\\n"), "[h=x,n=]\n[]\n");
    assert_eq!(out("100%%\\n"), "100%\n100%\n");
    assert_eq!(out("ünï %v "), "ünï v1 ünï  ");
}

#[test]
fn format_escapes() {
    let s = Store::new();
    s.produce("t", "v\n", &[]);
    assert_eq!(
        s.consume("t", &["--format", "a\\tb\\rc\\0d\\\\e\\n"]),
        b"a\tb\rc\0d\\e\n"
    );
    // No newline unless the template has one.
    s.produce("t", "w\n", &[]);
    assert_eq!(s.consume("t", &["-F", "%v"]), b"vw");
}

#[test]
fn null_literal() {
    let s = Store::new();
    two_records(&s);
    assert_eq!(
        text(&s.consume("t", &["-F", "%k:%v:%h\\n", "--null-literal", "NULL"])),
        "k1:v1:h=x,n=NULL\nNULL:NULL:\n"
    );
    // JSON keeps null as null whatever the literal.
    let json = text(&s.consume("t", &["--output", "json", "--null-literal", "NULL"]));
    assert!(json.contains(r#""key":null,"value":null"#), "{json}");
    assert!(!json.contains("NULL"), "{json}");
}

/// The value-and-suffix lines are rendered a batch at a time into room reserved for the batch:
/// null values printed as a literal longer than the records, and a suffix of several bytes, in
/// batches whose lines are several times larger than the batches and the output buffer, come
/// out whole.
#[test]
fn value_lines_of_null_values_and_long_suffixes_in_large_batches() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    let records: Vec<String> = (0..90_000)
        .map(|i| match i % 3 {
            0 => r#"{"value":null}"#.to_owned(),
            1 => format!(r#"{{"value":"v{i}"}}"#),
            _ => r#"{"value":""}"#.to_owned(),
        })
        .collect();
    produce_json(&s, "t", &records, &[]);
    let literal = "N".repeat(40);
    let want: String = (0..90_000)
        .map(|i| match i % 3 {
            0 => format!("{literal} <->\n"),
            1 => format!("v{i} <->\n"),
            _ => " <->\n".to_owned(),
        })
        .collect();
    let out = s.consume("t", &["-F", "%v <->\\n", "--null-literal", &literal]);
    assert!(text(&out) == want, "{}", &text(&out)[..200]);
}

/// `-K` and `-F '%k\t%v\n'` lines are written a batch at a time: null, empty, short and long
/// keys and values, a null literal and separators longer than most keys, lines that straddle
/// many flushes of the output.
#[test]
fn key_value_lines_of_every_kind_of_key_in_large_batches() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    let key = |i: usize| match i % 4 {
        0 => None,
        1 => Some(String::new()),
        2 => Some(format!("k{i}")),
        _ => Some(format!("key-{i}-").repeat(1 + i % 9)),
    };
    let value = |i: usize| (i % 5 != 0).then(|| "v".repeat(i % 300));
    let json = |field: Option<String>| field.map_or("null".to_owned(), |f| format!("\"{f}\""));
    let records: Vec<String> = (0..90_000)
        .map(|i| format!(r#"{{"key":{},"value":{}}}"#, json(key(i)), json(value(i))))
        .collect();
    produce_json(&s, "t", &records, &[]);
    let literal = "N".repeat(40);
    let lines = |separator: &str, end: &str| -> String {
        (0..90_000)
            .map(|i| {
                let key = key(i).unwrap_or_else(|| literal.clone());
                let value = value(i).unwrap_or_else(|| literal.clone());
                format!("{key}{separator}{value}{end}")
            })
            .collect()
    };
    let out = s.consume("t", &["-K", " => ", "--null-literal", &literal]);
    assert!(text(&out) == lines(" => ", "\n"), "{}", &text(&out)[..300]);
    let out = s.consume("t", &["-K", ":", "-D", "<->", "--null-literal", &literal]);
    assert!(text(&out) == lines(":", "<->"), "{}", &text(&out)[..300]);
    let out = s.consume("t", &["-F", "%k\\t%v\\n", "--null-literal", &literal]);
    assert!(text(&out) == lines("\t", "\n"), "{}", &text(&out)[..300]);
}

#[test]
fn binary_values_pass_through_templates_unchanged() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    produce_json(
        &s,
        "t",
        &[r#"{"key":"AP8K","value":"/wAB/gpcbg=="}"#.into()],
        &["--encoding", "base64"],
    );
    assert_eq!(
        s.consume("t", &["-F", "%k|%v"]),
        b"\x00\xff\n|\xff\x00\x01\xfe\n\\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Output: JSON lines

#[test]
fn json_lines_have_every_field() {
    let s = Store::new();
    two_records(&s);
    let out = text(&s.consume("t", &["--output", "json"]));
    assert_eq!(
        out,
        concat!(
            r#"{"topic":"t","partition":0,"offset":0,"timestamp":1795514400123,"key":"k1","value":"v1","headers":[{"key":"h","value":"x"},{"key":"n","value":null}]}"#,
            "\n",
            r#"{"topic":"t","partition":0,"offset":1,"timestamp":5,"key":null,"value":null,"headers":[]}"#,
            "\n"
        )
    );
    for line in out.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("valid JSON");
    }
}

#[test]
fn json_encodings() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    produce_json(
        &s,
        "t",
        &[r#"{"key":"00ff","value":"68690a","headers":[{"key":"fe","value":"00"}]}"#.into()],
        &["--encoding", "hex"],
    );
    let hex = text(&s.consume("t", &["--output", "json", "--encoding", "hex"]));
    assert!(
        hex.contains(r#""key":"00ff","value":"68690a","headers":[{"key":"fe","value":"00"}]"#),
        "{hex}"
    );
    let b64 = text(&s.consume("t", &["--output", "json", "--encoding", "base64"]));
    assert!(
        b64.contains(r#""key":"AP8=","value":"aGkK","headers":[{"key":"/g==","value":"AA=="}]"#),
        "{b64}"
    );
    // UTF-8 cannot carry these bytes: an error naming the field, with the way out.
    let (code, out, err) = run(&s, &["t", "-e", "--output", "json"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("`key` of the record at offset 0 is not valid UTF-8"),
        "{err}"
    );
    assert!(err.contains("--encoding base64"), "{err}");
}

#[test]
fn json_utf8_escapes_text() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    produce_json(
        &s,
        "t",
        &[r#"{"key":"q\"b\\","value":"tab\there\nnul\u0000é€😀"}"#.into()],
        &[],
    );
    let out = text(&s.consume("t", &["--output", "json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(v["key"], "q\"b\\");
    assert_eq!(v["value"], "tab\there\nnul\u{0}é€😀");
}

/// Keys, values and header keys and values holding every byte value, NUL and non-UTF-8 ones.
fn binary_json_records() -> Vec<String> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let all: Vec<u8> = (0..=255u8).collect();
    let mut lines = Vec::new();
    for (i, chunk) in all.chunks(37).enumerate() {
        let mut value = chunk.to_vec();
        value.extend_from_slice(b"\x00\xff\xfe\n\r\\\"");
        lines.push(format!(
            r#"{{"key":"{}","value":"{}","timestamp":{},"partition":{},"headers":[{{"key":"{}","value":"{}"}},{{"key":"","value":null}}]}}"#,
            b64(&[0, i as u8, 0xff]),
            b64(&value),
            1_700_000_000_000i64 + i as i64,
            i % 2,
            b64(&[0xc3, 0x28, i as u8]),
            b64(chunk),
        ));
    }
    lines.push(r#"{"key":null,"value":null,"partition":0}"#.into());
    lines.push(r#"{"key":"","value":"","partition":1,"headers":[]}"#.into());
    lines
}

#[test]
fn json_round_trip_through_produce_is_byte_for_byte() {
    for encoding in ["base64", "hex"] {
        let s = Store::new();
        s.create_topic("src", 2, &[]);
        s.create_topic("dst", 2, &[]);
        produce_json(&s, "src", &binary_json_records(), &["--encoding", "base64"]);

        let exported = s.consume("src", &["--output", "json", "--encoding", encoding]);
        s.spool()
            .args([
                "produce",
                "dst",
                "-q",
                "--input",
                "json",
                "--encoding",
                encoding,
            ])
            .write_stdin(exported.clone())
            .assert()
            .success();
        let copied = s.consume("dst", &["--output", "json", "--encoding", encoding]);
        let expected = text(&exported).replace(r#""topic":"src""#, r#""topic":"dst""#);
        // Same partitions, offsets, timestamps, keys, values and headers.
        let mut a = lines(expected.as_bytes());
        let mut b = lines(&copied);
        a.sort();
        b.sort();
        assert_eq!(a, b, "{encoding}");
        assert_eq!(a.len(), binary_json_records().len());

        // And the raw bytes agree too.
        for p in ["0", "1"] {
            let raw = |topic: &str| s.consume(topic, &["-p", p, "-F", "%K %k %V %v %h %T\\n"]);
            assert_eq!(raw("src"), raw("dst"), "{encoding} partition {p}");
        }
    }
}

#[test]
fn json_round_trip_of_text_in_utf8() {
    let s = Store::new();
    s.produce("src", "plain\n{\"json\": true}\nüñí\ttab\n", &[]);
    let exported = s.consume("src", &["--output", "json"]);
    s.spool()
        .args(["produce", "dst", "-q", "--input", "json"])
        .write_stdin(exported.clone())
        .assert()
        .success();
    let copied = s.consume("dst", &["--output", "json"]);
    assert_eq!(
        text(&exported).replace(r#""topic":"src""#, r#""topic":"dst""#),
        text(&copied)
    );
}

// ---------------------------------------------------------------------------------------------
// Order

#[test]
fn partitions_are_interleaved_fairly_and_each_stays_in_order() {
    let s = Store::new();
    s.create_topic("t", 3, &[]);
    for p in 0..3 {
        let input: String = (0..5000).map(|i| format!("{p}-{i}\n")).collect();
        // Batches of a few hundred records: a turn ends at a batch boundary (see below).
        s.produce("t", input, &["-p", &p.to_string(), "--batch-size", "4KiB"]);
    }
    let got = read_lines(&s, "t", &["-F", "%p %o %v\\n"]);
    assert_eq!(got.len(), 15_000);
    for (p, offsets) in offsets_by_partition(&got) {
        assert_eq!(offsets, (0..5000).collect::<Vec<i64>>(), "partition {p}");
    }
    for line in &got {
        let mut parts = line.split(' ');
        let (p, o, v) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert_eq!(v, format!("{p}-{o}"));
    }
    // No partition waits for another to be drained: all three show up early on.
    let early = offsets_by_partition(&got[..3500]);
    assert_eq!(early.len(), 3, "{:?}", early.keys());
}

/// A partition's turn takes its share of records and then the rest of the batch it is in, as a
/// Kafka consumer hands out a partition's fetched batches before the next partition's: between
/// turns no partition holds a part-read batch (and its read buffer). Here each partition is one
/// batch of 5,000 records, so each comes whole.
#[test]
fn a_turn_ends_at_a_batch_boundary() {
    let s = Store::new();
    s.create_topic("t", 3, &[]);
    for p in 0..3 {
        let input: String = (0..5000).map(|i| format!("{p}-{i}\n")).collect();
        s.produce("t", input, &["-p", &p.to_string()]);
    }
    let got = read_lines(&s, "t", &["-F", "%p %o\n"]);
    assert_eq!(got.len(), 15_000);
    for block in got.chunks(5000) {
        let partitions = offsets_by_partition(block);
        assert_eq!(partitions.len(), 1, "{:?}", partitions.keys());
        let offsets = partitions.into_values().next().unwrap();
        assert_eq!(offsets, (0..5000).collect::<Vec<i64>>());
    }
}

#[test]
fn order_holds_when_following_several_partitions() {
    let s = Store::new();
    s.create_topic("t", 2, &[]);
    let mut f = Follower::start(&s, &["t", "-F", "%p %o\\n", "-n", "400"]);
    for round in 0..4 {
        let input: String = (0..100).map(|i| format!("{round}-{i}\n")).collect();
        s.produce(
            "t",
            input,
            &["--partitioner", "round-robin", "--batch-size", "100"],
        );
    }
    let (status, _) = f.wait();
    assert!(status.success());
    let got = f.rest();
    assert_eq!(got.len(), 400);
    for (p, offsets) in offsets_by_partition(&got) {
        assert_eq!(
            offsets,
            (0..offsets.len() as i64).collect::<Vec<_>>(),
            "p{p}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Pipes

fn bash(s: &Store, script: &str) -> (String, String) {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("SPOOL", assert_cmd::cargo::cargo_bin("spool"))
        .env("SPOOL_DIR", s.dir())
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

#[test]
fn head_closes_the_pipe_and_consume_exits_0_quietly() {
    let s = Store::new();
    // Far more than a pipe buffer holds, so the consumer does hit the closed pipe.
    let input: String = (0..200_000).map(|i| format!("record {i}\n")).collect();
    s.produce("t", input, &[]);
    let (out, err) = bash(
        &s,
        r#""$SPOOL" consume t -e | head -n 3; echo "consume exited ${PIPESTATUS[0]}""#,
    );
    assert_eq!(out, "record 0\nrecord 1\nrecord 2\nconsume exited 0\n");
    assert_eq!(err, "");
    let (out, err) = bash(
        &s,
        r#""$SPOOL" consume t -e --output json | head -c 10 >/dev/null; echo "consume exited ${PIPESTATUS[0]}""#,
    );
    assert_eq!(out, "consume exited 0\n");
    assert_eq!(err, "");
}

#[test]
fn head_on_a_following_consumer_ends_it_without_a_new_record() {
    let s = Store::new();
    s.produce("t", "a\nb\nc\nd\n", &[]);
    let (out, err) = bash(
        &s,
        r#"timeout 10 "$SPOOL" consume t | head -n 2; echo "consume exited ${PIPESTATUS[0]}""#,
    );
    assert_eq!(out, "a\nb\nconsume exited 0\n");
    assert_eq!(err, "");
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn unknown_topic_or_partition_is_a_runtime_error() {
    let s = Store::new();
    s.create_topic("t", 2, &[]);
    let (code, _, err) = run(&s, &["nope", "-e"]);
    assert_eq!(code, 1);
    assert!(err.contains("error: topic 'nope' does not exist"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let (code, _, err) = run(&s, &["t", "-p", "2", "-e"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("partition 2 of topic 't' does not exist"),
        "{err}"
    );
    // One bad topic among good ones fails before anything is printed.
    let (code, out, _) = run(&s, &["t", "nope", "-e"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let s = Store::new();
    s.produce("t", "x\n", &[]);
    for (args, needle) in [
        (&["-o", "first"][..], "invalid offset `first`"),
        (&["-o", "1.5"], "invalid offset"),
        (&["-o", "--3"], "invalid offset"),
        (&["-o", "@yesterday"], "invalid time"),
        (&["-o", "@-5"], "needs a unit"),
        (&["-o", "@2026-13-01"], "invalid time"),
        (&["-F", "%x"], "unknown token `%x`"),
        (&["-F", "50%"], "lone `%`"),
        (&["-F", "\\q"], "unknown escape"),
        (&["--encoding", "latin1"], "unknown encoding"),
        (&["--output", "xml"], "invalid value 'xml'"),
        (&["--timeout", "soon"], "invalid duration"),
        (&["-n", "-1"], "error"),
        (&["-F", "%v", "--output", "json"], "cannot be used with"),
        (&["--bogus"], "unexpected argument"),
    ] {
        let (code, out, err) = run(&s, &[&["t", "-e"][..], args].concat());
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let (code, _, _) = run(&s, &[]);
    assert_eq!(code, 2, "a topic is required");
}

#[test]
fn invalid_topic_name_is_refused() {
    let s = Store::new();
    let (code, _, err) = run(&s, &["../etc", "-e"]);
    assert_ne!(code, 0);
    assert!(err.contains("error:"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Damage and half-written batches

#[test]
fn damaged_batch_is_an_error_naming_where_and_what_to_do() {
    let s = Store::new();
    s.create_topic("t", 2, &[]);
    for round in 0..3 {
        let values: Vec<String> = (0..5).map(|i| format!("r{round}-{i}")).collect();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        produce_to(&s, "t", 1, &values);
    }
    let log = &s.segments("t", 1)[0];
    let b = batches(log);
    assert_eq!(b.len(), 3);
    // A byte inside the second batch's records: its CRC no longer checks out.
    flip_byte(log, b[1].0 + b[1].1 - 3);

    let (code, out, err) = run(&s, &["t", "-e", "-F", "%o %v\\n"]);
    assert_eq!(code, 1);
    // Everything before the damage is printed first.
    assert_eq!(
        lines(&out),
        ["0 r0-0", "1 r0-1", "2 r0-2", "3 r0-3", "4 r0-4"]
    );
    assert!(err.contains("t/1"), "{err}");
    assert!(err.contains("offset 5"), "{err}");
    assert!(err.contains("00000000000000000000.log"), "{err}");
    assert!(err.contains("CRC"), "{err}");
    assert!(err.contains("spool topic verify"), "{err}");
    assert!(
        err.contains("Processed 5 records before the error"),
        "{err}"
    );

    // Starting after the damage reads what follows it.
    let (code, out, _) = run(&s, &["t", "-p", "1", "-e", "-o", "10", "-q"]);
    assert_eq!(code, 0);
    assert_eq!(lines(&out).len(), 5);
}

/// A record that does not decode in a batch whose CRC checks out (written so on purpose): the
/// plain output, rendered a batch at a time, still prints every record before it, then the
/// error.
#[test]
fn a_record_that_does_not_decode_stops_the_output_right_before_it() {
    use spool::store::batch::{Batch, HEADER_LEN};
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    s.produce("t", "a\nb\nc\nd\ne\n", &[]);
    let log = &s.segments("t", 0)[0];
    let mut bytes = common::read(log);
    let mut records = Batch::parse(&bytes).unwrap().plain_records().unwrap();
    records.next();
    records.next();
    let third = HEADER_LEN + records.cursor().position();
    // The third record claims a length its fields do not fill; the CRC is made to match.
    bytes[third] = 0x7e;
    let crc = spool::store::crc::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(log, &bytes).unwrap();

    for format in [None, Some("%o %v\\n")] {
        let mut args = vec!["t", "-e"];
        args.extend(format.iter().flat_map(|f| ["-F", f]));
        let (code, out, err) = run(&s, &args);
        assert_eq!(code, 1, "{err}");
        let want: &[&str] = match format {
            None => &["a", "b"],
            Some(_) => &["0 a", "1 b"],
        };
        assert_eq!(lines(&out), want, "{format:?}");
        assert!(err.contains("spool topic verify"), "{err}");
        assert!(
            err.contains("Processed 2 records before the error"),
            "{err}"
        );
    }
}

#[test]
fn damaged_batch_header_is_an_error_too() {
    let s = Store::new();
    s.produce("t", "a\n", &[]);
    s.produce("t", "b\n", &[]);
    s.produce("t", "c\n", &[]);
    let log = &s.segments("t", 0)[0];
    let b = batches(log);
    // The magic byte of the second batch.
    flip_byte(log, b[1].0 + 16);
    let (code, out, err) = run(&s, &["t", "-e"]);
    assert_eq!(code, 1);
    assert_eq!(lines(&out), ["a"]);
    assert!(err.contains("t/0 at offset 1"), "{err}");
    assert!(err.contains("magic"), "{err}");
    assert!(err.contains("spool topic verify"), "{err}");
}

#[test]
fn damaged_base_offset_is_an_error_not_misnumbered_records() {
    // The base offset is outside the CRC: the reader checks it follows the batch before.
    let s = Store::new();
    for round in 0..3 {
        let values: Vec<String> = (0..5).map(|i| format!("r{round}-{i}")).collect();
        s.produce("t", values.join("\n") + "\n", &[]);
    }
    let log = &s.segments("t", 0)[0];
    let b = batches(log);
    flip_byte(log, b[1].0 + 7); // 5 becomes 250
    let (code, out, err) = run(&s, &["t", "-e", "-F", "%o %v\\n"]);
    assert_eq!(code, 1);
    assert_eq!(lines(&out).len(), 5);
    assert!(err.contains("t/0 at offset 5"), "{err}");
    assert!(
        err.contains("batch starts at offset 250 where 5 was expected"),
        "{err}"
    );
    assert!(err.contains("spool topic verify"), "{err}");
}

#[test]
fn damaged_length_of_the_last_batch_is_an_error_not_the_end() {
    // A length running past what the last writer wrote, in a file that holds all of that, is
    // damage; a batch still being written is only ever past that end.
    let s = Store::new();
    for v in ["a", "b", "c"] {
        s.produce("t", format!("{v}\n"), &[]);
    }
    let log = &s.segments("t", 0)[0];
    let b = batches(log);
    let mut bytes = common::read(log);
    bytes[b[2].0 + 8..b[2].0 + 12].copy_from_slice(&0x7fff_0000i32.to_be_bytes());
    std::fs::write(log, bytes).unwrap();
    let (code, out, err) = run(&s, &["t", "-e"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(lines(&out), ["a", "b"]);
    assert!(err.contains("t/0 at offset 2"), "{err}");
    assert!(err.contains("runs past the end of the log"), "{err}");
}

/// The bytes of one batch holding `value` alone, with its base offset set to `base_offset`.
fn batch_bytes(s: &Store, value: &str, base_offset: i64) -> Vec<u8> {
    let scratch = format!("scratch-{value}");
    s.produce(&scratch, format!("{value}\n"), &[]);
    let mut bytes = common::read(&s.segments(&scratch, 0)[0]);
    bytes[..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_batch_being_written_is_never_printed_in_part() {
    let s = Store::new();
    s.produce("t", "one\n", &[]);
    let next = batch_bytes(&s, "two", 1);
    let log = s.segments("t", 0)[0].clone();

    // Only part of the next batch has reached the file: not yet written, not an error.
    for cut in [5, 30, 61, next.len() - 1] {
        let s2 = Store::new();
        s2.produce("t", "one\n", &[]);
        let log2 = s2.segments("t", 0)[0].clone();
        append(&log2, &next[..cut]);
        let (code, out, err) = run(&s2, &["t", "-e"]);
        assert_eq!(
            (code, text(&out)),
            (0, "one\n".into()),
            "cut at {cut}: {err}"
        );
        assert_eq!(err, "Processed 1 record\n");
    }

    // A following consumer prints it once it is complete.
    let f = Follower::start(&s, &["t"]);
    f.expect(&["one"]);
    append(&log, &next[..20]);
    append(&log, &next[20..next.len() - 10]);
    append(&log, &next[next.len() - 10..]);
    f.expect(&["two"]);
    // And continues with what the real producer appends after it.
    s.produce("t", "three\n", &[]);
    f.expect(&["three"]);
}

#[test]
fn concurrent_producers_and_readers_never_see_partial_batches() {
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    // Batches far bigger than a page, so a reader can catch one half written.
    let mut f = Follower::start(&s, &["t", "-F", "%o %V\\n", "-n", "40000"]);
    let value = "x".repeat(1000);
    for _ in 0..4 {
        let input: String = (0..10_000).map(|_| format!("{value}\n")).collect();
        s.produce("t", input, &["--batch-size", "1MiB"]);
    }
    let (status, err) = f.wait();
    assert!(status.success(), "{err}");
    let got = f.rest();
    assert_eq!(got.len(), 40_000);
    for (i, line) in got.iter().enumerate() {
        assert_eq!(line, &format!("{i} 1000"));
    }
}

#[test]
fn reading_a_backlog_while_it_grows_gives_an_unbroken_run_of_offsets() {
    // A reader reading ahead near an end that keeps moving: chunks end inside batches being
    // written, read-ahead starts and stops. Whatever it prints is offsets 0, 1, 2, ... with
    // nothing missing, doubled or half written.
    let s = Store::new();
    s.create_topic("t", 1, &[]);
    let input: String = padded_lines(60_000)
        .iter()
        .map(|v| format!("{v}\n"))
        .collect();
    let mut producer = s
        .spool_process()
        .args([
            "produce",
            "t",
            "-q",
            "--batch-size",
            "16KiB",
            "--linger",
            "0s",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("start produce");
    let mut stdin = producer.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        // In pieces, so the log grows while the readers read.
        for piece in input.as_bytes().chunks(256 << 10) {
            stdin.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
    });
    let mut reads = 0;
    while !feeder.is_finished() || reads == 0 {
        let (code, out, err) = run(&s, &["t", "-e", "-q", "-F", "%o\\n"]);
        assert_eq!(code, 0, "{err}");
        for (i, line) in lines(&out).iter().enumerate() {
            assert_eq!(line, &i.to_string(), "read {reads}");
        }
        reads += 1;
    }
    feeder.join().unwrap();
    assert!(producer.wait().unwrap().success());
    eprintln!("{reads} reads while the log grew");
    assert_eq!(read_lines(&s, "t", &[]), padded_lines(60_000));
}

// ---------------------------------------------------------------------------------------------
// Retention under a reader

/// Kills a child process when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The records counted in `warning: ...: N records were deleted by retention ...` lines.
fn skipped_in(stderr: &str) -> u64 {
    stderr
        .lines()
        .filter(|l| l.contains("deleted by retention before they were read"))
        .map(|l| {
            // warning: t/0: N records were deleted ...
            let count = l.split(": ").nth(2).and_then(|r| r.split(' ').next());
            count
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{l}"))
        })
        .sum()
}

#[test]
fn retention_deletes_segments_under_a_blocked_reader() {
    let s = Store::new();
    s.create_topic("t", 1, &["--segment-bytes", "1024"]);
    let input: String = (0..300).map(|i| format!("{i:0>200}\n")).collect();
    s.produce("t", input, &["--batch-size", "1KiB"]);
    let segments = s.segments("t", 0).len();
    assert!(segments > 50, "{segments} segments");

    // Each value printed 16 times, 1 MB of output: the consumer fills the pipe (read here only
    // after the prune) and blocks a third of the way through the log with a segment open.
    let value = "%v".repeat(16);
    let mut child = KillOnDrop(
        s.spool_process()
            .args(["consume", "t", "-F", &format!("%o {value}\\n")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut stderr = child.0.stderr.take().unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, format!("0 {}\n", format!("{:0>200}", 0).repeat(16)));

    s.spool()
        .args(["topic", "alter", "t", "--config", "retention.bytes=4096"])
        .assert()
        .success();
    s.spool().args(["topic", "prune", "t"]).assert().success();
    assert!(s.segments("t", 0).len() < 10);
    s.produce("t", "last\n", &[]);

    // Draining the pipe lets it go on: through its open segment, then from the new log start.
    let mut offsets = vec![0i64];
    loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "consumer ended early"
        );
        let (offset, value) = line.trim_end().split_once(' ').unwrap();
        let offset: i64 = offset.parse().unwrap();
        assert!(
            offset > *offsets.last().unwrap(),
            "{offset} after {offsets:?}"
        );
        offsets.push(offset);
        if value == "last".repeat(16) {
            break;
        }
        assert_eq!(value, format!("{offset:0>200}").repeat(16));
    }
    assert_eq!(*offsets.last().unwrap(), 300);
    assert!(
        offsets.len() < 301,
        "retention deleted nothing it had not read"
    );
    signal(&child.0, libc::SIGTERM);
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(!err.contains("error"), "{err}");
    assert_eq!(offsets.len() as u64 + skipped_in(&err), 301, "{err}");
    // Each warning names the offset right after its gap.
    for resumed in err
        .lines()
        .filter_map(|l| l.split("continuing at offset ").nth(1))
    {
        let resumed: i64 = resumed.parse().unwrap();
        let i = offsets
            .iter()
            .position(|&o| o == resumed)
            .expect("resumed offset read");
        assert!(offsets[i - 1] < resumed - 1, "no gap before {resumed}");
    }
}

#[test]
fn reader_keeps_up_while_prune_deletes_segments_in_a_loop() {
    let s = Store::new();
    s.create_topic(
        "t",
        1,
        &["--segment-bytes", "1024", "--retention-bytes", "3KiB"],
    );
    s.produce("t", "start\n", &[]);
    let mut f = Follower::start(&s, &["t", "-F", "%o %v\\n"]);
    assert_eq!(f.next_line(PATIENCE).as_deref(), Some("0 start"));

    let stop = Arc::new(AtomicBool::new(false));
    let pruner = {
        let stop = Arc::clone(&stop);
        let mut prune = s.spool_process();
        prune.args(["topic", "prune", "t", "-o", "json"]);
        thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                let out = prune.output().expect("run prune");
                assert!(out.status.success(), "{}", text(&out.stderr));
                runs += 1;
            }
            runs
        })
    };
    // One long-lived producer writing small batches as the input trickles in.
    let mut producer = s
        .spool_process()
        .args(["produce", "t", "-q", "--batch-size", "300"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = producer.stdin.take().unwrap();
    for i in 1..=3000 {
        writeln!(stdin, "{i:0>60}").unwrap();
        if i % 50 == 0 {
            stdin.flush().unwrap();
            thread::sleep(Duration::from_millis(1));
        }
    }
    drop(stdin);
    assert!(producer.wait().unwrap().success());
    stop.store(true, Ordering::Relaxed);
    assert!(pruner.join().unwrap() > 0);
    s.produce("t", "end\n", &[]);

    let mut last = 0i64;
    let mut seen = 1u64;
    loop {
        let line = f.next_line(PATIENCE).expect("the consumer reaches the end");
        let (offset, value) = line.split_once(' ').unwrap();
        let offset: i64 = offset.parse().unwrap();
        assert!(offset > last, "{offset} after {last}");
        last = offset;
        seen += 1;
        if value == "end" {
            break;
        }
        assert_eq!(value, format!("{offset:0>60}"));
    }
    assert_eq!(last, 3001);
    signal(&f.child, libc::SIGTERM);
    let (_, err) = f.wait();
    assert!(!err.contains("error"), "{err}");
    assert_eq!(seen + skipped_in(&err), 3002, "{err}");
}

#[test]
fn time_retention_under_a_reader() {
    let s = Store::new();
    s.create_topic("t", 1, &["--segment-bytes", "1024"]);
    // Old records: retention.ms deletes them, and then rolls the active segment too.
    let old = now_ms() - 3_600_000;
    let records: Vec<String> = (0..200)
        .map(|i| format!(r#"{{"value":"{i:0>60}","timestamp":{old}}}"#))
        .collect();
    produce_json(&s, "t", &records, &["--batch-size", "300"]);
    let f = Follower::start(&s, &["t", "-F", "%o\\n", "-o", "-1"]);
    assert_eq!(f.next_line(PATIENCE).as_deref(), Some("199"));
    s.spool()
        .args(["topic", "alter", "t", "--config", "retention.ms=60000"])
        .assert()
        .success();
    s.spool().args(["topic", "prune", "t"]).assert().success();
    s.produce("t", "fresh\n", &[]);
    // The consumer was at the end of the (now deleted) active segment: it moves on.
    assert_eq!(f.next_line(PATIENCE).as_deref(), Some("200"));
    let (code, out, _) = run(&s, &["t", "-e", "-q", "-F", "%o %v\\n"]);
    assert_eq!(code, 0);
    assert_eq!(lines(&out), ["200 fresh"]);
}

#[test]
fn consumers_start_cleanly_while_retention_deletes_segments() {
    // Finding the start (log end, time index) lists segments and then opens them; retention
    // deletes segments in between. Every start must succeed all the same.
    let s = Store::new();
    s.create_topic(
        "t",
        1,
        &["--segment-bytes", "1024", "--retention-bytes", "2KiB"],
    );
    s.produce("t", "first\n", &[]);
    let mut producer = KillOnDrop(
        s.spool_process()
            .args([
                "produce",
                "t",
                "-q",
                "--batch-size",
                "200",
                "--fsync",
                "never",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdin = producer.0.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        // Until the test closes the pipe by failing or finishing.
        let mut i = 0u64;
        while writeln!(stdin, "{i:0>90}").is_ok() && stdin.flush().is_ok() {
            i += 1;
        }
    });
    let since = now_ms() - 60_000;
    for round in 0..60 {
        for offset in [format!("@{since}"), "-3".into(), "earliest".into()] {
            let (code, _, err) = run(&s, &["t", "-e", "-q", "-n", "5", "-o", &offset]);
            assert_eq!(code, 0, "round {round}, -o {offset}: {err}");
        }
        // And reading through segments as they are deleted.
        let (code, out, err) = run(&s, &["t", "-e", "-F", "%o\\n"]);
        assert_eq!(code, 0, "round {round}: {err}");
        let offsets: Vec<i64> = lines(&out).iter().map(|l| l.parse().unwrap()).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "round {round}");
    }
    let _ = producer.0.kill();
    drop(producer);
    writer.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Records rendered ahead on the read-ahead thread

/// A backlog large enough to be read ahead (and rendered ahead) in every output form: each
/// partition's records in offset order, every record once, byte for byte as produced, and the
/// lines of one partition as a one-partition read prints them.
#[test]
fn a_backlog_prints_every_record_once_in_order_in_every_output_form() {
    let store = Store::new();
    store.create_topic("big", 3, &[]);
    let records: Vec<(String, String)> = (0..60_000)
        .map(|i| {
            (
                format!("k{}", i % 7),
                format!("v{i} {}", "x".repeat(50 + i % 200)),
            )
        })
        .collect();
    let input: String = records.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    store.produce("big", input, &["-K", ":", "--fsync", "never"]);

    // Template: per partition, offsets from 0 on, and each key's values in the order produced.
    let printed = read_lines(&store, "big", &["-F", "%p %o %k %v\\n"]);
    assert_eq!(printed.len(), records.len());
    let mut next = [0i64; 3];
    let mut per_key: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in &printed {
        let mut parts = line.splitn(4, ' ');
        let p: usize = parts.next().unwrap().parse().unwrap();
        let o: i64 = parts.next().unwrap().parse().unwrap();
        assert_eq!(o, next[p], "partition {p}");
        next[p] += 1;
        let (k, v) = (parts.next().unwrap(), parts.next().unwrap());
        per_key.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    let mut expected: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in &records {
        expected.entry(k.clone()).or_default().push(v.clone());
    }
    assert!(per_key == expected, "values differ from what was produced");

    // JSON and the default form print the same records in the same order.
    let json = common::json_lines(&store.consume("big", &["--output", "json"]));
    assert_eq!(json.len(), printed.len());
    for (j, line) in json.iter().zip(&printed) {
        let mine = format!(
            "{} {} {} {}",
            j["partition"],
            j["offset"],
            j["key"].as_str().unwrap(),
            j["value"].as_str().unwrap()
        );
        assert!(&mine == line, "{mine} != {line}");
    }
    let values = read_lines(&store, "big", &[]);
    let from_template: Vec<&str> = printed
        .iter()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap())
        .collect();
    assert!(values == from_template);

    // One partition on its own (read ahead eagerly) prints what the three-partition read did.
    let one = read_lines(&store, "big", &["-p", "1", "-F", "%p %o %k %v\\n"]);
    let of_one: Vec<&String> = printed.iter().filter(|l| l.starts_with("1 ")).collect();
    assert_eq!(one.len(), of_one.len());
    assert!(one.iter().zip(of_one).all(|(a, b)| a == b));
}

/// A record JSON cannot print (not UTF-8) deep in a backlog: the records before it are printed,
/// then the error names it, whichever thread came to it first.
#[test]
fn a_record_json_cannot_print_deep_in_a_backlog_stops_the_read_in_its_place() {
    let store = Store::new();
    store.create_topic("bin", 1, &[]);
    let mut input = Vec::new();
    for i in 0..30_000 {
        input.extend_from_slice(format!("r{i} {}\n", "y".repeat(200)).as_bytes());
    }
    input.extend_from_slice(b"bad \xff byte\n");
    for i in 0..1_000 {
        input.extend_from_slice(format!("after{i}\n").as_bytes());
    }
    store.produce("bin", input, &["--fsync", "never"]);
    let (code, out, err) = run(&store, &["bin", "-e", "--output", "json"]);
    assert_eq!(code, 1, "{err}");
    let printed = common::json_lines(&out);
    assert_eq!(printed.len(), 30_000);
    assert_eq!(printed[29_999]["offset"], 29_999);
    assert!(
        err.contains("offset 30000") && err.contains("UTF-8"),
        "{err}"
    );
}

/// SIGTERM while a large backlog of eight partitions is printed into a slow pipe: the read
/// stops within a flush or so of the signal (a poll takes a whole batch of each partition, up
/// to 8 MiB here; the signal is checked at each flush), and every record counted in the
/// summary was printed whole.
#[test]
fn sigterm_during_a_large_backlog_stops_soon_with_whole_lines() {
    let s = Store::new();
    s.create_topic("big", 8, &[]);
    let line = format!("{}\n", "z".repeat(100));
    s.produce("big", line.repeat(400_000), &["--fsync", "never"]);
    let counted = sigterm_after_a_megabyte(&s, &["big"], line.len());
    assert!(
        counted < 40_000,
        "{counted} of 400000 records printed; the signal came at about 10,000"
    );
}

/// Lines far longer than their records (null values printed as a 1,000-byte literal): one
/// 1 MiB batch holds some 100,000 lines, hundreds of flushes of the output, written a batch at
/// a time. SIGTERM inside it stops the read within a flush or two, not at the batch's end.
#[test]
fn sigterm_inside_a_batch_of_many_flushes_stops_within_one() {
    let s = Store::new();
    s.create_topic("nulls", 1, &[]);
    produce_json(
        &s,
        "nulls",
        &vec![r#"{"value":null}"#.to_owned(); 200_000],
        &["--fsync", "never"],
    );
    let literal = "n".repeat(1000);
    let args = ["nulls", "--null-literal", &literal];
    let counted = sigterm_after_a_megabyte(&s, &args, literal.len() + 1);
    assert!(
        counted < 5_000,
        "{counted} of 200000 records printed; the signal came at about 1,000"
    );
}

/// Runs `consume ARGS -e` into a slow pipe, sends SIGTERM once 1 MB was read, reads the rest:
/// the read ends with success and whole lines of `line_len` bytes, as many as its summary counts,
/// which it returns.
fn sigterm_after_a_megabyte(s: &Store, args: &[&str], line_len: usize) -> usize {
    let mut child = s
        .spool_process()
        .arg("consume")
        .args(args)
        .arg("-e")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // A slow reader: 1 MB, then the signal, then the rest as fast as it comes.
    let mut printed = common::read_slowly(&mut stdout, 1 << 20);
    signal(&child, libc::SIGTERM);
    stdout.read_to_end(&mut printed).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let err = text(&out.stderr);
    let counted: usize = err
        .trim()
        .strip_prefix("Processed ")
        .and_then(|rest| rest.strip_suffix(" records"))
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no summary in {err:?}"));
    assert_eq!(
        printed.len(),
        counted * line_len,
        "whole lines, all counted"
    );
    counted
}

/// SIGTERM while JSON lines rendered ahead on the read-ahead thread are printed into a slow
/// pipe (after 16 MiB: by then the helper is ahead of the pipe, and its renderings are written
/// a chunk at a time, often more than the output buffer's room, written where they are): every
/// record counted in the summary was printed. The signal was looked at before such a chunk was
/// written, which left it counted and unprinted.
#[test]
fn sigterm_during_json_rendered_ahead_prints_every_record_it_counts() {
    let s = Store::new();
    s.create_topic("big", 1, &[]);
    let line = format!("{}\n", "z".repeat(100));
    s.produce("big", line.repeat(400_000), &["--fsync", "never"]);
    let mut child = s
        .spool_process()
        .args(["consume", "big", "-e", "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut printed = common::read_slowly(&mut stdout, 16 << 20);
    signal(&child, libc::SIGTERM);
    stdout.read_to_end(&mut printed).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let err = text(&out.stderr);
    let records = common::json_lines(&printed).len();
    assert!(records < 400_000, "the read was not stopped");
    assert!(
        err.contains(&format!("Processed {records} records")),
        "{records} printed: {err}"
    );
}
