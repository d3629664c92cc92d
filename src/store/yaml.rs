//! Whole-file YAML metadata (`topic.yaml`, `group.yaml`, `offsets.yaml`), written so that no
//! crash and no torn or emptied file loses the last committed state.
//!
//! A save keeps the version it replaces as `<file>.prev` (a hard link, so no data is copied)
//! and then replaces the file atomically (temporary file, fsync, rename, directory fsync). A load
//! that finds the file empty or unparsable falls back to `<file>.prev`; only when both are bad
//! is it an error, naming the file and what is wrong with it.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{IoContext, Result, StoreError};
use super::fsutil;

/// `<file>.prev`.
pub fn prev_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".prev");
    PathBuf::from(name)
}

/// Reads and parses `path`; `Ok(None)` when neither it nor its previous version exists.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let primary = match read(path)? {
        Some(text) => match parse(path, &text) {
            Ok(value) => return Ok(Some(value)),
            Err(e) => Some(e),
        },
        None => None,
    };
    let prev = prev_path(path);
    match read(&prev)? {
        Some(text) => match parse(&prev, &text) {
            Ok(value) => Ok(Some(value)),
            Err(e) => Err(primary.unwrap_or(e)),
        },
        None => match primary {
            Some(e) => Err(e),
            None => Ok(None),
        },
    }
}

fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at("read", path),
    }
}

fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    if text.trim().is_empty() {
        return Err(StoreError::BadMetadata {
            path: path.to_owned(),
            reason: "the file is empty".into(),
        });
    }
    serde_yaml::from_str(text).map_err(|e| StoreError::BadMetadata {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Replaces `path` with `value`, keeping the replaced version as `<file>.prev`.
pub fn save<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_yaml::to_string(value).expect("metadata serializes");
    if path.exists() {
        let prev = prev_path(path);
        let mut staging = prev.as_os_str().to_owned();
        staging.push(format!(".tmp-{}", std::process::id()));
        let staging = PathBuf::from(staging);
        let _ = std::fs::remove_file(&staging);
        std::fs::hard_link(path, &staging).at("keep the previous version of", path)?;
        std::fs::rename(&staging, &prev).at("keep the previous version of", path)?;
    }
    fsutil::write_atomic(path, text.as_bytes()).at("write", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emptied_or_garbled_file_falls_back_to_the_previous_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        assert_eq!(load::<Vec<i32>>(&path).unwrap(), None);
        save(&path, &vec![1]).unwrap();
        save(&path, &vec![1, 2]).unwrap();
        assert_eq!(load::<Vec<i32>>(&path).unwrap(), Some(vec![1, 2]));
        std::fs::write(&path, "").unwrap();
        assert_eq!(load::<Vec<i32>>(&path).unwrap(), Some(vec![1]));
        std::fs::write(&path, "{{{ not yaml").unwrap();
        assert_eq!(load::<Vec<i32>>(&path).unwrap(), Some(vec![1]));
        std::fs::write(prev_path(&path), "").unwrap();
        let err = load::<Vec<i32>>(&path).unwrap_err().to_string();
        assert!(err.contains("x.yaml"), "{err}");
    }
}
