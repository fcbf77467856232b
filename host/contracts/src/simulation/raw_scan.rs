//! The recursive raw-evidence scan: no raw payload, prompt or secret-shaped key reaches durable evidence.

use super::*;

/// Keys that describe the *shape* of evidence rather than carrying it; the scan skips them (and
/// everything below them).
pub const SHAPE_ONLY_KEYS: [&str; 7] = [
    "checked_for",
    "header_keys",
    "raw_payload_included",
    "raw_payload_shape",
    "rejected_findings",
    "scan_scope",
    "scanner_ref",
];

/// Keys (compared lowercase) whose mere presence means raw durable evidence leaked.
pub const FORBIDDEN_RAW_KEYS: [&str; 11] = [
    "api_key",
    "authorization",
    "body",
    "payload",
    "prompt",
    "provider_body",
    "raw_body",
    "raw_payload",
    "secret",
    "semantic_body",
    "workflow_history",
];

/// Substrings (compared case-insensitively) that mark a string value as raw durable evidence.
pub const FORBIDDEN_RAW_SUBSTRINGS: [&str; 5] = [
    "raw prompt",
    "raw provider body",
    "sk-live",
    "workflow history",
    "unbounded semantic",
];

/// Why the raw-evidence scan flagged a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawFindingReason {
    /// The key itself (lowercased) is one of [`FORBIDDEN_RAW_KEYS`]; carries the key as written.
    ForbiddenKey(String),
    /// A string value contains one of [`FORBIDDEN_RAW_SUBSTRINGS`]; carries the matched substring.
    ForbiddenSubstring(&'static str),
}

/// One place where raw durable evidence was found, so callers can report every leak at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFinding {
    /// Dotted path from the scanned root (`a.b.0.c`; empty for a root string).
    pub path: String,
    /// What was found there.
    pub reason: RawFindingReason,
}

/// Every raw-evidence finding in `value`, in document order (object keys in map iteration
/// order, list elements by index), skipping the shape-only allow-list keys.
pub fn raw_evidence_findings(value: &Value) -> Vec<RawFinding> {
    let mut findings = Vec::new();
    let mut path = Vec::new();
    scan_into(value, &mut path, &mut findings);
    findings
}

/// Refuses `value` when it carries raw durable evidence, naming the first offending path.
pub fn scan_raw_evidence(value: &Value) -> Result<(), ContractError> {
    scan_raw_evidence_at(value, "")
}

/// Like [`scan_raw_evidence`], with paths reported under `root` (`root.a.b`).
pub(super) fn scan_raw_evidence_at(value: &Value, root: &str) -> Result<(), ContractError> {
    match raw_evidence_findings(value).into_iter().next() {
        None => Ok(()),
        Some(finding) => {
            let path = match (root.is_empty(), finding.path.is_empty()) {
                (true, _) => finding.path,
                (false, true) => root.to_owned(),
                (false, false) => format!("{root}.{}", finding.path),
            };
            let field = if path.is_empty() {
                "raw_evidence".to_owned()
            } else {
                path.clone()
            };
            Err(ContractError::rule(
                field,
                format!("raw durable evidence is forbidden at {path}"),
            ))
        }
    }
}

/// The first of [`FORBIDDEN_RAW_SUBSTRINGS`] that `s` contains, compared case-insensitively.
pub fn forbidden_substring(s: &str) -> Option<&'static str> {
    lowercase_contains(s, &FORBIDDEN_RAW_SUBSTRINGS)
}

/// One step of a path into a value; joined into text only when a finding names it.
pub(super) enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

pub(super) fn joined(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for (i, step) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match step {
            Step::Key(key) => out.push_str(key),
            Step::Index(index) => out.push_str(&index.to_string()),
        }
    }
    out
}

/// `s` lowercased (Unicode rules) is `word` (ASCII, lowercase); no allocation for ASCII `s`.
pub(super) fn lowercase_is(s: &str, word: &str) -> bool {
    if s.is_ascii() {
        s.eq_ignore_ascii_case(word)
    } else {
        s.to_lowercase() == word
    }
}

/// The first of `needles` (ASCII, lowercase) that `s` lowercased (Unicode rules) contains.
pub(super) fn lowercase_contains<'n>(s: &str, needles: &[&'n str]) -> Option<&'n str> {
    if s.is_ascii() {
        let bytes = s.as_bytes();
        needles.iter().copied().find(|needle| {
            let needle = needle.as_bytes();
            needle.is_empty()
                || bytes
                    .windows(needle.len())
                    .any(|window| window.eq_ignore_ascii_case(needle))
        })
    } else {
        let lower = s.to_lowercase();
        needles
            .iter()
            .copied()
            .find(|needle| lower.contains(needle))
    }
}

pub(super) fn scan_into<'a>(
    value: &'a Value,
    path: &mut Vec<Step<'a>>,
    findings: &mut Vec<RawFinding>,
) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if SHAPE_ONLY_KEYS.contains(&key.as_str()) {
                    continue;
                }
                path.push(Step::Key(key));
                if FORBIDDEN_RAW_KEYS
                    .iter()
                    .any(|word| lowercase_is(key, word))
                {
                    findings.push(RawFinding {
                        path: joined(path),
                        reason: RawFindingReason::ForbiddenKey(key.clone()),
                    });
                } else {
                    scan_into(child, path, findings);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                path.push(Step::Index(index));
                scan_into(child, path, findings);
                path.pop();
            }
        }
        Value::String(s) => {
            if let Some(hit) = forbidden_substring(s) {
                findings.push(RawFinding {
                    path: joined(path),
                    reason: RawFindingReason::ForbiddenSubstring(hit),
                });
            }
        }
        _ => {}
    }
}
