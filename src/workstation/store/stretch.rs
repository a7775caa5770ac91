//! The store's cache of slow hashes (salted bindings, docs/FORMAT.md §3):
//! `cache/stretch`, one line per (salt, algorithm-1 digest) with its Argon2id
//! value, all hex. A cache only: lost or damaged, it is rebuilt at the cost
//! of one slow hash per component, so writes are best effort (atomic, never
//! partial, but a concurrent writer may drop the other's new lines).

use std::path::PathBuf;

use crate::base::fsio;
use crate::machine::fingerprint::salted::{SALT_LEN, StretchCache};
use crate::machine::fingerprint::{ComponentDigest, MemoryCache, parse_digest};

/// At most this many entries are kept (a machine has a handful of
/// components per salt, and a store a handful of salts).
const MAX_ENTRIES: usize = 512;
const MAX_BYTES: u64 = 128 * 1024;

/// The cache file of one store, read when the store state is.
#[derive(Debug, Default)]
pub struct StoreStretchCache {
    path: Option<PathBuf>,
    memory: MemoryCache,
    entries: std::sync::Mutex<Vec<String>>,
}

impl Clone for StoreStretchCache {
    fn clone(&self) -> StoreStretchCache {
        let lines = self.entries.lock().map(|e| e.clone()).unwrap_or_default();
        StoreStretchCache::from_lines(self.path.clone(), lines)
    }
}

impl StoreStretchCache {
    /// Reads `path` (missing, unreadable or damaged lines count as absent).
    pub fn load(path: PathBuf) -> StoreStretchCache {
        let text = fsio::read_capped(&path, MAX_BYTES, fsio::Links::Refuse)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        StoreStretchCache::from_lines(Some(path), text.lines().map(str::to_owned).collect())
    }

    fn from_lines(path: Option<PathBuf>, lines: Vec<String>) -> StoreStretchCache {
        let memory = MemoryCache::default();
        let mut kept = Vec::new();
        for line in lines {
            if let Some((salt, digest, value)) = parse_line(&line) {
                memory.put(&salt, &digest, value);
                kept.push(line);
            }
        }
        StoreStretchCache {
            path,
            memory,
            entries: std::sync::Mutex::new(kept),
        }
    }
}

fn parse_line(line: &str) -> Option<([u8; SALT_LEN], ComponentDigest, [u8; 32])> {
    let mut parts = line.split(' ');
    let mut salt = [0u8; SALT_LEN];
    let decoded = base16ct::lower::decode(parts.next()?, &mut salt).ok()?;
    if decoded.len() != SALT_LEN {
        return None;
    }
    let digest = parse_digest(parts.next()?)?;
    let value = parse_digest(parts.next()?)?.0;
    parts.next().is_none().then_some((salt, digest, value))
}

impl StretchCache for StoreStretchCache {
    fn get(&self, salt: &[u8; SALT_LEN], digest: &ComponentDigest) -> Option<[u8; 32]> {
        self.memory.get(salt, digest)
    }

    fn put(&self, salt: &[u8; SALT_LEN], digest: &ComponentDigest, stretched: [u8; 32]) {
        self.memory.put(salt, digest, stretched);
        let Some(path) = &self.path else { return };
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.push(format!(
            "{} {} {}",
            base16ct::lower::encode_string(salt),
            base16ct::lower::encode_string(&digest.0),
            base16ct::lower::encode_string(&stretched)
        ));
        let excess = entries.len().saturating_sub(MAX_ENTRIES);
        entries.drain(..excess);
        let text: String = entries.iter().map(|l| format!("{l}\n")).collect();
        if let Some(dir) = path.parent()
            && fsio::create_private_dir(dir).is_ok()
        {
            let _ = fsio::write_file(path, text.as_bytes(), true, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reload_and_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/stretch");
        let cache = StoreStretchCache::load(path.clone());
        let digest = ComponentDigest([7; 32]);
        assert_eq!(cache.get(&[1; SALT_LEN], &digest), None);
        cache.put(&[1; SALT_LEN], &digest, [9; 32]);
        let again = StoreStretchCache::load(path.clone());
        assert_eq!(again.get(&[1; SALT_LEN], &digest), Some([9; 32]));
        assert_eq!(again.get(&[2; SALT_LEN], &digest), None);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("garbage line\n00 11\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(
            StoreStretchCache::load(path).get(&[1; SALT_LEN], &digest),
            Some([9; 32])
        );
    }
}
