//! A trace of the requests the server answers, for finding out what a client does (which
//! request with which generation, answered how and how fast): `SPOOL_SERVE_TRACE=FILE` appends
//! one line per event to FILE. Off, it costs one check per request.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

fn file() -> Option<&'static Mutex<std::fs::File>> {
    static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os("SPOOL_SERVE_TRACE")?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(Mutex::new)
    })
    .as_ref()
}

/// Whether tracing is on (so callers skip building what they would trace).
pub(crate) fn enabled() -> bool {
    file().is_some()
}

/// Appends `msg` with the wall-clock time (seconds within the hour, ms) and the thread's name.
pub(crate) fn line(msg: std::fmt::Arguments) {
    let Some(f) = file() else { return };
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let thread = std::thread::current();
    let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(
        f,
        "{:04}.{:03} [{}] {msg}",
        t.as_secs() % 3600,
        t.subsec_millis(),
        thread.name().unwrap_or("?")
    );
}

/// `trace!("...", args)`: a trace line, its arguments evaluated only when tracing is on.
macro_rules! trace {
    ($($t:tt)*) => {
        if $crate::serve::trace::enabled() {
            $crate::serve::trace::line(format_args!($($t)*))
        }
    };
}
