//! An in-memory evidence sink: keeps every record in order. For tests, the operator terminal's
//! live view and embedders that read evidence back in-process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use ep_contracts::boundary::Evidence;

use crate::error::SinkError;
use crate::traits::EvidenceSink;

/// Records evidence in memory, in emission order; safe to share between threads.
#[derive(Debug)]
pub struct MemorySink {
    sink_id: String,
    records: Mutex<Vec<Evidence>>,
    flushes: AtomicUsize,
}

impl Default for MemorySink {
    /// A sink with id `memory`.
    fn default() -> Self {
        Self::new("memory")
    }
}

impl MemorySink {
    /// An empty sink with `sink_id`.
    pub fn new(sink_id: impl Into<String>) -> Self {
        Self {
            sink_id: sink_id.into(),
            records: Mutex::new(Vec::new()),
            flushes: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Evidence>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A snapshot of every record so far, oldest first.
    pub fn records(&self) -> Vec<Evidence> {
        self.lock().clone()
    }

    /// The evidence types recorded so far, oldest first.
    pub fn evidence_types(&self) -> Vec<String> {
        self.lock()
            .iter()
            .map(|e| e.evidence_type.clone().unwrap_or_default())
            .collect()
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every record (the flush count stays).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many times `flush` was called (shutdown flushes every sink).
    pub fn flushes(&self) -> usize {
        self.flushes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EvidenceSink for MemorySink {
    fn sink_id(&self) -> &str {
        &self.sink_id
    }

    async fn emit(&self, evidence: &Evidence) -> Result<(), SinkError> {
        self.lock().push(evidence.clone());
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.flushes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_in_order_and_counts_flushes() {
        let sink = MemorySink::new("s");
        for kind in ["a", "b"] {
            let evidence = Evidence {
                evidence_type: Some(kind.to_owned()),
                ..Evidence::default()
            };
            sink.emit(&evidence).await.unwrap();
        }
        assert_eq!(sink.evidence_types(), ["a", "b"]);
        sink.flush().await.unwrap();
        assert_eq!(sink.flushes(), 1);
        sink.clear();
        assert!(sink.is_empty());
        assert_eq!(sink.sink_id(), "s");
    }
}
