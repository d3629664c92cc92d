//! Printing the records `spool consume` reads: rendered into one buffer that is written to
//! stdout in large pieces, and rendered ahead on the read-ahead thread where the store allows.
//!
//! Plain lines (the default: the value and a suffix; `-K`: the key, a separator, the value and
//! a suffix) are written a batch at a time: the reader hands the printer the rest of a batch at
//! once ([`ConsumerSink::records`]), and the lines go into room reserved once
//! ([`crate::format::TemplateLines::plain_lines`]). A plain line is a copy of what the record
//! holds, which costs the same on either thread, so it is not rendered ahead (below).
//!
//! A group member (`consume --group`) prints through the same printer with an [`Owner`]: before
//! every write of records the member checks that it still owns its partitions (DESIGN's
//! invariant 5), and drops what it rendered if not; and its poll ends at the first write after
//! a time slice, so that a poll of many records into a slow pipe does not keep the member from
//! its group (rebalances, commits) for long.
//!
//! A record's output depends on the record alone (a template, JSON), so the read-ahead thread,
//! which otherwise waits for the consuming thread, renders the records of the chunks it reads
//! until the consuming thread gets to them ([`crate::store::readahead::RenderAhead`]); the
//! consuming thread writes what it finds rendered as it is and renders the rest itself. The
//! output is the same byte for byte, in the same order, whichever thread rendered a record.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::consume::{Renderer, OUT_FLUSH};
use crate::consume::{ConsumerSink, RenderAheadFor};
use crate::format::{Plain, TemplateLines};
use crate::group::member::OutputGate;
use crate::record::RecordRef;
use crate::store::batch::RecordIter;
use crate::store::readahead::{AheadBatch, RenderAhead};
use crate::store::reader::{deliver_each, Progress};

/// The [`ConsumerSink`] of `spool consume`: renders each record into `out`, counts it, and
/// writes `out` to stdout once it holds [`OUT_FLUSH`] bytes.
pub(super) struct Printer<'a> {
    pub renderer: &'a mut Renderer,
    pub out: &'a mut Vec<u8>,
    pub stdout: &'a mut File,
    pub count: &'a mut u64,
    /// A group member's check before every write, and its time slice (None: a plain read).
    pub owner: Option<&'a mut Owner>,
}

impl ConsumerSink<anyhow::Error> for Printer<'_> {
    #[inline(always)]
    fn record(&mut self, topic: &str, partition: i32, record: RecordRef<'_>) -> anyhow::Result<()> {
        self.renderer.render(self.out, topic, partition, &record)?;
        *self.count += 1;
        if self.out.len() >= OUT_FLUSH {
            self.flush()?;
        }
        Ok(())
    }

    /// Plain lines (the value, or the key, a separator and the value, and a suffix), a batch
    /// at once ([`TemplateLines::plain_lines`]); other lines one record at a time.
    #[inline(always)]
    fn records(
        &mut self,
        topic: &str,
        partition: i32,
        records: &mut RecordIter<'_>,
        progress: &mut Progress,
    ) -> anyhow::Result<()> {
        let (template, plain) = match &*self.renderer {
            Renderer::Template(template) => match template.plain() {
                Some(plain) => (template, plain),
                None => return self.each(topic, partition, records, progress),
            },
            Renderer::Json(_) => return self.each(topic, partition, records, progress),
        };
        let out = &mut *self.out;
        let mut full = FullBuffer {
            stdout: &mut *self.stdout,
            count: &mut *self.count,
            owner: self.owner.as_deref_mut(),
            counted: progress.delivered,
        };
        let written = match plain {
            Plain::Value => write_plain_lines::<false>(template, out, &mut full, records, progress),
            Plain::KeyValue => {
                write_plain_lines::<true>(template, out, &mut full, records, progress)
            }
        };
        *full.count += (progress.delivered - full.counted) as u64;
        written?;
        if self.out.len() >= OUT_FLUSH {
            self.flush()?;
        }
        Ok(())
    }

    fn rendered(&mut self, _: &str, _: i32, bytes: &[u8], records: usize) -> anyhow::Result<()> {
        *self.count += records as u64;
        if self.out.len() + bytes.len() < OUT_FLUSH {
            self.out.extend_from_slice(bytes);
            Ok(())
        } else {
            // Written where it is, after what is buffered: no copy of a chunk's worth.
            write_records(
                self.stdout,
                self.out,
                bytes,
                self.count,
                self.owner.as_deref_mut(),
            )
        }
    }
}

impl Printer<'_> {
    /// The records of a batch one at a time ([`ConsumerSink::record`]).
    #[inline(always)]
    fn each(
        &mut self,
        topic: &str,
        partition: i32,
        records: &mut RecordIter<'_>,
        progress: &mut Progress,
    ) -> anyhow::Result<()> {
        deliver_each(records, progress, |record| {
            self.record(topic, partition, record)
        })
    }

    /// Writes what is buffered ([`write_records`]).
    fn flush(&mut self) -> anyhow::Result<()> {
        write_records(
            self.stdout,
            self.out,
            &[],
            self.count,
            self.owner.as_deref_mut(),
        )
    }
}

/// The printer's writing half while a batch's plain lines fill its buffer: kept together, and
/// used out of line, so that the loop over the records carries none of it.
struct FullBuffer<'a> {
    stdout: &'a mut File,
    count: &'a mut u64,
    owner: Option<&'a mut Owner>,
    /// `progress.delivered` when the records before were last counted.
    counted: usize,
}

impl FullBuffer<'_> {
    /// Counts the records delivered so far and writes the full buffer ([`write_records`]).
    #[cold]
    #[inline(never)]
    fn write(&mut self, out: &mut Vec<u8>, delivered: usize) -> anyhow::Result<()> {
        *self.count += (delivered - self.counted) as u64;
        self.counted = delivered;
        write_records(self.stdout, out, &[], self.count, self.owner.as_deref_mut())
    }
}

/// Writes `out`, then `more`, to `stdout` and empties `out`; for a group member, only after its
/// check that it still owns its partitions (else both are dropped, their records taken back
/// from `count`: [`LostPartitions`]). Then a Ctrl-C or SIGTERM received meanwhile ends the
/// poll ([`Interrupted`]), so a poll's budget need not be small for the read to stop promptly,
/// and so does the end of a group member's time slice ([`SliceOver`]). A poll ended here has
/// written every record it delivered.
fn write_records(
    stdout: &mut File,
    out: &mut Vec<u8>,
    more: &[u8],
    count: &mut u64,
    owner: Option<&mut Owner>,
) -> anyhow::Result<()> {
    if let Some(owner) = &owner {
        if !owner.admits(out, count) {
            return Err(LostPartitions.into());
        }
    }
    write_out(stdout, out)?;
    if !more.is_empty() {
        stdout.write_all(more)?;
    }
    if super::interrupted() {
        return Err(Interrupted.into());
    }
    if let Some(owner) = owner {
        owner.written = *count;
        if Instant::now() >= owner.until {
            return Err(SliceOver.into());
        }
    }
    Ok(())
}

/// Writes the plain lines ([`TemplateLines::plain_lines`]) of `records` into `out`, in room
/// up to the flush size (a batch's lines go out in pieces of that size, as record by record,
/// rather than grow the buffer to a batch's size), writing `out` through `full` whenever it is
/// full; `progress` counts the lines written into `out`.
#[inline(always)]
fn write_plain_lines<const KEYED: bool>(
    template: &TemplateLines,
    out: &mut Vec<u8>,
    full: &mut FullBuffer<'_>,
    records: &mut RecordIter<'_>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let room = OUT_FLUSH.saturating_sub(out.len());
    let mut lines = template
        .plain_lines::<KEYED>(out, room)
        .expect("plain lines");
    let mut outcome = Ok(());
    for record in records {
        match record {
            Ok(record) => {
                if !lines.push(record.key, record.value) {
                    // The buffer is full: written out, and the line goes into it empty.
                    let line = lines.line_len(record.key, record.value);
                    let out = lines.finish();
                    if let Err(e) = full.write(out, progress.delivered) {
                        lines = template.plain_lines(out, 0).expect("plain lines");
                        outcome = Err(e);
                        break;
                    }
                    lines = template
                        .plain_lines(out, OUT_FLUSH.max(line))
                        .expect("plain lines");
                    assert!(
                        lines.push(record.key, record.value),
                        "room was made for the line"
                    );
                }
                progress.next_offset = record.offset + 1;
                progress.delivered += 1;
            }
            Err(source) => {
                progress.malformed = Some(source);
                break;
            }
        }
    }
    lines.finish();
    outcome
}

/// A group member's side of its printer: the check before every write of records (DESIGN's
/// invariant 5) and the end of its poll's time slice. Made afresh for each poll.
pub(super) struct Owner {
    gate: OutputGate,
    /// The poll ends at its first write after this.
    until: Instant,
    /// The record count when the output buffer was last empty: what a failed check takes back.
    written: u64,
}

impl Owner {
    /// A poll's owner check; `count` is the records printed so far (the buffer is empty), and
    /// the poll ends at its first write after `slice`.
    pub fn new(gate: OutputGate, count: u64, slice: Duration) -> Owner {
        Owner {
            gate,
            until: Instant::now() + slice,
            written: count,
        }
    }

    /// Writes what the poll left in `out` if the member still owns its partitions (true);
    /// else drops it and takes its records back from `count` (false).
    pub fn write_rest(
        &mut self,
        stdout: &mut File,
        out: &mut Vec<u8>,
        count: &mut u64,
    ) -> std::io::Result<bool> {
        if out.is_empty() {
            return Ok(true);
        }
        if !self.admits(out, count) {
            return Ok(false);
        }
        write_out(stdout, out)?;
        self.written = *count;
        Ok(true)
    }

    /// Whether the member still owns its partitions, so that `out` may be written; if not,
    /// `out` is dropped and its records taken back from `count`.
    fn admits(&self, out: &mut Vec<u8>, count: &mut u64) -> bool {
        if self.gate.check() {
            return true;
        }
        out.clear();
        *count = self.written;
        false
    }
}

/// A group member's poll was ended because the member may no longer own its partitions: what
/// it had rendered was dropped, never printed.
#[derive(Debug, thiserror::Error)]
#[error("this member no longer owns its partitions")]
pub(super) struct LostPartitions;

/// A group member's poll was ended at a write once its time slice was over: everything it
/// delivered was printed.
#[derive(Debug, thiserror::Error)]
#[error("the poll's time slice is over")]
pub(super) struct SliceOver;

/// The poll was ended by Ctrl-C or SIGTERM after the records printed so far: the read stops
/// as at its end, not with an error.
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub(super) struct Interrupted;

/// Writes `buf` to stdout and empties it.
pub(super) fn write_out(stdout: &mut File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    stdout.write_all(buf)?;
    buf.clear();
    Ok(())
}

impl Renderer {
    /// Whether rendering a record costs enough to be worth doing on the read-ahead thread:
    /// JSON and templates with more than the value do; the plain value and a suffix is a copy,
    /// and rendering it ahead measured no faster while it kept a chunk's rendering per chunk
    /// in flight (RSS +5 MiB, +900 page faults for eight partitions).
    pub(super) fn worth_rendering_ahead(&self) -> bool {
        match self {
            Renderer::Template(template) => template.plain().is_none(),
            Renderer::Json(_) => true,
        }
    }
}

/// Renders ahead with a copy of the command's renderer, for any partition.
pub(super) fn render_ahead(renderer: &Renderer) -> RenderAheadFor {
    let renderer = renderer.clone();
    Arc::new(move |topic: &str, partition: i32| -> Arc<dyn RenderAhead> {
        Arc::new(RenderOnHelper {
            renderer: Mutex::new(renderer.clone()),
            topic: topic.to_owned(),
            partition,
        })
    })
}

/// One partition's records, rendered on the read-ahead thread.
struct RenderOnHelper {
    /// Only the read-ahead thread renders with it (one lock a batch).
    renderer: Mutex<Renderer>,
    topic: String,
    partition: i32,
}

impl RenderAhead for RenderOnHelper {
    fn render_batch(&self, batch: &mut AheadBatch<'_, '_>) {
        let Ok(mut renderer) = self.renderer.lock() else {
            return;
        };
        while let Some(record) = batch.next_record() {
            // A record that cannot be rendered (not UTF-8 for JSON) is left to the consuming
            // thread, which reports it in its place.
            if renderer
                .render(batch.out(), &self.topic, self.partition, &record)
                .is_err()
            {
                return;
            }
            batch.rendered();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::os::fd::FromRawFd;

    use super::*;
    use crate::format::{Template, TemplateLines};
    use crate::group::consumer::{GroupConsumer, GroupConsumerConfig, OffsetReset};
    use crate::group::member::MemberConfig;
    use crate::store::reader::tests::append_values;
    use crate::store::Store;

    /// A group member of four partitions holding a batch of 60,000 records each (1.9 MB of
    /// `%v\n` in one poll, several flushes), its lease removed (the member fenced) while the
    /// first write of its poll is under way: it prints nothing after that write, however many
    /// records its poll has rendered, and ends the poll with [`LostPartitions`], its count
    /// back at what it printed. With the plain value, written a batch at a time, and with a
    /// template, record by record, also with rendering ahead switched on (as the member has it
    /// for templates and JSON).
    ///
    /// A member found fenced wakes every change waiter of its process (so that its consuming
    /// thread notices), which would wake other tests' waiters: the test runs in a process of
    /// its own, this test binary started again for it alone.
    #[test]
    fn a_member_fenced_inside_a_poll_prints_nothing_after_the_write_under_way() {
        const ALONE: &str = "SPOOL_TEST_FENCED_INSIDE_A_POLL";
        if std::env::var_os(ALONE).is_none() {
            let name = "cli::printer::tests::a_member_fenced_inside_a_poll_prints_nothing_after_the_write_under_way";
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--nocapture", "--test-threads", "1"])
                .env(ALONE, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && text.contains("1 passed"),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return;
        }
        for (format, ahead) in [("%v\\n", false), ("%o %v\\n", false), ("%o %v\\n", true)] {
            let root = tempfile::tempdir().unwrap();
            let store = Store::open(root.path().join("store")).unwrap();
            store.create_topic("t", 4, BTreeMap::new()).unwrap();
            for p in 0..4 {
                let partition = store.topic("t").unwrap().partition(p).unwrap();
                let values: Vec<i64> = (0..60_000).map(|i| 1_000_000 + i).collect();
                append_values(&partition.dir, partition.config, &values);
            }
            let config = GroupConsumerConfig {
                member: MemberConfig {
                    group: "g".into(),
                    topics: vec!["t".into()],
                    pattern: None,
                    client_id: "test".into(),
                    instance_id: None,
                    assignor: "range".into(),
                    session_timeout: Duration::from_secs(30),
                    heartbeat_interval: Duration::from_secs(3),
                    max_poll_interval: Duration::from_secs(300),
                },
                auto_offset_reset: OffsetReset::Earliest,
                start: None,
                auto_commit_interval: Duration::from_secs(5),
                commit: true,
            };
            let mut renderer = Renderer::Template(TemplateLines::new(
                Template::parse(format).unwrap(),
                b"null".to_vec(),
            ));
            let mut gc = GroupConsumer::join(&store, config).unwrap();
            if ahead {
                gc.consumer_mut().render_ahead(render_ahead(&renderer));
            }
            for _ in 0..3 {
                gc.maintain(&mut || Ok(())).unwrap();
            }

            // stdout: a pipe of 64 KiB, read by a thread that removes the member's lease
            // when it has read half of the first write (which is then still under way).
            let mut fds = [0; 2];
            // SAFETY: pipe(2) fills two fds, each then owned by one File.
            let (mut reader, mut stdout) = unsafe {
                assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
                libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 64 << 10);
                (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
            };
            let members = root.path().join("store/groups/g/members");
            let read = std::thread::spawn(move || {
                let mut got = vec![0u8; OUT_FLUSH / 2];
                reader.read_exact(&mut got).unwrap();
                for lease in std::fs::read_dir(&members).unwrap() {
                    std::fs::remove_file(lease.unwrap().path()).unwrap();
                }
                reader.read_to_end(&mut got).unwrap();
                got
            });

            let (mut out, mut count) = (Vec::new(), 0);
            let mut owner = Owner::new(gc.output_gate(), 0, Duration::from_secs(60));
            let printer = Printer {
                renderer: &mut renderer,
                out: &mut out,
                stdout: &mut stdout,
                count: &mut count,
                owner: Some(&mut owner),
            };
            let polled = gc.poll(1 << 20, printer);
            drop(stdout);
            let got = read.join().unwrap();
            let err = polled.expect_err("the poll goes on after the member lost its partition");
            assert!(err.is::<LostPartitions>(), "{format}: {err}");
            assert!(
                // One write: the flush size, and a line past it record by record.
                got.len() > OUT_FLUSH / 2 && got.len() < OUT_FLUSH + 100,
                "{format}: {} bytes printed, more than the write under way",
                got.len()
            );
            assert_eq!(got.last(), Some(&b'\n'), "{format}: whole lines");
            let lines = got.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(count, lines, "{format}: the count is what was printed");
            assert!(out.is_empty());
            let _ = gc.close();
        }
    }
}
