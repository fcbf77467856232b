//! `describe`: the node descriptor of the configured node.

use crate::cli::DescribeArgs;
use crate::config::HostConfig;
use crate::error::CliError;

/// Prints the node descriptor as JSON.
pub fn run(args: DescribeArgs) -> Result<(), CliError> {
    let config = HostConfig::load(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::msg)?;
    runtime.block_on(async {
        let node = crate::host::build_node(&config)?;
        let descriptor = node.describe();
        let text = serde_json::to_string_pretty(&descriptor).map_err(CliError::msg)?;
        println!("{text}");
        Ok(())
    })
}
