//! The memory of single-use authority refs already dispatched: `(key id, nonce)` until the
//! ref expires, in bounded memory.
//!
//! Entries are forgotten once their ref has expired (an expired ref is refused anyway). When the
//! memory is full of refs that have not expired yet, a new ref is refused rather than an old one
//! forgotten, so a replay is never let through to make room; the capacity and the longest ref
//! lifetime the verifier accepts together set the sustainable rate (capacity / lifetime fresh
//! refs per second).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// How many unexpired refs the node remembers unless configured otherwise.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// Why a ref could not be remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A ref with this key id and nonce was already dispatched.
    Replayed,
    /// The memory is full of refs that have not expired yet.
    Full,
}

#[derive(Debug)]
struct Table {
    /// sha256(key id, nonce) truncated to 16 bytes → the ref's expiry (unix seconds).
    seen: HashMap<[u8; 16], i64>,
    /// No entry expires before this; pruning before then frees nothing.
    next_expiry: i64,
}

/// Remembers dispatched `(key id, nonce)` pairs until their refs expire.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    table: Mutex<Table>,
}

fn slot(key_id: &str, nonce: &str) -> [u8; 16] {
    let mut hasher = Sha256::new();
    hasher.update(key_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(nonce.as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            table: Mutex::new(Table {
                seen: HashMap::new(),
                next_expiry: i64::MAX,
            }),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a ref with this key id and nonce was dispatched and has not expired.
    pub(crate) fn seen(&self, key_id: &str, nonce: &str, now: DateTime<Utc>) -> bool {
        self.table()
            .seen
            .get(&slot(key_id, nonce))
            .is_some_and(|expires| *expires > now.timestamp())
    }

    /// Remembers the pair until `expires_at`, or says why not (atomically: of two dispatches
    /// of one ref, exactly one is remembered).
    pub(crate) fn remember(
        &self,
        key_id: &str,
        nonce: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        let key = slot(key_id, nonce);
        let now = now.timestamp();
        let mut table = self.table();
        if table.seen.get(&key).is_some_and(|expires| *expires > now) {
            return Err(Refused::Replayed);
        }
        if table.seen.len() >= self.capacity && now >= table.next_expiry {
            table.seen.retain(|_, expires| *expires > now);
            table.next_expiry = table.seen.values().copied().min().unwrap_or(i64::MAX);
        }
        if table.seen.len() >= self.capacity && !table.seen.contains_key(&key) {
            return Err(Refused::Full);
        }
        // Whole seconds, rounded up, so an entry never expires before its ref does.
        let expires = expires_at.timestamp() + 1;
        table.next_expiry = table.next_expiry.min(expires);
        table.seen.insert(key, expires);
        Ok(())
    }

    /// How many refs are remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table().seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn a_nonce_is_accepted_once_until_it_expires() {
        let cache = ReplayCache::new(8);
        assert_eq!(cache.remember("k", "n1", at(60), at(0)), Ok(()));
        assert!(cache.seen("k", "n1", at(1)));
        assert_eq!(
            cache.remember("k", "n1", at(60), at(1)),
            Err(Refused::Replayed)
        );
        // The same nonce under another key is another ref.
        assert_eq!(cache.remember("other", "n1", at(60), at(1)), Ok(()));
        // After the ref expired it is refused for its expiry anyway; the slot may be reused.
        assert!(!cache.seen("k", "n1", at(62)));
    }

    #[test]
    fn a_full_memory_refuses_new_refs_until_old_ones_expire() {
        let cache = ReplayCache::new(2);
        assert_eq!(cache.remember("k", "a", at(10), at(0)), Ok(()));
        assert_eq!(cache.remember("k", "b", at(20), at(0)), Ok(()));
        assert_eq!(cache.remember("k", "c", at(30), at(5)), Err(Refused::Full));
        // "a" expired: its room is reclaimed, and "b" is still remembered.
        assert_eq!(cache.remember("k", "c", at(30), at(12)), Ok(()));
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.remember("k", "b", at(20), at(12)),
            Err(Refused::Replayed)
        );
    }
}
