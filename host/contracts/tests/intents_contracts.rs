//! Family execution intents (§2.5): every validation rule with its exact message, the upstream
//! [RUN] scenarios (binary HTTP body, empty argv values, process controls), defaults, fixture
//! and property round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ep_contracts::Contract;
use ep_contracts::fixtures::flow as fx;
use ep_contracts::flow::{ExecutionIntentEnvelope, ExecutionRoute};
use ep_contracts::intents::{
    HttpExecutionIntent, JsonRpcExecutionIntent, ProcessExecutionIntent, StderrMode,
};
use proptest::prelude::*;
use serde_json::{Value, json};

mod support;
use support::{
    Row, assert_round_trip, json_map, json_value, opt_text, remove, run_table, set, text,
};

/// Envelope rules shared by the three intents: the envelope is required, must be a map, and
/// its own validation runs with its own field names.
const ENVELOPE_ROWS: &[Row] = &[
    (
        "missing envelope",
        |v| remove(v, &["envelope"]),
        "envelope must be a map",
    ),
    (
        "null envelope",
        |v| set(v, &["envelope"], Value::Null),
        "envelope must be a map",
    ),
    (
        "envelope not a map",
        |v| set(v, &["envelope"], json!("intent-1")),
        "envelope must be a map",
    ),
    (
        "envelope with nil idempotency_key",
        |v| set(v, &["envelope", "idempotency_key"], Value::Null),
        "idempotency_key must be a non-empty string, got: nil",
    ),
    (
        "envelope with a raw secret credential",
        |v| {
            set(
                v,
                &["envelope", "credential_handle_refs"],
                json!(["sk-live-secret"]),
            )
        },
        r#"credential_handle_ref must be an opaque handle ref, got: "sk-live-secret""#,
    ),
    (
        "envelope of another version",
        |v| {
            set(
                v,
                &["envelope", "contract_version"],
                json!("execution_intent_envelope.v0"),
            )
        },
        r#"expected contract_version "execution_intent_envelope.v1", got: "execution_intent_envelope.v0""#,
    ),
];

// ---------------------------------------------------------------------------------------------
// HttpExecutionIntent.v1

#[test]
fn http_intent_rejects_each_invalid_field_with_the_upstream_message() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| set(v, &["contract_version"], json!("http_execution_intent.v0")),
            r#"expected contract_version "http_execution_intent.v1", got: "http_execution_intent.v0""#,
        ),
        (
            "missing request_shape",
            |v| remove(v, &["request_shape"]),
            "request_shape must be a non-empty string, got: nil",
        ),
        (
            "empty stream_mode",
            |v| set(v, &["stream_mode"], json!("")),
            r#"stream_mode must be a non-empty string, got: """#,
        ),
        (
            "headers not a map",
            |v| set(v, &["headers"], json!(["accept: */*"])),
            "headers must be a map",
        ),
        (
            "egress_surface not a map",
            |v| set(v, &["egress_surface"], json!("https")),
            "egress_surface must be a map",
        ),
        (
            "timeouts not a map",
            |v| set(v, &["timeouts"], json!(750)),
            "timeouts must be a map",
        ),
        (
            "empty retry_class",
            |v| set(v, &["retry_class"], json!("")),
            r#"retry_class must be a non-empty string, got: """#,
        ),
    ];
    run_table::<HttpExecutionIntent>(fx::http_execution_intent, rows);
    run_table::<HttpExecutionIntent>(fx::http_execution_intent, ENVELOPE_ROWS);
}

#[test]
fn http_intent_accepts_binary_unary_bodies() {
    let mut attrs = fx::http_execution_intent();
    attrs["body"] = json!(r#"{"ping":"pong"}"#);
    attrs["headers"] = json!({"content-type": "application/json"});
    attrs["timeouts"] = json!({"request_timeout_ms": 750});
    let intent = HttpExecutionIntent::from_value(&attrs).unwrap();
    assert_eq!(intent.body, json!(r#"{"ping":"pong"}"#));
    assert_eq!(intent.request_timeout_ms(), Some(750));

    attrs["body"] = json!("\u{0}\u{7f}\u{fffd}raw bytes\r\n");
    let intent = assert_round_trip::<HttpExecutionIntent>(&attrs);
    assert_eq!(intent.body, json!("\u{0}\u{7f}\u{fffd}raw bytes\r\n"));
}

#[test]
fn http_intent_body_is_any_json_and_optional_fields_default() {
    let minimal = json!({
        "envelope": fx::execution_intent_envelope(),
        "request_shape": "request_response",
        "stream_mode": "sse"
    });
    let intent = HttpExecutionIntent::from_value(&minimal).unwrap();
    assert_eq!(intent.body, Value::Null);
    assert!(intent.headers.is_empty());
    assert!(intent.egress_surface.is_empty());
    assert!(intent.timeouts.is_empty());
    assert_eq!(intent.retry_class, None);
    assert_eq!(intent.request_timeout_ms(), None);
    for body in [
        json!([1, 2]),
        json!(42),
        json!(true),
        json!({"a": {"b": null}}),
    ] {
        let mut attrs = minimal.clone();
        attrs["body"] = body.clone();
        assert_eq!(assert_round_trip::<HttpExecutionIntent>(&attrs).body, body);
    }
}

#[test]
fn http_fixture_matches_the_http_route() {
    let intent = assert_round_trip::<HttpExecutionIntent>(&fx::http_execution_intent());
    let route = ExecutionRoute::from_value(&fx::http_execution_route()).unwrap();
    assert_eq!(intent.request_shape, "request_response");
    assert_eq!(intent.stream_mode, "unary");
    assert_eq!(intent.retry_class.as_deref(), Some("safe_idempotent"));
    assert_eq!(intent.egress_surface["surface_kind"], "https");
    assert_eq!(intent.envelope.family, route.family);
    assert_eq!(intent.envelope.protocol, route.protocol);
    assert_eq!(
        Some(intent.envelope.idempotency_key.as_str()),
        route.lineage.get("idempotency_key")
    );
    assert_eq!(
        intent.envelope.trace_id.as_deref(),
        route.lineage.get("trace_id")
    );
}

#[test]
fn intent_dump_nests_the_envelope_dump() {
    let intent = HttpExecutionIntent::from_value(&fx::http_execution_intent()).unwrap();
    let dumped = intent.to_value();
    assert_eq!(dumped["envelope"], intent.envelope.to_value());
    assert_eq!(
        dumped["envelope"]["contract_version"],
        "execution_intent_envelope.v1"
    );
    assert_eq!(dumped["retry_class"], "safe_idempotent");
}

// ---------------------------------------------------------------------------------------------
// ProcessExecutionIntent.v1

#[test]
fn process_intent_rejects_each_invalid_field_with_the_upstream_message() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| {
                set(
                    v,
                    &["contract_version"],
                    json!("process_execution_intent.v2"),
                )
            },
            r#"expected contract_version "process_execution_intent.v1", got: "process_execution_intent.v2""#,
        ),
        (
            "missing command",
            |v| remove(v, &["command"]),
            "command must be a non-empty string, got: nil",
        ),
        (
            "empty command",
            |v| set(v, &["command"], json!("")),
            r#"command must be a non-empty string, got: """#,
        ),
        (
            "argv not a list",
            |v| set(v, &["argv"], json!("exec --json")),
            "argv must be a list",
        ),
        (
            "numeric argv element",
            |v| set(v, &["argv"], json!(["exec", 1])),
            "argv must be a string",
        ),
        (
            "null argv element",
            |v| set(v, &["argv"], json!([null])),
            "argv must be a string",
        ),
        (
            "env_projection not a map",
            |v| set(v, &["env_projection"], json!(["A=1"])),
            "env_projection must be a map",
        ),
        (
            "empty cwd",
            |v| set(v, &["cwd"], json!("")),
            r#"cwd must be a non-empty string, got: """#,
        ),
        (
            "clear_env not a boolean",
            |v| set(v, &["clear_env"], json!("yes")),
            "clear_env must be a boolean",
        ),
        (
            "empty user",
            |v| set(v, &["user"], json!("")),
            r#"user must be a non-empty string, got: """#,
        ),
        (
            "missing stdio_mode",
            |v| remove(v, &["stdio_mode"]),
            "stdio_mode must be a non-empty string, got: nil",
        ),
        (
            "unknown stderr_mode",
            |v| set(v, &["stderr_mode"], json!("both")),
            r#"stderr_mode must be "separate" or "stdout""#,
        ),
        (
            "upper-case stderr_mode",
            |v| set(v, &["stderr_mode"], json!("STDOUT")),
            r#"stderr_mode must be "separate" or "stdout""#,
        ),
        (
            "empty stderr_mode",
            |v| set(v, &["stderr_mode"], json!("")),
            r#"stderr_mode must be a non-empty string, got: """#,
        ),
        (
            "close_stdin not a boolean",
            |v| set(v, &["close_stdin"], json!(0)),
            "close_stdin must be a boolean",
        ),
        (
            "execution_surface not a map",
            |v| set(v, &["execution_surface"], json!("local_subprocess")),
            "execution_surface must be a map",
        ),
        (
            "shutdown_policy not a map",
            |v| set(v, &["shutdown_policy"], json!(2000)),
            "shutdown_policy must be a map",
        ),
    ];
    run_table::<ProcessExecutionIntent>(fx::process_execution_intent, rows);
    run_table::<ProcessExecutionIntent>(fx::process_execution_intent, ENVELOPE_ROWS);
}

#[test]
fn process_intent_permits_empty_argv_values() {
    let mut attrs = json!({
        "envelope": fx::process_execution_intent()["envelope"].clone(),
        "command": "claude",
        "argv": ["--system-prompt", ""],
        "stdio_mode": "pipe"
    });
    let intent = assert_round_trip::<ProcessExecutionIntent>(&attrs);
    assert_eq!(intent.argv, ["--system-prompt", ""]);

    attrs["argv"] = json!(["", "", " "]);
    assert_eq!(
        ProcessExecutionIntent::from_value(&attrs).unwrap().argv,
        ["", "", " "]
    );
}

#[test]
fn process_intent_defaults_close_stdin_true_clear_env_false_stderr_separate() {
    let intent = ProcessExecutionIntent::from_value(&json!({
        "envelope": fx::process_execution_intent()["envelope"].clone(),
        "command": "sh",
        "stdio_mode": "pipe",
        "stderr_mode": null,
        "close_stdin": null
    }))
    .unwrap();
    assert!(intent.close_stdin);
    assert!(!intent.clear_env);
    assert_eq!(intent.stderr_mode, StderrMode::Separate);
    assert_eq!(intent.stdin, Value::Null);
    assert!(intent.argv.is_empty());
    assert_eq!(intent.cwd, None);
    assert_eq!(intent.user, None);
    assert!(intent.execution_surface.is_empty());
    let dumped = intent.to_value();
    assert_eq!(dumped["close_stdin"], true);
    assert_eq!(dumped["clear_env"], false);
    assert_eq!(dumped["stderr_mode"], "separate");
    assert_eq!(dumped["stdin"], Value::Null);
}

#[test]
fn process_intent_carries_one_shot_stdin_and_subprocess_controls() {
    let intent = assert_round_trip::<ProcessExecutionIntent>(&json!({
        "envelope": fx::process_execution_intent()["envelope"].clone(),
        "command": "sh",
        "argv": ["-c", "printf ready"],
        "env_projection": {"ONLY_ME": "set"},
        "cwd": "/tmp",
        "stdin": "payload",
        "clear_env": true,
        "user": "runner",
        "stdio_mode": "pipe",
        "stderr_mode": "stdout",
        "close_stdin": false,
        "execution_surface": {"surface_kind": "local_subprocess"},
        "shutdown_policy": {"graceful_timeout_ms": 50}
    }));
    assert_eq!(intent.stdin, json!("payload"));
    assert!(intent.clear_env);
    assert_eq!(intent.user.as_deref(), Some("runner"));
    assert_eq!(intent.stderr_mode, StderrMode::Stdout);
    assert!(!intent.close_stdin);
    assert_eq!(intent.to_value()["stderr_mode"], "stdout");
}

#[test]
fn stderr_mode_wire_names_are_closed() {
    assert_eq!(StderrMode::parse("separate"), Some(StderrMode::Separate));
    assert_eq!(StderrMode::parse("stdout"), Some(StderrMode::Stdout));
    assert_eq!(StderrMode::parse("stderr"), None);
    assert_eq!(StderrMode::default(), StderrMode::Separate);
    assert_eq!(StderrMode::Stdout.to_string(), "stdout");
}

#[test]
fn process_fixture_matches_the_process_route() {
    let intent = assert_round_trip::<ProcessExecutionIntent>(&fx::process_execution_intent());
    let route = ExecutionRoute::from_value(&fx::process_execution_route()).unwrap();
    assert_eq!(intent.envelope.family, route.family);
    assert_eq!(intent.envelope.protocol, route.protocol);
    assert_eq!(
        Some(intent.envelope.idempotency_key.as_str()),
        route.lineage.get("idempotency_key")
    );
}

// ---------------------------------------------------------------------------------------------
// JsonRpcExecutionIntent.v1

#[test]
fn jsonrpc_intent_rejects_each_invalid_field_with_the_upstream_message() {
    let rows: &[Row] = &[
        (
            "other version",
            |v| {
                set(
                    v,
                    &["contract_version"],
                    json!("jsonrpc_execution_intent.v0"),
                )
            },
            r#"expected contract_version "jsonrpc_execution_intent.v1", got: "jsonrpc_execution_intent.v0""#,
        ),
        (
            "transport_binding not a map",
            |v| set(v, &["transport_binding"], json!("stdio")),
            "transport_binding must be a map",
        ),
        (
            "protocol_schema not a map",
            |v| set(v, &["protocol_schema"], json!("jsonrpc-2.0")),
            "protocol_schema must be a map",
        ),
        (
            "request not a map",
            |v| set(v, &["request"], json!([{"method": "x"}])),
            "request must be a map",
        ),
        (
            "session_policy not a map",
            |v| set(v, &["session_policy"], json!(true)),
            "session_policy must be a map",
        ),
    ];
    run_table::<JsonRpcExecutionIntent>(fx::jsonrpc_execution_intent, rows);
    run_table::<JsonRpcExecutionIntent>(fx::jsonrpc_execution_intent, ENVELOPE_ROWS);
}

#[test]
fn jsonrpc_fixture_uses_process_family_and_jsonrpc_protocol() {
    let intent = assert_round_trip::<JsonRpcExecutionIntent>(&fx::jsonrpc_execution_intent());
    let route = ExecutionRoute::from_value(&fx::jsonrpc_execution_route()).unwrap();
    assert_eq!(intent.envelope.family, "process");
    assert_eq!(intent.envelope.protocol, "jsonrpc");
    assert_eq!(intent.envelope.family, route.family);
    assert_eq!(intent.envelope.protocol, route.protocol);
    assert_eq!(intent.transport_binding["mode"], "stdio");
    assert_eq!(intent.protocol_schema["schema"], "jsonrpc-2.0");
    assert_eq!(intent.session_policy["attachable"], true);
}

#[test]
fn jsonrpc_intent_maps_default_to_empty() {
    let intent = JsonRpcExecutionIntent::from_value(&json!({
        "envelope": fx::jsonrpc_execution_intent()["envelope"].clone()
    }))
    .unwrap();
    assert!(intent.transport_binding.is_empty());
    assert!(intent.protocol_schema.is_empty());
    assert!(intent.request.is_empty());
    assert!(intent.session_policy.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Shared mechanics

#[test]
fn intents_refuse_non_object_attrs_and_ignore_unknown_keys() {
    fn check<T: Contract>(base: fn() -> Value) {
        for input in [json!(null), json!([]), json!("attrs")] {
            assert!(
                T::from_value(&input)
                    .unwrap_err()
                    .to_string()
                    .starts_with("expected map attrs"),
                "{}",
                T::NAME
            );
        }
        let mut attrs = base();
        attrs["provider_supplied_key"] = json!({"x": 1});
        attrs["contract_version"] = json!(T::NAME);
        assert_eq!(
            T::from_value(&attrs).unwrap(),
            T::from_value(&base()).unwrap()
        );
    }
    check::<HttpExecutionIntent>(fx::http_execution_intent);
    check::<ProcessExecutionIntent>(fx::process_execution_intent);
    check::<JsonRpcExecutionIntent>(fx::jsonrpc_execution_intent);
}

#[test]
fn every_intent_fixture_round_trips_through_its_dump() {
    assert_round_trip::<HttpExecutionIntent>(&fx::http_execution_intent());
    assert_round_trip::<ProcessExecutionIntent>(&fx::process_execution_intent());
    assert_round_trip::<JsonRpcExecutionIntent>(&fx::jsonrpc_execution_intent());
}

// ---------------------------------------------------------------------------------------------
// Property round-trips

fn envelope() -> impl Strategy<Value = ExecutionIntentEnvelope> {
    (
        (text(), text(), text(), opt_text(), text(), text(), text()),
        (opt_text(), opt_text(), opt_text()),
        (
            prop::collection::vec("[a-z0-9/._-]{0,12}", 0..3),
            prop::collection::vec(text(), 0..3),
            json_map(),
        ),
    )
        .prop_map(
            |(
                (intent_id, family, protocol, trace_id, idempotency_key, bsid, decision_id),
                (lease_ref, attempt_ref, cancellation_ref),
                (refs, requested_capabilities, extensions),
            )| ExecutionIntentEnvelope {
                intent_id,
                family,
                protocol,
                trace_id,
                idempotency_key,
                boundary_session_id: bsid,
                decision_id,
                lease_ref,
                route_template_ref: None,
                credential_handle_refs: refs
                    .into_iter()
                    .map(|r| format!("credential-handle://{r}"))
                    .collect(),
                attempt_ref,
                deadline_at: Some("2026-04-10T12:00:00.5+01:00".to_owned()),
                cancellation_ref,
                requested_capabilities,
                extensions,
            },
        )
}

fn http_intent() -> impl Strategy<Value = HttpExecutionIntent> {
    (
        envelope(),
        (text(), text()),
        (json_map(), json_value(), json_map(), json_map()),
        opt_text(),
    )
        .prop_map(
            |(
                envelope,
                (request_shape, stream_mode),
                (headers, body, egress_surface, timeouts),
                retry_class,
            )| HttpExecutionIntent {
                envelope,
                request_shape,
                stream_mode,
                headers,
                body,
                egress_surface,
                timeouts,
                retry_class,
            },
        )
}

fn process_intent() -> impl Strategy<Value = ProcessExecutionIntent> {
    (
        envelope(),
        (text(), prop::collection::vec("\\PC{0,8}", 0..4), json_map()),
        (opt_text(), json_value(), any::<bool>(), opt_text(), text()),
        (
            prop_oneof![Just(StderrMode::Separate), Just(StderrMode::Stdout)],
            any::<bool>(),
            json_map(),
            json_map(),
        ),
    )
        .prop_map(
            |(
                envelope,
                (command, argv, env_projection),
                (cwd, stdin, clear_env, user, stdio_mode),
                (stderr_mode, close_stdin, execution_surface, shutdown_policy),
            )| ProcessExecutionIntent {
                envelope,
                command,
                argv,
                env_projection,
                cwd,
                stdin,
                clear_env,
                user,
                stdio_mode,
                stderr_mode,
                close_stdin,
                execution_surface,
                shutdown_policy,
            },
        )
}

fn jsonrpc_intent() -> impl Strategy<Value = JsonRpcExecutionIntent> {
    (envelope(), json_map(), json_map(), json_map(), json_map()).prop_map(
        |(envelope, transport_binding, protocol_schema, request, session_policy)| {
            JsonRpcExecutionIntent {
                envelope,
                transport_binding,
                protocol_schema,
                request,
                session_policy,
            }
        },
    )
}

fn law<T: Contract>(value: T) -> Result<(), TestCaseError> {
    prop_assert_eq!(T::from_value(&value.to_value()), Ok(value.clone()));
    let text = ep_contracts::dump(&value);
    prop_assert_eq!(ep_contracts::parse::<T>(&text), Ok(value.clone()));
    let reparsed: Value = serde_json::from_str(&text).unwrap();
    prop_assert_eq!(&reparsed["contract_version"], T::NAME);
    prop_assert!(reparsed["envelope"].is_object());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn http_intent_round_trips_for_any_valid_value(value in http_intent()) { law(value)?; }

    #[test]
    fn process_intent_round_trips_for_any_valid_value(value in process_intent()) {
        law(value)?;
    }

    #[test]
    fn jsonrpc_intent_round_trips_for_any_valid_value(value in jsonrpc_intent()) {
        law(value)?;
    }

    #[test]
    fn intent_fields_replaced_by_arbitrary_json_never_panic(
        key in prop_oneof![
            Just("envelope"), Just("argv"), Just("stderr_mode"), Just("close_stdin"),
            Just("body"), Just("stdin"), Just("request"), Just("command"),
        ],
        replacement in json_value(),
    ) {
        for base in [
            fx::http_execution_intent(),
            fx::process_execution_intent(),
            fx::jsonrpc_execution_intent(),
        ] {
            let mut attrs = base;
            attrs[key] = replacement.clone();
            let _ = HttpExecutionIntent::from_value(&attrs);
            let _ = ProcessExecutionIntent::from_value(&attrs);
            let _ = JsonRpcExecutionIntent::from_value(&attrs);
        }
    }
}
