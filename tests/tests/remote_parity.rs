//! The node conformance suite through the in-process client and through the remote client
//! against the served node: both must observe exactly the same behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ep_node::local_client::LocalRuntimeClient;
use ep_node::node::Node;
use ep_tests::conformance::{self, Connection, Connector, Observation};
use ep_tests::fixtures::FakeNodes;
use futures::future::BoxFuture;

/// Wraps the node in the in-process client.
struct Local;

impl Connector for Local {
    fn connect(&self, node: Node) -> BoxFuture<'_, Connection> {
        Box::pin(async move { Connection::new(LocalRuntimeClient::new(node)) })
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_client_conforms() {
    let local = conformance::run(&FakeNodes, &Local).await;
    assert_conforms("local", &local);
    assert!(local.len() > 40, "{} checks", local.len());
}
