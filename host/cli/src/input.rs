//! Reads a document from a file or stdin, refusing anything over the contract size cap.

use std::io::Read;
use std::path::{Path, PathBuf};

use ep_contracts::MAX_DOCUMENT_BYTES;

use crate::error::CliError;

/// Reads `path` (or stdin for `-` / none) as UTF-8 text of at most [`MAX_DOCUMENT_BYTES`].
pub fn read_document(path: Option<&Path>) -> Result<String, CliError> {
    let (label, reader): (PathBuf, Box<dyn Read>) = match path {
        None => (PathBuf::from("<stdin>"), Box::new(std::io::stdin())),
        Some(p) if p == Path::new("-") => (PathBuf::from("<stdin>"), Box::new(std::io::stdin())),
        Some(p) => {
            let file = std::fs::File::open(p).map_err(|source| CliError::Io {
                path: p.to_owned(),
                source,
            })?;
            (p.to_owned(), Box::new(file))
        }
    };
    let mut bytes = Vec::new();
    let limit = MAX_DOCUMENT_BYTES as u64 + 1;
    reader
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| CliError::Io {
            path: label.clone(),
            source,
        })?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(CliError::TooLarge {
            path: label,
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    String::from_utf8(bytes)
        .map_err(|_| CliError::msg(format!("{}: not UTF-8 text", label.display())))
}
