//! Topic metadata as the server sees it: loaded from `topic.yaml` and kept while the file is
//! unchanged (one `stat` per look-up instead of parsing YAML per request), so that topics
//! created, altered or deleted by the CLI are seen at the next request.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::store::topic::TOPIC_FILE;
use crate::store::{Store, StoreError, Topic};

/// What identifies one version of a `topic.yaml` (it is replaced whole by rename).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    mtime_ns: i64,
    len: u64,
}

pub(crate) struct TopicCache {
    store: Store,
    loaded: Mutex<HashMap<String, (FileStamp, Arc<Topic>)>>,
}

impl TopicCache {
    pub fn new(store: Store) -> TopicCache {
        TopicCache {
            store,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The topic named `name`, `None` when it does not exist. A name Kafka would refuse is an
    /// error ([`StoreError::Name`]).
    pub fn get(&self, name: &str) -> Result<Option<Arc<Topic>>, StoreError> {
        let dir = self.store.topic_dir(name)?;
        let path = dir.join(TOPIC_FILE);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.lock().remove(name);
                return Ok(None);
            }
            Err(e) => {
                return Err(StoreError::Io {
                    op: "read",
                    path,
                    source: e,
                })
            }
        };
        let stamp = FileStamp {
            ino: meta.ino(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            len: meta.len(),
        };
        if let Some((s, topic)) = self.lock().get(name) {
            if *s == stamp {
                return Ok(Some(Arc::clone(topic)));
            }
        }
        let topic = match Topic::load(&dir) {
            Ok(t) => Arc::new(t),
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(None),
            Err(StoreError::BadMetadata { .. }) if !path.exists() => return Ok(None),
            Err(e) => return Err(e),
        };
        self.lock()
            .insert(name.to_owned(), (stamp, Arc::clone(&topic)));
        Ok(Some(topic))
    }

    /// The topic whose id is `id`, `None` when no topic has it.
    pub fn by_id(&self, id: Uuid) -> Result<Option<Arc<Topic>>, StoreError> {
        let cached: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, (_, t))| topic_uuid(t) == id)
            .map(|(n, _)| n.clone())
            .collect();
        for name in cached {
            if let Some(t) = self.get(&name)? {
                if topic_uuid(&t) == id {
                    return Ok(Some(t));
                }
            }
        }
        for name in self.store.list_topics()? {
            if let Some(t) = self.get(&name)? {
                if topic_uuid(&t) == id {
                    return Ok(Some(t));
                }
            }
        }
        Ok(None)
    }

    /// Forgets a topic (after deleting it).
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (FileStamp, Arc<Topic>)>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A topic's id as Kafka's UUID (the id in `topic.yaml` is its URL-safe base64 form).
pub fn topic_uuid(topic: &Topic) -> Uuid {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(topic.meta.id.as_bytes())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok());
    match bytes {
        Some(b) => Uuid::from_bytes(b),
        // An id in another form (hand-edited): a stable UUID derived from it.
        None => {
            let mut b = [0u8; 16];
            for (i, c) in topic.meta.id.bytes().enumerate() {
                b[i % 16] = b[i % 16].wrapping_mul(31).wrapping_add(c);
            }
            Uuid::from_bytes(b)
        }
    }
}
