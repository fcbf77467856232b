//! Generated identifiers: `<prefix>-<unix_ms>-<n>` with `n` monotonic per process.
//!
//! `n` starts at a random 32-bit offset so two nodes minting in the same millisecond do not
//! collide in practice; the format matches upstream (`exec-`, `adm-`, `event-`, `ev-`,
//! `att-local-`).

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

/// A new id `<prefix>-<unix_ms>-<n>`.
pub fn stable_id(prefix: &str) -> String {
    format!("{prefix}-{}-{}", unix_ms(), unique_positive())
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
    fn stable_ids_have_prefix_time_and_increasing_counter() {
        let a = stable_id("exec");
        let b = stable_id("exec");
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "exec");
        assert!(parts[1].parse::<i64>().unwrap() > 0);
        let n_a: u64 = parts[2].parse().unwrap();
        let n_b: u64 = b.rsplit('-').next().unwrap().parse().unwrap();
        assert!(n_b > n_a);
    }
}
