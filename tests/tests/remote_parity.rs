//! The node conformance suite through the in-process client and through the remote client
//! against the same kind of node served by `ep_server::serve_node`: both must observe exactly
//! the same behaviour, over HTTP/1.1 and over h2c.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use ep_contracts::boundary::ResultStatus;
use ep_node::RuntimeClient;
use ep_node::local_client::LocalRuntimeClient;
use ep_node::node::Node;
use ep_remote::{RemoteError, RemoteRuntimeClient, StreamItem};
use ep_server::{ApiOptions, RunningServer, serve_node};
use ep_tests::conformance::{self, Connection, Connector, Observation};
use ep_tests::fixtures::{FakeNodes, NodeFactory, Setup, governed};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::net::TcpListener;

/// Hang guard only: generous, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// Wraps the node in the in-process client.
struct Local;

impl Connector for Local {
    fn connect(&self, node: Node) -> BoxFuture<'_, Connection> {
        Box::pin(async move { Connection::new(LocalRuntimeClient::new(node)) })
    }
}

/// The operator token of the served node (direct requests need it).
const OPERATOR_TOKEN: &str = "parity-operator-token";

/// Serves the node on a loopback port and wraps it in the remote client.
struct Remote {
    http2: bool,
}

async fn serve(node: Node, options: ApiOptions) -> RunningServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_node(node, options, listener).await.unwrap()
}

impl Connector for Remote {
    fn connect(&self, node: Node) -> BoxFuture<'_, Connection> {
        Box::pin(async move {
            // The suite sends direct requests too: over the network those are the operator's.
            let options = ApiOptions {
                operator_token: Some(OPERATOR_TOKEN.to_owned()),
                ..ApiOptions::default()
            };
            let server = serve(node, options).await;
            let client = RemoteRuntimeClient::builder(server.url())
                .http2_prior_knowledge(self.http2)
                .operator_token(OPERATOR_TOKEN)
                .build()
                .unwrap();
            Connection::new(client).keeping(server)
        })
    }
}

fn assert_conforms(name: &str, observations: &[Observation]) {
    let problems = conformance::problems(observations);
    assert!(
        problems.is_empty(),
        "{name} departs from the documented behaviour:\n{}",
        problems.join("\n")
    );
}

fn dump_if_asked(name: &str, observations: &[Observation]) {
    if std::env::var_os("EP_CONFORMANCE_DUMP").is_some() {
        for o in observations {
            eprintln!("{name} {}: {}", o.check, o.observed);
        }
    }
}

async fn parity(http2: bool) {
    let local = conformance::run(&FakeNodes, &Local).await;
    let remote = conformance::run(&FakeNodes, &Remote { http2 }).await;
    dump_if_asked("local", &local);
    dump_if_asked("remote", &remote);
    assert_conforms("the local client", &local);
    assert_conforms("the remote client", &remote);
    let differences = conformance::differences(&local, &remote);
    assert!(
        differences.is_empty(),
        "the remote client observes something else:\n{}",
        differences.join("\n")
    );
    assert_eq!(local, remote);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_client_over_http1_observes_what_the_local_client_observes() {
    parity(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_client_over_h2c_observes_what_the_local_client_observes() {
    parity(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_covers_every_documented_behaviour() {
    let local = conformance::run(&FakeNodes, &Local).await;
    let checks: Vec<&str> = local.iter().map(|o| o.check.as_str()).collect();
    for check in [
        "describe",
        "admit_accepted",
        "admit_refused_contract_version_mismatch",
        "admit_refused_lane_not_registered",
        "admit_refused_authority_ref_missing",
        "admit_refused_authority_rejected",
        "admit_refused_no_satisfying_attested_target_class",
        "execute_succeeds",
        "execute_lane_failure_timeout",
        "execute_refused_invalid_lane_request",
        "stream_events_in_order",
        "stream_refused_by_unary_lane_batch",
        "dropping_a_stream_cancels_it",
        "cancel_running",
        "cancel_unknown",
        "lineage_and_provenance_preserved",
    ] {
        assert!(checks.contains(&check), "missing check {check}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_stream_ends_with_the_result_frame() {
    let fixture = FakeNodes.build(Setup::Standard).await;
    let server = serve(fixture.node.clone(), ApiOptions::default()).await;
    let client = RemoteRuntimeClient::new(server.url()).unwrap();
    let mut request = governed("process", "req-items");
    request.payload.insert("events".into(), 3.into());
    let items: Vec<StreamItem> = tokio::time::timeout(
        HANG_GUARD,
        client.stream_items(request).await.unwrap().collect(),
    )
    .await
    .unwrap();
    // dispatch.started, three lane events, dispatch.completed, then the result.
    assert_eq!(items.len(), 6, "{items:?}");
    let StreamItem::Event(closing) = &items[4] else {
        panic!("expected the closing event: {items:?}");
    };
    assert_eq!(closing.event_type.as_deref(), Some("dispatch.completed"));
    let StreamItem::Result(result) = &items[5] else {
        panic!("expected the result last: {items:?}");
    };
    assert_eq!(result.status, ResultStatus::Succeeded);
    assert!(result.events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_routes_need_the_token() {
    let fixture = FakeNodes.build(Setup::Standard).await;
    let options = ApiOptions {
        operator_token: Some("s3cret".to_owned()),
        ..ApiOptions::default()
    };
    let server = serve(fixture.node.clone(), options).await;
    let anonymous = RemoteRuntimeClient::new(server.url()).unwrap();
    let Err(RemoteError::Api(error)) = anonymous.lanes().await else {
        panic!("expected 401");
    };
    assert_eq!((error.status, error.code.as_str()), (401, "unauthorized"));
    let wrong = RemoteRuntimeClient::builder(server.url())
        .operator_token("nope")
        .build()
        .unwrap();
    let Err(RemoteError::Api(error)) = wrong.reload().await else {
        panic!("expected 403");
    };
    assert_eq!((error.status, error.code.as_str()), (403, "forbidden"));
    let operator = RemoteRuntimeClient::builder(server.url())
        .operator_token("s3cret")
        .build()
        .unwrap();
    assert_eq!(
        operator.lanes().await.unwrap()["lanes"],
        serde_json::json!([])
    );
    assert_eq!(operator.reload().await.unwrap()["status"], "reloaded");
    let Err(RemoteError::Api(error)) = operator.rollback("process").await else {
        panic!("expected unknown_lane");
    };
    assert_eq!((error.status, error.code.as_str()), (404, "unknown_lane"));
    assert_eq!(operator.health().await.unwrap()["status"], "ok");
    assert!(operator.metrics().await.unwrap().contains("# TYPE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_against_a_server_that_went_away_is_a_failed_result() {
    let fixture = FakeNodes.build(Setup::Standard).await;
    let server = serve(fixture.node.clone(), ApiOptions::default()).await;
    let client: Arc<dyn RuntimeClient> = Arc::new(RemoteRuntimeClient::new(server.url()).unwrap());
    let result = client.execute(governed("process", "req-before")).await;
    assert_eq!(result.status, ResultStatus::Succeeded);
    let _report = server.shutdown(Duration::from_secs(1)).await;
    let result = client.execute(governed("process", "req-after")).await;
    assert_eq!(result.status, ResultStatus::Failed);
    let class = result.error.unwrap()["failure_class"].clone();
    assert!(
        class == "transport_failed" || class == "remote_disconnect",
        "{class}"
    );
}
