//! The uids sandboxed executions run as under a root host: one of its own per running
//! execution, so its process limit counts only its own processes. Handed out round robin from a
//! starting point that differs per host process, so two hosts on one machine rarely hand out
//! the same uid at once (and if they do, the process limit is shared, nothing more: Landlock's
//! signal scope keeps each execution from signalling any process outside its own sandbox).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug)]
struct State {
    next: u32,
    used: HashSet<u32>,
}

/// A range of uids, handed out round robin.
#[derive(Debug, Clone)]
pub struct UidPool {
    base: u32,
    count: u32,
    state: Arc<Mutex<State>>,
}

/// A uid held by one execution until it ends.
#[derive(Debug)]
pub struct UidLease {
    uid: u32,
    state: Arc<Mutex<State>>,
}

impl UidLease {
    /// The uid.
    pub fn uid(&self) -> u32 {
        self.uid
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .used
            .remove(&self.uid);
    }
}

impl UidPool {
    /// `count` uids from `base` (at least one).
    pub fn new(base: u32, count: u32) -> Self {
        Self {
            base,
            count: count.max(1),
            state: Arc::new(Mutex::new(State {
                next: 0,
                used: HashSet::new(),
            })),
        }
    }

    /// `count` uids from `base`, handed out from a starting point of this process's own.
    pub fn spread(base: u32, count: u32) -> Self {
        let pool = Self::new(base, count);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let seed = std::process::id().wrapping_mul(2_654_435_761) ^ nanos;
        pool.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next = seed % pool.count;
        pool
    }

    /// The shared gid of every sandboxed process (the range's first id).
    pub fn gid(&self) -> u32 {
        self.base
    }

    /// The next free uid, or `None` when every one is in use.
    pub fn acquire(&self) -> Option<UidLease> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..self.count {
            let offset = state.next;
            state.next = (state.next + 1) % self.count;
            let uid = self.base.checked_add(offset)?;
            if state.used.insert(uid) {
                return Some(UidLease {
                    uid,
                    state: Arc::clone(&self.state),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::UidPool;

    #[test]
    fn uids_are_handed_out_round_robin_and_never_twice() {
        let pool = UidPool::new(1000, 3);
        let a = pool.acquire().unwrap();
        let b = pool.acquire().unwrap();
        let c = pool.acquire().unwrap();
        assert_eq!([a.uid(), b.uid(), c.uid()], [1000, 1001, 1002]);
        assert!(pool.acquire().is_none(), "all in use");
        drop(b);
        assert_eq!(pool.acquire().unwrap().uid(), 1001);
        drop(a);
        // The next round starts after the last handed out.
        assert_eq!(pool.acquire().unwrap().uid(), 1000);
        assert_eq!(pool.gid(), 1000);
    }
}
