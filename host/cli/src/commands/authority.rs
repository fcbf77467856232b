//! `authority keygen` and `authority sign`: mint development keys and refs.

use std::time::Duration;

use ep_node::authority::{SigningKeyFile, sign, sign_with_ref};

use crate::cli::AuthorityCommand;
use crate::error::CliError;
use crate::input::read_document;

/// Runs an `authority` subcommand.
pub fn run(cmd: AuthorityCommand) -> Result<(), CliError> {
    match cmd {
        AuthorityCommand::Keygen { key_id, out } => {
            let key = SigningKeyFile::generate(key_id).map_err(CliError::msg)?;
            key.save(&out).map_err(CliError::msg)?;
            println!("{}", key.public_entry());
            Ok(())
        }
        AuthorityCommand::Sign {
            key,
            audience,
            payload,
            ttl,
            reference,
        } => {
            let key = SigningKeyFile::load(&key).map_err(CliError::msg)?;
            let text = read_document(Some(&payload))?;
            let value = ep_contracts::parse_json(&text)
                .map_err(|e| CliError::msg(format!("{}: {e}", payload.display())))?;
            let serde_json::Value::Object(payload) = value else {
                return Err(CliError::msg("payload must be a JSON object"));
            };
            if ttl == 0 {
                return Err(CliError::msg("--ttl must be at least 1 second"));
            }
            let ttl = Duration::from_secs(ttl);
            let now = chrono::Utc::now();
            let authority = match reference {
                Some(r) => sign_with_ref(&key, &r, &payload, &audience, ttl, now),
                None => sign(&key, &payload, &audience, ttl, now),
            };
            let text = serde_json::to_string_pretty(&authority).map_err(CliError::msg)?;
            println!("{text}");
            Ok(())
        }
    }
}
