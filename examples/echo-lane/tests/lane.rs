//! The lane driven from an integration test, through the SDK's native harness: possible because
//! the crate is also an `rlib`.
#![allow(clippy::unwrap_used)]

use execution_plane_sdk::{Request, json, testing};

#[test]
fn the_lane_runs_natively_from_an_integration_test() {
    let outcome = testing::execute::<example_echo::EchoLane>(Request::new(json!({"message": "hi"})));
    assert!(outcome.is_success(), "{outcome:?}");
}
