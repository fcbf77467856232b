//! Plugin lanes load while the host serves. A large lane (a Python or JavaScript runtime) takes
//! seconds to compile the first time; `serve` answers `/healthz`, its operator routes and the
//! lanes that are ready at once. A request for a lane a plugin file claims (its manifest names
//! the lane) that is not registered yet is answered `503 lane_loading` with `retry-after`, not
//! `lane_not_registered`; a built-in lane a plugin may replace waits with it, so a request never
//! reaches the built-in lane a moment before the plugin takes over.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ep_lanes_wasm::LaneManifest;
use ep_node::node::Node;
use tokio::sync::watch;

use super::lanes::wasm_files;
use crate::api::RefusedLane;

/// What loading the plugin directory came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Every lane serving once loading finished, by lane id.
    pub served: Vec<String>,
    /// Every lane (built-in or plugin) not served, with why.
    pub refused: Vec<RefusedLane>,
    /// How long the plugin directory took to load.
    pub took: Duration,
}

/// The plugin lanes still loading, and the report once they are done.
pub(super) struct Loading {
    /// False once loading finished: the request path then reads nothing else.
    active: AtomicBool,
    /// The lane ids the plugin files claim.
    claimed: Mutex<BTreeSet<String>>,
    done: watch::Sender<Option<LoadReport>>,
}

impl Loading {
    /// Loading the lanes `claimed` names.
    pub(super) fn new(claimed: BTreeSet<String>) -> Self {
        Self {
            active: AtomicBool::new(true),
            claimed: Mutex::new(claimed),
            done: watch::Sender::new(None),
        }
    }

    /// Whether `lane_id` is claimed by a plugin and not registered on `node` yet.
    pub(super) fn is_loading(&self, node: &Node, lane_id: &str) -> bool {
        self.active.load(Ordering::Acquire)
            && self
                .claimed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(lane_id)
            && !node.has_lane(lane_id)
    }

    /// The claimed lanes not registered on `node` yet, sorted.
    pub(super) fn loading(&self, node: &Node) -> Vec<String> {
        if !self.active.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.claimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|lane_id| !node.has_lane(lane_id))
            .cloned()
            .collect()
    }

    /// Loading is over: nothing is loading any more, and every waiter gets `report`.
    pub(super) fn finish(&self, report: LoadReport) {
        self.active.store(false, Ordering::Release);
        self.claimed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.done.send_replace(Some(report));
    }

    /// The report, once loading finished.
    pub(super) async fn wait(&self) -> LoadReport {
        let mut done = self.done.subscribe();
        loop {
            if let Some(report) = done.borrow_and_update().clone() {
                return report;
            }
            if done.changed().await.is_err() {
                // The sender lives as long as `self`: unreachable while borrowed.
                return LoadReport {
                    served: Vec::new(),
                    refused: Vec::new(),
                    took: Duration::ZERO,
                };
            }
        }
    }
}

/// The lane ids the manifests of the plugin files in `dir` name (a file whose manifest does not
/// read claims none: it is refused when it loads).
pub(super) fn claimed_lane_ids(dir: &Path) -> BTreeSet<String> {
    wasm_files(dir)
        .iter()
        .filter_map(|wasm| LaneManifest::load(&LaneManifest::path_for(wasm)).ok())
        .map(|manifest| manifest.lane_id)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use async_trait::async_trait;
    use ep_contracts::boundary::{
        AdmissionRejection, ExecutionRequest, ExecutionResult, LaneCapabilities, RejectionReason,
    };
    use ep_node::{EventStream, ExecutionContext, LaneAdapter};

    use super::*;

    struct Named(&'static str);

    #[async_trait]
    impl LaneAdapter for Named {
        fn lane_id(&self) -> &str {
            self.0
        }
        fn capabilities(&self) -> LaneCapabilities {
            LaneCapabilities::default()
        }
        async fn validate(&self, _request: &ExecutionRequest) -> Result<(), AdmissionRejection> {
            Ok(())
        }
        async fn execute(
            &self,
            request: ExecutionRequest,
            _ctx: ExecutionContext,
        ) -> ExecutionResult {
            ExecutionResult::succeeded(request.execution_ref, Default::default())
        }
        async fn stream(
            &self,
            _request: ExecutionRequest,
            _ctx: ExecutionContext,
        ) -> Result<EventStream, AdmissionRejection> {
            Err(AdmissionRejection::new(
                RejectionReason::NotSupported,
                "the test lane does not stream",
            ))
        }
    }

    #[tokio::test]
    async fn a_claimed_lane_is_loading_until_registered_and_nothing_is_once_finished() {
        let node = Node::new("node-test");
        let loading = Loading::new(["js".to_owned(), "python".to_owned()].into());
        assert_eq!(loading.loading(&node), ["js", "python"]);
        assert!(loading.is_loading(&node, "python"));
        assert!(!loading.is_loading(&node, "http"), "not claimed");
        node.register_lane(Arc::new(Named("python")));
        assert!(
            !loading.is_loading(&node, "python"),
            "registered: it serves"
        );
        assert_eq!(loading.loading(&node), ["js"]);
        let report = LoadReport {
            served: vec!["python".to_owned()],
            refused: Vec::new(),
            took: Duration::from_millis(3),
        };
        let waiter = {
            let loading = Arc::new(loading);
            let waiting = Arc::clone(&loading);
            let task = tokio::spawn(async move { waiting.wait().await });
            loading.finish(report.clone());
            assert!(
                !loading.is_loading(&node, "js"),
                "a refused lane is not loading"
            );
            assert!(loading.loading(&node).is_empty());
            task
        };
        assert_eq!(waiter.await.unwrap(), report);
    }

    #[test]
    fn the_manifests_of_the_plugin_files_name_the_claimed_lanes() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = |lane: &str| {
            format!(
                "lane_id = \"{lane}\"\nversion = \"1.0.0\"\nwit_version = \"{}\"\n",
                ep_lanes_wasm::WIT_PACKAGE
            )
        };
        std::fs::write(dir.path().join("a.wasm"), b"not yet compiled").unwrap();
        std::fs::write(dir.path().join("a.toml"), manifest("python")).unwrap();
        // No manifest: claims nothing (it is refused when it loads).
        std::fs::write(dir.path().join("b.wasm"), b"").unwrap();
        // A manifest without its component claims nothing either.
        std::fs::write(dir.path().join("c.toml"), manifest("js")).unwrap();
        assert_eq!(
            claimed_lane_ids(dir.path()),
            BTreeSet::from(["python".to_owned()])
        );
        assert!(claimed_lane_ids(&dir.path().join("missing")).is_empty());
    }
}
