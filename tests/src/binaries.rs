//! Helper binaries the end-to-end tests start as real processes (`ep-jsonrpc-peer`, the
//! JSON-RPC stdio peer of `ep-test-servers`; `ep-sandbox-exec`, the process placement's sandbox
//! launcher), built once per test process into a target directory of their own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The path of helper binary `name`, built on first use; a failed build panics with cargo's
/// stderr (a test needing it cannot run without it).
#[allow(clippy::panic)]
pub fn helper(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT
        .get_or_init(|| {
            let target = repo().join("target/process-stdio-helpers");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let output = Command::new(cargo)
                .current_dir(repo())
                .args(["build", "--locked"])
                .args(["-p", "ep-test-servers", "--bin", "ep-jsonrpc-peer"])
                .args(["-p", "ep-placement-local", "--bin", "ep-sandbox-exec"])
                .arg("--target-dir")
                .arg(&target)
                .env_remove("CARGO_TARGET_DIR")
                .output()
                .map_err(|e| e.to_string())?;
            if !output.status.success() {
                return Err(String::from_utf8_lossy(&output.stderr).into_owned());
            }
            Ok(target.join("debug"))
        })
        .clone();
    match dir {
        Ok(dir) => dir.join(name),
        Err(stderr) => panic!("building the helper binaries failed:\n{stderr}"),
    }
}
