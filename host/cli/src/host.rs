//! Builds the node the configuration describes: verifiers first, then the registration flag.

use ep_node::authority::TrustStore;
use ep_node::node::Node;
use ep_node::verifiers::ed25519_authority::Ed25519AuthorityVerifier;
use ep_node::verifiers::local_weak::LocalWeakVerifier;
use std::sync::Arc;
use std::time::Duration;

use crate::config::HostConfig;
use crate::error::CliError;

/// The node of `config`: the local weak target verifier always, the Ed25519 authority verifier
/// when the trust store file exists (without it governed requests are refused).
pub fn build_node(config: &HostConfig) -> Result<Node, CliError> {
    let node = Node::new(config.node.id.clone());
    node.register_target_verifier(Arc::new(LocalWeakVerifier::new()));
    let trust_store = &config.authority.trust_store;
    if trust_store.exists() {
        let store = TrustStore::load(trust_store).map_err(CliError::msg)?;
        let verifier = Ed25519AuthorityVerifier::new(config.node.id.clone(), store)
            .with_clock_skew(Duration::from_secs(config.authority.clock_skew_secs));
        node.register_authority_verifier(Arc::new(verifier));
    } else {
        tracing::warn!(
            path = %trust_store.display(),
            "no authority trust store: governed requests will be refused (authority_verifier_missing)"
        );
    }
    node.complete_registration();
    Ok(node)
}
