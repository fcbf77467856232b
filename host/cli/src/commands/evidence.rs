//! `evidence verify`: checks the hash chain of an evidence log.

use ep_node::sinks::file_chain::verify_chain;

use crate::cli::EvidenceCommand;
use crate::error::CliError;

/// Runs an `evidence` subcommand.
pub fn run(cmd: EvidenceCommand) -> Result<(), CliError> {
    match cmd {
        EvidenceCommand::Verify { file } => {
            let report = verify_chain(&file)
                .map_err(|e| CliError::msg(format!("{}: {e}", file.display())))?;
            let anchor = if report.anchored {
                "anchored by its head file"
            } else {
                "no head file: truncation at a record boundary cannot be ruled out"
            };
            println!("{} records, chain intact, {anchor}", report.records);
            Ok(())
        }
    }
}
