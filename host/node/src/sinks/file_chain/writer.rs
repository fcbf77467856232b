//! Group commit without a hop: callers queue encoded records (no wake-up, no thread switch);
//! whoever settles first writes every queued record in one `write` under the log's lock, so at
//! concurrency many executions share a write and at concurrency 1 nobody waits for another
//! thread. One background thread does what may take long: `fdatasync` as the [`Durability`]
//! says, and the head anchor at most every [`HEAD_INTERVAL`], so no execution waits for a
//! rename or a signature.
//!
//! Callers serialize their record (canonical JSON) themselves, in parallel; the chain (sequence
//! numbers and hashes) is built at write time in queue order.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ep_contracts::canonical::sha256_ref;
use tokio::sync::oneshot;

use super::head::{Head, NodeKey, write_head};

/// The head is rewritten at most this often while records flow (and at once on a flush or
/// when the log is closed): what is appended in between is covered by the chain alone until
/// the next head, the same window as a crash between an append and its head update.
pub const HEAD_INTERVAL: Duration = Duration::from_millis(5);

/// When appended records count as written, and what a power loss can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` before a record counts as written: a record whose `settle` returned
    /// survives a power loss. One sync serves every record written while the previous one ran.
    Batch,
    /// Written to the OS before it counts as written (it survives the host process crashing)
    /// and `fdatasync`ed at most this long after: a power loss or kernel crash loses at most
    /// the records of the last interval.
    Interval(Duration),
    /// Written to the OS before it counts as written; `fdatasync` only on a flush and when the
    /// log is closed: a power loss loses whatever the kernel had not written back.
    Never,
}

impl Default for Durability {
    fn default() -> Self {
        Self::Interval(Duration::from_millis(50))
    }
}

/// Why the log could not be written: cloneable, so every waiter hears it.
#[derive(Debug, Clone)]
pub(super) struct WriteFailure {
    pub(super) kind: std::io::ErrorKind,
    pub(super) message: String,
}

impl WriteFailure {
    fn of(error: &std::io::Error) -> Self {
        Self {
            kind: error.kind(),
            message: error.to_string(),
        }
    }

    pub(super) fn into_io(self) -> std::io::Error {
        std::io::Error::new(self.kind, self.message)
    }
}

/// The log's end and the records queued behind it.
#[derive(Debug)]
pub(super) struct Log {
    file: Arc<File>,
    count: u64,
    last_hash: String,
    queued: Vec<String>,
    /// Set when a write failed part-way: the log may end in a partial line.
    broken: Option<WriteFailure>,
}

impl Log {
    pub(super) fn new(file: File, count: u64, last_hash: String) -> Self {
        Self {
            file: Arc::new(file),
            count,
            last_hash,
            queued: Vec::new(),
            broken: None,
        }
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }

    pub(super) fn last_hash(&self) -> &str {
        &self.last_hash
    }

    pub(super) fn broken(&self) -> Option<&WriteFailure> {
        self.broken.as_ref()
    }

    pub(super) fn queued(&self) -> usize {
        self.queued.len()
    }

    pub(super) fn queue(&mut self, record: String) {
        self.queued.push(record);
    }

    /// Links every queued record onto the chain and appends them with one write.
    pub(super) fn write_queued(&mut self) -> Result<(), WriteFailure> {
        if let Some(failure) = &self.broken {
            return Err(failure.clone());
        }
        if self.queued.is_empty() {
            return Ok(());
        }
        let size: usize = self.queued.iter().map(|r| r.len() + 100).sum();
        let mut buf = Vec::with_capacity(size);
        // The end moves only once the bytes are written: a failed write leaves it as it was.
        let (mut count, mut last_hash) = (self.count, self.last_hash.clone());
        for record in self.queued.drain(..) {
            let start = buf.len();
            // Writing into a Vec cannot fail.
            let _ = write!(
                buf,
                "{{\"seq\":{count},\"prev_hash\":\"{last_hash}\",\"evidence\":{record}}}"
            );
            last_hash = sha256_ref(&buf[start..]);
            count += 1;
            buf.push(b'\n');
        }
        match (&*self.file).write_all(&buf) {
            Ok(()) => {
                (self.count, self.last_hash) = (count, last_hash);
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "evidence log write failed; later records are refused");
                let failure = WriteFailure::of(&error);
                self.broken = Some(failure.clone());
                Err(failure)
            }
        }
    }
}

/// Everything one open log shares between its callers and its background thread.
#[derive(Debug)]
pub(super) struct Shared {
    log: Mutex<Log>,
    background: Mutex<Background>,
    wake: Condvar,
    durability: Durability,
}

/// A caller waiting until the log is synced up to `count`.
#[derive(Debug)]
struct SyncWaiter {
    count: u64,
    /// A flush: the head is rewritten durably before the answer.
    durable_head: bool,
    ack: oneshot::Sender<Result<(), WriteFailure>>,
}

/// What the background thread sees.
#[derive(Debug)]
struct Background {
    /// The newest end written: (count, last_hash).
    written: (u64, String),
    /// The end last made durable by `fdatasync`.
    synced: (u64, String),
    waiters: Vec<SyncWaiter>,
    /// The thread is not coming back for a head by itself: a write must wake it.
    sleeping: bool,
    closed: bool,
}

impl Shared {
    pub(super) fn new(log: Log, durability: Durability) -> Self {
        let end = (log.count, log.last_hash.clone());
        Self {
            log: Mutex::new(log),
            background: Mutex::new(Background {
                written: end.clone(),
                synced: end,
                waiters: Vec::new(),
                sleeping: false,
                closed: false,
            }),
            wake: Condvar::new(),
            durability,
        }
    }

    pub(super) fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn background(&self) -> MutexGuard<'_, Background> {
        self.background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes what is queued and tells the background thread how far the log now reaches;
    /// answers that count.
    pub(super) fn write_queued(&self) -> Result<u64, WriteFailure> {
        let mut log = self.log();
        let before = log.count;
        log.write_queued()?;
        let count = log.count;
        if count != before {
            // Published under the log lock, so ends arrive in the order they were written (the
            // background thread never takes the log lock while holding its own).
            let mut background = self.background();
            background.written = (count, log.last_hash.clone());
            // A thread waiting on a deadline takes the newest end when it wakes: waking it for
            // every write would only cost a switch.
            let wake = background.sleeping;
            drop(background);
            drop(log);
            if wake {
                self.wake.notify_one();
            }
        }
        Ok(count)
    }

    /// Waits until the log is synced up to `count`; with `durable_head`, until the head is
    /// durably rewritten too.
    pub(super) async fn synced(&self, count: u64, durable_head: bool) -> Result<(), WriteFailure> {
        let (ack, answer) = oneshot::channel();
        {
            let mut background = self.background();
            if background.synced.0 >= count && !durable_head {
                return Ok(());
            }
            background.waiters.push(SyncWaiter {
                count,
                durable_head,
                ack,
            });
        }
        self.wake.notify_one();
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Stops the background thread after a last sync and durable head.
    pub(super) fn close(&self) {
        self.background().closed = true;
        self.wake.notify_one();
    }

    pub(super) fn durability(&self) -> Durability {
        self.durability
    }
}

fn stopped() -> WriteFailure {
    WriteFailure {
        kind: std::io::ErrorKind::Other,
        message: "the evidence log's sync thread has stopped".to_owned(),
    }
}

/// Starts the background thread of `shared`, writing heads to `head_path`.
pub(super) fn start(
    shared: Arc<Shared>,
    head_path: PathBuf,
    key: Option<NodeKey>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // The sink wrote the head of the log as it opened it: nothing to anchor yet. Read here,
    // before any caller can write, not in the thread.
    let opened = shared.log().count;
    std::thread::Builder::new()
        .name("evidence-sync".to_owned())
        .spawn(move || {
            let mut thread = SyncThread {
                shared: &shared,
                head_path: &head_path,
                key: key.as_ref(),
                head_count: opened,
                head_at: None,
                synced_at: Instant::now(),
            };
            thread.run();
        })
}

struct SyncThread<'a> {
    shared: &'a Shared,
    head_path: &'a std::path::Path,
    key: Option<&'a NodeKey>,
    /// The count the head on disk claims.
    head_count: u64,
    head_at: Option<Instant>,
    synced_at: Instant,
}

impl SyncThread<'_> {
    fn run(&mut self) {
        let mut background = self.shared.background();
        loop {
            let unsynced = background.written.0 > background.synced.0;
            let interval_due = matches!(self.shared.durability, Durability::Interval(interval)
                if unsynced && self.synced_at.elapsed() >= interval);
            let batch_due = self.shared.durability == Durability::Batch && unsynced;
            if background.closed || !background.waiters.is_empty() || interval_due || batch_due {
                let closed = background.closed;
                let waiters = std::mem::take(&mut background.waiters);
                drop(background);
                self.sync(waiters, closed);
                if closed {
                    return;
                }
                background = self.shared.background();
                continue;
            }
            // Batch durability anchors only what is synced, so a head never claims a record
            // a power loss could take.
            let target = match self.shared.durability {
                Durability::Batch => background.synced.clone(),
                _ => background.written.clone(),
            };
            let head_pending = self.head_count != target.0;
            let head_wait = self.head_at.map_or(Duration::ZERO, |at| {
                HEAD_INTERVAL.saturating_sub(at.elapsed())
            });
            if head_pending && head_wait.is_zero() {
                drop(background);
                // A failure is logged; the next write tries again.
                let _ = self.write_head(&target, false);
                background = self.shared.background();
                continue;
            }
            let mut wait = head_pending.then_some(head_wait);
            if let Durability::Interval(interval) = self.shared.durability
                && unsynced
            {
                let left = interval.saturating_sub(self.synced_at.elapsed());
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
            // Unless it comes back for a head anyway, a write must wake it to anchor the log.
            background.sleeping = !head_pending;
            background = match wait {
                Some(wait) => {
                    self.shared
                        .wake
                        .wait_timeout(background, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .shared
                    .wake
                    .wait(background)
                    .unwrap_or_else(PoisonError::into_inner),
            };
            background.sleeping = false;
        }
    }

    /// `fdatasync`s the log, answers the waiters it satisfies (after a durable head when one
    /// asked for it, or when the log is closing) and keeps the rest waiting.
    fn sync(&mut self, waiters: Vec<SyncWaiter>, closing: bool) {
        let outcome = sync_file(self.shared);
        self.synced_at = Instant::now();
        let mut background = self.shared.background();
        if let Ok(end) = &outcome
            && end.0 > background.synced.0
        {
            background.synced = end.clone();
        }
        let synced = background.synced.clone();
        let (ready, waiting): (Vec<_>, Vec<_>) = waiters
            .into_iter()
            .partition(|w| outcome.is_err() || w.count <= synced.0);
        background.waiters.extend(waiting);
        drop(background);
        let mut answer = outcome.map(|_| ());
        if answer.is_ok() && (closing || ready.iter().any(|w| w.durable_head)) {
            answer = self.write_head(&synced, true);
        }
        for waiter in ready {
            let _ = waiter.ack.send(answer.clone());
        }
    }

    fn write_head(&mut self, end: &(u64, String), durable: bool) -> Result<(), WriteFailure> {
        let head = Head::of_writer(self.key, end.0, &end.1);
        self.head_at = Some(Instant::now());
        match write_head(self.head_path, &head, durable) {
            Ok(()) => {
                self.head_count = end.0;
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, head = %self.head_path.display(), "evidence head write failed");
                Err(WriteFailure::of(&error))
            }
        }
    }
}

/// `fdatasync`s the log; answers the end it made durable.
fn sync_file(shared: &Shared) -> Result<(u64, String), WriteFailure> {
    let (file, count, last_hash) = {
        let log = shared.log();
        (Arc::clone(&log.file), log.count, log.last_hash.clone())
    };
    file.sync_data().map_err(|e| WriteFailure::of(&e))?;
    Ok((count, last_hash))
}
