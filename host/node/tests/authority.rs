//! The Ed25519 authority scheme: key files, trust stores and every verifier check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use ep_contracts::boundary::{AdmissionRequest, AuthorityRef, Map};
use ep_node::AuthorityVerifier;
use ep_node::authority::{
    AuthorityFields, AuthorityKeyError, ManualClock, SigningKeyFile, TrustStore, TrustedKey,
    payload_hash, request_hash, sign_fields, sign_request, sign_request_with_ref,
};
use ep_node::verifiers::ed25519_authority::{Ed25519AuthorityVerifier, VERIFIER_ID};
use serde_json::{Value, json};

const NODE: &str = "node-a";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 1, 12, 0, 0).unwrap()
}

fn dev_key() -> SigningKeyFile {
    SigningKeyFile::from_seed("dev", [7u8; 32])
}

fn other_key() -> SigningKeyFile {
    SigningKeyFile::from_seed("dev", [9u8; 32])
}

fn trust() -> TrustStore {
    TrustStore::from_toml_str(&dev_key().public_entry()).unwrap()
}

fn payload() -> Map {
    json!({"command": "echo", "args": ["hi"]})
        .as_object()
        .cloned()
        .unwrap()
}

/// The request the refs of these tests authorize (a fixed request id: it is signed too).
fn request() -> AdmissionRequest {
    let mut r = AdmissionRequest::new("process");
    r.request_id = "req-authority-test".into();
    r.payload = payload();
    r
}

fn sign(
    key: &SigningKeyFile,
    request: &AdmissionRequest,
    audience: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> AuthorityRef {
    sign_request(key, request, audience, ttl, now)
}

fn verifier(clock: &ManualClock) -> Ed25519AuthorityVerifier {
    Ed25519AuthorityVerifier::new(NODE, trust()).with_clock(clock.clone())
}

fn valid_ref() -> AuthorityRef {
    sign(&dev_key(), &request(), NODE, Duration::from_secs(300), t0())
}

async fn verify(
    v: &Ed25519AuthorityVerifier,
    authority: &AuthorityRef,
    request: AdmissionRequest,
) -> Result<Map, ep_contracts::boundary::AdmissionRejection> {
    v.verify(authority, &request).await
}

#[tokio::test]
async fn valid_ref_is_accepted_with_its_claims() {
    let clock = ManualClock::new(t0());
    let v = verifier(&clock);
    assert_eq!(v.verifier_id(), VERIFIER_ID);
    let authority = valid_ref();
    let claims = verify(&v, &authority, request()).await.unwrap();
    assert_eq!(claims["key_id"], "dev");
    assert_eq!(claims["audience"], NODE);
    assert_eq!(
        claims["ref"],
        Value::from(authority.reference.clone().unwrap())
    );
    assert_eq!(
        claims["issued_at"],
        Value::from(authority.issued_at.clone().unwrap())
    );
    assert_eq!(
        claims["expires_at"],
        Value::from(authority.expires_at.clone().unwrap())
    );
    assert_eq!(
        claims["nonce"],
        Value::from(authority.metadata["nonce"].as_str().unwrap())
    );
    assert_eq!(claims.len(), 6);
    assert!(authority.reference.unwrap().starts_with("auth-"));
}

#[tokio::test]
async fn ref_survives_a_json_round_trip() {
    use ep_contracts::Contract as _;
    let clock = ManualClock::new(t0());
    let authority = AuthorityRef::from_value(&valid_ref().to_value()).unwrap();
    verify(&verifier(&clock), &authority, request())
        .await
        .unwrap();
}

#[tokio::test]
async fn clock_skew_allows_slightly_future_issue_times() {
    let clock = ManualClock::new(t0());
    let v = verifier(&clock);
    let early = sign(
        &dev_key(),
        &request(),
        NODE,
        Duration::from_secs(300),
        t0() + chrono::TimeDelta::seconds(30),
    );
    verify(&v, &early, request()).await.unwrap();
    let strict = Ed25519AuthorityVerifier::new(NODE, trust())
        .with_clock(clock.clone())
        .with_clock_skew(Duration::from_secs(10));
    let err = verify(&strict, &early, request()).await.unwrap_err();
    assert_eq!(err.details["check"], "issued_at");
}

#[tokio::test]
async fn moving_the_clock_past_expiry_rejects_the_same_ref() {
    let clock = ManualClock::new(t0());
    let v = verifier(&clock);
    let authority = valid_ref();
    verify(&v, &authority, request()).await.unwrap();
    clock.advance(Duration::from_secs(299));
    verify(&v, &authority, request()).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let err = verify(&v, &authority, request()).await.unwrap_err();
    assert_eq!(err.details["check"], "expires_at");
}

type Tamper = Box<dyn Fn(&mut AuthorityRef, &mut AdmissionRequest, &mut Ed25519AuthorityVerifier)>;

fn resign(mutate: impl Fn(&mut AuthorityFields) + 'static) -> Tamper {
    Box::new(move |authority, _, _| {
        let mut fields = AuthorityFields {
            reference: authority.reference.clone().unwrap(),
            payload_hash: authority.payload_hash.clone().unwrap(),
            request_hash: authority.metadata["request_hash"].as_str().unwrap().into(),
            nonce: authority.metadata["nonce"].as_str().unwrap().into(),
            audience: authority.audience.clone().unwrap(),
            issued_at: authority.issued_at.clone().unwrap(),
            expires_at: authority.expires_at.clone().unwrap(),
        };
        mutate(&mut fields);
        *authority = sign_fields(&dev_key(), fields);
    })
}

#[tokio::test]
async fn each_check_rejects_with_its_own_message() {
    let cases: Vec<(&str, Tamper, &str, &str)> = vec![
        (
            "missing fields",
            Box::new(|a, _, _| {
                a.audience = None;
                a.metadata.remove("signature");
            }),
            "required_fields",
            "authority ref is missing audience, metadata.signature",
        ),
        (
            "empty ref",
            Box::new(|a, _, _| a.reference = Some(String::new())),
            "required_fields",
            "authority ref is missing ref;",
        ),
        (
            "non-string key id",
            Box::new(|a, _, _| {
                a.metadata.insert("key_id".into(), json!(7));
            }),
            "required_fields",
            "missing metadata.key_id",
        ),
        (
            "wrong key id",
            Box::new(|a, _, _| {
                a.metadata.insert("key_id".into(), json!("prod"));
            }),
            "key_id",
            "signed with unknown key id \"prod\"",
        ),
        (
            "key past not_after",
            Box::new(|_, _, v| {
                let store = TrustStore::new()
                    .with_key(TrustedKey {
                        key_id: "dev".into(),
                        public_key: dev_key().verifying_key(),
                        not_after: Some(t0() - chrono::TimeDelta::days(1)),
                    })
                    .unwrap();
                *v = Ed25519AuthorityVerifier::new(NODE, store).with_clock(ManualClock::new(t0()));
            }),
            "key_not_after",
            "trusted key \"dev\" expired at 2030-05-31T12:00:00.000000Z (not_after)",
        ),
        (
            "tampered signature",
            Box::new(|a, _, _| {
                let sig = a.metadata["signature"].as_str().unwrap().to_owned();
                let mut bytes: Vec<char> = sig.chars().collect();
                bytes[5] = if bytes[5] == 'A' { 'B' } else { 'A' };
                a.metadata.insert(
                    "signature".into(),
                    json!(bytes.into_iter().collect::<String>()),
                );
            }),
            "signature",
            "signature does not verify with key \"dev\"",
        ),
        (
            "signature not base64",
            Box::new(|a, _, _| {
                a.metadata.insert("signature".into(), json!("%%%"));
            }),
            "signature",
            "metadata.signature is not valid base64",
        ),
        (
            "signature wrong length",
            Box::new(|a, _, _| {
                a.metadata.insert("signature".into(), json!("AAAA"));
            }),
            "signature",
            "decodes to 3 bytes but an ed25519 signature is 64 bytes",
        ),
        (
            "signed by another key",
            Box::new(|a, r, _| *a = sign(&other_key(), r, NODE, Duration::from_secs(300), t0())),
            "signature",
            "signature does not verify",
        ),
        (
            "tampered payload hash",
            Box::new(|a, r, _| {
                let mut other = r.payload.clone();
                other.insert("command".into(), json!("rm"));
                a.payload_hash = Some(payload_hash(&other));
            }),
            "signature",
            "altered after signing",
        ),
        (
            "tampered request hash",
            Box::new(|a, r, _| {
                let mut other = r.clone();
                other.lane_id = "http".into();
                a.metadata
                    .insert("request_hash".into(), json!(request_hash(&other)));
            }),
            "signature",
            "altered after signing",
        ),
        (
            "tampered nonce",
            Box::new(|a, _, _| {
                a.metadata.insert("nonce".into(), json!("0000"));
            }),
            "signature",
            "altered after signing",
        ),
        (
            "tampered expiry",
            Box::new(|a, _, _| a.expires_at = Some("2099-01-01T00:00:00.000000Z".into())),
            "signature",
            "altered after signing",
        ),
        (
            "wrong audience",
            Box::new(|a, r, _| *a = sign(&dev_key(), r, "node-b", Duration::from_secs(300), t0())),
            "audience",
            "authority ref is for audience \"node-b\" but this node is \"node-a\"",
        ),
        (
            "issued in the future",
            Box::new(|a, r, _| {
                *a = sign(
                    &dev_key(),
                    r,
                    NODE,
                    Duration::from_secs(300),
                    t0() + chrono::TimeDelta::seconds(61),
                );
            }),
            "issued_at",
            "issued_at 2030-06-01T12:01:01.000000Z is in the future (node clock 2030-06-01T12:00:00.000000Z, allowed skew 60s)",
        ),
        (
            "issued_at unparsable",
            resign(|f| f.issued_at = "yesterday".into()),
            "issued_at",
            "\"yesterday\" is not an RFC 3339 timestamp",
        ),
        (
            "expired",
            Box::new(|a, r, _| {
                *a = sign(
                    &dev_key(),
                    r,
                    NODE,
                    Duration::from_secs(60),
                    t0() - chrono::TimeDelta::seconds(61),
                );
            }),
            "expires_at",
            "authority ref expired at 2030-06-01T11:59:59.000000Z",
        ),
        (
            "expiry before issue",
            resign(|f| {
                f.issued_at = "2030-06-01T12:00:30Z".into();
                f.expires_at = "2030-06-01T12:00:10Z".into();
            }),
            "validity_window",
            "expires_at 2030-06-01T12:00:10Z is not after issued_at 2030-06-01T12:00:30Z",
        ),
        (
            "lifetime over the maximum",
            Box::new(|a, r, _| {
                *a = sign(&dev_key(), r, NODE, Duration::from_secs(3601), t0());
            }),
            "lifetime",
            "longer than the 3600s this node accepts",
        ),
        (
            "issued before the node started",
            Box::new(|_, _, v| {
                let later = ManualClock::new(t0() + chrono::TimeDelta::seconds(1));
                *v = Ed25519AuthorityVerifier::new(NODE, trust()).with_clock(later);
            }),
            "issued_before_start",
            "before this node started at 2030-06-01T12:00:01.000000Z",
        ),
        (
            "other payload",
            Box::new(|_, r, _| {
                r.payload.insert("command".into(), json!("rm"));
            }),
            "payload_hash",
            "a ref cannot be reused for another payload",
        ),
        (
            "egress narrowing removed from the metadata",
            Box::new(|a, r, _| {
                r.metadata.insert("egress".into(), json!("none"));
                *a = sign(&dev_key(), r, NODE, Duration::from_secs(300), t0());
                r.metadata.remove("egress");
            }),
            "request_hash",
            "its lane, operation, metadata, acceptable classes or another field differ",
        ),
        (
            "other acceptable classes",
            Box::new(|_, r, _| {
                r.acceptable_attestation =
                    ep_contracts::boundary::AcceptableAttestation::of(["local-process-weak"]);
            }),
            "request_hash",
            "sign this exact request",
        ),
        (
            "other lane",
            Box::new(|_, r, _| r.lane_id = "http".into()),
            "request_hash",
            "sign this exact request",
        ),
        (
            "other operation",
            Box::new(|_, r, _| r.operation = Some("delete".into())),
            "request_hash",
            "sign this exact request",
        ),
        (
            "already used",
            Box::new(|a, r, v| {
                let claims = v.verify_ref(a, r).unwrap();
                v.consume_ref(&claims).unwrap();
            }),
            "replayed",
            "was already used: a ref authorizes one execution",
        ),
    ];

    for (name, tamper, check, message) in cases {
        let clock = ManualClock::new(t0());
        let mut v = verifier(&clock);
        let mut authority = valid_ref();
        let mut r = request();
        tamper(&mut authority, &mut r, &mut v);
        let err = verify(&v, &authority, r)
            .await
            .expect_err(&format!("{name}: should be rejected"));
        assert_eq!(err.reason, "authority_rejected", "{name}");
        assert_eq!(err.details["check"], check, "{name}: {err}");
        let text = err.message.clone().unwrap_or_default();
        assert!(text.contains(message), "{name}: {text:?} lacks {message:?}");
        assert!(
            err.request_id.is_some(),
            "{name}: rejection names the request"
        );
    }
}

#[tokio::test]
async fn missing_fields_are_listed_in_details() {
    let clock = ManualClock::new(t0());
    let err = verify(&verifier(&clock), &AuthorityRef::default(), request())
        .await
        .unwrap_err();
    assert_eq!(
        err.details["missing"],
        json!([
            "ref",
            "payload_hash",
            "audience",
            "issued_at",
            "expires_at",
            "metadata.nonce",
            "metadata.request_hash",
            "metadata.key_id",
            "metadata.signature"
        ])
    );
}

#[tokio::test]
async fn caller_chosen_ref_is_signed_and_verified() {
    let clock = ManualClock::new(t0());
    let authority = sign_request_with_ref(
        &dev_key(),
        "ticket-42",
        &request(),
        NODE,
        Duration::from_secs(5),
        t0(),
    );
    let claims = verify(&verifier(&clock), &authority, request())
        .await
        .unwrap();
    assert_eq!(claims["ref"], "ticket-42");
}

#[tokio::test]
async fn a_ref_is_used_up_by_one_dispatch_only() {
    let clock = ManualClock::new(t0());
    let v = verifier(&clock);
    let authority = valid_ref();
    // Admission only (verify) leaves it usable, however often.
    for _ in 0..3 {
        verify(&v, &authority, request()).await.unwrap();
    }
    let claims = verify(&v, &authority, request()).await.unwrap();
    v.consume(&claims, &request()).await.unwrap();
    let err = verify(&v, &authority, request()).await.unwrap_err();
    assert_eq!(err.details["check"], "replayed");
    // Two dispatches racing past verify: the second consume is refused.
    let fresh = valid_ref();
    let first = verify(&v, &fresh, request()).await.unwrap();
    let second = verify(&v, &fresh, request()).await.unwrap();
    v.consume(&first, &request()).await.unwrap();
    let err = v.consume(&second, &request()).await.unwrap_err();
    assert_eq!(err.details["check"], "replayed");
    assert!(err.request_id.is_some());
    // Each signing draws a fresh nonce: two refs for one request are two refs.
    assert_ne!(authority.metadata["nonce"], fresh.metadata["nonce"]);
}

#[tokio::test]
async fn a_full_replay_memory_refuses_instead_of_forgetting() {
    let clock = ManualClock::new(t0());
    let v = verifier(&clock).with_replay_capacity(1);
    let first = valid_ref();
    let claims = verify(&v, &first, request()).await.unwrap();
    v.consume(&claims, &request()).await.unwrap();
    let second = valid_ref();
    let claims = verify(&v, &second, request()).await.unwrap();
    let err = v.consume(&claims, &request()).await.unwrap_err();
    assert_eq!(err.details["check"], "replay_memory_full");
    // Once the first ref expired, its room is free again and the first stays refused (expired).
    clock.advance(Duration::from_secs(301));
    let third = sign(
        &dev_key(),
        &request(),
        NODE,
        Duration::from_secs(300),
        t0() + chrono::TimeDelta::seconds(301),
    );
    let claims = verify(&v, &third, request()).await.unwrap();
    v.consume(&claims, &request()).await.unwrap();
    let err = verify(&v, &first, request()).await.unwrap_err();
    assert_eq!(err.details["check"], "expires_at");
}

// --- key files --------------------------------------------------------------------------------

#[test]
fn key_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.key.json");
    let key = SigningKeyFile::generate("dev").unwrap();
    key.save(&path).unwrap();
    let loaded = SigningKeyFile::load(&path).unwrap();
    assert_eq!(loaded.key_id(), "dev");
    assert_eq!(loaded.public_key_base64(), key.public_key_base64());
    let on_disk: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(on_disk["algorithm"], "ed25519");
    assert_eq!(on_disk["key_id"], "dev");
    assert!(on_disk["secret_key"].is_string());
    // A ref signed by the loaded key verifies against the saved key's public entry.
    let store = TrustStore::from_toml_str(&key.public_entry()).unwrap();
    let v = Ed25519AuthorityVerifier::new(NODE, store).with_clock(ManualClock::new(t0()));
    let authority = sign(&loaded, &request(), NODE, Duration::from_secs(60), t0());
    v.verify_ref(&authority, &request()).unwrap();
}

#[test]
fn generated_keys_differ() {
    let a = SigningKeyFile::generate("a").unwrap();
    let b = SigningKeyFile::generate("a").unwrap();
    assert_ne!(a.public_key_base64(), b.public_key_base64());
}

#[cfg(unix)]
#[test]
fn secret_key_file_has_mode_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.key.json");
    dev_key().save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn save_refuses_to_overwrite_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.key.json");
    dev_key().save(&path).unwrap();
    let err = other_key().save(&path).unwrap_err();
    assert!(matches!(err, AuthorityKeyError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("refusing to overwrite"));
    assert_eq!(
        SigningKeyFile::load(&path).unwrap().public_key_base64(),
        dev_key().public_key_base64()
    );
}

#[test]
fn malformed_key_files_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    type IsKind = fn(&AuthorityKeyError) -> bool;
    let cases: Vec<(&str, &str, IsKind, &str)> = vec![
        (
            "notjson",
            "{",
            |e| matches!(e, AuthorityKeyError::Malformed { .. }),
            "not JSON",
        ),
        (
            "array",
            "[]",
            |e| matches!(e, AuthorityKeyError::Malformed { .. }),
            "not a JSON object",
        ),
        (
            "nokeyid",
            r#"{"algorithm":"ed25519","secret_key":"AAAA"}"#,
            |e| matches!(e, AuthorityKeyError::Malformed { .. }),
            "key_id is missing",
        ),
        (
            "rsa",
            r#"{"key_id":"k","algorithm":"rsa","secret_key":"AAAA"}"#,
            |e| matches!(e, AuthorityKeyError::WrongAlgorithm { found, .. } if found == "rsa"),
            "only \"ed25519\" keys are supported",
        ),
        (
            "badb64",
            r#"{"key_id":"k","algorithm":"ed25519","secret_key":"@@"}"#,
            |e| matches!(e, AuthorityKeyError::Malformed { .. }),
            "secret_key is not valid base64",
        ),
        (
            "short",
            r#"{"key_id":"k","algorithm":"ed25519","secret_key":"AAAA"}"#,
            |e| matches!(e, AuthorityKeyError::BadKeyLength { found: 3, .. }),
            "decodes to 3 bytes",
        ),
        (
            "numberkey",
            r#"{"key_id":"k","algorithm":"ed25519","secret_key":5}"#,
            |e| matches!(e, AuthorityKeyError::Malformed { .. }),
            "secret_key must be a non-empty string",
        ),
    ];
    for (name, text, is_kind, needle) in cases {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        let err = SigningKeyFile::load(&path).unwrap_err();
        assert!(is_kind(&err), "{name}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{name}: {msg}");
        assert!(msg.contains(needle), "{name}: {msg}");
    }
    let missing = dir.path().join("absent.json");
    let err = SigningKeyFile::load(&missing).unwrap_err();
    assert!(matches!(err, AuthorityKeyError::Io { .. }));
    assert!(err.to_string().contains("absent.json"));
}

// --- trust stores -----------------------------------------------------------------------------

#[test]
fn public_entry_parses_back_with_optional_not_after() {
    let key = dev_key();
    let store = TrustStore::from_toml_str(&key.public_entry()).unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(store.get("dev").unwrap().public_key, key.verifying_key());
    assert_eq!(store.get("dev").unwrap().not_after, None);

    let text = format!(
        "{}not_after = \"2031-01-01T00:00:00+01:00\"\n\n[[keys]]\nkey_id = \"ops\"\npublic_key = \"{}\"\nnot_after = 2032-01-01T00:00:00Z\n",
        key.public_entry(),
        other_key().public_key_base64()
    );
    let store = TrustStore::from_toml_str(&text).unwrap();
    assert_eq!(store.key_ids().collect::<Vec<_>>(), vec!["dev", "ops"]);
    assert_eq!(
        store.get("dev").unwrap().not_after,
        Some(Utc.with_ymd_and_hms(2030, 12, 31, 23, 0, 0).unwrap())
    );
    assert_eq!(
        store.get("ops").unwrap().not_after,
        Some(Utc.with_ymd_and_hms(2032, 1, 1, 0, 0, 0).unwrap())
    );
    assert!(TrustStore::from_toml_str("").unwrap().is_empty());
}

#[test]
fn trust_store_parse_errors_name_the_entry() {
    let good = dev_key().public_key_base64();
    let cases: Vec<(String, &str)> = vec![
        ("[[keys]\n".into(), "malformed trust store"),
        ("keys = 3\n".into(), "keys must be an array of tables"),
        ("[[key]]\nkey_id = \"x\"\n".into(), "unknown top-level key \"key\""),
        (
            format!("[[keys]]\nkey_id = \"dev\"\npublic_key = \"{good}\"\n[[keys]]\nkey_id = \"dev\"\npublic_key = \"{good}\"\n"),
            "trust store entry 2 repeats key_id \"dev\" (first in entry 1)",
        ),
        (
            "[[keys]]\npublic_key = \"AAAA\"\n".into(),
            "trust store entry 1: key_id is missing",
        ),
        (
            format!("[[keys]]\nkey_id = \"a\"\npublic_key = \"{good}\"\n[[keys]]\nkey_id = \"b\"\npublic_key = \"AAAA\"\n"),
            "trust store entry 2 (key_id \"b\"): public_key decodes to 3 bytes",
        ),
        (
            "[[keys]]\nkey_id = \"b\"\npublic_key = \"!!\"\n".into(),
            "entry 1 (key_id \"b\"): public_key is not valid base64",
        ),
        (
            "[[keys]]\nkey_id = \"b\"\n".into(),
            "entry 1 (key_id \"b\"): public_key is missing",
        ),
        (
            format!("[[keys]]\nkey_id = \"b\"\npublic_key = \"{good}\"\nnot_after = \"soon\"\n"),
            "entry 1 (key_id \"b\"): not_after \"soon\" is not an RFC 3339 timestamp",
        ),
        (
            format!("[[keys]]\nkey_id = \"b\"\npublic_key = \"{good}\"\nnot_after = 2030-01-01T00:00:00\n"),
            "entry 1 (key_id \"b\"): not_after",
        ),
        (
            format!("[[keys]]\nkey_id = \"b\"\npublic_key = \"{good}\"\nextra = 1\n"),
            "entry 1 (key_id \"b\"): unknown field \"extra\"",
        ),
        (
            // The identity point: a small-order key.
            "[[keys]]\nkey_id = \"w\"\npublic_key = \"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n".into(),
            "weak (small-order)",
        ),
    ];
    for (text, needle) in cases {
        let err = TrustStore::from_toml_str(&text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(needle), "{text:?}: {msg}");
    }
}

#[test]
fn trust_store_load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trust.toml");
    std::fs::write(&path, dev_key().public_entry()).unwrap();
    assert_eq!(TrustStore::load(&path).unwrap().len(), 1);
    std::fs::write(&path, "[[keys]]\nkey_id = 1\n").unwrap();
    let msg = TrustStore::load(&path).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("entry 1: key_id must be a non-empty string"),
        "{msg}"
    );
}

#[test]
fn in_memory_store_refuses_duplicate_ids() {
    let key = TrustedKey {
        key_id: "dev".into(),
        public_key: dev_key().verifying_key(),
        not_after: None,
    };
    let store = TrustStore::new().with_key(key.clone()).unwrap();
    assert!(store.with_key(key).is_err());
}
