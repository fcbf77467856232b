//! The capability tokens of the streams this client opened: the host hands one out with each
//! stream (`x-execution-token`), and it is the caller's credential to cancel that execution.
//! Kept per execution ref, in bounded memory (the oldest are forgotten first).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// How many streams' tokens a client remembers.
pub(crate) const REMEMBERED_TOKENS: usize = 4096;

#[derive(Debug, Default)]
struct Table {
    by_ref: HashMap<String, String>,
    order: VecDeque<String>,
}

/// Execution ref → capability token, for the most recent streams.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    table: Mutex<Table>,
}

impl Tokens {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers the token of `execution_ref`, forgetting the oldest beyond the bound.
    pub(crate) fn remember(&self, execution_ref: &str, token: &str) {
        let mut table = self.table();
        if table
            .by_ref
            .insert(execution_ref.to_owned(), token.to_owned())
            .is_none()
        {
            table.order.push_back(execution_ref.to_owned());
        }
        while table.order.len() > REMEMBERED_TOKENS {
            if let Some(oldest) = table.order.pop_front() {
                table.by_ref.remove(&oldest);
            }
        }
    }

    /// The token of `execution_ref`, when this client opened it recently.
    pub(crate) fn get(&self, execution_ref: &str) -> Option<String> {
        self.table().by_ref.get(execution_ref).cloned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn tokens_are_kept_per_ref_and_bounded() {
        let tokens = Tokens::default();
        tokens.remember("exec-a", "ept-a");
        assert_eq!(tokens.get("exec-a").as_deref(), Some("ept-a"));
        assert_eq!(tokens.get("exec-b"), None);
        for i in 0..REMEMBERED_TOKENS {
            tokens.remember(&format!("exec-{i}"), "t");
        }
        assert_eq!(tokens.get("exec-a"), None, "the oldest is forgotten");
        assert_eq!(tokens.table().by_ref.len(), REMEMBERED_TOKENS);
    }
}
