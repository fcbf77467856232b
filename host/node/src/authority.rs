//! Development authority tooling and the Ed25519 authority-ref signing scheme.
//!
//! One module owns the scheme so the verifier, the CLI and tests cannot drift apart:
//!
//! * [`SigningKeyFile`] — a secret key on disk (`{"key_id", "algorithm": "ed25519",
//!   "secret_key": <base64 32-byte seed>}`), written with mode `0600` on unix.
//! * [`TrustStore`] — the public keys a node trusts, loaded from TOML:
//!
//!   ```toml
//!   [[keys]]
//!   key_id = "dev"
//!   public_key = "<base64 32 bytes>"
//!   not_after = "2027-01-01T00:00:00Z"   # optional
//!   ```
//! * The signed message: the canonical JSON ([`canonical_json`]) of `{"alg": "ed25519",
//!   "audience", "expires_at", "issued_at", "key_id", "nonce", "payload_hash", "ref",
//!   "request_hash"}`. The key id, the nonce, the request hash and the base64 signature travel
//!   in `AuthorityRef.metadata` as `{"key_id", "nonce", "request_hash", "signature"}`.
//! * [`request_hash`] — `sha256:` of the canonical JSON of the whole admission request (without
//!   its `authority_ref`), so a ref authorizes exactly one request: not the same payload with
//!   other metadata, another lane or other acceptable classes. [`payload_hash`] is kept for the
//!   upstream field of the same name.
//! * The nonce makes a ref single-use: the verifier accepts it for one dispatch.
//!
//! ```
//! use std::time::Duration;
//! use ep_contracts::boundary::AdmissionRequest;
//! use ep_node::authority::{SigningKeyFile, TrustStore, authorize, request_hash};
//!
//! let key = SigningKeyFile::from_seed("dev", [7u8; 32]);
//! let store = TrustStore::from_toml_str(&key.public_entry()).unwrap();
//! assert!(store.get("dev").is_some());
//!
//! let mut request = AdmissionRequest::new("http");
//! request.payload.insert("url".into(), "https://example.com/".into());
//! let request = authorize(&key, request, "node-a", Duration::from_secs(300), chrono::Utc::now());
//! let authority = request.authority_ref.as_ref().unwrap();
//! assert_eq!(authority.audience.as_deref(), Some("node-a"));
//! assert_eq!(authority.metadata["request_hash"], request_hash(&request).as_str());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat, TimeDelta, TimeZone, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use ep_contracts::Contract;
use ep_contracts::boundary::{AdmissionRequest, AuthorityRef, Map, RootVersion};
use ep_contracts::canonical::{canonical_json, hash_value};
use serde_json::Value;
use thiserror::Error;

/// The only algorithm this scheme signs with; recorded in key files and the signed message.
pub const ALGORITHM: &str = "ed25519";

/// Key files and trust stores larger than this are refused before parsing (they are tiny).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The name used in errors for a trust store parsed from a string rather than a file.
const INLINE_SOURCE: &str = "<trust store text>";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A signing key file or trust store could not be read, parsed or written.
#[derive(Debug, Error)]
pub enum AuthorityKeyError {
    /// The file could not be read or written.
    #[error("{}: {source}; check that the path exists and is accessible", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `save` refuses to overwrite an existing key file.
    #[error(
        "{}: already exists; refusing to overwrite a signing key, delete it first or choose another path",
        path.display()
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The key file is not the expected JSON shape.
    #[error(
        "{}: malformed signing key file: {reason}; expected {{\"key_id\", \"algorithm\": \"ed25519\", \"secret_key\": <base64>}}, regenerate it if unsure",
        path.display()
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key file names an algorithm other than ed25519.
    #[error(
        "{}: algorithm is {found:?} but only \"ed25519\" keys are supported; generate an ed25519 key",
        path.display()
    )]
    WrongAlgorithm {
        /// The file.
        path: PathBuf,
        /// The algorithm it names.
        found: String,
    },
    /// The decoded secret key is not 32 bytes.
    #[error(
        "{}: secret_key decodes to {found} bytes but an ed25519 seed is 32 bytes; regenerate the key",
        path.display()
    )]
    BadKeyLength {
        /// The file.
        path: PathBuf,
        /// The decoded length.
        found: usize,
    },
    /// The operating system could not provide randomness for a new key.
    #[error(
        "cannot generate a signing key: no OS randomness ({reason}); retry on a system with a working random source"
    )]
    Random {
        /// Why.
        reason: String,
    },
    /// The trust store is not valid TOML or has an unexpected shape.
    #[error(
        "{source_name}: malformed trust store: {reason}; expected [[keys]] entries with key_id and public_key"
    )]
    TrustStoreSyntax {
        /// The file (or `<trust store text>`).
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// One `[[keys]]` entry is invalid.
    #[error("{source_name}: trust store entry {entry}{}: {reason}", key_label(key_id.as_deref()))]
    BadTrustEntry {
        /// The file (or `<trust store text>`).
        source_name: String,
        /// 1-based index of the `[[keys]]` entry.
        entry: usize,
        /// Its key id, when readable.
        key_id: Option<String>,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Two entries share a key id.
    #[error(
        "{source_name}: trust store entry {entry} repeats key_id {key_id:?} (first in entry {first_entry}); key ids must be unique, remove or rename one"
    )]
    DuplicateKeyId {
        /// The file (or `<trust store text>`).
        source_name: String,
        /// The repeated key id.
        key_id: String,
        /// 1-based index of the first entry with it.
        first_entry: usize,
        /// 1-based index of the repeat.
        entry: usize,
    },
}

fn key_label(key_id: Option<&str>) -> String {
    key_id
        .map(|k| format!(" (key_id {k:?})"))
        .unwrap_or_default()
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> AuthorityKeyError + '_ {
    move |source| AuthorityKeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads at most [`MAX_FILE_BYTES`] of `path` as UTF-8 text.
fn read_small_text(path: &Path) -> Result<String, AuthorityKeyError> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(AuthorityKeyError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!(
                "file is larger than {MAX_FILE_BYTES} bytes, which no key file or trust store is"
            )),
        });
    }
    String::from_utf8(bytes).map_err(|e| AuthorityKeyError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

// ---------------------------------------------------------------------------------------------
// Signing key files
// ---------------------------------------------------------------------------------------------

/// A development signing key with its key id: what an issuer of authority refs holds.
#[derive(Clone)]
pub struct SigningKeyFile {
    key_id: String,
    key: SigningKey,
}

impl fmt::Debug for SigningKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyFile")
            .field("key_id", &self.key_id)
            .field("public_key", &self.public_key_base64())
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

impl SigningKeyFile {
    /// A new key from 32 bytes of OS randomness.
    pub fn generate(key_id: impl Into<String>) -> Result<Self, AuthorityKeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| AuthorityKeyError::Random {
            reason: e.to_string(),
        })?;
        let key = Self::from_seed(key_id, seed);
        seed.fill(0);
        Ok(key)
    }

    /// A key from a known seed: deterministic keys for tests and fixtures.
    pub fn from_seed(key_id: impl Into<String>, seed: [u8; 32]) -> Self {
        Self {
            key_id: key_id.into(),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a key file written by [`SigningKeyFile::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AuthorityKeyError> {
        let path = path.as_ref();
        let text = read_small_text(path)?;
        Self::from_json_str(&text, path)
    }

    /// Parses key-file JSON; `path` only names the source in errors.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self, AuthorityKeyError> {
        let malformed = |reason: String| AuthorityKeyError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| malformed(format!("not JSON ({e})")))?;
        let Value::Object(map) = value else {
            return Err(malformed("the top level is not a JSON object".to_owned()));
        };
        let string_field = |name: &str| match map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
            Some(_) => Err(malformed(format!("{name} must be a non-empty string"))),
            None => Err(malformed(format!("{name} is missing"))),
        };
        let key_id = string_field("key_id")?;
        let algorithm = string_field("algorithm")?;
        if algorithm != ALGORITHM {
            return Err(AuthorityKeyError::WrongAlgorithm {
                path: path.to_path_buf(),
                found: algorithm.to_owned(),
            });
        }
        let secret = string_field("secret_key")?;
        let mut bytes = BASE64
            .decode(secret.trim())
            .map_err(|e| malformed(format!("secret_key is not valid base64 ({e})")))?;
        let seed: Result<[u8; 32], _> = bytes.as_slice().try_into();
        let found = bytes.len();
        bytes.fill(0);
        let mut seed = seed.map_err(|_| AuthorityKeyError::BadKeyLength {
            path: path.to_path_buf(),
            found,
        })?;
        let key = Self::from_seed(key_id, seed);
        seed.fill(0);
        Ok(key)
    }

    /// Writes the key file (mode `0600` on unix); refuses to overwrite an existing file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), AuthorityKeyError> {
        let path = path.as_ref();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                AuthorityKeyError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                AuthorityKeyError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let written = file
            .write_all(self.to_json().as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(source) = written {
            drop(file);
            // Best effort: do not leave a half-written secret behind.
            let _ = std::fs::remove_file(path);
            return Err(AuthorityKeyError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(())
    }

    /// The key-file JSON (contains the secret key: never log it).
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("key_id".to_owned(), Value::from(self.key_id.clone()));
        map.insert("algorithm".to_owned(), Value::from(ALGORITHM));
        map.insert(
            "secret_key".to_owned(),
            Value::from(BASE64.encode(self.key.to_bytes())),
        );
        let mut text =
            serde_json::to_string_pretty(&Value::Object(map)).unwrap_or_else(|_| String::new());
        text.push('\n');
        text
    }

    /// The key id verifiers look the public key up by.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, for trust stores.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key as trust stores spell it (standard base64, 32 bytes).
    pub fn public_key_base64(&self) -> String {
        BASE64.encode(self.key.verifying_key().to_bytes())
    }

    /// The `[[keys]]` TOML entry an operator appends to a node's trust store.
    pub fn public_entry(&self) -> String {
        format!(
            "[[keys]]\nkey_id = {}\npublic_key = {}\n",
            toml::Value::String(self.key_id.clone()),
            toml::Value::String(self.public_key_base64()),
        )
    }

    /// Signs raw bytes (the scheme's message is built by [`signing_message`]).
    fn sign_bytes(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

// ---------------------------------------------------------------------------------------------
// Trust store
// ---------------------------------------------------------------------------------------------

/// One trusted public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The id refs name it by.
    pub key_id: String,
    /// The Ed25519 public key.
    pub public_key: VerifyingKey,
    /// After this instant refs signed by the key are refused.
    pub not_after: Option<DateTime<Utc>>,
}

/// The public keys a node accepts authority refs from, by key id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustStore {
    keys: BTreeMap<String, TrustedKey>,
}

impl TrustStore {
    /// An empty store (no ref verifies until keys are added).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a TOML trust store file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AuthorityKeyError> {
        let path = path.as_ref();
        let text = read_small_text(path)?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses TOML trust store text.
    pub fn from_toml_str(text: &str) -> Result<Self, AuthorityKeyError> {
        Self::parse(text, INLINE_SOURCE)
    }

    fn parse(text: &str, source_name: &str) -> Result<Self, AuthorityKeyError> {
        let syntax = |reason: String| AuthorityKeyError::TrustStoreSyntax {
            source_name: source_name.to_owned(),
            reason,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| syntax(e.to_string()))?;
        for key in table.keys() {
            if key != "keys" {
                return Err(syntax(format!(
                    "unknown top-level key {key:?} (only [[keys]] entries are allowed)"
                )));
            }
        }
        let entries = match table.get("keys") {
            None => return Ok(Self::new()),
            Some(toml::Value::Array(entries)) => entries,
            Some(_) => {
                return Err(syntax(
                    "keys must be an array of tables, written [[keys]]".to_owned(),
                ));
            }
        };
        let mut store = Self::new();
        let mut first_entry: BTreeMap<String, usize> = BTreeMap::new();
        for (index, entry) in entries.iter().enumerate() {
            let number = index + 1;
            let key = parse_entry(entry, number, source_name)?;
            if let Some(&first) = first_entry.get(&key.key_id) {
                return Err(AuthorityKeyError::DuplicateKeyId {
                    source_name: source_name.to_owned(),
                    key_id: key.key_id,
                    first_entry: first,
                    entry: number,
                });
            }
            first_entry.insert(key.key_id.clone(), number);
            store.keys.insert(key.key_id.clone(), key);
        }
        Ok(store)
    }

    /// Adds a key (builder style); a repeated key id replaces nothing and is an error.
    pub fn with_key(mut self, key: TrustedKey) -> Result<Self, AuthorityKeyError> {
        if let Some(position) = self.keys.keys().position(|k| *k == key.key_id) {
            return Err(AuthorityKeyError::DuplicateKeyId {
                source_name: "<in-memory trust store>".to_owned(),
                key_id: key.key_id,
                first_entry: position + 1,
                entry: self.keys.len() + 1,
            });
        }
        self.keys.insert(key.key_id.clone(), key);
        Ok(self)
    }

    /// The key with this id, if trusted.
    pub fn get(&self, key_id: &str) -> Option<&TrustedKey> {
        self.keys.get(key_id)
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted key ids, sorted (for describe output and messages).
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

fn parse_entry(
    entry: &toml::Value,
    number: usize,
    source_name: &str,
) -> Result<TrustedKey, AuthorityKeyError> {
    let bad = |key_id: Option<&str>, reason: String| AuthorityKeyError::BadTrustEntry {
        source_name: source_name.to_owned(),
        entry: number,
        key_id: key_id.map(str::to_owned),
        reason,
    };
    let toml::Value::Table(table) = entry else {
        return Err(bad(None, "is not a table; write it as [[keys]]".to_owned()));
    };
    let key_id = match table.get("key_id") {
        Some(toml::Value::String(s)) if !s.is_empty() => s.as_str(),
        Some(_) => return Err(bad(None, "key_id must be a non-empty string".to_owned())),
        None => return Err(bad(None, "key_id is missing".to_owned())),
    };
    for name in table.keys() {
        if !matches!(name.as_str(), "key_id" | "public_key" | "not_after") {
            return Err(bad(
                Some(key_id),
                format!("unknown field {name:?}; allowed fields are key_id, public_key, not_after"),
            ));
        }
    }
    let public_key = match table.get("public_key") {
        Some(toml::Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(bad(
                Some(key_id),
                "public_key must be a base64 string".to_owned(),
            ));
        }
        None => {
            return Err(bad(
                Some(key_id),
                "public_key is missing; paste the entry printed for the signing key".to_owned(),
            ));
        }
    };
    let public_key = decode_public_key(public_key).map_err(|reason| bad(Some(key_id), reason))?;
    let not_after = match table.get("not_after") {
        None => None,
        Some(toml::Value::String(s)) => Some(
            parse_rfc3339(s).map_err(|reason| bad(Some(key_id), format!("not_after {reason}")))?,
        ),
        Some(toml::Value::Datetime(dt)) => Some(
            parse_rfc3339(&dt.to_string())
                .map_err(|reason| bad(Some(key_id), format!("not_after {reason}")))?,
        ),
        Some(_) => {
            return Err(bad(
                Some(key_id),
                "not_after must be an RFC 3339 timestamp such as \"2027-01-01T00:00:00Z\""
                    .to_owned(),
            ));
        }
    };
    Ok(TrustedKey {
        key_id: key_id.to_owned(),
        public_key,
        not_after,
    })
}

fn decode_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = BASE64.decode(text.trim()).map_err(|e| {
        format!("public_key is not valid base64 ({e}); copy it again from the key's public entry")
    })?;
    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "public_key decodes to {} bytes but an ed25519 public key is 32 bytes",
            bytes.len()
        )
    })?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| "public_key is not a valid ed25519 point; copy it again".to_owned())?;
    if key.is_weak() {
        return Err(
            "public_key is a weak (small-order) ed25519 key and cannot be trusted".to_owned(),
        );
    }
    Ok(key)
}

/// Parses an RFC 3339 timestamp into UTC; the error says what was expected.
pub fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|dt| dt.with_timezone(&Utc))
        .map_err(|_| {
            format!(
                "{text:?} is not an RFC 3339 timestamp with a timezone (e.g. 2027-01-01T00:00:00Z)"
            )
        })
}

/// Formats an instant the way refs carry it: RFC 3339, UTC, microseconds, `Z`.
pub fn format_rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// Where the verifier reads "now" from, so tests can move time without sleeping.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

impl<F> Clock for F
where
    F: Fn() -> DateTime<Utc> + Send + Sync,
{
    fn now(&self) -> DateTime<Utc> {
        self()
    }
}

/// A clock tests set and advance by hand; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(now.timestamp_micros())),
        }
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: DateTime<Utc>) {
        self.micros.store(now.timestamp_micros(), Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let delta = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| {
                Some(m.saturating_add(delta))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst))
            .unwrap_or(DateTime::UNIX_EPOCH)
    }
}

// ---------------------------------------------------------------------------------------------
// The signing scheme
// ---------------------------------------------------------------------------------------------

/// The `sha256:` hash a ref carries for the payload it authorizes.
pub fn payload_hash(payload: &Map) -> String {
    hash_value(&Value::Object(payload.clone()))
}

/// The `sha256:` hash a ref carries for the whole admission request it authorizes: the
/// canonical JSON of the dumped request without its `authority_ref` (lane, operation, payload,
/// metadata with any egress narrowing, acceptable classes, sandbox profile, placement,
/// constraints, provenance, request id). Changing any of them after signing breaks the ref.
pub fn request_hash(request: &AdmissionRequest) -> String {
    let mut value = request.to_value();
    if let Value::Object(map) = &mut value {
        map.remove("authority_ref");
    }
    hash_value(&value)
}

/// The signed fields of an authority ref, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityFields {
    /// The opaque reference (`ref`).
    pub reference: String,
    /// `sha256:` of the authorized payload.
    pub payload_hash: String,
    /// `sha256:` of the whole authorized admission request ([`request_hash`]).
    pub request_hash: String,
    /// Single-use value: the node accepts a ref with this nonce once within its lifetime.
    pub nonce: String,
    /// The node id the ref is for.
    pub audience: String,
    /// RFC 3339 issue time.
    pub issued_at: String,
    /// RFC 3339 expiry time.
    pub expires_at: String,
}

/// The exact bytes signed for `fields` under `key_id`: canonical JSON of the nine claims.
pub fn signing_message(key_id: &str, fields: &AuthorityFields) -> String {
    let mut map = Map::new();
    let mut put = |key: &str, value: &str| {
        map.insert(key.to_owned(), Value::from(value));
    };
    put("alg", ALGORITHM);
    put("audience", &fields.audience);
    put("expires_at", &fields.expires_at);
    put("issued_at", &fields.issued_at);
    put("key_id", key_id);
    put("nonce", &fields.nonce);
    put("payload_hash", &fields.payload_hash);
    put("ref", &fields.reference);
    put("request_hash", &fields.request_hash);
    canonical_json(&Value::Object(map))
}

/// Signs arbitrary fields (tools and tests that need unusual timestamps use this directly).
/// The key id, nonce, request hash and signature travel in the ref's `metadata`.
pub fn sign_fields(key: &SigningKeyFile, fields: AuthorityFields) -> AuthorityRef {
    let signature = key.sign_bytes(signing_message(key.key_id(), &fields).as_bytes());
    let mut metadata = Map::new();
    metadata.insert("key_id".to_owned(), Value::from(key.key_id()));
    metadata.insert("nonce".to_owned(), Value::from(fields.nonce));
    metadata.insert("request_hash".to_owned(), Value::from(fields.request_hash));
    metadata.insert(
        "signature".to_owned(),
        Value::from(BASE64.encode(signature.to_bytes())),
    );
    AuthorityRef {
        contract_version: RootVersion,
        reference: Some(fields.reference),
        payload_hash: Some(fields.payload_hash),
        audience: Some(fields.audience),
        issued_at: Some(fields.issued_at),
        expires_at: Some(fields.expires_at),
        metadata,
    }
}

/// Issues a single-use ref for exactly `request` (see [`request_hash`]) to node `audience`,
/// valid from `now` for `ttl`, with a fresh `auth-…` reference and a random nonce. Set it as
/// the request's `authority_ref` (or use [`authorize`]).
pub fn sign_request(
    key: &SigningKeyFile,
    request: &AdmissionRequest,
    audience: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> AuthorityRef {
    sign_request_with_ref(
        key,
        &ep_contracts::ids::stable_id("auth"),
        request,
        audience,
        ttl,
        now,
    )
}

/// [`sign_request`] with a caller-chosen reference string.
pub fn sign_request_with_ref(
    key: &SigningKeyFile,
    reference: &str,
    request: &AdmissionRequest,
    audience: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> AuthorityRef {
    let expires = TimeDelta::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or_else(latest_instant)
        .min(latest_instant());
    sign_fields(
        key,
        AuthorityFields {
            reference: reference.to_owned(),
            payload_hash: payload_hash(&request.payload),
            request_hash: request_hash(request),
            nonce: ep_contracts::ids::random_hex(16),
            audience: audience.to_owned(),
            issued_at: format_rfc3339(now),
            expires_at: format_rfc3339(expires),
        },
    )
}

/// Signs `request` (as [`sign_request`]) and sets the ref as its `authority_ref`.
pub fn authorize(
    key: &SigningKeyFile,
    mut request: AdmissionRequest,
    audience: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> AdmissionRequest {
    request.authority_ref = None;
    request.authority_ref = Some(sign_request(key, &request, audience, ttl, now));
    request
}

/// The latest instant RFC 3339 can spell with a four-digit year.
fn latest_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Decodes a base64 signature; the error says what is wrong.
pub(crate) fn decode_signature(text: &str) -> Result<Signature, String> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| format!("metadata.signature is not valid base64 ({e})"))?;
    let bytes: [u8; 64] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "metadata.signature decodes to {} bytes but an ed25519 signature is 64 bytes",
            bytes.len()
        )
    })?;
    Ok(Signature::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_message_is_canonical_and_names_every_claim() {
        let fields = AuthorityFields {
            reference: "r".into(),
            payload_hash: "sha256:x".into(),
            request_hash: "sha256:y".into(),
            nonce: "z".into(),
            audience: "n".into(),
            issued_at: "i".into(),
            expires_at: "e".into(),
        };
        assert_eq!(
            signing_message("k", &fields),
            r#"{"alg":"ed25519","audience":"n","expires_at":"e","issued_at":"i","key_id":"k","nonce":"z","payload_hash":"sha256:x","ref":"r","request_hash":"sha256:y"}"#
        );
    }

    #[test]
    fn huge_ttl_is_clamped_to_a_printable_instant() {
        let key = SigningKeyFile::from_seed("k", [1; 32]);
        let r = sign_request(
            &key,
            &AdmissionRequest::new("l"),
            "n",
            Duration::MAX,
            Utc::now(),
        );
        let expires = r.expires_at.unwrap_or_default();
        assert!(parse_rfc3339(&expires).is_ok(), "{expires}");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let key = SigningKeyFile::from_seed("k", [1; 32]);
        let secret = BASE64.encode([1u8; 32]);
        assert!(!format!("{key:?}").contains(&secret));
    }
}
