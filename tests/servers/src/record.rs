//! What a server saw, kept where the test can read it at any time and wait for it to change:
//! a `watch` channel, so waiting needs no polling loop and no sleeps.

use tokio::sync::watch;

/// A value the server tasks update and the test reads or waits on.
#[derive(Debug)]
pub(crate) struct Recorder<T> {
    state: watch::Sender<T>,
}

impl<T: Clone> Recorder<T> {
    /// Starts from `initial`.
    pub(crate) fn new(initial: T) -> Self {
        Self {
            state: watch::Sender::new(initial),
        }
    }

    /// Changes the value and wakes every waiter.
    pub(crate) fn modify(&self, change: impl FnOnce(&mut T)) {
        self.state.send_modify(change);
    }

    /// A copy of the current value.
    pub(crate) fn snapshot(&self) -> T {
        self.state.borrow().clone()
    }

    /// Waits until `done` holds for the value, then returns a copy of it.
    pub(crate) async fn wait_until(&self, mut done: impl FnMut(&T) -> bool) -> T {
        let mut watcher = self.state.subscribe();
        match watcher.wait_for(|state| done(state)).await {
            Ok(state) => state.clone(),
            // The sender lives in `self`, so the channel cannot close while we borrow it.
            Err(_) => self.snapshot(),
        }
    }
}

impl<T: Clone> Recorder<Vec<T>> {
    /// Appends one entry and returns its index.
    pub(crate) fn push(&self, entry: T) -> usize {
        let mut index = 0;
        self.modify(|entries| {
            entries.push(entry);
            index = entries.len() - 1;
        });
        index
    }

    /// Changes the entry at `index`, if there is one.
    pub(crate) fn update(&self, index: usize, change: impl FnOnce(&mut T)) {
        self.modify(|entries| {
            if let Some(entry) = entries.get_mut(index) {
                change(entry);
            }
        });
    }
}
