//! A cancellation signal shared between the node and a running lane.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Inner {
    fired: AtomicBool,
    notify: Notify,
}

/// Fires once; lanes check it or await it.
#[derive(Debug, Clone, Default)]
pub struct CancelSignal {
    inner: Arc<Inner>,
}

impl CancelSignal {
    /// Fires the signal; later and current waiters wake.
    pub fn cancel(&self) {
        self.inner.fired.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether it has fired.
    pub fn is_cancelled(&self) -> bool {
        self.inner.fired.load(Ordering::SeqCst)
    }

    /// Resolves when the signal fires (immediately if it already has).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_cancelled() {
        let signal = CancelSignal::default();
        let waiter = {
            let s = signal.clone();
            tokio::spawn(async move { s.cancelled().await })
        };
        tokio::task::yield_now().await;
        signal.cancel();
        waiter.await.unwrap();
        assert!(signal.is_cancelled());
        signal.cancelled().await;
    }
}
