//! `contracts list` and `contracts validate`.

use ep_contracts::registry;

use crate::cli::ContractsCommand;
use crate::error::CliError;
use crate::input::read_document;
use crate::output;

/// Runs a `contracts` subcommand.
pub fn run(cmd: ContractsCommand) -> Result<(), CliError> {
    match cmd {
        ContractsCommand::List => {
            for entry in registry::entries() {
                output::line(format_args!("{}\t{}", entry.name, entry.kind.as_str()))?;
            }
            Ok(())
        }
        ContractsCommand::Validate { contract, file } => {
            let entry = registry::find(&contract).ok_or_else(|| {
                CliError::msg(registry::RegistryError::UnknownContract(contract.clone()))
            })?;
            let text = read_document(file.as_deref())?;
            let value = ep_contracts::parse_json(&text)
                .map_err(|e| CliError::msg(format!("{}: {e}", entry.name)))?;
            let normalized = entry
                .normalize(&value)
                .map_err(|e| CliError::msg(format!("{}: {e}", entry.name)))?;
            output::json_pretty(&normalized)
        }
    }
}
