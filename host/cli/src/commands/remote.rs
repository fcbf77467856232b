//! What `exec`, `describe` and `lanes` share when they talk to a host started with `serve`:
//! the client, the operator token, and a runtime to drive them.

use std::path::{Path, PathBuf};

use ep_remote::RemoteRuntimeClient;

use crate::cli::OperatorArgs;
use crate::error::CliError;

/// Environment variable holding the operator token when no file is given.
pub const TOKEN_ENV: &str = "EXECUTION_PLANE_OPERATOR_TOKEN";

/// Where `serve` writes the operator token on its embedded defaults.
const DEFAULT_TOKEN_FILE: &str = ".execution-plane/operator-token";

/// A client for the host at `url`.
pub fn client(url: &str) -> Result<RemoteRuntimeClient, CliError> {
    RemoteRuntimeClient::new(url).map_err(|e| CliError::msg(format!("--remote {url}: {e}")))
}

/// A client for the host at `args.remote` carrying its operator token.
pub fn operator_client(args: &OperatorArgs) -> Result<RemoteRuntimeClient, CliError> {
    operator_client_for(&args.remote, args.operator_token_file.as_deref())
}

/// A client for the host at `url` carrying the operator token from `file`, else from
/// [`TOKEN_ENV`], else from `.execution-plane/operator-token`.
pub fn operator_client_for(
    url: &str,
    file: Option<&Path>,
) -> Result<RemoteRuntimeClient, CliError> {
    let token = operator_token(file)?;
    RemoteRuntimeClient::builder(url)
        .operator_token(token)
        .build()
        .map_err(|e| CliError::msg(format!("--remote {url}: {e}")))
}

fn operator_token(file: Option<&Path>) -> Result<String, CliError> {
    let path = match file {
        Some(path) => path.to_owned(),
        None => {
            if let Ok(token) = std::env::var(TOKEN_ENV)
                && !token.trim().is_empty()
            {
                return Ok(token.trim().to_owned());
            }
            let default = PathBuf::from(DEFAULT_TOKEN_FILE);
            if !default.exists() {
                return Err(CliError::msg(format!(
                    "no operator token: pass --operator-token-file <file> (serve prints its \
                     path) or set {TOKEN_ENV}"
                )));
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::msg(format!(
            "{}: the operator token file is empty",
            path.display()
        )));
    }
    Ok(token.to_owned())
}

/// A runtime for one remote command.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::msg)
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    crate::output::json_pretty(value)
}
