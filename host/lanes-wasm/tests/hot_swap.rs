//! Hot swap of wasm lanes with real components: generations replaced under load, refused
//! artifacts, automatic and operator rollback, and the plugin directory watch. Evidence is read
//! back from the node's memory sink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
mod swap_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ep_contracts::boundary::ResultStatus;
use ep_lanes_wasm::swap::{LANE_ACTIVATED, LANE_REJECTED, LANE_ROLLED_BACK};
use ep_lanes_wasm::testing::GUEST_WIT;
use ep_lanes_wasm::{
    HostPolicy, LaneSlot, LaneSource, RollbackPolicy, RollbackReason, SwapError, SwapOutcome,
    WatchConfig, WatchError, WithdrawalState, register_lane_slot, watch_plugin_dir,
};
use ep_node::LaneAdapter;
use serde_json::{Value, json};
use support::*;
use swap_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swaps_under_load_lose_no_execution_and_each_result_names_one_of_the_two_digests() {
    let echo = bytes_of("echo");
    let echo_v2 = bytes_of("echo-v2");
    let (a, b) = (sha256(&echo), sha256(&echo_v2));
    let slot = echo_slot(RollbackPolicy::default()).await;
    let (node, sink) = node();
    register_lane_slot(&node, &slot).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let node = node.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut results = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let n = results.len();
                    results.push(
                        node.execute(governed(json!({"worker": worker, "n": n})))
                            .await,
                    );
                }
                results
            })
        })
        .collect();
    for swap in 0..20 {
        let bytes = if swap % 2 == 0 { &echo_v2 } else { &echo };
        assert_eq!(activate(&slot, bytes).await, swap + 2);
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    let mut by_digest: BTreeMap<String, usize> = BTreeMap::new();
    for worker in workers {
        for result in guarded(worker).await.unwrap() {
            assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
            *by_digest.entry(digest_of(&result)).or_default() += 1;
        }
    }
    let digests: BTreeSet<&String> = by_digest.keys().collect();
    assert!(
        digests.iter().all(|d| **d == a || **d == b),
        "{by_digest:?}"
    );
    assert_eq!(digests.len(), 2, "both generations served: {by_digest:?}");

    // The node's records agree: each completion names exactly one of the two digests.
    let completed = payloads(&sink, "execution.completed");
    assert_eq!(completed.len(), by_digest.values().sum::<usize>());
    for payload in &completed {
        let lane_evidence = payload["lane_evidence"].as_array().unwrap();
        assert_eq!(lane_evidence.len(), 1, "{payload}");
        let digest = lane_evidence[0]["component_digest"].as_str().unwrap();
        assert!(digest == a || digest == b, "{payload}");
    }
    // The descriptor each execution was admitted under names the digest that ran it, unless
    // two publishes overtook it between admission and dispatch (reported, never asserted).
    let started: BTreeMap<String, String> = sink
        .records()
        .into_iter()
        .filter(|r| r.evidence_type.as_deref() == Some("execution.started"))
        .map(|r| {
            let digest = &r.payload["target_descriptor"]["metadata"]["component_digest"];
            (
                r.execution_ref.unwrap().as_str().to_owned(),
                digest.as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let overtaken = sink
        .records()
        .into_iter()
        .filter(|r| r.evidence_type.as_deref() == Some("execution.completed"))
        .filter(|r| {
            let ran = &r.payload["lane_evidence"][0]["component_digest"];
            started
                .get(r.execution_ref.as_ref().unwrap().as_str())
                .map(String::as_str)
                != ran.as_str()
        })
        .count();
    eprintln!(
        "{} executions over 21 generations ({by_digest:?}); {overtaken} ran on another \
         generation than the one they were admitted to",
        completed.len()
    );
    // Twenty-one activations (registration + 20 swaps), numbered in order, never a refusal.
    let activations = payloads(&sink, LANE_ACTIVATED);
    let numbers: Vec<u64> = activations
        .iter()
        .map(|p| p["generation"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=21).collect::<Vec<_>>());
    assert_eq!(activations[1]["old_digest"], a.as_str());
    assert_eq!(activations[1]["new_digest"], b.as_str());
    assert!(payloads(&sink, LANE_REJECTED).is_empty());

    // In-flight work is over: only the serving and the previous generation are still alive,
    // and the target descriptor and the described lane name the serving digest.
    assert_eq!(slot.live_generations(), [20, 21]);
    let serving = slot.current();
    assert_eq!(serving.digest(), a);
    let described = node.describe();
    assert_eq!(
        described.verified_targets[0].metadata["component_digest"],
        serving.digest()
    );
    assert_eq!(
        described.registered_lanes[0].metadata["component_digest"],
        serving.digest()
    );
}

#[tokio::test]
async fn an_execution_runs_on_the_generation_that_validated_it_and_that_generation_is_then_dropped()
{
    let echo = bytes_of("echo");
    let echo_v2 = bytes_of("echo-v2");
    let slot = echo_slot(RollbackPolicy::default()).await;

    // Validated on generation 1 (echo); two publishes later only this execution holds it.
    let first = request(None, json!({"first": true}));
    slot.validate(&first).await.unwrap();
    activate(&slot, &echo_v2).await;
    activate(&slot, &echo).await;
    assert_eq!(slot.live_generations(), [1, 2, 3]);
    let result = guarded(slot.execute(first, ctx())).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(digest_of(&result), sha256(&echo));
    // It did not run on generation 3 (same bytes, but its window counted nothing) ...
    assert_eq!(slot.current().fault_counts().executions, 0);
    // ... and generation 1 went away with its last execution.
    assert_eq!(slot.live_generations(), [2, 3]);

    // Validated on echo (generation 3), executed after the switch to echo-v2: still echo.
    let second = request(None, json!({"second": true}));
    slot.validate(&second).await.unwrap();
    activate(&slot, &echo_v2).await;
    let result = guarded(slot.execute(second, ctx())).await;
    assert_eq!(digest_of(&result), sha256(&echo));
    // A new execution goes to the new generation.
    let third = request(None, json!({}));
    slot.validate(&third).await.unwrap();
    let result = guarded(slot.execute(third, ctx())).await;
    assert_eq!(digest_of(&result), sha256(&echo_v2));
    assert_eq!(result.evidence[0]["metrics"]["guest_version"], 2);
}

#[tokio::test]
async fn refused_artifacts_are_recorded_and_the_serving_generation_keeps_serving() {
    let (dir, wasm) = plugin_dir();
    let rt = runtime();
    let policy = HostPolicy::parse("[lanes.echo]\nlogging = false\n", "policy.toml").unwrap();
    let slot = LaneSlot::load_plugin(&rt, &wasm, &policy, RollbackPolicy::default())
        .await
        .unwrap();
    let (node, sink) = node();
    register_lane_slot(&node, &slot).await.unwrap();
    let serving = sha256(&std::fs::read(&wasm).unwrap());
    let v2 = bytes_of("echo-v2");
    let garbage = b"\0asm this is not a component".to_vec();

    let malformed = candidate(dir.path(), "malformed", &garbage, &manifest("echo", ""));
    let wrong_wit = candidate(
        dir.path(),
        "wrong-wit",
        &v2,
        &manifest("echo", "").replace(GUEST_WIT, "execution-plane:lane@9.0.0"),
    );
    let other_id = candidate(
        dir.path(),
        "other-id",
        &bytes_of("trap"),
        &manifest("trap", ""),
    );
    let beyond_policy = candidate(
        dir.path(),
        "beyond",
        &v2,
        &manifest("echo", "logging = true\n"),
    );
    let missing = dir.path().join("missing.wasm");
    let cases: [(&Path, &str, Option<String>); 5] = [
        (&malformed, "load", Some(sha256(&garbage))),
        (&wrong_wit, "manifest", Some(sha256(&v2))),
        (&other_id, "lane_id", Some(sha256(&bytes_of("trap")))),
        (&beyond_policy, "policy", Some(sha256(&v2))),
        (&missing, "read", None),
    ];
    for (path, stage, refused) in cases {
        let error = guarded(slot.swap_plugin(path, &policy)).await.unwrap_err();
        assert_eq!(error.stage(), stage, "{error}");
        let recorded = payloads(&sink, LANE_REJECTED).pop().unwrap();
        assert_eq!(recorded["stage"], stage, "{recorded}");
        assert_eq!(recorded["lane_id"], "echo");
        assert_eq!(recorded["source"], path.display().to_string());
        assert_eq!(recorded["refused_digest"], json!(refused));
        assert_eq!(recorded["serving_digest"], serving.as_str());
        assert_eq!(recorded["serving_generation"], 1);
        assert!(!recorded["reason"].as_str().unwrap().is_empty());
    }
    // Components without a manifest: bytes that are not a component, another lane's component.
    let error = guarded(slot.swap_component(garbage.clone()))
        .await
        .unwrap_err();
    assert!(matches!(error, SwapError::Load { .. }), "{error}");
    let error = guarded(slot.swap_component(guest("trap")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SwapError::LaneIdChanged { candidate, .. } if candidate == "trap"),
        "{error}"
    );
    assert_eq!(payloads(&sink, LANE_REJECTED).len(), 7);

    // Generation 1 serves throughout, through the node.
    assert_eq!(slot.current().number(), 1);
    assert_eq!(slot.live_generations(), [1]);
    let result = guarded(node.execute(governed(json!({"still": "serving"})))).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(digest_of(&result), serving);
    assert_eq!(payloads(&sink, LANE_ACTIVATED).len(), 1);

    // The same files again are no change at all.
    let unchanged = guarded(slot.swap_plugin(&wasm, &policy)).await.unwrap();
    assert_eq!(
        unchanged,
        SwapOutcome::Unchanged {
            generation: 1,
            digest: serving
        }
    );
}

#[tokio::test]
async fn a_generation_that_traps_is_rolled_back_automatically() {
    let echo = bytes_of("echo");
    let trap_echo = bytes_of("trap-echo");
    let slot = echo_slot(RollbackPolicy::default()).await;
    let (node, sink) = node();
    register_lane_slot(&node, &slot).await.unwrap();
    assert_eq!(activate(&slot, &trap_echo).await, 2);
    let faulty = slot.current();

    // Default policy: rolled back at the third trap (3 of 3 >= 50 %).
    for n in 0..3 {
        let result = guarded(node.execute(governed(json!({"n": n})))).await;
        assert_eq!(failure_of(&result).1, "trap", "{result:?}");
        assert_eq!(digest_of(&result), sha256(&trap_echo));
        assert_eq!(result.evidence[0]["fault"], "trap");
    }
    let rolled_back = wait_for(&sink, LANE_ROLLED_BACK, |_| true).await;
    assert_eq!(rolled_back["reason"], "automatic");
    assert_eq!(rolled_back["lane_id"], "echo");
    assert_eq!(rolled_back["from_digest"], sha256(&trap_echo).as_str());
    assert_eq!(rolled_back["to_digest"], sha256(&echo).as_str());
    assert_eq!(rolled_back["from_generation"], 2);
    assert_eq!(rolled_back["to_generation"], 1);
    assert_eq!(rolled_back["faults"], 3);
    assert_eq!(rolled_back["executions"], 3);
    assert_eq!(rolled_back["fault_causes"], json!({"trap": 3}));

    // The old digest serves again, through the node, and the descriptor names it.
    assert!(faulty.is_withdrawn());
    assert_eq!(slot.current().number(), 1);
    assert!(slot.previous().is_none());
    let result = guarded(node.execute(governed(json!({"after": "rollback"})))).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(digest_of(&result), sha256(&echo));
    assert_eq!(
        node.describe().verified_targets[0].metadata["component_digest"],
        sha256(&echo).as_str()
    );
    drop(faulty);
    assert_eq!(slot.live_generations(), [1]);
}

#[tokio::test]
async fn cancelled_executions_do_not_count_against_a_new_generation() {
    let slot = echo_slot(RollbackPolicy::default()).await;
    activate(&slot, &bytes_of("trap-echo")).await;
    for _ in 0..5 {
        let cancelled = ep_node::ExecutionContext::default();
        cancelled.cancel.cancel();
        let result = guarded(slot.execute(request(None, json!({})), cancelled)).await;
        assert_eq!(failure_of(&result).1, "cancelled");
    }
    assert_eq!(slot.current().number(), 2);
    assert_eq!(slot.current().fault_counts().executions, 0);
}

#[tokio::test]
async fn an_operator_rolls_back_to_the_previous_generation_once() {
    let echo = bytes_of("echo");
    let echo_v2 = bytes_of("echo-v2");
    let slot = echo_slot(RollbackPolicy::default()).await;
    let (node, sink) = node();
    register_lane_slot(&node, &slot).await.unwrap();
    activate(&slot, &echo_v2).await;
    let result = guarded(node.execute(governed(json!({})))).await;
    assert_eq!(digest_of(&result), sha256(&echo_v2));

    let rollback = guarded(slot.rollback()).await.unwrap();
    assert_eq!(rollback.reason, RollbackReason::Operator);
    assert_eq!(rollback.from_generation, 2);
    assert_eq!(rollback.to_generation, 1);
    assert_eq!(rollback.counts.executions, 1);
    let recorded = wait_for(&sink, LANE_ROLLED_BACK, |_| true).await;
    assert_eq!(recorded["reason"], "operator");
    assert_eq!(recorded["from_digest"], sha256(&echo_v2).as_str());
    assert_eq!(recorded["to_digest"], sha256(&echo).as_str());
    assert_eq!(recorded["faults"], 0);

    let result = guarded(node.execute(governed(json!({})))).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(digest_of(&result), sha256(&echo));
    // Only one generation is kept after a rollback: a second one has nowhere to go.
    let error = guarded(slot.rollback()).await.unwrap_err();
    assert!(
        matches!(error, SwapError::NoPreviousGeneration { .. }),
        "{error}"
    );
    assert_eq!(error.stage(), "rollback");
    // The digest rolled back from stays out ...
    let again = guarded(slot.swap_component(LaneSource::Bytes(Arc::clone(&echo_v2))))
        .await
        .unwrap();
    assert_eq!(
        again,
        SwapOutcome::Withdrawn {
            digest: sha256(&echo_v2),
            state: WithdrawalState::Withdrawn,
            serving_generation: 1,
        }
    );
    assert_eq!(slot.withdrawn()[0].digest, sha256(&echo_v2));
    // ... until the operator reinstates it; the next publish gets a fresh number and can be
    // rolled back again.
    guarded(slot.reinstate(&sha256(&echo_v2))).await.unwrap();
    assert!(slot.withdrawn().is_empty());
    assert_eq!(activate(&slot, &echo_v2).await, 3);
    assert_eq!(guarded(slot.rollback()).await.unwrap().to_generation, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_watch_swaps_a_replaced_plugin_and_keeps_a_removed_one_serving() {
    let (dir, wasm) = plugin_dir();
    let echo = bytes_of("echo");
    let echo_v2 = bytes_of("echo-v2");
    let rt = runtime();
    let (node, sink) = node();
    let watch = guarded(watch_plugin_dir(
        &rt,
        &node,
        dir.path(),
        HostPolicy::default(),
        watch_config(),
    ))
    .await
    .unwrap();
    let slot = watch.slot("echo").expect("echo loaded from the directory");
    assert_eq!(slot.current().digest(), sha256(&echo));
    let first = wait_for(&sink, LANE_ACTIVATED, |_| true).await;
    assert_eq!(first["generation"], 1);
    assert_eq!(first["old_digest"], Value::Null);
    assert_eq!(first["version"], "1.0.0");
    let result = guarded(node.execute(governed(json!({})))).await;
    assert_eq!(digest_of(&result), sha256(&echo));

    replace_file(&wasm, &echo_v2);
    let activated = wait_for(&sink, LANE_ACTIVATED, |p| p["generation"] == 2).await;
    assert_eq!(activated["old_digest"], sha256(&echo).as_str());
    assert_eq!(activated["new_digest"], sha256(&echo_v2).as_str());
    assert_eq!(activated["source"], wasm.display().to_string());
    let result = guarded(node.execute(governed(json!({})))).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
    assert_eq!(digest_of(&result), sha256(&echo_v2));

    // A broken replacement is refused and recorded; echo-v2 keeps serving.
    replace_file(&wasm, b"not wasm at all");
    let rejected = wait_for(&sink, LANE_REJECTED, |_| true).await;
    assert_eq!(rejected["stage"], "load");
    assert_eq!(rejected["serving_digest"], sha256(&echo_v2).as_str());
    assert_eq!(
        rejected["refused_digest"],
        sha256(b"not wasm at all").as_str()
    );

    // A removed plugin is left serving.
    std::fs::remove_file(&wasm).unwrap();
    guarded(watch.rescan()).await;
    assert_eq!(slot.current().digest(), sha256(&echo_v2));
    let result = guarded(node.execute(governed(json!({})))).await;
    assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");

    // Put back, it swaps into the same lane.
    replace_file(&wasm, &echo);
    let back = wait_for(&sink, LANE_ACTIVATED, |p| p["generation"] == 3).await;
    assert_eq!(back["new_digest"], sha256(&echo).as_str());
    assert_eq!(watch.slots().len(), 1);
    guarded(watch.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_watch_loads_a_new_plugin_and_rolls_back_on_request() {
    let (dir, _wasm) = plugin_dir();
    let rt = runtime();
    let (node, sink) = node();
    let watch = guarded(watch_plugin_dir(
        &rt,
        &node,
        dir.path(),
        HostPolicy::default(),
        watch_config(),
    ))
    .await
    .unwrap();
    // A second plugin appears: written under a temporary name, then both files renamed in.
    let staged = dir.path().join("trap.staged");
    std::fs::copy(guest("trap"), &staged).unwrap();
    write_manifest(&dir.path().join("trap.wasm"), &manifest("trap", ""));
    std::fs::rename(&staged, dir.path().join("trap.wasm")).unwrap();
    let loaded = wait_for(&sink, LANE_ACTIVATED, |p| p["lane_id"] == "trap").await;
    assert_eq!(loaded["generation"], 1);
    assert!(watch.slot("trap").is_some());
    assert!(
        node.describe()
            .registered_lanes
            .iter()
            .any(|lane| lane.lane_id.as_deref() == Some("trap"))
    );
    // A plugin claiming a lane id another file serves is refused.
    let dup = dir.path().join("echo-again.wasm");
    write_manifest(&dup, &manifest("echo", ""));
    std::fs::copy(guest("echo-v2"), &dup).unwrap();
    let refused = wait_for(&sink, LANE_REJECTED, |p| p["stage"] == "lane_id").await;
    assert_eq!(refused["stage"], "lane_id");

    let error = guarded(watch.rollback("echo")).await.unwrap_err();
    assert!(
        matches!(error, SwapError::NoPreviousGeneration { .. }),
        "{error}"
    );
    let error = guarded(watch.rollback("nope")).await.unwrap_err();
    assert!(matches!(error, SwapError::UnknownLane { .. }), "{error}");
    drop(watch);
}

#[tokio::test]
async fn a_watch_needs_a_directory_and_a_usable_config() {
    let rt = runtime();
    let (node, _sink) = node();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let error = watch_plugin_dir(&rt, &node, &missing, HostPolicy::default(), watch_config())
        .await
        .unwrap_err();
    assert!(matches!(error, WatchError::Watch { .. }), "{error}");
    assert!(error.to_string().contains("no-such-dir"), "{error}");
    let zero = WatchConfig {
        debounce: Duration::ZERO,
        ..watch_config()
    };
    let error = watch_plugin_dir(&rt, &node, dir.path(), HostPolicy::default(), zero)
        .await
        .unwrap_err();
    assert!(matches!(error, WatchError::InvalidConfig(_)), "{error}");
}
