//! The flags that kcat, rpk and Kafka's console tools taught people, answered with the spool
//! command that does the same, instead of clap's "unexpected argument" (or its advice to pass
//! `-C` as a value with `-- -C`).
//!
//! Only consulted after clap refused a command line: a habit flag that spool also defines (`-e`,
//! `-p`, `-o`, `--max-messages`, ...) is spool's. Each recognised flag is one `HABITS` entry;
//! [`suggest`] translates the whole line, so `spool -C -t orders -o beginning -e` gets
//! `spool consume orders -o beginning -e`.

use std::ffi::OsString;

/// What a habit flag becomes in spool.
#[derive(Clone, Copy)]
enum Becomes {
    /// The `spool` command that does it (`consume`, `produce`).
    Command(&'static str),
    /// `-G GROUP`: a group consumer (`spool consume --group GROUP`).
    Group,
    /// The value is the topic, a positional argument in spool.
    Topic,
    /// The flag is spool's `to` with the same value.
    Flag(&'static str),
    /// The flag is spool's `to` with this fixed value (no value of its own).
    FlagWith(&'static str, &'static str),
    /// kcat's `-f FORMAT`: spool's `-F`, with kcat's `%s` (value) as spool's `%v`.
    Format,
    /// The console tools' `--property KEY=VALUE` (print.key, parse.key, key.separator).
    Property,
}

struct Habit {
    flags: &'static [&'static str],
    takes_value: bool,
    /// Whose flag it is and what it means there.
    what: &'static str,
    becomes: Becomes,
}

const HABITS: &[Habit] = &[
    Habit {
        flags: &["-C"],
        takes_value: false,
        what: "kcat's consumer mode",
        becomes: Becomes::Command("consume"),
    },
    Habit {
        flags: &["-P"],
        takes_value: false,
        what: "kcat's producer mode",
        becomes: Becomes::Command("produce"),
    },
    Habit {
        flags: &["-G"],
        takes_value: true,
        what: "kcat's group consumer",
        becomes: Becomes::Group,
    },
    Habit {
        flags: &["-t", "--topic"],
        takes_value: true,
        what: "the topic flag of kcat and Kafka's console tools",
        becomes: Becomes::Topic,
    },
    Habit {
        flags: &["-c"],
        takes_value: true,
        what: "kcat's message count",
        becomes: Becomes::Flag("-n"),
    },
    Habit {
        flags: &["--max-messages"],
        takes_value: true,
        what: "kafka-console-consumer's message count",
        becomes: Becomes::Flag("-n"),
    },
    Habit {
        flags: &["-f"],
        takes_value: true,
        what: "kcat's output format",
        becomes: Becomes::Format,
    },
    Habit {
        flags: &["-J"],
        takes_value: false,
        what: "kcat's JSON envelope",
        becomes: Becomes::FlagWith("--output", "json"),
    },
    Habit {
        flags: &["--from-beginning"],
        takes_value: false,
        what: "kafka-console-consumer's start at the beginning",
        becomes: Becomes::FlagWith("-o", "earliest"),
    },
    Habit {
        flags: &["--property"],
        takes_value: true,
        what: "a kafka-console-consumer/producer property",
        becomes: Becomes::Property,
    },
];

/// spool's flags that take a value, so a habit line's values are not taken for topics.
const SPOOL_VALUE_FLAGS: &[&str] = &[
    "-o",
    "-p",
    "-n",
    "-F",
    "-K",
    "-k",
    "-H",
    "-g",
    "-D",
    "--group",
    "--dir",
    "--output",
    "--offset",
    "--partition",
    "--partitions",
    "--format",
    "--config",
    "--retention",
    "--retention-bytes",
    "--key-separator",
    "--key",
    "--header",
    "--timeout",
    "--exec",
    "--encoding",
    "--input",
    "--file",
    "--delimiter",
];

/// spool's command words, kept in place in a suggestion.
const COMMAND_WORDS: &[&str] = &[
    "topic", "create", "list", "describe", "alter", "delete", "verify", "prune", "produce",
    "consume", "group", "offsets", "reset",
];

fn habit(flag: &str) -> Option<&'static Habit> {
    HABITS.iter().find(|h| h.flags.contains(&flag))
}

/// Quotes a word for a shell command line when it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:@/=+%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The error and hint for a command line clap refused at `bad`, when `bad` is a habit flag.
pub fn suggest(args: &[OsString], bad: &str) -> Option<(String, String)> {
    let h = habit(bad)?;
    let args: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut words: Vec<String> = Vec::new();
    let mut command: Option<&str> = None;
    let mut topics: Vec<String> = Vec::new();
    let mut flags: Vec<String> = Vec::new();
    let mut notes: Vec<&str> = Vec::new();
    let (mut print_key, mut parse_key, mut separator) = (false, false, None::<String>);
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let value = args.get(i + 1).cloned();
        if let Some(h) = habit(arg) {
            let value = if h.takes_value {
                i += 1;
                value.unwrap_or_default()
            } else {
                String::new()
            };
            match h.becomes {
                Becomes::Command(c) => command = Some(c),
                Becomes::Group => {
                    command = Some("consume");
                    flags.extend(["--group".to_owned(), shell_word(&value)]);
                }
                Becomes::Topic => topics.push(value),
                Becomes::Flag(to) => flags.extend([to.to_owned(), shell_word(&value)]),
                Becomes::FlagWith(to, v) => flags.extend([to.to_owned(), v.to_owned()]),
                Becomes::Format => {
                    flags.extend(["-F".to_owned(), shell_word(&value.replace("%s", "%v"))])
                }
                Becomes::Property => match value.split_once('=') {
                    Some(("print.key", v)) => print_key = v == "true",
                    Some(("parse.key", v)) => parse_key = v == "true",
                    Some(("key.separator", v)) => separator = Some(v.to_owned()),
                    _ => notes.push("spool has no such property; `spool consume --help` and `spool produce --help` list its flags"),
                },
            }
        } else if arg.starts_with('-') && arg.len() > 1 {
            flags.push(shell_word(arg));
            if SPOOL_VALUE_FLAGS.contains(&arg.as_str()) {
                if let Some(v) = value {
                    flags.push(shell_word(&v));
                    i += 1;
                }
            }
        } else if COMMAND_WORDS.contains(&arg.as_str()) && topics.is_empty() {
            words.push(arg.clone());
        } else {
            topics.push(arg.clone());
        }
        i += 1;
    }
    if words.is_empty() {
        let inferred = command.unwrap_or(if parse_key { "produce" } else { "consume" });
        words.push(inferred.to_owned());
    }
    let separator = separator.unwrap_or_else(|| "\\t".to_owned());
    if print_key {
        flags.extend(["-F".to_owned(), shell_word(&format!("%k{separator}%v\\n"))]);
    }
    if parse_key {
        flags.extend(["-K".to_owned(), shell_word(&separator)]);
    }
    let mut line = vec!["spool".to_owned()];
    line.extend(words);
    line.extend(topics.iter().map(|t| shell_word(t)));
    line.extend(flags);
    let mut hint = format!("in spool that is `{}`", line.join(" "));
    for note in notes {
        hint.push_str("; ");
        hint.push_str(note);
    }
    Some((format!("unexpected argument '{bad}' ({})", h.what), hint))
}

/// rpk's `rpk topic produce T` / `rpk topic consume T`: the error and hint, when `args` is that.
pub fn topic_subcommand(args: &[OsString]) -> Option<(String, String)> {
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let at = words.iter().position(|w| w == "topic")?;
    let action = words.get(at + 1)?;
    if action != "produce" && action != "consume" {
        return None;
    }
    let mut line = vec!["spool".to_owned(), action.clone()];
    line.extend(words[at + 2..].iter().map(|w| shell_word(w)));
    Some((
        format!("'{action}' is not a `spool topic` command (rpk's `rpk topic {action}`)"),
        format!("{action} is a command of its own: `{}`", line.join(" ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(line: &str, bad: &str) -> String {
        let args: Vec<OsString> = std::iter::once("spool")
            .chain(line.split(' '))
            .map(OsString::from)
            .collect();
        suggest(&args, bad).expect("a habit").1
    }

    #[test]
    fn kcat_lines_become_spool_lines() {
        assert_eq!(
            hint("-C -t orders -o beginning -e", "-C"),
            "in spool that is `spool consume orders -o beginning -e`"
        );
        assert_eq!(
            hint("consume -t orders -c 5 -f %k:%s\\n", "-t"),
            "in spool that is `spool consume orders -n 5 -F '%k:%v\\n'`"
        );
        assert_eq!(
            hint("-G billing orders", "-G"),
            "in spool that is `spool consume orders --group billing`"
        );
        assert_eq!(
            hint("-P -t orders", "-P"),
            "in spool that is `spool produce orders`"
        );
        assert_eq!(
            hint("consume orders -J", "-J"),
            "in spool that is `spool consume orders --output json`"
        );
    }

    #[test]
    fn console_tool_lines_become_spool_lines() {
        assert_eq!(
            hint(
                "consume --topic orders --from-beginning --property print.key=true",
                "--topic"
            ),
            "in spool that is `spool consume orders -o earliest -F '%k\\t%v\\n'`"
        );
        assert_eq!(
            hint(
                "produce orders --property parse.key=true --property key.separator=:",
                "--property"
            ),
            "in spool that is `spool produce orders -K :`"
        );
    }

    #[test]
    fn other_flags_are_no_habits() {
        let args: Vec<OsString> = ["spool", "consume", "--frobnicate"]
            .iter()
            .map(OsString::from)
            .collect();
        assert!(suggest(&args, "--frobnicate").is_none());
    }
}
