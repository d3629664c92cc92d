//! Generated documentation: the man pages in `man/` and the completion scripts in
//! `completions/`, both rendered from the clap definitions.
//!
//! A man page has clap_mangen's NAME, SYNOPSIS, DESCRIPTION, OPTIONS and SUBCOMMANDS, then
//! sections made from the command's after-help text, which follows one convention: a line
//! `Heading:` at the left margin starts a section and the indented lines below it are its body.
//! `Examples:` becomes EXAMPLES and `Exit status:` (lines `CODE  meaning`) becomes EXIT STATUS;
//! a command without one gets the common exit status. ENVIRONMENT, FILES and SEE ALSO follow.
//!
//! `tests/docs.rs` compares the committed files with [`generated_files`] and rewrites them
//! with `SPOOL_BLESS=1`.

use std::path::PathBuf;

use clap::CommandFactory;
use roff::{bold, italic, roman, Roff};

use super::complete::{self, Shell};

/// The exit status every command shares, as `CODE  meaning` lines.
pub const EXIT_STATUS: &str = "\
0  success, also when the reader of stdout went away (as with `| head`)
1  runtime error: unknown topic or group, damaged log, refused operation, I/O error
2  usage error: unknown flag, bad or missing value, conflicting flags";

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "SPOOL_DIR",
        "The store directory, when --dir is not given.",
    ),
    (
        "XDG_DATA_HOME",
        "The default store is $XDG_DATA_HOME/spool (~/.local/share/spool when unset).",
    ),
    (
        "NO_COLOR",
        "When set to a non-empty value, no colours are used. Colours are only ever used on a terminal.",
    ),
    (
        "SPOOL_COMPLETE",
        "Set by the completion scripts (see spool-completions(1)) to ask spool for completions instead of running a command.",
    ),
];

const FILES: &[(&str, &str)] = &[
    ("spool.yaml", "The store's format version."),
    (
        "topics/<topic>/topic.yaml",
        "A topic's partition count, configs, creation time and id.",
    ),
    (
        "topics/<topic>/<partition>/<base-offset>.log",
        "A segment: Kafka RecordBatch v2 batches, byte for byte as Kafka writes them; the name is the 20-digit offset of its first record.",
    ),
    (
        "topics/<topic>/<partition>/<base-offset>.index, .timeindex",
        "Kafka's sparse offset and time indexes of the segment.",
    ),
    (
        "topics/<topic>/<partition>/log-start-offset",
        "The first offset kept, moved forward by retention.",
    ),
    (
        "groups/<group>/group.yaml",
        "A consumer group's generation, state, assignor and assignment.",
    ),
    (
        "groups/<group>/history.yaml",
        "The group's last rebalances (what `spool group describe --history` shows), appended as they happen.",
    ),
    (
        "groups/<group>/members/<member-id>.yaml",
        "A live member's lease, locked for the member's whole life.",
    ),
    (
        "groups/<group>/offsets.yaml",
        "The group's committed offsets.",
    ),
];

/// One generated file: its path relative to the repository root, and its contents.
pub struct GeneratedFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// Every generated file: the man pages, then the completion scripts.
pub fn generated_files() -> Vec<GeneratedFile> {
    let mut files = render_man_pages();
    files.extend(render_completions());
    files
}

/// `completions/<file>` for every supported shell.
pub fn render_completions() -> Vec<GeneratedFile> {
    Shell::ALL
        .iter()
        .map(|&shell| GeneratedFile {
            path: PathBuf::from("completions").join(shell.file_name()),
            contents: complete::script(shell),
        })
        .collect()
}

/// `man/spool.1` and a page per subcommand (`man/spool-topic-create.1`, ...).
pub fn render_man_pages() -> Vec<GeneratedFile> {
    // No `help` subcommands: they have no pages, and SUBCOMMANDS would list them.
    fn without_help(cmd: clap::Command) -> clap::Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        let mut cmd = cmd.disable_help_subcommand(true);
        for name in names {
            cmd = cmd.mut_subcommand(name, without_help);
        }
        cmd
    }
    let mut cmd = without_help(super::Cli::command());
    cmd.build();
    let mut pages = Vec::new();
    walk(&cmd, None, &mut pages);
    pages
}

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned()
}

fn walk(cmd: &clap::Command, parent: Option<&clap::Command>, pages: &mut Vec<GeneratedFile>) {
    let name = page_name(cmd);
    pages.push(GeneratedFile {
        path: PathBuf::from("man").join(format!("{name}.1")),
        contents: man_page(cmd, parent),
    });
    for sub in visible_subcommands(cmd) {
        walk(sub, Some(cmd), pages);
    }
}

/// A section of after-help text: `Heading:` and the lines below it, unindented by two.
struct Section {
    heading: String,
    lines: Vec<String>,
}

fn sections(text: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in text.lines() {
        let is_heading = !line.starts_with(' ') && line.ends_with(':') && !line.is_empty();
        if is_heading {
            out.push(Section {
                heading: line.trim_end_matches(':').to_owned(),
                lines: Vec::new(),
            });
            continue;
        }
        if out.is_empty() {
            out.push(Section {
                heading: "Notes".into(),
                lines: Vec::new(),
            });
        }
        let body = line.strip_prefix("  ").unwrap_or(line);
        out.last_mut()
            .expect("a section")
            .lines
            .push(body.to_owned());
    }
    for s in &mut out {
        while s.lines.last().is_some_and(|l| l.trim().is_empty()) {
            s.lines.pop();
        }
    }
    out
}

fn after_help(cmd: &clap::Command) -> String {
    cmd.get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn man_page(cmd: &clap::Command, parent: Option<&clap::Command>) -> Vec<u8> {
    let name = page_name(cmd);
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .manual("spool manual");
    let mut out = Vec::new();
    let w: &mut dyn std::io::Write = &mut out;
    (|| -> std::io::Result<()> {
        man.render_title(w)?;
        man.render_name_section(w)?;
        synopsis(cmd).to_writer(&mut *w)?;
        man.render_description_section(w)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(w)?;
        }
        if visible_subcommands(cmd).next().is_some() {
            man.render_subcommands_section(w)?;
        }
        Ok(())
    })()
    .expect("writing to a Vec cannot fail");

    let mut roff = Roff::new();
    let mut exit_status = None;
    for s in sections(&after_help(cmd)) {
        match s.heading.as_str() {
            "Exit status" => exit_status = Some(s.lines.join("\n")),
            heading => preformatted(&mut roff, heading, &s.lines),
        }
    }
    exit_section(&mut roff, exit_status.as_deref().unwrap_or(EXIT_STATUS));
    roff.control("SH", ["ENVIRONMENT"]);
    for (var, text) in ENVIRONMENT {
        roff.control("TP", []);
        roff.text([bold(*var)]);
        roff.text([roman(*text)]);
    }
    roff.control("SH", ["FILES"]);
    roff.text([roman(
        "Paths are relative to the store directory (--dir, $SPOOL_DIR, or ~/.local/share/spool).",
    )]);
    for (path, text) in FILES {
        roff.control("TP", []);
        roff.text([italic(*path)]);
        roff.text([roman(*text)]);
    }
    see_also(&mut roff, cmd, parent);
    roff.control("SH", ["VERSION"]);
    roff.text([roman(format!(
        "spool {}",
        cmd.get_version().unwrap_or(env!("CARGO_PKG_VERSION"))
    ))]);
    roff.to_writer(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// SYNOPSIS as `--help`'s usage shows it (`spool topic describe [OPTIONS] <TOPIC>...`), not
/// clap_mangen's list of every flag without its value.
fn synopsis(cmd: &clap::Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage:").unwrap_or(&usage);
    for (i, line) in usage
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            roff.control("br", []);
        }
        let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
        match line.strip_prefix(name) {
            Some(rest) => roff.text([bold(name), roman(rest)]),
            None => roff.text([roman(line)]),
        };
    }
    roff
}

/// Columns left for a preformatted line in an 80-column `man`: the page's margin (7) and the
/// block's indent (4) come first, and one column is kept free.
const PREFORMATTED_WIDTH: usize = 68;

fn preformatted(roff: &mut Roff, heading: &str, lines: &[String]) {
    roff.control("SH", [heading.to_uppercase().as_str()]);
    roff.control("PP", []);
    roff.control("nf", []);
    roff.control("RS", ["4"]);
    // When one example needs its comment moved above it, all of them get that layout.
    let examples = heading == "Examples";
    let comments_above = examples && lines.iter().any(|l| l.chars().count() > PREFORMATTED_WIDTH);
    for line in lines {
        let fitted = if comments_above {
            fit_example(line, 0)
        } else if examples {
            fit_example(line, PREFORMATTED_WIDTH)
        } else {
            wrap(line, PREFORMATTED_WIDTH, "", "")
        };
        for l in fitted {
            roff.text([roman(l.as_str())]);
        }
    }
    roff.control("RE", []);
    roff.control("fi", []);
}

/// An example line that fits `width`: a trailing `# comment` moves onto its own line above
/// the command, and a command still too long continues on the next line after ` \`.
fn fit_example(line: &str, width: usize) -> Vec<String> {
    if line.chars().count() <= width {
        return vec![line.to_owned()];
    }
    let mut out = Vec::new();
    let command = match line.split_once("  # ") {
        Some((command, comment)) if !command.trim().is_empty() => {
            let width = width.max(PREFORMATTED_WIDTH);
            out.extend(wrap(&format!("# {}", comment.trim()), width, "", "# "));
            command.trim_end()
        }
        _ => line,
    };
    out.extend(wrap(command, width.max(PREFORMATTED_WIDTH), " \\", "    "));
    out
}

/// Breaks `line` at spaces into lines of at most `width` columns (a word longer than that
/// stays whole): `end` closes every line but the last, `indent` opens every line but the first.
fn wrap(line: &str, width: usize, end: &str, indent: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let candidate = if current.is_empty() && out.is_empty() {
            word.to_owned()
        } else if current.is_empty() {
            format!("{indent}{word}")
        } else {
            format!("{current} {word}")
        };
        if candidate.chars().count() + end.len() > width && !current.trim().is_empty() {
            out.push(format!("{current}{end}"));
            current = format!("{indent}{word}");
        } else {
            current = candidate;
        }
    }
    out.push(current);
    out
}

fn exit_section(roff: &mut Roff, text: &str) {
    roff.control("SH", ["EXIT STATUS"]);
    for line in text.lines() {
        let line = line.trim_start();
        match line.split_once(' ') {
            Some((code, meaning)) if code.chars().all(|c| c.is_ascii_digit()) => {
                roff.control("TP", []);
                roff.text([bold(code)]);
                roff.text([roman(meaning.trim_start())]);
            }
            _ if !line.is_empty() => {
                // A continuation of the previous meaning.
                roff.text([roman(line)]);
            }
            _ => {}
        }
    }
}

fn see_also(roff: &mut Roff, cmd: &clap::Command, parent: Option<&clap::Command>) {
    let mut refs: Vec<String> = Vec::new();
    if let Some(p) = parent {
        refs.push(page_name(p));
    }
    refs.extend(visible_subcommands(cmd).map(page_name));
    if let Some(p) = parent {
        refs.extend(
            visible_subcommands(p)
                .map(page_name)
                .filter(|n| *n != page_name(cmd)),
        );
    }
    if page_name(cmd) != "spool" && !refs.iter().any(|r| r == "spool") {
        refs.insert(0, "spool".into());
    }
    if refs.is_empty() {
        return;
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut inlines = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        if i > 0 {
            inlines.push(roman(", "));
        }
        inlines.push(bold(r.as_str()));
        inlines.push(roman("(1)"));
    }
    roff.text(inlines);
}

#[cfg(test)]
mod tests {
    use super::sections;

    #[test]
    fn after_help_sections() {
        let s = sections("Examples:\n  a\n  b   # c\n\nExit status:\n  0  ok\n");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].heading, "Examples");
        assert_eq!(s[0].lines, vec!["a", "b   # c"]);
        assert_eq!(s[1].heading, "Exit status");
        assert_eq!(s[1].lines, vec!["0  ok"]);
    }
}
