//! Builds the first-party lanes (`plugins/`, its own cargo workspace) as `wasm32-wasip2`
//! components and copies each `.wasm` into `OUT_DIR`, where `src/lib.rs` embeds it.
//!
//! The nested build runs with a clean environment for what the outer build would otherwise
//! leak into it (target dir, flags, wrappers, jobserver), into `<repo>/target/wasm-plugins`.
//! A failed build fails this crate's build with cargo's stderr: a host binary never ships
//! without its built-in lanes.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The lanes to embed: the member directory under `plugins/` and the component's file stem
/// (the crate's `[lib] name`, which is also the manifest's stem).
const LANES: &[(&str, &str)] = &[
    ("http", "http"),
    ("sse", "sse"),
    ("websocket", "websocket"),
    ("jsonrpc", "jsonrpc"),
];

/// Variables of the outer build that must not reach the nested one.
const SCRUBBED_ENV: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_MAKEFLAGS",
    "MAKEFLAGS",
    "MFLAGS",
    "RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
];

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = env_path("CARGO_MANIFEST_DIR")?;
    let out_dir = env_path("OUT_DIR")?;
    let repo = manifest_dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| {
            format!(
                "{} is not <repo>/host/builtin-lanes",
                manifest_dir.display()
            )
        })?
        .to_path_buf();
    let plugins = repo.join("plugins");
    let target_dir = repo.join("target/wasm-plugins");

    rerun_if_changed(&plugins.join("Cargo.toml"));
    rerun_if_changed(&plugins.join("Cargo.lock"));
    for (dir, stem) in LANES {
        let lane = plugins.join(dir);
        rerun_if_changed(&lane.join("Cargo.toml"));
        rerun_if_changed(&lane.join("src"));
        rerun_if_changed(&lane.join(format!("{stem}.toml")));
    }
    rerun_if_changed(&repo.join("sdk/src"));
    rerun_if_changed(&repo.join("sdk/Cargo.toml"));
    rerun_if_changed(&repo.join("wit"));

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    let line = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e} ({line})", Path::new(&cargo).display()))?;
    if !output.status.success() {
        return Err(format!(
            "building the first-party lanes in {} failed ({}); run \
             `cargo build --release --target wasm32-wasip2` there to see why \
             (the target comes from rust-toolchain.toml: `rustup target add wasm32-wasip2`).\n\
             command: {line}\n{}",
            plugins.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }

    let built = target_dir.join("wasm32-wasip2/release");
    for (_, stem) in LANES {
        let from = built.join(format!("{stem}.wasm"));
        let to = out_dir.join(format!("{stem}.wasm"));
        std::fs::copy(&from, &to).map_err(|e| {
            format!(
                "the plugins build succeeded but {} cannot be copied to {}: {e}",
                from.display(),
                to.display()
            )
        })?;
    }
    Ok(())
}

fn env_path(name: &str) -> Result<PathBuf, String> {
    env::var_os(name)
        .map(PathBuf::from)
        .ok_or_else(|| format!("cargo did not set {name} for the build script"))
}

fn rerun_if_changed(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}
