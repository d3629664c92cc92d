//! `KEY=VALUE` pairs, as in `--config retention.ms=3600000` and `--header trace=abc`.

use super::SpecError;

/// Splits at the first `=`, so the value may itself contain `=`; the value may be empty, the key
/// may not. Nothing is trimmed: spaces are part of the key or value.
pub fn parse_kv(s: &str) -> Result<(String, String), SpecError> {
    let error = |reason: &str| SpecError::KeyValue {
        input: s.to_owned(),
        reason: reason.to_owned(),
    };
    let (key, value) = s.split_once('=').ok_or_else(|| error("there is no `=`"))?;
    if key.is_empty() {
        return Err(error("the key before `=` is empty"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> Result<(String, String), SpecError> {
        Ok((k.to_owned(), v.to_owned()))
    }

    #[test]
    fn splits_at_the_first_equals() {
        assert_eq!(
            parse_kv("retention.ms=3600000"),
            pair("retention.ms", "3600000")
        );
        assert_eq!(parse_kv("a=b=c"), pair("a", "b=c"));
        assert_eq!(parse_kv("a="), pair("a", ""));
        assert_eq!(parse_kv(" a = b"), pair(" a ", " b"));
    }

    #[test]
    fn errors() {
        let err = parse_kv("novalue").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid `novalue`: there is no `=`; expected KEY=VALUE"),
            "{err}"
        );
        let err = parse_kv("=v").unwrap_err().to_string();
        assert!(
            err.starts_with("invalid `=v`: the key before `=` is empty"),
            "{err}"
        );
    }
}
