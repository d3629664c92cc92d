//! Records as they travel through spool: owned [`Record`]s built by producers and borrowed
//! [`RecordRef`]s decoded straight out of a read buffer by consumers.
//!
//! Keys, values and headers are bytes. `None` is Kafka's null (a tombstone value, a keyless
//! record), which is distinct from an empty byte string.

/// One record header. Kafka header keys are strings by convention, but they are bytes on the
/// wire, so spool keeps them as bytes and never rejects or alters what it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A record to append. The offset is assigned by the partition log under its lock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// CreateTime in milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
}

/// A header borrowed from a decoded batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// A record borrowed from a decoded batch: no copy of key, value or headers is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub offset: i64,
    /// CreateTime in milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Empty (and so unallocated) for the common record without headers.
    pub headers: Vec<HeaderRef<'a>>,
}

impl RecordRef<'_> {
    /// Copies the borrowed record into an owned one (the offset is dropped).
    pub fn to_owned_record(&self) -> Record {
        Record {
            timestamp: self.timestamp,
            key: self.key.map(<[u8]>::to_vec),
            value: self.value.map(<[u8]>::to_vec),
            headers: self
                .headers
                .iter()
                .map(|h| Header {
                    key: h.key.to_vec(),
                    value: h.value.map(<[u8]>::to_vec),
                })
                .collect(),
        }
    }
}
