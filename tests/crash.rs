//! Many appenders at once, kill -9 at any moment, and the damage a crash can leave: the log
//! always opens cleanly, loses nothing that was acknowledged, keeps offsets contiguous where
//! nothing was lost, and never hands out an offset twice: a log cut back below offsets it had
//! handed out continues after them, leaving a gap.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{batch_spans, read, signal, Store};
use predicates::prelude::*;

/// `(offset, value)` of every record of partition 0, as text.
fn log_of(s: &Store, topic: &str) -> Vec<(i64, String)> {
    s.offsets_and_values(topic, 0)
        .into_iter()
        .map(|(o, v)| (o, String::from_utf8(v).unwrap()))
        .collect()
}

/// Offsets strictly increasing, and contiguous except for one gap `[from, to)`.
fn assert_contiguous_but(log: &[(i64, String)], from: i64, to: i64) {
    let expected: Vec<i64> = (0..from).chain(to..).take(log.len()).collect();
    let got: Vec<i64> = log.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        got, expected,
        "offsets contiguous but for the gap {from}..{to}"
    );
}

fn assert_contiguous(log: &[(i64, String)]) {
    for (i, (offset, _)) in log.iter().enumerate() {
        assert_eq!(*offset, i as i64, "offsets must be contiguous from 0");
    }
}

fn verify_clean(s: &Store, topic: &str) {
    let out = s.spool().args(["topic", "verify", topic]).output().unwrap();
    assert!(
        out.status.success(),
        "verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_input(path: &Path, prefix: &str, n: usize) -> Vec<String> {
    let records: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let mut text = records.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
    records
}

/// Groups a log's values by their writer prefix (`w3-17` -> `w3`), in log order.
fn by_writer(log: &[(i64, String)]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, v) in log {
        let writer = v.rsplit_once('-').map_or(v.as_str(), |(w, _)| w);
        map.entry(writer.to_owned()).or_default().push(v.clone());
    }
    map
}

#[test]
fn four_producers_append_to_one_partition_at_once() {
    let s = Store::new();
    // Small segments: the writers also race through rolls.
    s.create_topic("race", 1, &["--segment-bytes", "4096"]);
    let per_writer = 1500;
    let mut inputs = Vec::new();
    let mut children: Vec<Child> = Vec::new();
    for w in 0..4 {
        let path = s.tmp.path().join(format!("w{w}"));
        inputs.push(write_input(&path, &format!("w{w}"), per_writer));
        // Two writers append one record per batch, two in small batches.
        let batch = if w % 2 == 0 { "0" } else { "200" };
        children.push(
            s.spool_process()
                .args(["produce", "race", "-q", "--batch-size", batch, "--file"])
                .arg(&path)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = log_of(&s, "race");
    assert_eq!(log.len(), 4 * per_writer, "no record lost or duplicated");
    assert_contiguous(&log);
    let writers = by_writer(&log);
    assert_eq!(writers.len(), 4);
    for (w, input) in inputs.iter().enumerate() {
        assert_eq!(
            &writers[&format!("w{w}")],
            input,
            "writer {w}'s records in its own order"
        );
    }
    // The writers really interleaved: their records are not one block each.
    let switches = log
        .windows(2)
        .filter(|p| p[0].1.split('-').next() != p[1].1.split('-').next())
        .count();
    assert!(
        switches > 3,
        "writers never overlapped ({switches} switches)"
    );
    assert!(s.segments("race", 0).len() > 5);
    verify_clean(&s, "race");
    let d = s.describe("race");
    assert_eq!(d["partitions"][0]["log_end_offset"], 4 * per_writer);
}

#[test]
fn producers_racing_to_create_a_topic_all_succeed() {
    let s = Store::new();
    let children: Vec<Child> = (0..4)
        .map(|w| {
            let path = s.tmp.path().join(format!("c{w}"));
            write_input(&path, &format!("c{w}"), 200);
            s.spool_process()
                .args(["produce", "fresh", "-q", "--batch-size", "100", "--file"])
                .arg(&path)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(s.describe("fresh")["partition_count"], 1);
    let log = log_of(&s, "fresh");
    assert_eq!(log.len(), 800);
    assert_contiguous(&log);
    assert_eq!(by_writer(&log).len(), 4);
    // Nothing was left behind in the staging area.
    assert_eq!(std::fs::read_dir(s.dir().join("tmp")).unwrap().count(), 0);
    verify_clean(&s, "fresh");
}

/// A small xorshift generator: no dependency, and the seed is printed to replay a failure.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn kill_9_at_random_moments_never_loses_acknowledged_records() {
    let s = Store::new();
    s.create_topic("crash", 1, &["--segment-bytes", "4096"]);
    s.create_topic("calibration", 1, &["--segment-bytes", "4096"]);
    let seed = std::env::var("SPOOL_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("SPOOL_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let started = Instant::now();
    // Every record of a produce that exited 0, and what each killed producer was given.
    let mut acknowledged: Vec<String> = Vec::new();
    let mut killed_inputs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut kills = 0;
    // How long an unkilled producer of a round's input takes, per fsync policy: each kill comes
    // at a random moment within that time (a fixed window let fast machines finish first).
    let fsyncs = ["exit", "never", "batch"];
    let lifetimes: Vec<u64> = fsyncs
        .iter()
        .map(|fsync| {
            let path = s.tmp.path().join(format!("calibrate-{fsync}"));
            write_input(&path, "calibrate", 1500);
            let t = Instant::now();
            s.spool()
                .args(["produce", "calibration", "-q", "--batch-size", "300"])
                .args(["--fsync", fsync, "--file"])
                .arg(&path)
                .assert()
                .success();
            t.elapsed().as_micros() as u64
        })
        .collect();
    for round in 0..30 {
        let prefix = format!("r{round}");
        let path = s.tmp.path().join(&prefix);
        let input = write_input(&path, &prefix, 1500);
        let fsync = fsyncs[round % 3];
        let mut victim = s
            .spool_process()
            .args([
                "produce",
                "crash",
                "-q",
                "--batch-size",
                "300",
                "--fsync",
                fsync,
            ])
            .arg("--file")
            .arg(&path)
            .spawn()
            .unwrap();
        // Now and then a second producer runs beside it and is not killed.
        let bystander = (round % 4 == 1).then(|| {
            let name = format!("b{round}");
            let path = s.tmp.path().join(&name);
            let input = write_input(&path, &name, 500);
            let child = s
                .spool_process()
                .args(["produce", "crash", "-q", "--batch-size", "100", "--file"])
                .arg(&path)
                .spawn()
                .unwrap();
            (child, input)
        });
        std::thread::sleep(Duration::from_micros(
            rng.below((lifetimes[round % 3] * 9 / 10).max(1)),
        ));
        signal(&victim, libc::SIGKILL);
        let status = victim.wait().unwrap();
        if status.success() {
            acknowledged.extend(input);
        } else {
            kills += 1;
            killed_inputs.insert(prefix.clone(), input);
        }
        if let Some((mut child, input)) = bystander {
            assert!(
                child.wait().unwrap().success(),
                "round {round}: bystander failed"
            );
            acknowledged.extend(input);
        }
        // The next appender recovers whatever the kill left, and the log verifies.
        let next = format!("next{round}-0");
        s.spool()
            .args(["produce", "crash", "-q"])
            .write_stdin(format!("{next}\n"))
            .assert()
            .success();
        acknowledged.push(next);
        verify_clean(&s, "crash");
    }
    eprintln!(
        "{kills} of 30 producers killed mid-run in {:?} (lifetimes {lifetimes:?} µs)",
        started.elapsed()
    );
    assert!(
        kills >= 10,
        "the kills came too late to test anything ({kills})"
    );

    let log = log_of(&s, "crash");
    assert_contiguous(&log);
    let present: std::collections::HashSet<&str> = log.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(present.len(), log.len(), "no record twice");
    for r in &acknowledged {
        assert!(present.contains(r.as_str()), "acknowledged record {r} lost");
    }
    // What a killed producer got in is a prefix of its input, in order.
    let writers = by_writer(&log);
    for (prefix, input) in &killed_inputs {
        let got = writers.get(prefix).map_or(&[][..], |v| v.as_slice());
        assert_eq!(
            got,
            &input[..got.len()],
            "{prefix}: not a prefix of its input"
        );
    }
    let d = s.describe("crash");
    assert_eq!(d["partitions"][0]["log_end_offset"], log.len());
}

// ---------------------------------------------------------------------------------------------
// The damage a crash can leave, made by hand

/// A partition with three produces of 100 records (several batches each).
fn three_produces(s: &Store, topic: &str) -> std::path::PathBuf {
    s.create_topic(topic, 1, &[]);
    for p in 0..3 {
        let input: String = (0..100)
            .map(|i| format!("p{p}-{i}-{}\n", "d".repeat(60)))
            .collect();
        s.produce(topic, input, &["--batch-size", "2KiB"]);
    }
    s.segments(topic, 0)[0].clone()
}

#[test]
fn a_torn_tail_is_cut_by_the_next_appender() {
    let s = Store::new();
    let log = three_produces(&s, "torn");
    let bytes = read(&log);
    let spans = batch_spans(&bytes);
    let last = *spans.last().unwrap();
    let end = last.base_offset + i64::from(last.records);
    // A writer killed in the middle of its write: half a batch after the end the head
    // checkpoint describes (the head is stored only after a whole batch was written).
    let mut torn = bytes[last.position as usize..(last.position + last.len) as usize].to_vec();
    torn[..8].copy_from_slice(&end.to_be_bytes());
    torn.truncate(torn.len() / 2);
    let mut damaged = bytes.clone();
    damaged.extend_from_slice(&torn);
    std::fs::write(&log, &damaged).unwrap();
    // Readers treat the torn batch as not yet written.
    assert_eq!(log_of(&s, "torn").len() as i64, end);
    s.spool()
        .args(["produce", "torn"])
        .write_stdin("after\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: recovered"))
        .stderr(predicate::str::contains(format!("at byte {}", bytes.len())));
    let records = log_of(&s, "torn");
    assert_contiguous(&records);
    assert_eq!(records.last().unwrap(), &(end, "after".to_owned()));
    verify_clean(&s, "torn");
}

#[test]
fn garbage_after_the_last_batch_is_cut_and_kept_aside() {
    let s = Store::new();
    let log = three_produces(&s, "junk");
    let mut bytes = read(&log);
    let end = bytes.len();
    let n = log_of(&s, "junk").len();
    // A complete-looking batch whose CRC is wrong: a copy of the first batch, damaged.
    let first = batch_spans(&bytes)[0];
    let mut copy = bytes[..first.len as usize].to_vec();
    copy[..8].copy_from_slice(&(n as i64).to_be_bytes());
    copy[70] ^= 0x55;
    bytes.extend_from_slice(&copy);
    std::fs::write(&log, &bytes).unwrap();
    s.spool()
        .args(["produce", "junk"])
        .write_stdin("after\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("CRC mismatch"));
    let kept: Vec<_> = std::fs::read_dir(s.partition_dir("junk", 0))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".cut-"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(read(&kept[0]), copy);
    let records = log_of(&s, "junk");
    assert_contiguous(&records);
    assert_eq!(records.len(), n + 1);
    assert_eq!(
        read(&log)[..end],
        bytes[..end],
        "the valid batches are untouched"
    );
    verify_clean(&s, "junk");
}

#[test]
fn a_lost_or_damaged_head_checkpoint_is_rebuilt_from_the_files() {
    for damage in ["missing", "garbage", "stale", "ahead"] {
        let s = Store::new();
        let log = three_produces(&s, "head");
        let lock = s.partition_dir("head", 0).join(".lock");
        let n = log_of(&s, "head").len();
        match damage {
            "missing" => std::fs::remove_file(&lock).unwrap(),
            "garbage" => std::fs::write(&lock, vec![0xa5; 88]).unwrap(),
            "stale" => {
                // A batch appended behind the head's back (a writer killed before it stored
                // the head): a copy of the first batch, renumbered to follow on.
                let mut bytes = read(&log);
                let first = batch_spans(&bytes)[0];
                let mut extra = bytes[..first.len as usize].to_vec();
                extra[..8].copy_from_slice(&(n as i64).to_be_bytes());
                bytes.extend_from_slice(&extra);
                std::fs::write(&log, &bytes).unwrap();
            }
            "ahead" => {
                // The file lost its last batches (power loss) but the head remembers them.
                let bytes = read(&log);
                let spans = batch_spans(&bytes);
                let keep = spans[spans.len() - 2].position as usize;
                std::fs::write(&log, &bytes[..keep]).unwrap();
            }
            _ => unreachable!(),
        }
        let before = log_of(&s, "head");
        s.produce("head", "after\n", &[]);
        let records = log_of(&s, "head");
        assert_eq!(records.len(), before.len() + 1, "{damage}");
        assert_eq!(records.last().unwrap().1, "after", "{damage}");
        if damage == "ahead" {
            // The head had handed out the lost offsets: they are not given to other records.
            assert_contiguous_but(&records, before.len() as i64, n as i64);
        } else {
            assert_contiguous(&records);
        }
        verify_clean(&s, "head");
    }
}

#[test]
fn an_index_pointing_past_a_truncated_log_is_trimmed() {
    let s = Store::new();
    let log = three_produces(&s, "ix");
    let index = log.with_extension("index");
    assert!(
        std::fs::metadata(&index).unwrap().len() >= 16,
        "needs index entries"
    );
    let bytes = read(&log);
    let spans = batch_spans(&bytes);
    // Cut the log in the middle: the index still names batches after the cut.
    let keep = spans[spans.len() / 2].position as usize;
    std::fs::write(&log, &bytes[..keep]).unwrap();
    let kept_records = log_of(&s, "ix").len();
    s.produce("ix", "after\n", &[]);
    let records = log_of(&s, "ix");
    // The offsets cut were handed out before: the log continues after them.
    assert_contiguous_but(&records, kept_records as i64, 300);
    assert_eq!(records.len(), kept_records + 1);
    verify_clean(&s, "ix");
    // A seek through the index lands on the right record.
    let out = s.consume("ix", &["-o", &kept_records.to_string(), "-F", "%o %v\n"]);
    assert_eq!(String::from_utf8_lossy(&out), "300 after\n");
}

#[test]
fn a_crash_between_roll_and_new_segment_is_finished_by_the_next_appender() {
    let s = Store::new();
    s.create_topic("roll", 1, &["--segment-bytes", "1024"]);
    let line = format!("{}\n", "r".repeat(600));
    s.produce("roll", line.clone(), &[]);
    s.produce("roll", line.clone(), &[]);
    let segs = s.segments("roll", 0);
    assert_eq!(segs.len(), 2);
    // Remove the new active segment's files as if the crash came right after the head named
    // it and before they were created, and drop the roll's final time index entry.
    for ext in ["log", "index", "timeindex"] {
        std::fs::remove_file(segs[1].with_extension(ext)).unwrap();
    }
    std::fs::write(segs[0].with_extension("timeindex"), b"").unwrap();
    s.produce("roll", line.clone(), &[]);
    let records = log_of(&s, "roll");
    assert_eq!(
        records.len(),
        2,
        "offset 1 was lost with its segment; 2 records remain"
    );
    // Offset 1 had been handed out, so the record written after the crash continues at
    // offset 2, in a segment named for it.
    assert_contiguous_but(&records, 1, 2);
    assert!(s
        .segments("roll", 0)
        .last()
        .unwrap()
        .ends_with("00000000000000000002.log"));
    s.spool()
        .args(["topic", "verify", "roll", "--repair"])
        .assert()
        .success();
    verify_clean(&s, "roll");
}

#[test]
fn a_kill_during_retention_leaves_a_log_that_opens() {
    let s = Store::new();
    s.create_topic("ret", 1, &["--segment-bytes", "1024"]);
    let line = format!("{}\n", "t".repeat(600));
    for _ in 0..4 {
        s.produce("ret", line.clone(), &[]);
    }
    let segs = s.segments("ret", 0);
    // Retention wrote the new log start and deleted the first segment's log, then died before
    // deleting its indexes and the second segment.
    std::fs::write(s.partition_dir("ret", 0).join("log-start-offset"), "2\n").unwrap();
    std::fs::remove_file(&segs[0]).unwrap();
    let d = s.describe("ret");
    assert_eq!(d["partitions"][0]["log_start_offset"], 2);
    s.produce("ret", "after\n", &[]);
    let records = log_of(&s, "ret");
    assert_eq!(
        records.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![2, 3, 4],
        "reads start at the log start offset"
    );
    s.spool()
        .args(["topic", "alter", "ret", "--config", "retention.bytes=1"])
        .assert()
        .success();
    // Retention finishes the job: segments 1 and 2 go; the active one stays (Kafka keeps at
    // least retention.bytes, and deleting it would leave less).
    s.spool().args(["topic", "prune", "ret"]).assert().success();
    assert_eq!(s.segments("ret", 0).len(), 1);
    s.produce("ret", "last\n", &[]);
    assert_eq!(
        log_of(&s, "ret").iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert_eq!(s.describe("ret")["partitions"][0]["log_start_offset"], 3);
    verify_clean(&s, "ret");
}

#[test]
fn a_crash_between_the_two_index_writes_is_mended_by_recovery() {
    // A writer killed after writing an offset index entry and before its time index entry:
    // the next appender's recovery writes the missing time entry, so the segment verifies
    // once rolled.
    let s = Store::new();
    s.create_topic("tix", 1, &["--segment-bytes", "64KiB"]);
    for p in 0..4 {
        let input: String = (0..100)
            .map(|i| format!("p{p}-{i}-{}\n", "t".repeat(60)))
            .collect();
        s.produce("tix", input, &["--batch-size", "2KiB"]);
    }
    let log = s.segments("tix", 0)[0].clone();
    let time_index = log.with_extension("timeindex");
    let len = std::fs::metadata(&time_index).unwrap().len();
    assert!(len >= 24, "needs time index entries");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&time_index)
        .unwrap();
    f.set_len(len - 12).unwrap();
    drop(f);
    // The next appender recovers; enough more to roll the segment.
    for p in 4..12 {
        let input: String = (0..100)
            .map(|i| format!("p{p}-{i}-{}\n", "t".repeat(60)))
            .collect();
        s.produce("tix", input, &["--batch-size", "2KiB"]);
    }
    assert!(s.segments("tix", 0).len() >= 2, "the segment rolled");
    verify_clean(&s, "tix");
}
