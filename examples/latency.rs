//! Produce-to-consume latency of a following `spool consume`, end to end through the CLI.
//!
//! ```text
//! cargo build --release && cargo run --release --example latency -- [--spool PATH]
//!     [--records 1000] [--pause-us 2000] [--dir DIR]
//! ```
//!
//! In a fresh store (a temporary directory unless `--dir`), it starts `spool consume lat -F
//! '%v\n'` (following, the default) and one long-lived `spool produce lat`, then sends records
//! one at a time with a pause between them. Each record's value is the CLOCK_REALTIME time in
//! nanoseconds taken just before the line is written to the producer's stdin; when the
//! consumer prints the line, the time elapsed since then is one sample. So a sample covers the
//! producer reading the line, appending the batch under the partition lock, the file
//! notification waking the consumer, the consumer reading and checking the batch, and the
//! printed line arriving here. Both processes read the same clock, so no clock skew enters.
//!
//! Prints p50, p90, p99 and max over the samples (the first 10, warm-up, are left out).
//! `spool` defaults to the binary next to this example's directory (target/release/spool).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

fn main() {
    let mut spool: Option<PathBuf> = None;
    let mut records = 1000usize;
    let mut pause = Duration::from_micros(2000);
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--spool" => spool = Some(value().into()),
            "--records" => records = value().parse().expect("--records N"),
            "--pause-us" => pause = Duration::from_micros(value().parse().expect("--pause-us N")),
            "--dir" => dir = Some(value().into()),
            other => panic!("unknown argument {other}"),
        }
    }
    let spool = spool.unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        exe.parent()
            .and_then(|examples| examples.parent())
            .expect("target/<profile>/examples/latency")
            .join("spool")
    });
    let tmp;
    let dir = match dir {
        Some(d) => d,
        None => {
            tmp = TempDir::new();
            tmp.0.clone()
        }
    };

    let status = Command::new(&spool)
        .args(["topic", "create", "lat"])
        .env("SPOOL_DIR", &dir)
        .stdout(Stdio::null())
        .status()
        .expect("run spool topic create");
    assert!(status.success(), "spool topic create failed");

    let mut consumer = Command::new(&spool)
        .args(["consume", "lat", "-q", "-F", "%v\\n"])
        .env("SPOOL_DIR", &dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start spool consume");
    let mut producer = Command::new(&spool)
        .args(["produce", "lat", "-q"])
        .env("SPOOL_DIR", &dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start spool produce");
    let mut to_producer = producer.stdin.take().expect("producer stdin");
    let mut from_consumer = BufReader::new(consumer.stdout.take().expect("consumer stdout"));

    let mut samples = Vec::with_capacity(records);
    let mut line = String::new();
    for i in 0..records + 10 {
        let sent = now_ns();
        writeln!(to_producer, "{sent}").expect("write to producer");
        to_producer.flush().expect("flush to producer");
        line.clear();
        from_consumer
            .read_line(&mut line)
            .expect("read from consumer");
        let arrived = now_ns();
        let value: u128 = line
            .trim_end()
            .parse()
            .expect("a timestamp from the consumer");
        assert_eq!(value, sent, "records arrive in order, one by one");
        if i >= 10 {
            samples.push((arrived - sent) as f64 / 1000.0);
        }
        std::thread::sleep(pause);
    }
    drop(to_producer);
    let _ = producer.wait();
    let _ = consumer.kill();
    let _ = consumer.wait();

    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "produce-to-consume latency over {} records (us): p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
        samples.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        samples[samples.len() - 1]
    );
}

/// A temporary directory removed on drop (std only, so the example needs no dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("spool-latency-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
