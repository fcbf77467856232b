//! Generated identifiers: `<prefix>-<unix_ms>-<random>` and unguessable execution refs.
//!
//! Ids that leave the host (request ids, evidence ids, execution refs in a rejected result)
//! carry OS randomness instead of a process-wide counter, so no id a caller sees reveals how
//! many others were minted or lets it guess a neighbour's. Execution refs, which name a
//! running execution on the wire, are `exec-` and 128 random bits ([`execution_ref`]). The
//! prefixes match upstream (`exec-`, `adm-`, `event-`, `ev-`, `att-local-`).
//! [`unique_positive`] stays for ids that never leave the process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

fn counter() -> &'static AtomicU64 {
    static COUNTER: OnceLock<AtomicU64> = OnceLock::new();
    COUNTER.get_or_init(|| {
        let mut seed = [0u8; 4];
        // Without OS randomness ids are still unique within the process.
        let start = match getrandom::fill(&mut seed) {
            Ok(()) => u64::from(u32::from_le_bytes(seed)),
            Err(_) => 0,
        };
        AtomicU64::new(start + 1)
    })
}

/// The next positive integer of this process's id sequence.
pub fn unique_positive() -> u64 {
    counter().fetch_add(1, Ordering::Relaxed)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new id `<prefix>-<unix_ms>-<16 hex of randomness>`: time-ordered for people reading
/// logs, but no counter in it. The randomness comes from the thread's CSPRNG (ChaCha, seeded
/// and reseeded from the OS): a stream mints an id per event, and a system call each would be
/// a tenth of its cost.
pub fn stable_id(prefix: &str) -> String {
    use rand::Rng as _;
    let random = rand::rng().next_u64();
    format!("{prefix}-{}-{random:016x}", unix_ms())
}

/// A new execution ref `exec-<32 hex>`: 128 bits of OS randomness and nothing else, so a ref
/// seen on the wire says nothing about any other execution.
pub fn execution_ref() -> String {
    format!("exec-{}", random_hex(16))
}

/// `2 * bytes` lowercase hex characters of OS randomness (trace ids); falls back to a
/// time-and-counter mix when the OS has no randomness to give, so it never fails.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        let seed = format!("{}-{}", unix_ms(), unique_positive());
        let digest = crate::canonical::sha256_ref(seed.as_bytes());
        return digest
            .trim_start_matches("sha256:")
            .chars()
            .cycle()
            .take(bytes * 2)
            .collect();
    }
    hex::encode(buf)
}

/// The current time as RFC 3339 with microseconds and `Z`.
pub fn now_iso8601() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_have_prefix_time_and_randomness_but_no_counter() {
        let a = stable_id("adm");
        let b = stable_id("adm");
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "adm");
        assert!(parts[1].parse::<i64>().unwrap() > 0);
        assert_eq!(parts[2].len(), 16);
        assert!(parts[2].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.rsplit('-').next(), b.rsplit('-').next());
    }

    #[test]
    fn execution_refs_are_128_random_bits() {
        let refs: std::collections::HashSet<String> = (0..1000).map(|_| execution_ref()).collect();
        assert_eq!(refs.len(), 1000);
        for r in &refs {
            let hex = r.strip_prefix("exec-").unwrap();
            assert_eq!(hex.len(), 32, "{r}");
            assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{r}");
        }
    }
}
