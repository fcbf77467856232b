//! Group commit: one thread owns the log and appends queued records in batches (one `write`
//! per batch, `fdatasync` as the [`Durability`] says), a second thread keeps the head anchor up
//! to date at most every [`HEAD_INTERVAL`], so no execution waits for a rename or a signature.
//!
//! Callers serialize their record (canonical JSON) themselves, in parallel, and queue it; the
//! chain (sequence numbers and hashes) is built on the writer thread in queue order. A
//! [`Job::Barrier`] queued behind a caller's records is answered once they are written as the
//! durability promises, which is how [`super::FileChainSink`]'s `settle` works.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ep_contracts::canonical::sha256_ref;
use tokio::sync::{mpsc, oneshot};

use super::head::{Head, NodeKey, write_head};

/// The head is rewritten at most this often while records flow (and at once on a flush or
/// when the writer stops): what is appended in between is covered by the chain alone until
/// the next head, the same window as a crash between an append and its head update.
pub const HEAD_INTERVAL: Duration = Duration::from_millis(5);

/// At most this many bytes of records go into one `write`.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// When appended records count as written, and what a power loss can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` every batch before its records count as written: a record whose `settle`
    /// returned survives a power loss. Group commit makes one sync serve every record queued
    /// while the previous one ran.
    Batch,
    /// Write every batch to the OS before it counts as written (it survives the host process
    /// crashing) and `fdatasync` at most this long after it: a power loss or kernel crash loses
    /// at most the records of the last interval.
    Interval(Duration),
    /// Write every batch to the OS before it counts as written; `fdatasync` only on a flush and
    /// when the log is closed: a power loss loses whatever the kernel had not written back.
    Never,
}

impl Default for Durability {
    fn default() -> Self {
        Self::Interval(Duration::from_millis(50))
    }
}

/// What a caller sends to the writer.
pub(super) enum Job {
    /// One record, its evidence as canonical JSON.
    Record(String),
    /// Answered once every record queued before it is written (as durable as configured).
    Barrier(oneshot::Sender<Result<(), WriteFailure>>),
    /// Answered once every record queued before it is synced and the head durably rewritten.
    Sync(oneshot::Sender<Result<(), WriteFailure>>),
}

/// Why the writer could not write: cloneable, so every waiter of a batch hears it.
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

/// The log's end: where the next record goes.
#[derive(Debug)]
pub(super) struct Chain {
    pub(super) file: File,
    pub(super) count: u64,
    pub(super) last_hash: String,
}

impl Chain {
    /// Links `evidence_json` (one record's canonical evidence) onto the chain in `buf`; the
    /// chain's end moves only when the bytes are written ([`Chain::commit`]).
    fn link(&self, buf: &mut Vec<u8>, next: &mut (u64, String), evidence_json: &str) {
        let start = buf.len();
        // Writing into a Vec cannot fail.
        let _ = write!(
            buf,
            "{{\"seq\":{},\"prev_hash\":\"{}\",\"evidence\":{evidence_json}}}",
            next.0, next.1
        );
        next.1 = sha256_ref(&buf[start..]);
        next.0 += 1;
        buf.push(b'\n');
    }

    /// Appends `records` in one write and moves the chain's end past them.
    pub(super) fn append_now(&mut self, records: &[String]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        let mut next = (self.count, self.last_hash.clone());
        for record in records {
            self.link(&mut buf, &mut next, record);
        }
        self.file.write_all(&buf)?;
        (self.count, self.last_hash) = next;
        Ok(())
    }
}

/// What the writer publishes for readers of the sink.
#[derive(Debug)]
pub(super) struct Progress {
    pub(super) count: u64,
    pub(super) last_hash: String,
    /// Set when a write failed part-way: the log may end in a partial line.
    pub(super) broken: Option<WriteFailure>,
}

/// State shared by the sink, the writer and the head thread.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) progress: Mutex<Progress>,
    head: Mutex<HeadRequest>,
    head_ready: Condvar,
}

impl Shared {
    pub(super) fn new(count: u64, last_hash: String) -> Self {
        Self {
            progress: Mutex::new(Progress {
                count,
                last_hash,
                broken: None,
            }),
            head: Mutex::new(HeadRequest::default()),
            head_ready: Condvar::new(),
        }
    }

    pub(super) fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn head_request(&self) -> MutexGuard<'_, HeadRequest> {
        self.head.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the head thread for a head over `count` records ending in `last_hash`.
    fn request_head(
        &self,
        count: u64,
        last_hash: &str,
        durable: Option<std::sync::mpsc::Sender<()>>,
    ) {
        let mut request = self.head_request();
        // A head thread that already has a head to write is waiting for its interval and
        // takes the newest one then: waking it for each batch would only cost a switch.
        let wake = request.latest.is_none() || durable.is_some();
        request.latest = Some((count, last_hash.to_owned()));
        if let Some(ack) = durable {
            request.durable.push(ack);
        }
        drop(request);
        if wake {
            self.head_ready.notify_one();
        }
    }

    fn close_head(&self) {
        self.head_request().closed = true;
        self.head_ready.notify_one();
    }
}

/// The head thread's inbox: the newest head wanted, who waits for it to be durable.
#[derive(Debug, Default)]
struct HeadRequest {
    latest: Option<(u64, String)>,
    durable: Vec<std::sync::mpsc::Sender<()>>,
    closed: bool,
}

/// The threads of one open log.
pub(super) struct Threads {
    pub(super) writer: std::thread::JoinHandle<()>,
}

/// Starts the writer and head threads over `chain`.
pub(super) fn start(
    chain: Chain,
    shared: Arc<Shared>,
    head_path: PathBuf,
    key: Option<NodeKey>,
    durability: Durability,
    jobs: mpsc::Receiver<Job>,
) -> std::io::Result<Threads> {
    let head_shared = Arc::clone(&shared);
    let head = std::thread::Builder::new()
        .name("evidence-head".to_owned())
        .spawn(move || head_loop(&head_shared, &head_path, key.as_ref()))?;
    let writer = std::thread::Builder::new()
        .name("evidence-writer".to_owned())
        .spawn(move || {
            let writer = Writer {
                chain,
                shared,
                durability,
                synced_at: Instant::now(),
                unsynced: false,
            };
            writer.run(jobs, head);
        })?;
    Ok(Threads { writer })
}

struct Writer {
    chain: Chain,
    shared: Arc<Shared>,
    durability: Durability,
    synced_at: Instant,
    /// Records written since the last `fdatasync`.
    unsynced: bool,
}

impl Writer {
    fn run(mut self, mut jobs: mpsc::Receiver<Job>, head: std::thread::JoinHandle<()>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "evidence writer could not start; records are refused");
                self.shared.progress().broken = Some(WriteFailure::of(&error));
                jobs.close();
                self.shared.close_head();
                let _ = head.join();
                return;
            }
        };
        runtime.block_on(async {
            let mut batch = Vec::new();
            while let Some(first) = self.next_job(&mut jobs).await {
                batch.push(first);
                while batch.len() < 4096 {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                self.commit(&mut batch);
            }
        });
        // Every sender is gone: make it all durable, then stop the head thread.
        let _ = self.sync();
        self.shared.close_head();
        let _ = head.join();
    }

    /// The next job; while unsynced records wait on an interval, syncs when it ends.
    async fn next_job(&mut self, jobs: &mut mpsc::Receiver<Job>) -> Option<Job> {
        loop {
            let Durability::Interval(interval) = self.durability else {
                return jobs.recv().await;
            };
            if !self.unsynced {
                return jobs.recv().await;
            }
            let left = interval.saturating_sub(self.synced_at.elapsed());
            match tokio::time::timeout(left, jobs.recv()).await {
                Ok(job) => return job,
                Err(_) => {
                    if let Err(error) = self.sync_log() {
                        self.fail(&error);
                    }
                }
            }
        }
    }

    /// Writes the records of `batch` in one write, syncs as configured, answers its waiters.
    fn commit(&mut self, batch: &mut Vec<Job>) {
        let mut buf = Vec::new();
        let mut next = (self.chain.count, self.chain.last_hash.clone());
        let mut waiters = Vec::new();
        let mut syncs = Vec::new();
        let mut jobs = batch.drain(..).peekable();
        while let Some(job) = jobs.next() {
            match job {
                Job::Record(json) => {
                    self.chain.link(&mut buf, &mut next, &json);
                    if buf.len() >= MAX_BATCH_BYTES && jobs.peek().is_some() {
                        // Write what we have so a huge batch does not grow without bound.
                        let result = self.write(&buf, next.clone());
                        buf.clear();
                        if let Err(failure) = result {
                            answer(&mut waiters, &mut syncs, Err(failure));
                        }
                    }
                }
                Job::Barrier(ack) => waiters.push(ack),
                Job::Sync(ack) => syncs.push(ack),
            }
        }
        drop(jobs);
        let mut result = if buf.is_empty() {
            self.broken()
        } else {
            self.write(&buf, next)
        };
        let sync_now = result.is_ok()
            && (!syncs.is_empty()
                || (self.unsynced
                    && match self.durability {
                        Durability::Batch => true,
                        Durability::Interval(interval) => self.synced_at.elapsed() >= interval,
                        Durability::Never => false,
                    }));
        if sync_now {
            result = self.sync_log().map_err(|e| self.fail(&e));
        }
        if result.is_ok() {
            let progress = (self.chain.count, self.chain.last_hash.clone());
            {
                let mut published = self.shared.progress();
                published.count = progress.0;
                published.last_hash.clone_from(&progress.1);
            }
            if syncs.is_empty() {
                self.shared.request_head(progress.0, &progress.1, None);
            } else {
                let (ack, durable) = std::sync::mpsc::channel();
                self.shared.request_head(progress.0, &progress.1, Some(ack));
                if durable.recv().is_err() {
                    result = Err(WriteFailure {
                        kind: std::io::ErrorKind::Other,
                        message: "the head anchor could not be written durably".to_owned(),
                    });
                }
            }
        }
        answer(&mut waiters, &mut syncs, result);
    }

    /// The failure that stops every later write, if one happened.
    fn broken(&self) -> Result<(), WriteFailure> {
        self.shared.progress().broken.clone().map_or(Ok(()), Err)
    }

    /// Writes `buf` (records ending at `next`) unless the log is already broken.
    fn write(&mut self, buf: &[u8], next: (u64, String)) -> Result<(), WriteFailure> {
        self.broken()?;
        match self.chain.file.write_all(buf) {
            Ok(()) => {
                (self.chain.count, self.chain.last_hash) = next;
                self.unsynced = true;
                Ok(())
            }
            Err(error) => Err(self.fail(&error)),
        }
    }

    /// Marks the log broken; every later record is refused until it is reopened and verified.
    fn fail(&self, error: &std::io::Error) -> WriteFailure {
        tracing::error!(%error, "evidence log write failed; later records are refused");
        let failure = WriteFailure::of(error);
        let mut progress = self.shared.progress();
        progress.broken.get_or_insert_with(|| failure.clone());
        failure
    }

    fn sync_log(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            self.chain.file.sync_data()?;
            self.unsynced = false;
        }
        self.synced_at = Instant::now();
        Ok(())
    }

    /// Syncs the log and durably rewrites the head (the writer is stopping).
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_log()?;
        let (ack, durable) = std::sync::mpsc::channel();
        self.shared
            .request_head(self.chain.count, &self.chain.last_hash, Some(ack));
        let _ = durable.recv();
        Ok(())
    }
}

/// Answers every waiter of a batch with `result`.
fn answer(
    waiters: &mut Vec<oneshot::Sender<Result<(), WriteFailure>>>,
    syncs: &mut Vec<oneshot::Sender<Result<(), WriteFailure>>>,
    result: Result<(), WriteFailure>,
) {
    for ack in waiters.drain(..).chain(syncs.drain(..)) {
        // A waiter that went away does not need the answer.
        let _ = ack.send(result.clone());
    }
}

/// Rewrites the head at most every [`HEAD_INTERVAL`], at once (and durably) when asked to.
fn head_loop(shared: &Shared, head_path: &std::path::Path, key: Option<&NodeKey>) {
    let mut written_at: Option<Instant> = None;
    let mut request = shared.head_request();
    loop {
        let urgent = !request.durable.is_empty() || request.closed;
        let due = written_at.is_none_or(|at| at.elapsed() >= HEAD_INTERVAL);
        if request.latest.is_some() && (urgent || due) {
            let Some((count, last_hash)) = request.latest.take() else {
                continue;
            };
            let acks = std::mem::take(&mut request.durable);
            drop(request);
            let head = match key {
                Some(key) => Head::signed(count, last_hash, key),
                None => Head::unsigned(count, last_hash),
            };
            match write_head(head_path, &head, !acks.is_empty()) {
                Ok(()) => {
                    for ack in acks {
                        let _ = ack.send(());
                    }
                }
                // Dropping the acks tells their waiters the head is not durable.
                Err(error) => {
                    tracing::error!(%error, head = %head_path.display(), "evidence head write failed");
                }
            }
            written_at = Some(Instant::now());
            request = shared.head_request();
            continue;
        }
        if request.closed {
            return;
        }
        request = if request.latest.is_some() {
            let wait = written_at.map_or(Duration::ZERO, |at| {
                HEAD_INTERVAL.saturating_sub(at.elapsed())
            });
            shared
                .head_ready
                .wait_timeout(request, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0
        } else {
            shared
                .head_ready
                .wait(request)
                .unwrap_or_else(PoisonError::into_inner)
        };
    }
}
