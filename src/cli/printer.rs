//! Printing the records `spool consume` reads: rendered into one buffer that is written to
//! stdout in large pieces, and rendered ahead on the read-ahead thread where the store allows.
//!
//! Plain lines (the default: the value and a suffix; `-K`: the key, a separator, the value and
//! a suffix) are written a batch at a time: the reader hands the printer the rest of a batch at
//! once ([`ConsumerSink::records`]), and the lines go into room reserved once
//! ([`crate::format::TemplateLines::plain_lines`]). A plain line is a copy of what the record
//! holds, which costs the same on either thread, so it is not rendered ahead (below).
//!
//! A record's output depends on the record alone (a template, JSON), so the read-ahead thread,
//! which otherwise waits for the consuming thread, renders the records of the chunks it reads
//! until the consuming thread gets to them ([`crate::store::readahead::RenderAhead`]); the
//! consuming thread writes what it finds rendered as it is and renders the rest itself. The
//! output is the same byte for byte, in the same order, whichever thread rendered a record.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};

use super::consume::{Renderer, OUT_FLUSH};
use crate::consume::{ConsumerSink, RenderAheadFor};
use crate::format::{Plain, TemplateLines};
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
            Renderer::Template(template) => (template, template.plain()),
            Renderer::Json(_) => {
                return deliver_each(records, progress, |record| {
                    self.record(topic, partition, record)
                })
            }
        };
        let before = progress.delivered;
        let (out, stdout) = (&mut *self.out, &mut *self.stdout);
        let written = match plain {
            Some(Plain::Value) => {
                write_plain_lines::<false>(template, out, stdout, records, progress)
            }
            Some(Plain::KeyValue) => {
                write_plain_lines::<true>(template, out, stdout, records, progress)
            }
            None => {
                return deliver_each(records, progress, |record| {
                    self.record(topic, partition, record)
                })
            }
        };
        *self.count += (progress.delivered - before) as u64;
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
        } else {
            // Written where it is, after what is buffered: no copy of a chunk's worth.
            self.flush()?;
            self.stdout.write_all(bytes)?;
        }
        Ok(())
    }
}

impl Printer<'_> {
    /// Writes what is buffered; then a Ctrl-C or SIGTERM received meanwhile ends the poll
    /// ([`Interrupted`]), so a poll's budget need not be small for the read to stop promptly.
    fn flush(&mut self) -> anyhow::Result<()> {
        flush_out(self.stdout, self.out)
    }
}

/// [`Printer::flush`]: writes `out` to `stdout`, then ends the poll if Ctrl-C or SIGTERM came.
fn flush_out(stdout: &mut File, out: &mut Vec<u8>) -> anyhow::Result<()> {
    write_out(stdout, out)?;
    if super::interrupted() {
        return Err(Interrupted.into());
    }
    Ok(())
}

/// Writes the plain lines ([`TemplateLines::plain_lines`]) of `records` into `out`, in room
/// up to the flush size (a batch's lines go out in pieces of that size, as record by record,
/// rather than grow the buffer to a batch's size), writing `out` to `stdout` whenever it is
/// full; `progress` counts the lines written into `out`.
#[inline(always)]
fn write_plain_lines<const KEYED: bool>(
    template: &TemplateLines,
    out: &mut Vec<u8>,
    stdout: &mut File,
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
                    if let Err(e) = flush_out(stdout, out) {
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
