//! The component digests this runtime has loaded and still serves: the only source of truth
//! the wasm target verifier accepts. An attestation naming a digest is believed only if a lane
//! generation with that digest is loaded right now; a claim alone is never trusted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Loaded digest → (lane id, live generations). Cheap to clone; clones share the set.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadedDigests {
    map: Arc<Mutex<HashMap<String, Entry>>>,
}

#[derive(Debug)]
struct Entry {
    lane_id: String,
    generations: usize,
}

impl LoadedDigests {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Every write is a single insert/update, so a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a loaded generation; the returned guard forgets it when dropped.
    pub(crate) fn register(&self, digest: &str, lane_id: &str) -> DigestRegistration {
        let mut map = self.lock();
        let entry = map.entry(digest.to_owned()).or_insert_with(|| Entry {
            lane_id: lane_id.to_owned(),
            generations: 0,
        });
        entry.generations += 1;
        entry.lane_id = lane_id.to_owned();
        DigestRegistration {
            digests: self.clone(),
            digest: digest.to_owned(),
        }
    }

    /// The lane id served by a loaded generation with this digest.
    pub(crate) fn lane_of(&self, digest: &str) -> Option<String> {
        self.lock().get(digest).map(|entry| entry.lane_id.clone())
    }
}

/// Keeps a digest in the loaded set for as long as its lane generation lives.
#[derive(Debug)]
pub(crate) struct DigestRegistration {
    digests: LoadedDigests,
    digest: String,
}

impl Drop for DigestRegistration {
    fn drop(&mut self) {
        let mut map = self.digests.lock();
        if let Some(entry) = map.get_mut(&self.digest) {
            entry.generations = entry.generations.saturating_sub(1);
            if entry.generations == 0 {
                map.remove(&self.digest);
            }
        }
    }
}
