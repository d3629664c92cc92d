//! `--command-config FILE`: the Java properties file of client settings that Kafka's tools
//! take (`kafka-topics.sh --command-config client.properties`), read into librdkafka
//! properties.
//!
//! Most keys mean the same in both clients (`security.protocol`, `sasl.mechanism`,
//! `ssl.ca.location`, ...) and pass through. `sasl.jaas.config` is Java's: its `username` and
//! `password` become librdkafka's `sasl.username` and `sasl.password`. Java-only keystore
//! settings (`ssl.truststore.*`, `ssl.keystore.*`) are refused with what to use instead, since
//! librdkafka reads PEM files.

use std::path::Path;

use super::ClusterError;

/// The properties of a command-config file, translated for librdkafka.
pub fn read_command_config(path: &Path) -> Result<Vec<(String, String)>, ClusterError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClusterError::CommandConfig {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (key, value) in parse(&text) {
        let bad = |why: &str| {
            ClusterError::Config(format!(
                "{key} in --command-config {}: {why}",
                path.display()
            ))
        };
        match key.as_str() {
            "sasl.jaas.config" => {
                let (username, password) = jaas_credentials(&value).ok_or_else(|| {
                    bad("expected a login module with username=\"...\" and password=\"...\"; or give sasl.username and sasl.password")
                })?;
                out.push(("sasl.username".to_string(), username));
                out.push(("sasl.password".to_string(), password));
            }
            k if k.starts_with("ssl.truststore.") || k.starts_with("ssl.keystore.") => {
                return Err(bad(
                    "librdkafka reads PEM files, not Java keystores: use ssl.ca.location (CA certificate), ssl.certificate.location and ssl.key.location",
                ));
            }
            _ => out.push((key, value)),
        }
    }
    Ok(out)
}

/// Java's `Properties.load` for the forms client configs use: `key=value`, `key: value` or
/// `key value`; `#` and `!` comments; a trailing backslash continues the line; `\t`, `\n`,
/// `\\` and other backslash escapes.
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        // Java drops the leading white space of continuation lines too.
        let line = line.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        out.push(split_entry(&logical));
        logical.clear();
    }
    if !logical.is_empty() {
        out.push(split_entry(&logical));
    }
    out
}

fn split_entry(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars();
    let mut escaped = false;
    let mut rest = "";
    while let Some(c) = chars.next() {
        if escaped {
            key.push(unescape(c));
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || c.is_whitespace() {
            let after = chars.as_str().trim_start();
            rest = if c.is_whitespace() {
                after
                    .strip_prefix(['=', ':'])
                    .map_or(after, str::trim_start)
            } else {
                after
            };
            break;
        } else {
            key.push(c);
        }
    }
    let mut value = String::new();
    let mut escaped = false;
    for c in rest.chars() {
        if escaped {
            value.push(unescape(c));
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            value.push(c);
        }
    }
    (key, value)
}

fn unescape(c: char) -> char {
    match c {
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        'f' => '\x0c',
        other => other,
    }
}

/// `username` and `password` of a JAAS login module line, e.g.
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`.
fn jaas_credentials(jaas: &str) -> Option<(String, String)> {
    let field = |name: &str| {
        let start = jaas.find(&format!("{name}=\""))? + name.len() + 2;
        let len = jaas[start..].find('"')?;
        Some(jaas[start..start + len].to_string())
    };
    Some((field("username")?, field("password")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn java_properties_forms() {
        let text = "# comment\n! also\n\nsecurity.protocol=SASL_SSL\nsasl.mechanism : PLAIN\nclient.id spool\n  long.value = a\\\n    b\nkey\\=with\\:seps=v\\tx\n";
        assert_eq!(
            parse(text),
            kv(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "PLAIN"),
                ("client.id", "spool"),
                ("long.value", "ab"),
                ("key=with:seps", "v\tx"),
            ])
        );
    }

    #[test]
    fn jaas_becomes_username_and_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.properties");
        std::fs::write(&path, "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"s3cret\";\n").unwrap();
        assert_eq!(
            read_command_config(&path).unwrap(),
            kv(&[("sasl.username", "alice"), ("sasl.password", "s3cret")])
        );
    }

    #[test]
    fn keystores_are_refused_with_what_to_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.properties");
        std::fs::write(&path, "ssl.truststore.location=/x.jks\n").unwrap();
        let e = read_command_config(&path).unwrap_err().to_string();
        assert!(e.contains("ssl.ca.location"), "{e}");
    }
}
