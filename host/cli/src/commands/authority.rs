//! `authority keygen` and `authority sign`: mint development keys and single-use refs.

use std::path::Path;
use std::time::Duration;

use ep_contracts::Contract;
use ep_contracts::boundary::{AcceptableAttestation, AdmissionRequest};
use ep_lanes_wasm::WASM_ENGINE_CLASS;
use ep_node::authority::{SigningKeyFile, sign_request, sign_request_with_ref};
use serde_json::Value;

use crate::cli::AuthorityCommand;
use crate::error::CliError;
use crate::input::read_document;

/// Runs an `authority` subcommand.
pub fn run(cmd: AuthorityCommand) -> Result<(), CliError> {
    match cmd {
        AuthorityCommand::Keygen { key_id, out } => {
            let key = SigningKeyFile::generate(key_id).map_err(CliError::msg)?;
            key.save(&out).map_err(CliError::msg)?;
            crate::output::line(key.public_entry())?;
            Ok(())
        }
        AuthorityCommand::Sign {
            key,
            audience,
            request,
            payload,
            lane,
            class,
            ttl,
            reference,
            ref_only,
        } => {
            let key = SigningKeyFile::load(&key).map_err(CliError::msg)?;
            if ttl == 0 {
                return Err(CliError::msg("--ttl must be at least 1 second"));
            }
            let mut request = match (request, payload) {
                (Some(path), _) => read_request(&path)?,
                (None, Some(path)) => request_for_payload(&path, lane, &class)?,
                (None, None) => {
                    return Err(CliError::msg(
                        "give --request FILE, or --payload FILE --lane LANE",
                    ));
                }
            };
            // A ref inside the document is replaced, never signed over.
            request.authority_ref = None;
            let ttl = Duration::from_secs(ttl);
            let now = chrono::Utc::now();
            let authority = match reference {
                Some(r) => sign_request_with_ref(&key, &r, &request, &audience, ttl, now),
                None => sign_request(&key, &request, &audience, ttl, now),
            };
            let text = if ref_only {
                serde_json::to_string_pretty(&authority.to_value())
            } else {
                request.authority_ref = Some(authority);
                serde_json::to_string_pretty(&request.to_value())
            }
            .map_err(CliError::msg)?;
            crate::output::line(text)?;
            Ok(())
        }
    }
}

/// A whole `AdmissionRequest` document (its request id is kept: it is signed too).
fn read_request(path: &Path) -> Result<AdmissionRequest, CliError> {
    let text = read_document(Some(path))?;
    let value = ep_contracts::parse_json(&text)
        .map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
    AdmissionRequest::from_value(&value)
        .map_err(|e| CliError::msg(format!("{}: not an admission request: {e}", path.display())))
}

/// A new governed request to `lane` carrying the payload at `path`.
fn request_for_payload(
    path: &Path,
    lane: Option<String>,
    class: &[String],
) -> Result<AdmissionRequest, CliError> {
    let Some(lane) = lane else {
        return Err(CliError::msg("--payload needs --lane"));
    };
    let text = read_document(Some(path))?;
    let value = ep_contracts::parse_json(&text)
        .map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
    let Value::Object(payload) = value else {
        return Err(CliError::msg("payload must be a JSON object"));
    };
    let mut request = AdmissionRequest::new(lane);
    request.payload = payload;
    let classes: Vec<&str> = if class.is_empty() {
        vec![WASM_ENGINE_CLASS]
    } else {
        class.iter().map(String::as_str).collect()
    };
    request.acceptable_attestation = AcceptableAttestation::of(classes);
    Ok(request)
}
