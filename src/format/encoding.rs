//! How key, value and header bytes are carried inside JSON strings.
//!
//! JSON strings hold Unicode text but Kafka keys and values are arbitrary bytes, so the user
//! picks the mapping: UTF-8 text (refuses binary data rather than mangling it), standard base64
//! with padding, or hex.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The mapping between record bytes and JSON string contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// Bytes are the UTF-8 text of the string; bytes that are not UTF-8 are an error.
    #[default]
    Utf8,
    /// RFC 4648 standard alphabet with `=` padding.
    Base64,
    /// Two hex digits per byte; written lowercase, read in either case.
    Hex,
}

impl Encoding {
    pub const ALL: [Encoding; 3] = [Encoding::Utf8, Encoding::Base64, Encoding::Hex];

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf8",
            Encoding::Base64 => "base64",
            Encoding::Hex => "hex",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name given for an [`Encoding`] that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown encoding `{0}`: expected one of utf8, base64, hex")]
pub struct UnknownEncoding(pub String);

impl FromStr for Encoding {
    type Err = UnknownEncoding;

    /// Case-insensitive; `utf-8` is accepted as well as `utf8`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "utf8" | "utf-8" => Ok(Encoding::Utf8),
            "base64" => Ok(Encoding::Base64),
            "hex" => Ok(Encoding::Hex),
            _ => Err(UnknownEncoding(s.to_owned())),
        }
    }
}

/// Appends the base64 text of `bytes`, encoding in place in `out` so nothing else is allocated.
pub(crate) fn append_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    // `encoded_len` fails only when the length overflows usize, impossible for a slice in memory.
    let len = base64::encoded_len(bytes.len(), true).expect("base64 length of an in-memory slice");
    let start = out.len();
    out.resize(start + len, 0);
    STANDARD
        .encode_slice(bytes, &mut out[start..])
        .expect("buffer sized by encoded_len");
}

/// Appends two lowercase hex digits per byte.
pub(crate) fn append_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
}

/// Decodes standard base64 with padding; the error says what is wrong with the text.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text)
        .map_err(|e| format!("{e} (expected standard base64 with `=` padding)"))
}

/// Decodes hex digits in either case; the error says what is wrong with the text.
pub(crate) fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits = text.as_bytes();
    if let Some(position) = digits.iter().position(|d| !d.is_ascii_hexdigit()) {
        // Every byte before it is ASCII, so `position` starts a char: show the whole char.
        let found = text[position..].chars().next().unwrap_or('?');
        return Err(format!(
            "`{found}` at position {position} is not a hex digit"
        ));
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "odd number of hex digits ({}); each byte needs two",
            digits.len()
        ));
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    };
    Ok(digits
        .chunks_exact(2)
        .map(|pair| nibble(pair[0]) << 4 | nibble(pair[1]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for enc in Encoding::ALL {
            assert_eq!(enc.name().parse::<Encoding>(), Ok(enc));
            assert_eq!(enc.to_string(), enc.name());
        }
        assert_eq!("UTF-8".parse::<Encoding>(), Ok(Encoding::Utf8));
        assert_eq!("Base64".parse::<Encoding>(), Ok(Encoding::Base64));
        let err = "latin1".parse::<Encoding>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown encoding `latin1`: expected one of utf8, base64, hex"
        );
    }

    #[test]
    fn hex_both_ways() {
        let mut out = Vec::new();
        append_hex(&mut out, &[0x00, 0x7f, 0xab, 0xff]);
        assert_eq!(out, b"007fabff");
        assert_eq!(decode_hex("007fABff"), Ok(vec![0x00, 0x7f, 0xab, 0xff]));
        assert_eq!(decode_hex(""), Ok(vec![]));
        assert!(decode_hex("abc").unwrap_err().contains("odd number"));
        assert!(decode_hex("0g").unwrap_err().contains("`g` at position 1"));
        assert!(decode_hex("aé").unwrap_err().contains("`é` at position 1"));
    }

    #[test]
    fn base64_both_ways() {
        let mut out = b"x".to_vec();
        append_base64(&mut out, b"hello");
        assert_eq!(out, b"xaGVsbG8=");
        assert_eq!(decode_base64("aGVsbG8="), Ok(b"hello".to_vec()));
        assert!(decode_base64("aGVsbG8").is_err(), "padding is required");
        assert!(decode_base64("a-==").is_err());
    }
}
