//! Builds the node the configuration describes, with the verifiers every host registers (the
//! same assembly `serve` uses), then marks registration complete.

use std::time::Duration;

use ep_node::node::Node;
use ep_server::ServeConfig;
use ep_server::service::node_with_verifiers;

use crate::error::CliError;

/// The configuration `serve` would run on: `path`, or the embedded defaults; without a
/// `[process.sandbox] launcher` this binary is the launcher.
pub fn load_config(path: Option<&std::path::Path>) -> Result<ServeConfig, CliError> {
    let mut config = ServeConfig::load(path).map_err(CliError::msg)?;
    if config.process.sandbox.launcher.is_none() {
        config.process.sandbox.launcher = std::env::current_exe().ok();
    }
    Ok(config)
}

/// The node of `config`: the local weak target verifier always, the Ed25519 authority verifier
/// when the trust store file exists (without it governed requests are refused).
pub fn build_node(config: &ServeConfig) -> Result<Node, CliError> {
    let node = node_with_verifiers(
        &config.node.id,
        &config.authority.trust_store,
        Duration::from_secs(config.authority.clock_skew_secs),
    )
    .map_err(CliError::msg)?;
    node.complete_registration();
    Ok(node)
}
