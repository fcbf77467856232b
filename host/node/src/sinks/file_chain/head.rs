//! The head anchor of a log: its format, reading and atomic writing, and the node key that
//! signs it (a keyed head).
//!
//! An unsigned head is `{"count":<n>,"last_hash":"sha256:<hex>"}`. A signed head is the
//! canonical JSON of
//!
//! ```text
//! {"count":<n>,"key_id":"<id>","last_hash":"sha256:<hex>","signature":"<base64>","signed_at":"<RFC 3339>"}
//! ```
//!
//! where `signature` is Ed25519 over the canonical JSON of [`signing_message`]'s object:
//! `{"alg":"ed25519","count","format":"execution-plane evidence head v1","key_id","last_hash",
//! "signed_at"}`. The `format` string keeps a head signature from meaning anything else.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use ep_contracts::canonical::{canonical_json, is_sha256_ref};
use serde_json::{Value, json};
use thiserror::Error;

use super::{ChainError, head_path};
use crate::authority::{
    ALGORITHM, AuthorityKeyError, SigningKeyFile, format_rfc3339, parse_rfc3339,
};

/// The domain-separation string inside every signed head message.
pub const HEAD_FORMAT: &str = "execution-plane evidence head v1";

/// Head files are tiny; anything larger is not one.
const MAX_HEAD_BYTES: u64 = 64 * 1024;

/// A head's signature: who signed, when, and the signature itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeadSignature {
    pub(crate) key_id: String,
    pub(crate) signed_at: String,
    pub(crate) signature: Signature,
}

/// The head anchor's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) count: u64,
    pub(crate) last_hash: String,
    pub(crate) signature: Option<HeadSignature>,
}

impl Head {
    /// An unsigned head.
    pub(crate) fn unsigned(count: u64, last_hash: String) -> Self {
        Self {
            count,
            last_hash,
            signature: None,
        }
    }

    /// The head a writer with (or without) `key` writes: signed now when it has one.
    pub(crate) fn of_writer(key: Option<&NodeKey>, count: u64, last_hash: &str) -> Self {
        match key {
            Some(key) => Self::signed(count, last_hash.to_owned(), key),
            None => Self::unsigned(count, last_hash.to_owned()),
        }
    }

    /// A head signed now by `key`.
    pub(crate) fn signed(count: u64, last_hash: String, key: &NodeKey) -> Self {
        let signed_at = format_rfc3339(chrono::Utc::now());
        let message = signing_message(count, &last_hash, &key.key_id, &signed_at);
        let signature = key.signing.sign(message.as_bytes());
        Self {
            count,
            last_hash,
            signature: Some(HeadSignature {
                key_id: key.key_id.clone(),
                signed_at,
                signature,
            }),
        }
    }

    /// The file's line (with its newline).
    fn to_line(&self) -> String {
        let mut line = match &self.signature {
            None => format!(
                "{{\"count\":{},\"last_hash\":\"{}\"}}",
                self.count, self.last_hash
            ),
            Some(sig) => canonical_json(&json!({
                "count": self.count,
                "key_id": sig.key_id,
                "last_hash": self.last_hash,
                "signature": BASE64.encode(sig.signature.to_bytes()),
                "signed_at": sig.signed_at,
            })),
        };
        line.push('\n');
        line
    }

    /// Checks the signature against `key`.
    pub(crate) fn check(&self, key: &HeadKey) -> Result<(), SignatureProblem> {
        let Some(sig) = &self.signature else {
            return Err(SignatureProblem::Unsigned);
        };
        if let Some(expected) = &key.key_id
            && expected != &sig.key_id
        {
            return Err(SignatureProblem::OtherKey {
                found: sig.key_id.clone(),
                expected: expected.clone(),
            });
        }
        let message = signing_message(self.count, &self.last_hash, &sig.key_id, &sig.signed_at);
        key.public
            .verify_strict(message.as_bytes(), &sig.signature)
            .map_err(|_| SignatureProblem::Invalid {
                key_id: sig.key_id.clone(),
            })
    }
}

/// The exact bytes a head signature covers.
pub fn signing_message(count: u64, last_hash: &str, key_id: &str, signed_at: &str) -> String {
    canonical_json(&json!({
        "alg": ALGORITHM,
        "count": count,
        "format": HEAD_FORMAT,
        "key_id": key_id,
        "last_hash": last_hash,
        "signed_at": signed_at,
    }))
}

/// Why a head's signature is not the one required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The head carries no signature.
    Unsigned,
    /// Signed under another key id than the key given.
    OtherKey {
        /// The key id in the head.
        found: String,
        /// The key id of the key given.
        expected: String,
    },
    /// The signature does not verify with the key given.
    Invalid {
        /// The key id in the head.
        key_id: String,
    },
    /// The head is signed, but the writer opening the log has no key to continue it.
    WriterHasNoKey {
        /// The key id in the head.
        key_id: String,
    },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsigned => f.write_str(
                "the head is not signed, but a head signed by the node key is required: the log \
                 and its head may have been rewritten by someone without the key",
            ),
            Self::OtherKey { found, expected } => write!(
                f,
                "the head is signed by key {found:?}, not by {expected:?}: it was rewritten \
                 with another key, or this is not the node's key"
            ),
            Self::Invalid { key_id } => write!(
                f,
                "the head's signature (key {key_id:?}) does not verify with the key given: the \
                 log and its head were rewritten without the node key, or the key is not this \
                 node's"
            ),
            Self::WriterHasNoKey { key_id } => write!(
                f,
                "the head is signed by node key {key_id:?} but this writer has no key; open the \
                 log with that key (FileChainSink::open_signed, `evidence reanchor --key`), or \
                 if the key is lost move the head aside first"
            ),
        }
    }
}

/// Reads `<log>.head`; `None` when it does not exist.
pub(crate) fn read_head(log: &Path) -> Result<Option<Head>, ChainError> {
    let path = head_path(log);
    let bad = |reason: String| ChainError::BadHead {
        path: path.clone(),
        reason,
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ChainError::Io {
                path: path.clone(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_HEAD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ChainError::Io {
            path: path.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_HEAD_BYTES {
        return Err(bad(format!("larger than {MAX_HEAD_BYTES} bytes")));
    }
    parse_head(&bytes).map(Some).map_err(bad)
}

fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(map) = value else {
        return Err("not a JSON object".to_owned());
    };
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "count" | "last_hash" | "key_id" | "signature" | "signed_at"
        ) {
            return Err(format!("unexpected field {key:?}"));
        }
    }
    let count = map
        .get("count")
        .and_then(Value::as_u64)
        .ok_or("count must be a non-negative integer")?;
    let last_hash = map
        .get("last_hash")
        .and_then(Value::as_str)
        .filter(|h| is_sha256_ref(h))
        .ok_or("last_hash must be a sha256:<64 hex> string")?
        .to_owned();
    let signed = ["key_id", "signature", "signed_at"].map(|k| map.get(k));
    let signature = match signed {
        [None, None, None] => None,
        [Some(key_id), Some(signature), Some(signed_at)] => {
            let key_id = key_id
                .as_str()
                .filter(|k| !k.is_empty())
                .ok_or("key_id must be a non-empty string")?;
            let signed_at = signed_at
                .as_str()
                .ok_or("signed_at must be an RFC 3339 string")?;
            parse_rfc3339(signed_at).map_err(|e| format!("signed_at: {e}"))?;
            let signature = signature
                .as_str()
                .ok_or("signature must be a base64 string")?;
            Some(HeadSignature {
                key_id: key_id.to_owned(),
                signed_at: signed_at.to_owned(),
                signature: decode_signature(signature)?,
            })
        }
        _ => return Err("key_id, signature and signed_at go together".to_owned()),
    };
    Ok(Head {
        count,
        last_hash,
        signature,
    })
}

fn decode_signature(text: &str) -> Result<Signature, String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| format!("signature is not valid base64 ({e})"))?;
    let bytes: [u8; 64] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "signature decodes to {} bytes, an ed25519 signature is 64",
            bytes.len()
        )
    })?;
    Ok(Signature::from_bytes(&bytes))
}

/// Writes the head atomically: a temp file beside it, then rename; `durable` adds fsyncs.
pub(crate) fn write_head(head_path: &Path, head: &Head, durable: bool) -> std::io::Result<()> {
    let mut tmp_name: OsString = head_path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(head.to_line().as_bytes())?;
        if durable {
            file.sync_all()?;
        }
    }
    std::fs::rename(&tmp, head_path)?;
    if durable {
        sync_parent_dir(head_path);
    }
    Ok(())
}

/// Makes a rename durable (unix); best effort.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// The node's own Ed25519 key, which signs the evidence head: a key of the node, never one of
/// the callers' authority keys. Stored in the [`SigningKeyFile`] format.
#[derive(Clone)]
pub struct NodeKey {
    key_id: String,
    signing: SigningKey,
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public_key_base64())
            .finish_non_exhaustive()
    }
}

impl NodeKey {
    /// The key held in a signing key file.
    pub fn from_key_file(key: &SigningKeyFile) -> Result<Self, AuthorityKeyError> {
        // The key file's JSON is the only public way to the seed: wipe the copies made on the
        // way (the parsed `Value` is dropped unwiped; it lives for this call only).
        let mut json = key.to_json().into_bytes();
        let value: Result<Value, _> = serde_json::from_slice(&json);
        json.fill(0);
        let mut seed = value
            .ok()
            .as_ref()
            .and_then(|v| v.get("secret_key"))
            .and_then(Value::as_str)
            .and_then(|s| BASE64.decode(s).ok())
            .unwrap_or_default();
        let bytes: Result<[u8; 32], _> = seed.as_slice().try_into();
        seed.fill(0);
        let signing = bytes.ok().map(|b| SigningKey::from_bytes(&b));
        match signing {
            Some(signing) if signing.verifying_key() == key.verifying_key() => Ok(Self {
                key_id: key.key_id().to_owned(),
                signing,
            }),
            _ => Err(AuthorityKeyError::Malformed {
                path: PathBuf::from(format!("<signing key {}>", key.key_id())),
                reason: "its secret key could not be read back".to_owned(),
            }),
        }
    }

    /// The key at `path`, generated (mode 0600, key id `key_id`) when the file does not exist.
    pub fn load_or_generate(path: &Path, key_id: &str) -> Result<Self, AuthorityKeyError> {
        let file = if path.exists() {
            SigningKeyFile::load(path)?
        } else {
            let file = SigningKeyFile::generate(key_id)?;
            file.save(path)?;
            tracing::info!(path = %path.display(), "generated the node key that signs the evidence head");
            file
        };
        Self::from_key_file(&file)
    }

    /// The key id written into signed heads.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key (standard base64 of 32 bytes): what `evidence verify --key` takes.
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.signing.verifying_key().to_bytes())
    }

    /// The key a verifier checks this key's heads with.
    pub fn verifier(&self) -> HeadKey {
        HeadKey {
            key_id: Some(self.key_id.clone()),
            public: self.signing.verifying_key(),
        }
    }
}

/// A public key a head's signature is checked against, with its key id when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadKey {
    key_id: Option<String>,
    public: VerifyingKey,
}

/// A public key that cannot check heads.
#[derive(Debug, Error)]
#[error(
    "not an Ed25519 public key: {reason}; pass the node key file, or its public key as `serve` prints it"
)]
pub struct HeadKeyError {
    reason: String,
}

impl HeadKey {
    /// The public half of a signing key file (its key id must match the head's).
    pub fn from_key_file(key: &SigningKeyFile) -> Self {
        Self {
            key_id: Some(key.key_id().to_owned()),
            public: key.verifying_key(),
        }
    }

    /// A public key in standard base64 (32 bytes); the head's key id is not checked.
    pub fn from_public_key_base64(text: &str) -> Result<Self, HeadKeyError> {
        let bad = |reason: String| HeadKeyError { reason };
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|e| bad(format!("not valid base64 ({e})")))?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| bad(format!("decodes to {} bytes, not 32", bytes.len())))?;
        let public =
            VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a curve point".to_owned()))?;
        if public.is_weak() {
            return Err(bad("a weak (small-order) key".to_owned()));
        }
        Ok(Self {
            key_id: None,
            public,
        })
    }

    /// The key id heads must carry, when known.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_node_key_signs_what_its_key_file_verifies() {
        let file = SigningKeyFile::from_seed("node-a", [9; 32]);
        let key = NodeKey::from_key_file(&file).unwrap();
        assert_eq!(key.public_key_base64(), file.public_key_base64());
        let head = Head::signed(3, format!("sha256:{}", "a".repeat(64)), &key);
        head.check(&HeadKey::from_key_file(&file)).unwrap();
        let parsed = parse_head(head.to_line().as_bytes()).unwrap();
        assert_eq!(parsed, head);
        let other = SigningKeyFile::from_seed("node-a", [8; 32]);
        assert!(matches!(
            head.check(&HeadKey::from_key_file(&other)),
            Err(SignatureProblem::Invalid { .. })
        ));
    }
}
