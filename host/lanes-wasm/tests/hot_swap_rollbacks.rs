//! Rollbacks that stick, with real components: a rolled-back digest is not activated again by
//! the same files (withdrawn after an operator rollback, quarantined after an automatic one),
//! survives a restart of the watch on the same state directory, and comes back only when
//! reinstated; the rollback record counts every execution that ran on the withdrawn
//! generation; a retired slot runs nothing more under its grants; a relative plugin directory
//! is watched by notification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;
mod swap_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::ResultStatus;
use ep_lanes_wasm::swap::{LANE_ACTIVATED, LANE_RETIRED, LANE_ROLLED_BACK};
use ep_lanes_wasm::{
    HostPolicy, LaneLimits, LaneSlot, LaneSource, RollbackPolicy, SwapError, SwapOutcome,
    WatchConfig, WithdrawalState, Withdrawals, register_lane_slot, watch_plugin_dir,
};
use ep_node::LaneAdapter;
use serde_json::json;
use support::*;
use swap_support::*;

async fn swap_file(slot: &LaneSlot, wasm: &Path) -> SwapOutcome {
    guarded(slot.swap_plugin(wasm, &HostPolicy::default()))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_unchanged_plugin_stays_withdrawn_after_an_operator_rollback_until_another_artifact_arrives()
 {
    let (_dir, wasm) = plugin_dir();
    let (echo, echo_v2) = (bytes_of("echo"), bytes_of("echo-v2"));
    let rt = runtime();
    let slot = LaneSlot::open_plugin(
        &rt,
        &wasm,
        &HostPolicy::default(),
        RollbackPolicy::default(),
        &Withdrawals::in_memory(),
    )
    .await
    .unwrap();
    let (node, sink) = node();
    register_lane_slot(&node, &slot).await.unwrap();
    replace_file(&wasm, &echo_v2);
    assert!(matches!(
        swap_file(&slot, &wasm).await,
        SwapOutcome::Activated(_)
    ));
    guarded(slot.rollback()).await.unwrap();

    // The file still holds echo-v2: reloading it again and again changes nothing.
    for _ in 0..3 {
        assert_eq!(
            swap_file(&slot, &wasm).await,
            SwapOutcome::Withdrawn {
                digest: sha256(&echo_v2),
                state: WithdrawalState::Withdrawn,
                serving_generation: 1,
            }
        );
    }
    assert_eq!(payloads(&sink, LANE_ACTIVATED).len(), 2);
    let result = guarded(node.execute(governed(json!({})))).await;
    assert_eq!(digest_of(&result), sha256(&echo));
    let withdrawn = slot.withdrawn();
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0].digest, sha256(&echo_v2));
    assert_eq!(withdrawn[0].restored_digest, sha256(&echo));

    // Another artifact in the file (here the restored version itself) ends the withdrawal, so
    // a later deploy of echo-v2 is a deploy like any other.
    replace_file(&wasm, &echo);
    assert!(matches!(
        swap_file(&slot, &wasm).await,
        SwapOutcome::Unchanged { .. }
    ));
    assert!(slot.withdrawn().is_empty());
    replace_file(&wasm, &echo_v2);
    let SwapOutcome::Activated(activation) = swap_file(&slot, &wasm).await else {
        panic!("echo-v2 deployed again is activated");
    };
    assert_eq!(activation.generation, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_automatic_rollback_quarantines_the_digest_and_counts_every_execution_that_ran() {
    let trap_echo = bytes_of("trap-echo");
    let rt = runtime();
    // One execution at a time: the others wait in the gate, counted on the generation they
    // will run on, so several are still to run there when the rollback is decided.
    let limits = LaneLimits {
        max_concurrent: 1,
        max_queued: 64,
        ..LaneLimits::default()
    };
    let lane = load(&rt, "echo", limits).await;
    let slot = LaneSlot::new(lane, "echo", RollbackPolicy::default()).unwrap();
    let (node, sink) = node();
    register_lane_slot(&node, &slot).await.unwrap();
    activate(&slot, &trap_echo).await;

    let calls: Vec<_> = (0..8)
        .map(|n| {
            let node = node.clone();
            tokio::spawn(async move { node.execute(governed(json!({"n": n}))).await })
        })
        .collect();
    let mut on_trap: u32 = 0;
    for call in calls {
        let result = guarded(call).await.unwrap();
        if digest_of(&result) == sha256(&trap_echo) {
            assert_eq!(failure_of(&result).1, "trap", "{result:?}");
            on_trap += 1;
        } else {
            assert_eq!(result.status, ResultStatus::Succeeded, "{result:?}");
        }
    }
    let record = wait_for(&sink, LANE_ROLLED_BACK, |_| true).await;
    eprintln!("{on_trap} executions ran on the trapping generation: {record}");
    assert_eq!(record["reason"], "automatic");
    assert_eq!(record["withdrawal"], "quarantined");
    // Every execution that ran on the withdrawn generation, not only the window's three.
    assert_eq!(record["executions"], on_trap, "{record}");
    assert_eq!(
        record["faults"].as_u64().unwrap() + record["running"].as_u64().unwrap(),
        u64::from(on_trap),
        "{record}"
    );
    assert_eq!(record["window"]["faults"], 3, "{record}");
    assert_eq!(slot.current().usage().counts.executions, 8 - on_trap);

    // Quarantined: the same bytes are not activated again, even after another deploy ...
    let trap_again = || slot.swap_component(LaneSource::Bytes(Arc::clone(&trap_echo)));
    let outcome = guarded(trap_again()).await.unwrap();
    assert!(
        matches!(
            outcome,
            SwapOutcome::Withdrawn {
                state: WithdrawalState::Quarantined,
                ..
            }
        ),
        "{outcome:?}"
    );
    activate(&slot, &bytes_of("echo-v2")).await;
    let outcome = guarded(trap_again()).await.unwrap();
    assert!(
        matches!(outcome, SwapOutcome::Withdrawn { .. }),
        "{outcome:?}"
    );
    assert_eq!(slot.withdrawn()[0].state, WithdrawalState::Quarantined);
    // ... until the operator reinstates it.
    guarded(slot.reinstate(&sha256(&trap_echo))).await.unwrap();
    let outcome = guarded(trap_again()).await.unwrap();
    assert!(matches!(outcome, SwapOutcome::Activated(_)), "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_watch_keeps_a_rolled_back_digest_out_and_serves_the_restored_version() {
    let (dir, wasm) = plugin_dir();
    let state = tempfile::tempdir().unwrap();
    let (echo, echo_v2) = (bytes_of("echo"), bytes_of("echo-v2"));
    let rt = runtime();
    let config = || WatchConfig {
        withdrawals: Withdrawals::open(state.path()).unwrap(),
        ..watch_config()
    };
    {
        let (node, sink) = node();
        let watch = guarded(watch_plugin_dir(
            &rt,
            &node,
            dir.path(),
            HostPolicy::default(),
            config(),
        ))
        .await
        .unwrap();
        replace_file(&wasm, &echo_v2);
        wait_for(&sink, LANE_ACTIVATED, |p| p["generation"] == 2).await;
        guarded(watch.rollback("echo")).await.unwrap();
        guarded(watch.stop()).await;
    }

    // A new host on the same state directory: the file still holds echo-v2, which stays out;
    // the lane serves the version its rollback restored, from the kept copy.
    let (node, sink) = node();
    let watch = guarded(watch_plugin_dir(
        &rt,
        &node,
        dir.path(),
        HostPolicy::default(),
        config(),
    ))
    .await
    .unwrap();
    let slot = watch.slot("echo").expect("the lane serves");
    assert_eq!(slot.current().digest(), sha256(&echo));
    assert_ne!(slot.current().source(), wasm.display().to_string());
    let result = guarded(node.execute(governed(json!({})))).await;
    assert_eq!(digest_of(&result), sha256(&echo));
    assert_eq!(slot.withdrawn()[0].digest, sha256(&echo_v2));
    guarded(watch.rescan()).await;
    assert_eq!(slot.current().digest(), sha256(&echo));

    // Reinstated, the file's version is activated at once.
    let reinstated = guarded(watch.reinstate("echo", &sha256(&echo_v2)))
        .await
        .unwrap();
    assert_eq!(reinstated.state, WithdrawalState::Withdrawn);
    assert_eq!(slot.current().digest(), sha256(&echo_v2));
    assert_eq!(payloads(&sink, "lane.reinstated").len(), 1);
    assert!(Withdrawals::open(state.path()).unwrap().all().is_empty());
    guarded(watch.stop()).await;
}

#[tokio::test]
async fn a_retired_slot_hands_later_calls_to_its_successor_or_refuses_them() {
    let rt = runtime();
    let old = LaneSlot::new(
        load(&rt, "echo", LaneLimits::default()).await,
        "old",
        RollbackPolicy::default(),
    )
    .unwrap();
    let successor = LaneSlot::new(
        load(&rt, "echo-v2", LaneLimits::default()).await,
        "new",
        RollbackPolicy::default(),
    )
    .unwrap();
    // Validated on the old slot, executed after it was replaced: runs on the successor.
    let admitted = request(None, json!({"admitted": "before"}));
    old.validate(&admitted).await.unwrap();
    guarded(old.retire(Some(&successor), "replaced")).await;
    let result = guarded(old.execute(admitted, ctx())).await;
    assert_eq!(digest_of(&result), sha256(&bytes_of("echo-v2")));
    assert_eq!(old.current().usage().counts.executions, 0);

    // Refused by the new policy: unregistered, disconnected, every later call refused.
    let (node, sink) = node();
    register_lane_slot(&node, &successor).await.unwrap();
    let admitted = request(None, json!({"admitted": "before"}));
    successor.validate(&admitted).await.unwrap();
    guarded(successor.retire(None, "the policy no longer grants it")).await;
    let result = guarded(successor.execute(admitted, ctx())).await;
    assert_eq!(
        failure_of(&result),
        ("policy_denied".to_owned(), "lane_retired".to_owned())
    );
    let described = node.describe();
    assert!(described.registered_lanes.is_empty(), "{described:?}");
    assert!(described.verified_targets.is_empty(), "{described:?}");
    let result = guarded(node.execute(governed(json!({})))).await;
    assert_eq!(result.status, ResultStatus::Rejected, "{result:?}");
    let retired = wait_for(&sink, LANE_RETIRED, |_| true).await;
    assert_eq!(retired["reason"], "the policy no longer grants it");
    let error = guarded(successor.swap_component(LaneSource::Bytes(bytes_of("echo"))))
        .await
        .unwrap_err();
    assert!(matches!(error, SwapError::Retired { .. }), "{error}");
}

/// `path` relative to the working directory (through `..` where needed).
fn relative_to_cwd(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap().canonicalize().unwrap();
    let path = path.canonicalize().unwrap();
    let common = cwd
        .components()
        .zip(path.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut relative = PathBuf::new();
    for _ in cwd.components().skip(common) {
        relative.push("..");
    }
    for part in path.components().skip(common) {
        relative.push(part);
    }
    relative
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_plugin_dir_is_watched_by_notification() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let wasm = dir.path().join("echo.wasm");
    std::fs::copy(guest("echo"), &wasm).unwrap();
    write_manifest(&wasm, &manifest("echo", ""));
    let relative = relative_to_cwd(dir.path());
    assert!(relative.is_relative() && relative.is_dir(), "{relative:?}");
    let rt = runtime();
    let (node, sink) = node();
    // No rescan within the test's lifetime: only a notification can pick the change up.
    let config = WatchConfig {
        debounce: Duration::from_millis(50),
        rescan: Duration::from_secs(3600),
        ..WatchConfig::default()
    };
    let watch = guarded(watch_plugin_dir(
        &rt,
        &node,
        &relative,
        HostPolicy::default(),
        config,
    ))
    .await
    .unwrap();
    assert!(watch.dir().is_absolute(), "{:?}", watch.dir());
    assert!(watch.notifications());
    replace_file(&wasm, &bytes_of("echo-v2"));
    let activated = wait_for(&sink, LANE_ACTIVATED, |p| p["generation"] == 2).await;
    assert_eq!(
        activated["new_digest"],
        sha256(&bytes_of("echo-v2")).as_str()
    );
    guarded(watch.stop()).await;
}
