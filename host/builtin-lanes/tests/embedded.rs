//! The embedded lanes are the components the plugins build produced, with their manifests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// Where the build script's nested `cargo build` leaves the components.
fn built(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/wasm-plugins/wasm32-wasip2/release")
        .join(file)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn every_embedded_lane_is_a_component_binary() {
    for lane in ep_builtin_lanes::all() {
        assert!(lane.wasm.len() > 8, "{}", lane.name);
        assert_eq!(&lane.wasm[..4], b"\0asm", "{}: wasm magic", lane.name);
        // Version 0x0d, layer 1: a component, not a core module (layer 0).
        assert_eq!(
            &lane.wasm[4..8],
            [0x0d, 0x00, 0x01, 0x00],
            "{}: component header",
            lane.name
        );
    }
}

#[test]
fn every_manifest_parses_and_names_its_lane() {
    for lane in ep_builtin_lanes::all() {
        let manifest: toml::Table = toml::from_str(lane.manifest).unwrap();
        assert_eq!(manifest["lane_id"].as_str(), Some(lane.name));
        assert_eq!(
            manifest["wit_version"].as_str(),
            Some("execution-plane:lane@0.2.0")
        );
    }
}

#[test]
fn the_http_manifest_grants_events_logging_and_outbound_http() {
    let http = ep_builtin_lanes::http();
    assert_eq!(http.name, "http");
    assert_eq!(ep_builtin_lanes::get("http"), Some(http));
    assert_eq!(ep_builtin_lanes::get("nope"), None);
    let manifest: toml::Table = toml::from_str(http.manifest).unwrap();
    let grants = manifest["grants"].as_table().unwrap();
    assert_eq!(grants["events"].as_bool(), Some(true));
    assert_eq!(grants["logging"].as_bool(), Some(true));
    assert!(!grants["http"].as_array().unwrap().is_empty());
    assert_eq!(
        (http.wasm_file_name(), http.manifest_file_name()),
        ("http.wasm".to_owned(), "http.toml".to_owned())
    );
}

#[test]
fn the_embedded_bytes_are_the_freshly_built_component() {
    for lane in ep_builtin_lanes::all() {
        let path = built(&lane.wasm_file_name());
        let on_disk =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert_eq!(sha256(lane.wasm), sha256(&on_disk), "{}", lane.name);
    }
}

#[test]
fn the_embedded_manifest_is_the_one_in_plugins() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins/http/http.toml");
    assert_eq!(
        ep_builtin_lanes::http().manifest,
        std::fs::read_to_string(path).unwrap()
    );
}
