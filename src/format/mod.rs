//! How records leave and enter spool as text: kcat/rpk style output templates
//! (`spool consume --format`) and JSON lines (`spool consume --output json`,
//! `spool produce --input json`).
//!
//! Everything here works on in-memory buffers and does no I/O; the commands own the files and
//! the terminal. Writers append to a caller-owned `Vec<u8>` so that a consumer can render a whole
//! batch into one buffer and issue one write.

mod ascii_copy;
mod decimal;
mod encoding;
mod json_input;
mod json_lines;
mod json_output;
mod line_heads;
mod spare;
mod template;

pub use encoding::{Encoding, UnknownEncoding};
pub use json_input::{parse_json_record, DecodeError, JsonInput};
pub use json_lines::JsonLines;
pub use json_output::{write_json_record, EncodeError, RecordField};
pub use template::{Plain, PlainLines, Template, TemplateError, TemplateLines};

#[cfg(test)]
mod json_roundtrip_tests;
