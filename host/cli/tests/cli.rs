//! The `execution-plane` binary end to end: every command's output and exit code, and one-line
//! errors for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_execution-plane"))
}

fn run(args: &[&str], stdin: Option<&[u8]>, cwd: &Path) -> Output {
    let mut child = bin()
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            // The CLI may stop reading early (e.g. oversized input); a broken pipe is fine.
            let _ = input.write_all(bytes);
        }
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/requests")
}

/// Asserts the command failed with exit 1 and exactly one `error: ...` line containing `needle`.
fn assert_one_line_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[0].contains(needle), "{err} should contain {needle}");
    assert!(o.stdout.is_empty());
}

#[test]
fn contracts_list_names_every_packet_and_boundary_value() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["contracts", "list"], None, dir.path());
    assert!(o.status.success());
    let out = stdout(&o);
    for (_, version) in ep_contracts::version::PACKET_VERSIONS {
        assert!(
            out.lines().any(|l| l == format!("{version}\tpacket")),
            "{version} missing"
        );
    }
    for name in [
        "execution_surface.v1\tsurface",
        "admission_request\tboundary",
        "evidence\tboundary",
    ] {
        assert!(out.lines().any(|l| l == name), "{name} missing");
    }
}

#[test]
fn contracts_validate_prints_the_normalized_document_for_every_example() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("http-intent.json", "http_execution_intent.v1"),
        ("http-route.json", "execution_route.v1"),
        ("process-intent.json", "process_execution_intent.v1"),
        ("process-route.json", "execution_route_v1"),
        ("credential-handle-ref.json", "credential_handle_ref.v1"),
        ("execution-surface-ssh.json", "execution_surface.v1"),
        ("no-egress-policy.json", "ExecutionPlane.NoEgressPolicy.v1"),
        ("attach-grant.json", "ExecutionPlane.AttachGrant.v1"),
    ];
    for (file, contract) in cases {
        let path = examples().join(file);
        let o = run(
            &["contracts", "validate", contract, path.to_str().unwrap()],
            None,
            dir.path(),
        );
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let printed: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let entry = ep_contracts::registry::find(contract).unwrap();
        // Normalized output is a fixed point and carries its contract version.
        assert_eq!(entry.normalize(&printed).unwrap(), printed, "{file}");
        assert!(printed.get("contract_version").is_some(), "{file}");
    }
}

#[test]
fn contracts_validate_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &["contracts", "validate", "acceptable_attestation", "-"],
        Some(br#"{"classes": ["b", "a", "b"]}"#),
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["classes"], serde_json::json!(["b", "a"]));
    assert_eq!(v["priority_order"], serde_json::json!(["b", "a"]));
    assert_eq!(v["contract_version"], 1);
}

#[test]
fn bad_documents_get_one_line_errors_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let route = std::fs::read_to_string(examples().join("http-route.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&route).unwrap();
    v["lineage"]["route_id"] = "other".into();
    let mismatched = v.to_string();
    let mut v: serde_json::Value = serde_json::from_str(&route).unwrap();
    v["contract_version"] = "execution_route.v2".into();
    let unknown_version = v.to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "execution_route.v1",
            "{\"route_id\": ".to_owned(),
            "malformed JSON at line 1",
        ),
        (
            "execution_route.v1",
            "[1, 2]".to_owned(),
            "expected map attrs",
        ),
        (
            "execution_route.v1",
            r#"{"route_id": 7}"#.to_owned(),
            "route_id must be a non-empty string, got: 7",
        ),
        (
            "execution_route.v1",
            mismatched,
            "route_id must match lineage.route_id",
        ),
        (
            "execution_route.v1",
            unknown_version,
            r#"expected contract_version "execution_route.v1", got: "execution_route.v2""#,
        ),
        (
            "admission_request",
            r#"{"lane_id": "p", "acceptable_attestation": {"classes": [1]}}"#.to_owned(),
            "acceptable_attestation.classes[0]",
        ),
        (
            "target_descriptor",
            r#"{"contract_version": 2, "target_id": "t", "lane_id": "l", "verifier_id": "v"}"#
                .to_owned(),
            "unsupported contract_version 2",
        ),
        (
            "credential_handle_ref.v1",
            r#"{"handle_ref": "ghp_super_secret_value", "kind": "k", "audience": "a"}"#.to_owned(),
            "opaque handle ref",
        ),
    ];
    for (contract, input, needle) in cases {
        let o = run(
            &["contracts", "validate", contract],
            Some(input.as_bytes()),
            dir.path(),
        );
        assert_one_line_error(&o, needle);
        assert!(
            stderr(&o).contains(contract),
            "error names the contract: {}",
            stderr(&o)
        );
    }
}

#[test]
fn oversized_and_unknown_inputs_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!(
        "{{\"x\": \"{}\"}}",
        "a".repeat(ep_contracts::MAX_DOCUMENT_BYTES)
    );
    let o = run(
        &["contracts", "validate", "execution_route.v1"],
        Some(big.as_bytes()),
        dir.path(),
    );
    assert_one_line_error(&o, "over the 4194304-byte limit");
    let o = run(
        &["contracts", "validate", "no_such_contract", "-"],
        Some(b"{}"),
        dir.path(),
    );
    assert_one_line_error(&o, "unknown contract \"no_such_contract\"");
    let o = run(
        &[
            "contracts",
            "validate",
            "execution_route.v1",
            "missing.json",
        ],
        None,
        dir.path(),
    );
    assert_one_line_error(&o, "missing.json");
    let o = run(
        &["contracts", "validate", "execution_route.v1", "-"],
        Some(&[0xff, 0xfe]),
        dir.path(),
    );
    assert_one_line_error(&o, "not UTF-8");
}

#[test]
fn authority_keygen_sign_and_describe_work_together() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        &["authority", "keygen", "--key-id", "dev", "--out", "dev.key"],
        None,
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(dir.path().join("authority-keys.toml"), stdout(&o)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("dev.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A second keygen must not overwrite the key.
    let again = run(
        &["authority", "keygen", "--key-id", "dev", "--out", "dev.key"],
        None,
        dir.path(),
    );
    assert_eq!(again.status.code(), Some(1));

    std::fs::write(
        dir.path().join("payload.json"),
        r#"{"command": "echo", "argv": ["ok"]}"#,
    )
    .unwrap();
    let o = run(
        &[
            "authority",
            "sign",
            "--key",
            "dev.key",
            "--audience",
            "node-local",
            "--payload",
            "payload.json",
            "--lane",
            "process",
            "--class",
            "local-process-weak",
            "--ttl",
            "60",
            "--ref",
            "auth-test-1",
        ],
        None,
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // It prints the whole request, signed, ready to send.
    let request: ep_contracts::boundary::AdmissionRequest =
        ep_contracts::parse(&stdout(&o)).unwrap();
    assert_eq!(request.lane_id, "process");
    let authority = request.authority_ref.clone().unwrap();
    assert_eq!(authority.reference.as_deref(), Some("auth-test-1"));
    assert_eq!(authority.audience.as_deref(), Some("node-local"));
    let payload: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"command": "echo", "argv": ["ok"]}"#).unwrap();
    assert_eq!(request.payload, payload);
    assert_eq!(
        authority.payload_hash,
        Some(ep_node::authority::payload_hash(&payload))
    );
    assert_eq!(
        authority.metadata["request_hash"],
        ep_node::authority::request_hash(&request).as_str()
    );
    // The minted ref verifies with the trust store the keygen printed (a verifier that
    // accepts refs issued before it started, as this one is made after the signing).
    let store =
        ep_node::authority::TrustStore::load(dir.path().join("authority-keys.toml")).unwrap();
    let verifier =
        ep_node::verifiers::ed25519_authority::Ed25519AuthorityVerifier::new("node-local", store)
            .with_not_before(chrono::Utc::now() - chrono::TimeDelta::hours(1));
    assert!(verifier.verify_ref(&authority, &request).is_ok());

    // --request signs a whole request document, metadata included; changing the metadata
    // afterwards breaks the ref.
    let mut document = request.clone();
    document.authority_ref = None;
    document
        .metadata
        .insert("egress".into(), serde_json::json!("none"));
    std::fs::write(
        dir.path().join("request.json"),
        ep_contracts::dump(&document),
    )
    .unwrap();
    let o = run(
        &[
            "authority",
            "sign",
            "--key",
            "dev.key",
            "--audience",
            "node-local",
            "--request",
            "request.json",
            "--ref-only",
        ],
        None,
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let authority: ep_contracts::boundary::AuthorityRef = ep_contracts::parse(&stdout(&o)).unwrap();
    assert!(verifier.verify_ref(&authority, &document).is_ok());
    let mut widened = document.clone();
    widened.metadata.remove("egress");
    let err = verifier.verify_ref(&authority, &widened).unwrap_err();
    assert_eq!(err.details["check"], "request_hash");
    let o = run(
        &[
            "authority",
            "sign",
            "--key",
            "dev.key",
            "--audience",
            "node-local",
        ],
        None,
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "needs --request or --payload");

    // describe on the embedded defaults finds the trust store in the working directory.
    let o = run(&["describe"], None, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let d: ep_contracts::boundary::NodeDescriptor = ep_contracts::parse(&stdout(&o)).unwrap();
    assert_eq!(d.node_id.as_deref(), Some("node-local"));
    assert_eq!(
        d.authority_verifier.as_deref(),
        Some("execution-plane:ed25519-authority:v1")
    );
    assert!(d.registration_complete);
    assert_eq!(
        d.registered_target_verifiers[0].capability_classes,
        vec!["local-process-weak"]
    );
}

#[test]
fn describe_without_a_trust_store_registers_no_authority_verifier() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["describe"], None, dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(d["authority_verifier"], serde_json::Value::Null);
}

#[test]
fn describe_reads_a_config_file_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    std::fs::write(
        &config,
        "[node]\nid = \"node-7\"\n[authority]\ntrust_store = \"keys.toml\"\nclock_skew_secs = 5\n[evidence]\ndir = \"ev\"\n",
    )
    .unwrap();
    let o = run(
        &["describe", "--config", config.to_str().unwrap()],
        None,
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"node-7\""));

    std::fs::write(&config, "[node]\nid = \"n\"\ncolour = 1\n").unwrap();
    let o = run(
        &["describe", "--config", config.to_str().unwrap()],
        None,
        dir.path(),
    );
    assert_one_line_error(&o, "unknown field");

    std::fs::write(
        dir.path().join("keys.toml"),
        "[[keys]]\nkey_id = \"k\"\npublic_key = \"not base64!\"\n",
    )
    .unwrap();
    std::fs::write(
        &config,
        "[node]\nid = \"node-7\"\n[authority]\ntrust_store = \"keys.toml\"\nclock_skew_secs = 5\n[evidence]\ndir = \"ev\"\n",
    )
    .unwrap();
    let o = run(
        &["describe", "--config", config.to_str().unwrap()],
        None,
        dir.path(),
    );
    assert_one_line_error(&o, "keys.toml");
}

#[test]
fn evidence_verify_reports_count_or_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("evidence.jsonl");
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use ep_node::EvidenceSink;
            let sink = ep_node::sinks::file_chain::FileChainSink::open(&log).unwrap();
            for i in 0..5 {
                let ev = ep_contracts::boundary::Evidence {
                    evidence_type: Some(format!("test.{i}")),
                    ..Default::default()
                };
                sink.emit(&ev).await.unwrap();
            }
            sink.flush().await.unwrap();
        });
    }
    let o = run(
        &["evidence", "verify", log.to_str().unwrap()],
        None,
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("5 records, chain intact"),
        "{}",
        stdout(&o)
    );

    let text = std::fs::read_to_string(&log).unwrap();
    let edited = text.replacen("test.2", "test.X", 1);
    std::fs::write(&log, edited).unwrap();
    let o = run(
        &["evidence", "verify", log.to_str().unwrap()],
        None,
        dir.path(),
    );
    assert_one_line_error(&o, "record 3");

    let o = run(&["evidence", "verify", "nope.jsonl"], None, dir.path());
    assert_one_line_error(&o, "nope.jsonl");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["contracts", "frobnicate"], None, dir.path());
    assert_eq!(o.status.code(), Some(2));
}
