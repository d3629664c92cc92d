//! Kafka's framing: every request and response is a 4-byte big-endian size and that many bytes.
//! A request is a header (API key, version, correlation id, client id) and a body, both decoded
//! by the `kafka-protocol` crate; this module only cuts frames and picks header versions.

use std::io::{self, Read, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Why a frame could not be read or understood; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the client closed the connection")]
    Closed,
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("request of {size} bytes exceeds --max-request-size ({max} bytes)")]
    TooLarge { size: i64, max: usize },
    #[error("request size {0} is impossible")]
    BadSize(i32),
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Reads one frame; `Closed` at a clean end of stream between frames. The size is checked
/// against `max` before anything is allocated for the body.
pub fn read_frame(stream: &mut impl Read, max: usize) -> Result<Bytes, FrameError> {
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    // The smallest header: api key, version, correlation id, client id length.
    if size < 10 {
        return Err(FrameError::BadSize(size));
    }
    if size as usize > max {
        return Err(FrameError::TooLarge {
            size: i64::from(size),
            max,
        });
    }
    let mut body = BytesMut::zeroed(size as usize);
    stream.read_exact(&mut body)?;
    Ok(body.freeze())
}

/// A decoded request.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Decoded {
    Request(Box<Request>),
    /// An ApiVersions request of a version newer than ours: answered with version 0 and
    /// UNSUPPORTED_VERSION, as Kafka does, so the client can pick a version we know.
    ApiVersionsTooNew {
        correlation_id: i32,
    },
}

/// Decodes a request frame. Unknown API keys and versions outside the crate's ranges are
/// errors (the connection is closed, as Kafka closes it), except ApiVersions.
pub fn decode_request(mut frame: Bytes) -> Result<Decoded, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::Malformed(format!(
            "a request header needs 8 bytes, the frame has {}",
            frame.len()
        )));
    }
    let api_key_raw = frame.slice(0..2).get_i16();
    let version = frame.slice(2..4).get_i16();
    let correlation_id = frame.slice(4..8).get_i32();
    let api_key = ApiKey::try_from(api_key_raw)
        .map_err(|_| FrameError::Malformed(format!("unknown API key {api_key_raw}")))?;
    let range = api_key.valid_versions();
    if version < range.min || version > range.max {
        if api_key == ApiKey::ApiVersions && version > range.max {
            return Ok(Decoded::ApiVersionsTooNew { correlation_id });
        }
        return Err(FrameError::Malformed(format!(
            "{api_key:?} version {version} is not supported"
        )));
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| FrameError::Malformed(format!("{e:#}")))?;
    let body = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|e| FrameError::Malformed(format!("{e:#}")))?;
    Ok(Decoded::Request(Box::new(Request {
        api_key,
        version,
        header,
        body,
    })))
}

/// Encodes a response frame (size, header, body) for a request of `api_key` at `version`.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<BytesMut, FrameError> {
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header
        .encode(&mut out, api_key.response_header_version(version))
        .map_err(|e| FrameError::Malformed(format!("{e:#}")))?;
    body.encode(&mut out, version)
        .map_err(|e| FrameError::Malformed(format!("cannot encode the response: {e:#}")))?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}

/// Writes a whole frame.
pub fn write_frame(stream: &mut impl Write, frame: &[u8]) -> io::Result<()> {
    stream.write_all(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_past_the_limit_is_refused_before_reading_the_body() {
        let mut input: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut input, 1024),
            Err(FrameError::TooLarge { .. })
        ));
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut input, 1024),
            Err(FrameError::BadSize(-1))
        ));
        let mut input: &[u8] = &[];
        assert!(matches!(
            read_frame(&mut input, 1024),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn unknown_api_keys_are_malformed() {
        let frame = Bytes::from_static(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
        assert!(matches!(
            decode_request(frame),
            Err(FrameError::Malformed(_))
        ));
    }
}
