//! The compiled-artifact cache: compiling a component costs tens of milliseconds, instantiating a
//! compiled one microseconds, so a digest is compiled once per engine configuration and every
//! later load (a second generation, a reload, another lane id over the same bytes) reuses it.
//!
//! Entries are keyed by the component's `sha256:` digest and a hash of
//! `Engine::precompile_compatibility_hash()` (wasmtime version, target and every config knob that
//! changes generated code). Compilation runs on tokio's blocking pool, never on an async worker,
//! and concurrent loads of one digest wait for a single compilation.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::LoadError;

type Slot = Arc<OnceCell<Component>>;

/// Compiled components by (digest, engine compatibility hash).
pub(crate) struct ArtifactCache {
    engine_hash: u64,
    entries: Mutex<HashMap<(String, u64), Slot>>,
    compilations: AtomicU64,
}

impl ArtifactCache {
    pub(crate) fn new(engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            engine_hash: hasher.finish(),
            entries: Mutex::new(HashMap::new()),
            compilations: AtomicU64::new(0),
        }
    }

    /// Cache misses so far.
    pub(crate) fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// The compiled component for `digest`, compiling `bytes` off the async workers on a miss.
    pub(crate) async fn get_or_compile(
        &self,
        engine: &Engine,
        digest: &str,
        bytes: Arc<[u8]>,
    ) -> Result<Component, LoadError> {
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                entries
                    .entry((digest.to_owned(), self.engine_hash))
                    .or_default(),
            )
        };
        let component = slot
            .get_or_try_init(|| async {
                self.compilations.fetch_add(1, Ordering::Relaxed);
                compile(engine.clone(), digest.to_owned(), bytes).await
            })
            .await?;
        Ok(component.clone())
    }
}

async fn compile(engine: Engine, digest: String, bytes: Arc<[u8]>) -> Result<Component, LoadError> {
    let started = std::time::Instant::now();
    let task_digest = digest.clone();
    let compiled = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
        .await
        .map_err(|e| LoadError::Internal {
            digest: task_digest,
            message: format!("compile task ended abnormally: {e}"),
        })?;
    match compiled {
        Ok(component) => {
            tracing::debug!(
                digest,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "lane component compiled"
            );
            Ok(component)
        }
        Err(error) => Err(LoadError::Compile {
            digest,
            message: crate::error::error_chain(&error, 2048),
        }),
    }
}
