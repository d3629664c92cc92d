//! Topic and group names, checked by Kafka's rule before any path is built from them.

/// What kind of thing a name names, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Topic,
    Group,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Topic => "topic",
            NameKind::Group => "group",
        })
    }
}

/// Longest name Kafka accepts.
pub const MAX_NAME_LEN: usize = 249;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} name is empty")]
    Empty { kind: NameKind },
    #[error("{kind} name '{name}' is not allowed")]
    Reserved { kind: NameKind, name: String },
    #[error("{kind} name is {len} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong { kind: NameKind, len: usize },
    #[error(
        "{kind} name '{name}' contains {bad:?}; names may only contain ASCII letters, digits, '.', '_' and '-'"
    )]
    BadChar {
        kind: NameKind,
        name: String,
        bad: char,
    },
}

/// Checks `name` against Kafka's rule: 1–249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
pub fn validate(kind: NameKind, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name == "." || name == ".." {
        return Err(NameError::Reserved {
            kind,
            name: name.to_owned(),
        });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            len: name.chars().count(),
        });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(NameError::BadChar {
            kind,
            name: name.escape_debug().to_string(),
            bad,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_names() {
        for name in [
            "a",
            "orders",
            "my.topic_1-x",
            &"x".repeat(249),
            "..a",
            ".hidden",
        ] {
            assert_eq!(validate(NameKind::Topic, name), Ok(()), "{name}");
        }
    }

    #[test]
    fn refuses_paths_and_oddities() {
        for name in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/abs",
            "a\0b",
            "sp ace",
            "ünï",
            &"x".repeat(250),
        ] {
            assert!(validate(NameKind::Topic, name).is_err(), "{name:?}");
        }
    }
}
