//! The compiled-artifact cache: compiling a component costs tens of milliseconds, instantiating a
//! compiled one microseconds, so a digest is compiled once per engine configuration and every
//! later load (a second generation, a reload, another lane id over the same bytes) reuses it.
//!
//! Entries are keyed by the component's `sha256:` digest and a hash of
//! `Engine::precompile_compatibility_hash()` (wasmtime version, target and every config knob that
//! changes generated code). Compilation runs on tokio's blocking pool, never on an async worker,
//! and concurrent loads of one digest wait for a single compilation.
//!
//! With a compiled directory ([`crate::RuntimeConfig::compiled_dir`]) a compiled component is
//! also written there as `<digest hex>-<engine hash>.cwasm` (temp file + rename, so a crash
//! leaves no half artifact under the final name), and a later runtime with the same engine
//! loads it in a fraction of a millisecond instead of compiling again. An artifact that does not
//! deserialize (another wasmtime, a damaged file) is compiled again and replaced. The directory
//! is created `0700`: what is in it runs as native code.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
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
    disk_loads: AtomicU64,
    dir: Option<PathBuf>,
}

impl ArtifactCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        // DefaultHasher::new() is keyed with fixed zeros: the hash is stable across runs,
        // which the file names on disk need.
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            engine_hash: hasher.finish(),
            entries: Mutex::new(HashMap::new()),
            compilations: AtomicU64::new(0),
            disk_loads: AtomicU64::new(0),
            dir,
        }
    }

    /// Cache misses so far.
    pub(crate) fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    /// Components loaded compiled from the directory so far.
    pub(crate) fn disk_loads(&self) -> u64 {
        self.disk_loads.load(Ordering::Relaxed)
    }

    /// Where `digest`'s compiled artifact for this engine lives on disk.
    fn artifact_path(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        // Digests are computed by the runtime (hex), never taken from outside; refuse anything
        // else rather than build a path from it.
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(dir.join(format!("{hex}-{:016x}.cwasm", self.engine_hash)))
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
                let path = self.artifact_path(digest);
                if let Some(path) = &path
                    && let Some(component) = load_compiled(engine, digest, path).await
                {
                    self.disk_loads.fetch_add(1, Ordering::Relaxed);
                    return Ok(component);
                }
                self.compilations.fetch_add(1, Ordering::Relaxed);
                let component = compile(engine.clone(), digest.to_owned(), bytes).await?;
                if let Some(path) = path {
                    store_compiled(digest, &component, path).await;
                }
                Ok(component)
            })
            .await?;
        Ok(component.clone())
    }
}

/// The compiled artifact at `path`, if there is one this engine can load.
#[allow(unsafe_code)]
async fn load_compiled(engine: &Engine, digest: &str, path: &Path) -> Option<Component> {
    let engine = engine.clone();
    let file = path.to_owned();
    let loaded = tokio::task::spawn_blocking(move || {
        // Read into memory rather than mapped: a mapped file truncated under a running host
        // (a damaged or replaced artifact) would fault on access.
        let bytes = match std::fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(wasmtime::Error::from(e)),
        };
        // SAFETY: the bytes were written by `store_compiled` of a runtime whose engine has the
        // same compatibility hash (it is in the name), into a directory private to the host's
        // user that must be as trusted as the binary; wasmtime still checks the artifact's
        // header, version and engine settings and refuses a mismatch with an error.
        unsafe { Component::deserialize(&engine, &bytes) }.map(Some)
    })
    .await;
    match loaded {
        Ok(Ok(Some(component))) => {
            tracing::debug!(digest, path = %path.display(), "lane component loaded compiled");
            Some(component)
        }
        Ok(Ok(None)) => None,
        Ok(Err(error)) => {
            tracing::warn!(
                digest,
                path = %path.display(),
                error = %crate::error::error_chain(&error, 512),
                "compiled artifact refused; compiling the component again"
            );
            None
        }
        Err(_) => None,
    }
}

/// Keeps `component` at `path` for the next runtime; a failure costs only a later compile.
async fn store_compiled(digest: &str, component: &Component, path: PathBuf) {
    let bytes = match component.serialize() {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(digest, %error, "compiled component could not be serialized");
            return;
        }
    };
    let shown = path.display().to_string();
    let written = tokio::task::spawn_blocking(move || write_private(&path, &bytes)).await;
    match written {
        Ok(Ok(())) => tracing::debug!(digest, path = shown, "compiled component kept"),
        Ok(Err(error)) => {
            tracing::warn!(digest, path = shown, %error, "compiled component not kept");
        }
        Err(_) => {}
    }
}

/// Writes `bytes` to `path` through a temp file and a rename, in a directory only the host's
/// user may enter.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
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
