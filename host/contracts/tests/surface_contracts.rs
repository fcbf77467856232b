//! Placements (§6): `execution_surface.v1` parsing in the upstream check order, launch-key
//! stripping, the static capability table, closed capability vocabularies, surface helpers and
//! the Local/SSH/Guest placement families.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ep_contracts::fixtures::flow as fx;
use ep_contracts::surface::{
    self, CapabilitiesError, ExecutionSurface, Guest, InterruptKind, LAUNCH_KEYS, Local,
    PathSemantics, Placement, PlacementCapabilities, PlacementFamily, Ssh, StartupKind,
    SurfaceError, SurfaceKind,
};
use ep_contracts::{Contract, ContractError};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// One check-order rule: the attrs, the typed error and its exact message.
type Row = (&'static str, Value, SurfaceError, &'static str);

fn rows() -> Vec<Row> {
    vec![
        (
            "attrs not a map",
            json!(["surface_kind", "ssh_exec"]),
            SurfaceError::InvalidExecutionSurface(json!(["surface_kind", "ssh_exec"])),
            r#"invalid execution surface: expected a map, got: ["surface_kind","ssh_exec"]"#,
        ),
        (
            "v0 contract version",
            json!({"contract_version": "execution_surface.v0"}),
            SurfaceError::InvalidContractVersion(json!("execution_surface.v0")),
            r#"invalid execution surface: invalid contract_version "execution_surface.v0""#,
        ),
        (
            "numeric contract version",
            json!({"contract_version": 1}),
            SurfaceError::InvalidContractVersion(json!(1)),
            "invalid execution surface: invalid contract_version 1",
        ),
        (
            "unknown surface kind",
            json!({"surface_kind": "x"}),
            SurfaceError::InvalidSurfaceKind(json!("x")),
            r#"invalid execution surface: invalid surface_kind "x""#,
        ),
        (
            "lower_simulation is not a placement kind",
            json!({"surface_kind": "lower_simulation"}),
            SurfaceError::InvalidSurfaceKind(json!("lower_simulation")),
            r#"invalid execution surface: invalid surface_kind "lower_simulation""#,
        ),
        (
            "non-string surface kind",
            json!({"surface_kind": 3}),
            SurfaceError::InvalidSurfaceKind(json!(3)),
            "invalid execution surface: invalid surface_kind 3",
        ),
        (
            "transport options not a map",
            json!({"transport_options": ["destination", "ssh.example"]}),
            SurfaceError::InvalidTransportOptions(json!(["destination", "ssh.example"])),
            r#"invalid execution surface: invalid transport_options ["destination","ssh.example"]"#,
        ),
        (
            "empty target_id",
            json!({"target_id": ""}),
            SurfaceError::InvalidTargetId(json!("")),
            r#"invalid execution surface: invalid target_id """#,
        ),
        (
            "numeric lease_ref",
            json!({"lease_ref": 7}),
            SurfaceError::InvalidLeaseRef(json!(7)),
            "invalid execution surface: invalid lease_ref 7",
        ),
        (
            "map surface_ref",
            json!({"surface_ref": {}}),
            SurfaceError::InvalidSurfaceRef(json!({})),
            "invalid execution surface: invalid surface_ref {}",
        ),
        (
            "empty boundary_class",
            json!({"boundary_class": ""}),
            SurfaceError::InvalidBoundaryClass(json!("")),
            r#"invalid execution surface: invalid boundary_class """#,
        ),
        (
            "boolean boundary_class",
            json!({"boundary_class": true}),
            SurfaceError::InvalidBoundaryClass(json!(true)),
            "invalid execution surface: invalid boundary_class true",
        ),
        (
            "observability not a map",
            json!({"observability": "on"}),
            SurfaceError::InvalidObservability(json!("on")),
            r#"invalid execution surface: invalid observability "on""#,
        ),
        (
            "null observability",
            json!({"observability": null}),
            SurfaceError::InvalidObservability(Value::Null),
            "invalid execution surface: invalid observability nil",
        ),
        // Check order: the first failing check wins.
        (
            "version checked before kind",
            json!({"contract_version": "execution_surface.v0", "surface_kind": "x"}),
            SurfaceError::InvalidContractVersion(json!("execution_surface.v0")),
            r#"invalid execution surface: invalid contract_version "execution_surface.v0""#,
        ),
        (
            "kind checked before transport options",
            json!({"surface_kind": "x", "transport_options": 1}),
            SurfaceError::InvalidSurfaceKind(json!("x")),
            r#"invalid execution surface: invalid surface_kind "x""#,
        ),
        (
            "transport options checked before target_id",
            json!({"transport_options": 1, "target_id": ""}),
            SurfaceError::InvalidTransportOptions(json!(1)),
            "invalid execution surface: invalid transport_options 1",
        ),
        (
            "target_id checked before lease_ref",
            json!({"target_id": "", "lease_ref": ""}),
            SurfaceError::InvalidTargetId(json!("")),
            r#"invalid execution surface: invalid target_id """#,
        ),
        (
            "lease_ref checked before surface_ref",
            json!({"lease_ref": "", "surface_ref": ""}),
            SurfaceError::InvalidLeaseRef(json!("")),
            r#"invalid execution surface: invalid lease_ref """#,
        ),
        (
            "surface_ref checked before boundary_class",
            json!({"surface_ref": "", "boundary_class": ""}),
            SurfaceError::InvalidSurfaceRef(json!("")),
            r#"invalid execution surface: invalid surface_ref """#,
        ),
        (
            "boundary_class checked before observability",
            json!({"boundary_class": "", "observability": 1}),
            SurfaceError::InvalidBoundaryClass(json!("")),
            r#"invalid execution surface: invalid boundary_class """#,
        ),
    ]
}

#[test]
fn surface_rejects_each_invalid_field_in_check_order_with_a_typed_error() {
    let mut failures = Vec::new();
    for (rule, attrs, expected, message) in rows() {
        match ExecutionSurface::parse(&attrs) {
            Ok(s) => failures.push(format!("{rule}: accepted as {s:?}")),
            Err(err) => {
                if err != expected {
                    failures.push(format!("{rule}: got {err:?}, expected {expected:?}"));
                }
                if err.to_string() != message {
                    failures.push(format!("{rule}: got `{err}`, expected `{message}`"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn surface_contract_errors_are_rules_naming_the_field() {
    for (rule, attrs, expected, message) in rows() {
        let err = ExecutionSurface::from_value(&attrs).unwrap_err();
        assert_eq!(
            err,
            ContractError::rule(expected.field(), message),
            "{rule}"
        );
        assert_eq!(err.field(), Some(expected.field()));
    }
}

#[test]
fn execution_surface_v0_is_rejected() {
    assert_eq!(
        ExecutionSurface::parse(&json!({"contract_version": "execution_surface.v0"})),
        Err(SurfaceError::InvalidContractVersion(json!(
            "execution_surface.v0"
        )))
    );
}

#[test]
fn ssh_surface_strips_launch_keys_and_keeps_the_destination() {
    let surface = ExecutionSurface::parse(&json!({
        "contract_version": "execution_surface.v1",
        "surface_kind": "ssh_exec",
        "target_id": "ssh-target-1",
        "boundary_class": "remote_cli",
        "observability": {"suite": "contract"},
        "transport_options": {
            "destination": "ssh.example",
            "command": "cat",
            "cwd": "/tmp/ignored"
        }
    }))
    .unwrap();
    assert_eq!(surface.surface_kind, SurfaceKind::SshExec);
    assert_eq!(surface.target_id.as_deref(), Some("ssh-target-1"));
    assert_eq!(surface.boundary_class.as_deref(), Some("remote_cli"));
    assert_eq!(
        surface.to_map(),
        json!({
            "contract_version": "execution_surface.v1",
            "surface_kind": "ssh_exec",
            "transport_options": {"destination": "ssh.example"},
            "target_id": "ssh-target-1",
            "lease_ref": null,
            "surface_ref": null,
            "boundary_class": "remote_cli",
            "observability": {"suite": "contract"}
        })
    );
}

#[test]
fn every_launch_key_is_stripped_and_other_options_are_kept() {
    let mut options = Map::new();
    for key in LAUNCH_KEYS {
        options.insert(key.to_owned(), json!("launch"));
    }
    options.insert("destination".into(), json!("host"));
    options.insert("port".into(), json!(2222));
    options.insert(
        "ssh_options".into(),
        json!({"StrictHostKeyChecking": false}),
    );
    let surface = ExecutionSurface::parse(&json!({
        "surface_kind": "ssh_exec",
        "transport_options": options
    }))
    .unwrap();
    let keys: Vec<&str> = surface
        .transport_options
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["destination", "port", "ssh_options"]);
    for key in ["command", "args", "cwd", "env", "clear_env?", "user"] {
        assert!(LAUNCH_KEYS.contains(&key), "{key}");
    }
}

#[test]
fn surface_defaults_to_local_subprocess_with_empty_maps() {
    for attrs in [
        json!({}),
        json!({"surface_kind": null, "transport_options": null, "target_id": null}),
    ] {
        let surface = ExecutionSurface::parse(&attrs).unwrap();
        assert_eq!(surface, ExecutionSurface::default());
        assert_eq!(surface.surface_kind, SurfaceKind::LocalSubprocess);
        assert_eq!(surface.placement_family(), PlacementFamily::Local);
    }
    assert_eq!(
        ExecutionSurface::of_kind(SurfaceKind::GuestBridge).surface_kind,
        SurfaceKind::GuestBridge
    );
}

#[test]
fn surface_fixtures_round_trip_and_unknown_keys_are_ignored() {
    for attrs in [fx::execution_surface(), fx::ssh_execution_surface()] {
        let surface = ExecutionSurface::from_value(&attrs).unwrap();
        assert_eq!(
            ExecutionSurface::from_value(&surface.to_value()),
            Ok(surface.clone())
        );
        assert_eq!(
            ep_contracts::parse::<ExecutionSurface>(&ep_contracts::dump(&surface)),
            Ok(surface.clone())
        );
        let mut extra = attrs.clone();
        extra["provider_supplied_key"] = json!("ignored");
        assert_eq!(ExecutionSurface::from_value(&extra), Ok(surface));
    }
    assert_eq!(ExecutionSurface::NAME, "execution_surface.v1");
}

// ---------------------------------------------------------------------------------------------
// Capabilities

#[test]
fn static_capability_table_matches_the_inventory() {
    // kind, family, remote, startup, path, run, stream, pty, user, env, cwd, interrupt
    let table = [
        (
            "local_subprocess",
            PlacementFamily::Local,
            false,
            StartupKind::Spawn,
            PathSemantics::Local,
            [true, true, true, true, true, true],
            InterruptKind::Signal,
        ),
        (
            "ssh_exec",
            PlacementFamily::Ssh,
            true,
            StartupKind::Spawn,
            PathSemantics::Remote,
            [true, true, true, true, true, true],
            InterruptKind::Signal,
        ),
        (
            "guest_bridge",
            PlacementFamily::Guest,
            true,
            StartupKind::Bridge,
            PathSemantics::Guest,
            [true, true, false, false, false, false],
            InterruptKind::Rpc,
        ),
    ];
    for (kind, family, remote, startup, path, flags, interrupt) in table {
        let caps = surface::capabilities(kind).unwrap();
        assert_eq!(surface::placement_family(kind), Some(family), "{kind}");
        assert_eq!(caps.remote, remote, "{kind}");
        assert_eq!(caps.startup_kind, startup, "{kind}");
        assert_eq!(caps.path_semantics, path, "{kind}");
        assert_eq!(
            [
                caps.supports_run,
                caps.supports_streaming_stdio,
                caps.supports_pty,
                caps.supports_user,
                caps.supports_env,
                caps.supports_cwd
            ],
            flags,
            "{kind}"
        );
        assert_eq!(caps.interrupt_kind, interrupt, "{kind}");
    }
}

#[test]
fn capabilities_reject_values_outside_the_closed_set() {
    let cases = [
        (
            json!({"startup_kind": "provider_spawn"}),
            "startup_kind",
            json!("provider_spawn"),
            r#"invalid placement capabilities: startup_kind "provider_spawn""#,
        ),
        (
            json!({"path_semantics": "cloud"}),
            "path_semantics",
            json!("cloud"),
            r#"invalid placement capabilities: path_semantics "cloud""#,
        ),
        (
            json!({"interrupt_kind": "SIGINT"}),
            "interrupt_kind",
            json!("SIGINT"),
            r#"invalid placement capabilities: interrupt_kind "SIGINT""#,
        ),
        (
            json!({"startup_kind": 1}),
            "startup_kind",
            json!(1),
            "invalid placement capabilities: startup_kind 1",
        ),
        (
            json!({"remote?": "yes"}),
            "remote?",
            json!("yes"),
            r#"invalid placement capabilities: remote? "yes""#,
        ),
        (
            json!({"supports_pty?": null}),
            "supports_pty?",
            Value::Null,
            "invalid placement capabilities: supports_pty? nil",
        ),
    ];
    for (attrs, key, value, message) in cases {
        let err = PlacementCapabilities::from_value(&attrs).unwrap_err();
        assert_eq!(err, CapabilitiesError::InvalidValue { key, value });
        assert_eq!(err.to_string(), message);
    }
    assert_eq!(
        PlacementCapabilities::from_value(&json!("spawn")).unwrap_err(),
        CapabilitiesError::NotAMap(json!("spawn"))
    );
}

#[test]
fn capabilities_parse_every_closed_name_and_default_missing_keys() {
    assert_eq!(
        PlacementCapabilities::from_value(&json!({})).unwrap(),
        PlacementCapabilities::default()
    );
    for startup in StartupKind::ALL {
        for path in PathSemantics::ALL {
            for interrupt in InterruptKind::ALL {
                let caps = PlacementCapabilities::from_value(&json!({
                    "startup_kind": startup.as_str(),
                    "path_semantics": path.as_str(),
                    "interrupt_kind": interrupt.as_str(),
                    "remote?": true,
                    "supports_cwd?": false
                }))
                .unwrap();
                assert_eq!(caps.startup_kind, *startup);
                assert_eq!(caps.path_semantics, *path);
                assert_eq!(caps.interrupt_kind, *interrupt);
                assert!(caps.remote);
                assert!(!caps.supports_cwd);
                assert!(caps.supports_env);
            }
        }
    }
    let names: Vec<&str> = InterruptKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, ["signal", "stdin", "rpc", "none"]);
}

#[test]
fn table_capabilities_round_trip_through_their_wire_form() {
    for kind in SurfaceKind::ALL {
        let caps = kind.capabilities();
        assert_eq!(
            PlacementCapabilities::from_value(&caps.to_value()),
            Ok(caps)
        );
    }
    assert_eq!(
        SurfaceKind::GuestBridge.capabilities().to_value()["supports_pty?"],
        false
    );
}

// ---------------------------------------------------------------------------------------------
// Helpers

#[test]
fn helpers_accept_kind_names_attrs_and_parsed_surfaces() {
    let caps = surface::capabilities("local_subprocess").unwrap();
    assert!(!caps.remote);
    assert_eq!(caps.path_semantics, PathSemantics::Local);

    assert_eq!(
        surface::path_semantics("ssh_exec"),
        Some(PathSemantics::Remote)
    );
    assert_eq!(
        surface::path_semantics(&json!({"surface_kind": "guest_bridge"})),
        Some(PathSemantics::Guest)
    );
    assert!(!surface::is_nonlocal_path("local_subprocess"));
    assert!(surface::is_nonlocal_path("ssh_exec"));
    assert!(surface::is_nonlocal_path(
        &json!({"surface_kind": "guest_bridge"})
    ));
    assert!(surface::is_remote("ssh_exec"));
    assert!(surface::is_remote(&SurfaceKind::GuestBridge));
    assert!(!surface::is_remote(&ExecutionSurface::default()));

    // A missing kind means local_subprocess, as upstream.
    assert_eq!(
        surface::placement_family(&json!({})),
        Some(PlacementFamily::Local)
    );
    assert_eq!(
        surface::placement_family(&Value::Null),
        Some(PlacementFamily::Local)
    );
    let owned = String::from("guest_bridge");
    assert_eq!(
        surface::placement_family(&owned),
        Some(PlacementFamily::Guest)
    );
}

#[test]
fn helpers_refuse_unknown_kinds_without_guessing() {
    assert_eq!(surface::placement_family("provider_spawn"), None);
    assert_eq!(surface::path_semantics("lower_simulation"), None);
    assert!(!surface::is_remote("remote_shell"));
    assert!(!surface::is_nonlocal_path(&json!({"surface_kind": 4})));
    assert_eq!(
        surface::capabilities("x"),
        Err(SurfaceError::InvalidSurfaceKind(json!("x")))
    );
    assert_eq!(
        surface::capabilities(&json!([1])),
        Err(SurfaceError::InvalidSurfaceKind(json!([1])))
    );
}

#[test]
fn supported_surface_kinds_are_sorted() {
    assert_eq!(
        surface::supported_surface_kinds(),
        ["guest_bridge", "local_subprocess", "ssh_exec"]
    );
    for kind in SurfaceKind::ALL {
        assert_eq!(SurfaceKind::parse(kind.as_str()), Some(kind));
    }
    for family in PlacementFamily::ALL {
        assert_eq!(PlacementFamily::parse(family.as_str()), Some(family));
    }
}

// ---------------------------------------------------------------------------------------------
// Placement families

#[test]
fn placement_families_map_their_surface_kinds_without_overstating_isolation() {
    assert_eq!(Local::supported_surface_kinds(), ["local_subprocess"]);
    assert_eq!(Ssh::supported_surface_kinds(), ["ssh_exec"]);
    assert_eq!(Guest::supported_surface_kinds(), ["guest_bridge"]);
    assert_eq!(Local::placement_family(), "local");
    assert_eq!(Ssh::placement_family(), "ssh");
    assert_eq!(Guest::placement_family(), "guest");

    let surface_of = |kind: &str| ExecutionSurface::parse(&json!({"surface_kind": kind})).unwrap();
    assert!(Local::supports_surface(&surface_of("local_subprocess")));
    assert!(Ssh::supports_surface(&surface_of("ssh_exec")));
    assert!(Guest::supports_surface(&surface_of("guest_bridge")));

    assert!(!Ssh::supports_surface(&surface_of("local_subprocess")));
    assert!(!Guest::supports_surface(&surface_of("ssh_exec")));
    assert!(!Local::supports_surface("no_such_kind"));

    for family in PlacementFamily::ALL {
        for kind in family.surface_kinds() {
            assert_eq!(surface::placement_family(*kind), Some(family));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property round-trips

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("\\PC{0,8}", json_value(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("\\PC{1,12}")
}

fn surface_value() -> impl Strategy<Value = ExecutionSurface> {
    (
        prop::sample::select(SurfaceKind::ALL.to_vec()),
        json_map(),
        (opt_text(), opt_text(), opt_text(), opt_text()),
        json_map(),
    )
        .prop_map(
            |(
                surface_kind,
                options,
                (target_id, lease_ref, surface_ref, boundary_class),
                observability,
            )| ExecutionSurface {
                surface_kind,
                transport_options: options
                    .into_iter()
                    .filter(|(k, _)| !LAUNCH_KEYS.contains(&k.as_str()))
                    .collect(),
                target_id,
                lease_ref,
                surface_ref,
                boundary_class,
                observability,
            },
        )
}

fn capabilities_value() -> impl Strategy<Value = PlacementCapabilities> {
    (
        prop::collection::vec(any::<bool>(), 7),
        prop::sample::select(StartupKind::ALL.to_vec()),
        prop::sample::select(PathSemantics::ALL.to_vec()),
        prop::sample::select(InterruptKind::ALL.to_vec()),
    )
        .prop_map(
            |(b, startup_kind, path_semantics, interrupt_kind)| PlacementCapabilities {
                remote: b[0],
                startup_kind,
                path_semantics,
                supports_run: b[1],
                supports_streaming_stdio: b[2],
                supports_pty: b[3],
                supports_user: b[4],
                supports_env: b[5],
                supports_cwd: b[6],
                interrupt_kind,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn surface_round_trips_for_any_valid_value(value in surface_value()) {
        prop_assert_eq!(ExecutionSurface::from_value(&value.to_value()), Ok(value.clone()));
        let text = ep_contracts::dump(&value);
        prop_assert_eq!(ep_contracts::parse::<ExecutionSurface>(&text), Ok(value.clone()));
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(reparsed.as_object().unwrap().len(), 8);
        prop_assert_eq!(&reparsed["contract_version"], "execution_surface.v1");
    }

    #[test]
    fn launch_keys_never_survive_parsing(options in json_map(), launch in json_value()) {
        let mut options = options;
        for key in LAUNCH_KEYS {
            options.insert(key.to_owned(), launch.clone());
        }
        let surface = ExecutionSurface::parse(&json!({"transport_options": options})).unwrap();
        for key in LAUNCH_KEYS {
            prop_assert!(!surface.transport_options.contains_key(key));
        }
    }

    #[test]
    fn capabilities_round_trip_for_any_valid_value(value in capabilities_value()) {
        prop_assert_eq!(PlacementCapabilities::from_value(&value.to_value()), Ok(value));
    }

    #[test]
    fn surface_parsing_never_panics(input in json_value(), field in prop_oneof![
        Just("contract_version"), Just("surface_kind"), Just("transport_options"),
        Just("target_id"), Just("boundary_class"), Just("observability"),
    ]) {
        let _ = ExecutionSurface::parse(&input);
        let _ = PlacementCapabilities::from_value(&input);
        let _ = surface::placement_family(&input);
        let mut attrs = fx::ssh_execution_surface();
        attrs[field] = input;
        let _ = ExecutionSurface::from_value(&attrs);
    }
}
