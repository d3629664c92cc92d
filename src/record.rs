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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub offset: i64,
    /// CreateTime in milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Headers<'a>,
}

/// A record's headers: still encoded in the batch they were read from (checked when the record
/// was decoded, and decoded again only by whoever prints them), or a list.
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    /// `count` headers in Kafka's record encoding (varint lengths), known to be well formed.
    Encoded {
        count: usize,
        bytes: &'a [u8],
    },
    List(&'a [HeaderRef<'a>]),
}

impl<'a> Headers<'a> {
    pub const NONE: Headers<'static> = Headers::List(&[]);

    pub fn len(&self) -> usize {
        match self {
            Headers::Encoded { count, .. } => *count,
            Headers::List(list) => list.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> HeaderIter<'a> {
        match *self {
            Headers::Encoded { count, bytes } => HeaderIter::Encoded { count, bytes },
            Headers::List(list) => HeaderIter::List(list.iter()),
        }
    }
}

impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers<'_> {}

/// Iterator over [`Headers`].
#[derive(Debug, Clone)]
pub enum HeaderIter<'a> {
    Encoded { count: usize, bytes: &'a [u8] },
    List(std::slice::Iter<'a, HeaderRef<'a>>),
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = HeaderRef<'a>;

    fn next(&mut self) -> Option<HeaderRef<'a>> {
        match self {
            HeaderIter::List(list) => list.next().copied(),
            HeaderIter::Encoded { count: 0, .. } => None,
            HeaderIter::Encoded { count, bytes } => {
                *count -= 1;
                let header = crate::store::batch::decode_header(bytes);
                if header.is_none() {
                    // Only checked headers are `Encoded`: this cannot happen, but stop cleanly.
                    *count = 0;
                }
                header
            }
        }
    }
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
