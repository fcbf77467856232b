//! `describe`: the node descriptor of the configured node, or of a running host (`--remote`).

use ep_node::RuntimeClient;

use crate::cli::DescribeArgs;
use crate::error::CliError;
use crate::host::load_config;

/// Prints the node descriptor as JSON.
pub fn run(args: DescribeArgs) -> Result<(), CliError> {
    if let Some(url) = &args.remote {
        let client = super::remote::client(url)?;
        let descriptor = super::remote::runtime()?
            .block_on(client.describe())
            .map_err(|e| CliError::msg(format!("{url}: {e}")))?;
        return super::remote::print_json(&descriptor);
    }
    let config = load_config(args.config.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::msg)?;
    runtime.block_on(async {
        let node = crate::host::build_node(&config)?;
        crate::output::json_pretty(&node.describe())
    })
}
