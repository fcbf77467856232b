//! Test support: builds the guest components under `tests/components` (a separate cargo
//! workspace for `wasm32-wasip2`) once per test process and hands out their `.wasm` paths.
//! Behind the `testing` feature so production builds never carry it.
//!
//! All guests are built by one `cargo build --release --target wasm32-wasip2` call into
//! `<repo>/target/wasm-guests`; a failed build is an error carrying cargo's stderr, so a test
//! fails loudly instead of skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The lane ABI the test guests of `tests/components` target: the frozen 0.1.0, so the whole
/// suite keeps proving the host loads and runs it (`input-echo`, `minimal-v2` and the SDK-built lanes cover
/// 0.2.0).
pub const GUEST_WIT: &str = "execution-plane:lane@0.1.0";

/// Every guest crate of `tests/components`.
pub const GUESTS: &[&str] = &[
    "echo",
    "trap",
    "spin",
    "memory-bomb",
    "handle-bomb",
    "bad-json",
    "uses-logging",
    "echo-v2",
    "trap-echo",
    "uses-filesystem",
    "uses-sockets",
    "stream-fetch",
    "input-echo",
    "minimal-v2",
    "stdio-client",
    "ws-client",
];

/// The guest workspace could not be built, or has no such guest.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuestBuildError {
    /// cargo failed.
    #[error("building the test guests failed ({command}):\n{stderr}")]
    Cargo {
        /// The command line.
        command: String,
        /// cargo's stderr (or why it could not start).
        stderr: String,
    },
    /// The name is not one of [`GUESTS`], or its artifact is missing after the build.
    #[error("no test guest component {name:?} at {path}")]
    Missing {
        /// The guest.
        name: String,
        /// Where it was expected.
        path: PathBuf,
    },
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

static BUILT: OnceLock<Result<PathBuf, GuestBuildError>> = OnceLock::new();

/// Builds every guest (once per process) and returns the `.wasm` of guest `name`.
pub fn build_guest(name: &str) -> Result<PathBuf, GuestBuildError> {
    let dir = BUILT.get_or_init(build_all).clone()?;
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    if !GUESTS.contains(&name) || !path.is_file() {
        return Err(GuestBuildError::Missing {
            name: name.to_owned(),
            path,
        });
    }
    Ok(path)
}

fn build_all() -> Result<PathBuf, GuestBuildError> {
    let root = repo_root();
    let manifest = root.join("tests/components/Cargo.toml");
    let target_dir = root.join("target/wasm-guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(root.join("tests/components"))
        .args(["build", "--release", "--locked", "--workspace"])
        .args(["--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let line = format!("{command:?}");
    let output = command.output().map_err(|e| GuestBuildError::Cargo {
        command: line.clone(),
        stderr: format!("cannot run {}: {e}", Path::new(&cargo).display()),
    })?;
    if !output.status.success() {
        return Err(GuestBuildError::Cargo {
            command: line,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(target_dir.join("wasm32-wasip2/release"))
}
