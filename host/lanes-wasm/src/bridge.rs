//! Runs async wasm calls for synchronous callers. `LaneAdapter::validate` is a plain `fn`, but
//! with async host imports every guest call must be `call_async`; blocking on it from the
//! caller's runtime would panic or stall that runtime. So validations run on a dedicated thread
//! with its own current-thread tokio runtime, and the caller waits for the answer (inside
//! `block_in_place` when it is a multi-thread tokio worker, so its other tasks move on).
//!
//! The wait is bounded: every job is a guest call under a deadline (epochs + a tokio timeout).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::PoisonError;
use std::thread::JoinHandle;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;

use crate::error::EngineError;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The bridge thread; stops (and is joined) when dropped.
pub(crate) struct SyncBridge {
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    thread: Option<JoinHandle<()>>,
}

/// The bridge is gone (the runtime is shutting down) or its job was dropped unanswered.
#[derive(Debug, thiserror::Error)]
#[error("the wasm runtime's validate bridge is not running")]
pub(crate) struct BridgeClosed;

impl SyncBridge {
    pub(crate) fn start() -> Result<Self, EngineError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .thread_name("ep-wasm-bridge")
            .build()
            .map_err(|source| EngineError::Thread {
                thread: "validate bridge",
                source,
            })?;
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("ep-wasm-bridge".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job);
                    }
                });
                tracing::debug!("wasm validate bridge stopped");
            })
            .map_err(|source| EngineError::Thread {
                thread: "validate bridge",
                source,
            })?;
        Ok(Self {
            jobs: Mutex::new(Some(jobs)),
            thread: Some(thread),
        })
    }

    /// Runs `job` on the bridge and blocks the calling thread until it answers.
    pub(crate) fn run<F, T>(&self, job: F) -> Result<T, BridgeClosed>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = std::sync::mpsc::sync_channel::<T>(1);
        let boxed: Job = Box::pin(async move {
            let _ = answer.send(job.await);
        });
        {
            let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(jobs) = jobs.as_ref() else {
                return Err(BridgeClosed);
            };
            jobs.send(boxed).map_err(|_| BridgeClosed)?;
        }
        let wait = move || answered.recv().map_err(|_| BridgeClosed);
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }
}

impl Drop for SyncBridge {
    fn drop(&mut self) {
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}
