//! Output for people and for scripts: tables (comfy-table) on a terminal's width, the same
//! fields as JSON or YAML with `-o`, and progress bars (indicatif) only on a terminal.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use comfy_table::{presets, ContentArrangement, Table};
use serde::Serialize;

/// `-o/--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    #[default]
    Table,
    /// JSON, for scripts.
    Json,
    /// YAML, for scripts.
    Yaml,
}

/// Columns of free text (lists of topics, partitions or members, descriptions): the only ones
/// that wrap when a table is wider than the terminal. Ids, names, numbers and timestamps never
/// wrap, so they stay whole for copying (`kill PID`, a consumer id, a time).
const FREE_TEXT_COLUMNS: &[&str] = &[
    "TOPICS",
    "ASSIGNMENT",
    "TRIGGER",
    "MEMBERS-BEFORE",
    "MEMBERS-AFTER",
    "STATUS",
];

/// A table with the house style: no borders, headers in capitals as Kafka's tools print them.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().copied());
    // No terminal, or one that reports no width (a pty of 0 columns, as `script` makes):
    // nothing to fit, and never wrap what a script may parse.
    if !std::io::stdout().is_terminal() || t.width().is_none_or(|w| w == 0) {
        t.set_content_arrangement(ContentArrangement::Disabled);
    }
    for column in t.column_iter_mut() {
        column.set_padding((0, 2));
    }
    t
}

/// Makes a table that is wider than the terminal fit as well as it can without breaking what
/// must stay whole: headers break at their hyphens (`LOG-END-` over `OFFSET`), columns are one
/// space apart, and only free-text columns (`FREE_TEXT_COLUMNS`) wrap; every other column
/// keeps its widest cell on one line. When that is still too wide, the table runs wide (the
/// terminal wraps whole lines, each of which stays copyable). A table that fits, or that is
/// not printed to a terminal, is left alone.
pub fn fit(t: &mut Table) {
    let Some(width) = t.width() else {
        return;
    };
    if matches!(t.content_arrangement(), ContentArrangement::Disabled) {
        return;
    }
    let padding = 2;
    let natural: usize = t
        .column_max_content_widths()
        .iter()
        .map(|w| usize::from(*w) + padding)
        .sum();
    if natural <= usize::from(width) {
        return;
    }
    let Some(header) = t.header() else {
        return;
    };
    let names: Vec<String> = header.cell_iter().map(|c| c.content()).collect();
    let parts: Vec<Vec<String>> = names
        .iter()
        .map(|h| {
            let mut parts: Vec<String> = h.split_inclusive('-').map(str::to_owned).collect();
            if parts.is_empty() {
                parts.push(h.clone());
            }
            parts
        })
        .collect();
    let mut widest = vec![0usize; names.len()];
    for row in t.row_iter() {
        for (i, cell) in row.cell_iter().enumerate().take(widest.len()) {
            let w = cell
                .content()
                .lines()
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(0);
            widest[i] = widest[i].max(w);
        }
    }
    t.set_header(parts.iter().map(|p| p.join("\n")).collect::<Vec<_>>());
    let header_min = |i: usize| {
        parts[i]
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(1)
    };
    let free = |i: usize| FREE_TEXT_COLUMNS.contains(&names[i].as_str());
    // Wrapping free text only helps when the table then fits; when even the narrowest layout
    // is too wide, the table runs wide with every cell whole.
    let narrowest: usize = (0..names.len())
        .map(|i| {
            if free(i) {
                header_min(i) + 1
            } else {
                header_min(i).max(widest[i]) + 1
            }
        })
        .sum();
    let wrap_free_text = narrowest <= usize::from(width);
    for (i, column) in t.column_iter_mut().enumerate() {
        column.set_padding((0, 1));
        let constraint = if wrap_free_text && free(i) {
            comfy_table::ColumnConstraint::LowerBoundary(comfy_table::Width::Fixed(
                header_min(i) as u16 + 1,
            ))
        } else {
            comfy_table::ColumnConstraint::Absolute(comfy_table::Width::Fixed(
                (header_min(i).max(widest[i]) + 1).min(usize::from(u16::MAX)) as u16,
            ))
        };
        column.set_constraint(constraint);
    }
}

/// Prints a table, trimming the trailing spaces of each line.
pub fn print_table(t: &Table) -> std::io::Result<()> {
    let mut t = t.clone();
    fit(&mut t);
    let mut out = std::io::stdout().lock();
    for line in t.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    out.flush()
}

/// Prints a value as JSON (pretty) or YAML. The text is rendered first and written in one go,
/// so a closed stdout is a plain `io::Error` (broken pipe, a quiet exit 0), not one wrapped in
/// a serializer's error.
pub fn print_data<T: Serialize + ?Sized>(format: OutputFormat, value: &T) -> anyhow::Result<()> {
    let mut text = match format {
        OutputFormat::Json | OutputFormat::Table => serde_json::to_string_pretty(value)?,
        OutputFormat::Yaml => serde_yaml::to_string(value)?,
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `1 record`, `2 records`, `3 batches`: a count with its noun in the right number (regular
/// English plurals, which is all spool prints).
pub fn count(n: impl Into<i128>, noun: &str) -> String {
    let n = n.into();
    let suffix = match n {
        1 => "",
        _ if noun.ends_with("ch") || noun.ends_with('s') => "es",
        _ => "s",
    };
    format!("{n} {noun}{suffix}")
}

/// A value or `-` where it is missing, as Kafka's tools print it.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Whether stderr may be coloured: it is a terminal and `NO_COLOR` is unset or empty.
pub fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Bold red, for `error:`.
pub const ERROR: &str = "\x1b[1;31m";
/// Bold cyan, for `hint:`.
pub const HINT: &str = "\x1b[1;36m";

/// `text` in the ANSI style `style` when `colour`, else as it is.
pub fn paint(colour: bool, style: &str, text: &str) -> String {
    if colour {
        format!("{style}{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Whether progress may be drawn: stderr is a terminal and the user did not ask for quiet.
pub fn progress_allowed(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A byte-count progress bar on stderr.
pub fn byte_progress(len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// A spinner on stderr for input of unknown length (a pipe): records and bytes so far.
pub fn record_spinner() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {msg} {bytes} ({bytes_per_sec})",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
