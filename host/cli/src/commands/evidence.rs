//! `evidence verify` and `evidence reanchor`: check an evidence log (chain, head anchor, the
//! head's signature), and re-anchor one deliberately.

use std::path::Path;

use ep_node::authority::SigningKeyFile;
use ep_node::sinks::file_chain::{
    ChainReport, FileChainSink, HeadKey, HeadStatus, NodeKey, SinkOptions, VerifyOptions,
    verify_chain_with,
};

use crate::cli::EvidenceCommand;
use crate::error::CliError;
use crate::input::read_document;
use crate::output;

/// Runs an `evidence` subcommand.
pub fn run(cmd: EvidenceCommand) -> Result<(), CliError> {
    match cmd {
        EvidenceCommand::Verify {
            file,
            key,
            allow_unanchored,
        } => {
            let options = VerifyOptions {
                allow_unanchored,
                key: key.as_deref().map(head_key).transpose()?,
            };
            let report = verify_chain_with(&file, &options).map_err(CliError::msg)?;
            output::line(summary(&report))
        }
        EvidenceCommand::Reanchor { file, key } => reanchor(&file, key.as_deref()),
    }
}

/// The one line `verify` prints; it starts with `<n> records, chain intact`.
fn summary(report: &ChainReport) -> String {
    let n = report.records;
    let mut text = anchoring(report, n);
    if report.pending > 0 {
        text.push_str(&format!(
            "; the log is being written: its last {} records chain cleanly and await the next \
             head update",
            report.pending
        ));
    }
    text
}

/// What anchors a log of `n` records, and how far it was checked.
fn anchoring(report: &ChainReport, n: u64) -> String {
    match &report.head {
        HeadStatus::Missing => format!(
            "{n} records, chain intact, NOT anchored: no head file (--allow-unanchored), so \
             records cut from the end, or removed and re-chained, would go unseen"
        ),
        HeadStatus::Unsigned => format!(
            "{n} records, chain intact, anchored by its head file (unsigned: whoever can \
             rewrite both the log and its head could forge them)"
        ),
        HeadStatus::Signed {
            key_id,
            signed_at,
            verified: true,
        } => format!(
            "{n} records, chain intact, anchored by its head file, signed by node key {key_id} \
             at {signed_at}: signature verified"
        ),
        HeadStatus::Signed {
            key_id,
            signed_at,
            verified: false,
        } => format!(
            "{n} records, chain intact, anchored by its head file, signed by node key {key_id} \
             at {signed_at} (signature not checked: pass --key)"
        ),
    }
}

/// `--key`: a key file (a node key file, or a file holding a base64 public key), or a base64
/// public key itself.
fn head_key(text: &str) -> Result<HeadKey, CliError> {
    let path = Path::new(text);
    if path.is_file() {
        let content = read_document(Some(path))?;
        if content.trim_start().starts_with('{') {
            let key = SigningKeyFile::from_json_str(&content, path).map_err(CliError::msg)?;
            return Ok(HeadKey::from_key_file(&key));
        }
        return HeadKey::from_public_key_base64(content.trim())
            .map_err(|e| CliError::msg(format!("--key {}: {e}", path.display())));
    }
    HeadKey::from_public_key_base64(text).map_err(|e| {
        CliError::msg(format!(
            "--key {text:?}: no such key file, and {}",
            lowercase_first(&e.to_string())
        ))
    })
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// `evidence reanchor`: nothing to do when the log already verifies (under the key, when
/// given); otherwise the writer re-anchors it (the chain must still be intact) and records that
/// it did. A signed head is never replaced by an unsigned one.
fn reanchor(file: &Path, key_file: Option<&Path>) -> Result<(), CliError> {
    let key = key_file
        .map(|path| {
            let file = SigningKeyFile::load(path).map_err(CliError::msg)?;
            NodeKey::from_key_file(&file).map_err(CliError::msg)
        })
        .transpose()?;
    let strict = VerifyOptions {
        allow_unanchored: false,
        key: key.as_ref().map(NodeKey::verifier),
    };
    if let Ok(report) = verify_chain_with(file, &strict) {
        return output::line(format!("nothing to re-anchor: {}", summary(&report)));
    }
    let signer = key.as_ref().map(NodeKey::key_id).map(str::to_owned);
    let sink = FileChainSink::open_with(
        file,
        SinkOptions {
            key,
            reanchor: true,
            ..SinkOptions::default()
        },
    )
    .map_err(CliError::msg)?;
    let records = sink.record_count();
    drop(sink);
    let head = match signer {
        Some(key_id) => format!("a head signed by node key {key_id}"),
        None => "an unsigned head".to_owned(),
    };
    output::line(format!(
        "re-anchored: {records} records (the last one, `evidence.reanchored`, says what was \
         adopted) under {head}"
    ))
}
