//! One unit per capability. Each host import family a lane may be granted is one module here,
//! holding its grant check, its linker function, its per-execution state and its evidence:
//!
//! | unit | grant | imports | state | evidence |
//! |---|---|---|---|---|
//! | [`events`] | `events` | `execution-plane:lane/events` | [`EventBuffer`] | the execution's events |
//! | [`logging`] | `logging` | `execution-plane:lane/logging` | [`LogContext`] | `dropped_log_lines` |
//! | [`http`] | `http` (URL patterns) | `wasi:http/*`, `http-egress` | [`HttpState`] | `http: {requests, denied}`, denials |
//! | [`input`] | none (always linked) | `execution-plane:lane/input` | [`InputState`] | the node's `execution.input` |
//! | [`wasi`] `FILESYSTEM` | `filesystem` | `wasi:filesystem/*` | the WASI context (no preopens) | — |
//! | [`wasi`] `SOCKETS` | `sockets` | `wasi:sockets/*` | the WASI context (nothing allowed) | — |
//!
//! A lane's linker is the WASI base plus exactly the units its grants turn on ([`UNITS`]), and a
//! component importing a unit's interface without the grant is refused at load, naming the
//! import and the grant. The store's data composes the units' states in [`States`]; adding a
//! capability adds a module here and a line to each of [`UNITS`] and [`States`], never an edit
//! to the store's core (`crate::state`).

pub(crate) mod events;
pub(crate) mod http;
pub(crate) mod input;
pub(crate) mod logging;
pub(crate) mod wasi;

use wasmtime::component::Linker;

pub(crate) use events::EventBuffer;
pub(crate) use http::HttpState;
pub(crate) use input::InputState;
pub(crate) use logging::LogContext;

use crate::egress::hooks::LaneHttpHooks;
use crate::grants::Grants;
use crate::limits::LaneLimits;
use crate::state::{Attribution, LaneState};

/// A host import family a lane may be granted.
pub(crate) struct Unit {
    /// The grant's name (the manifest's `[grants]` key, named in refusals).
    pub(crate) grant: &'static str,
    /// Import-name prefixes of the interfaces it links.
    pub(crate) imports: &'static [&'static str],
    /// Whether the grants turn it on.
    pub(crate) granted: fn(&Grants) -> bool,
    /// Links its interfaces into a lane's linker.
    pub(crate) link: fn(&mut Linker<LaneState>) -> wasmtime::Result<()>,
}

/// Every unit, in link order.
pub(crate) static UNITS: [&Unit; 5] = [
    &events::EVENTS,
    &logging::LOGGING,
    &http::HTTP,
    &wasi::FILESYSTEM,
    &wasi::SOCKETS,
];

/// The per-execution state of the units that keep one.
pub(crate) struct States {
    pub(crate) events: EventBuffer,
    pub(crate) log: LogContext,
    pub(crate) http: HttpState,
    pub(crate) input: InputState,
}

impl States {
    pub(crate) fn new(who: Attribution, limits: &LaneLimits, hooks: LaneHttpHooks) -> Self {
        Self {
            events: EventBuffer::new(who.execution_ref.clone(), limits),
            log: LogContext::new(who, limits),
            http: HttpState::new(hooks),
            input: InputState::default(),
        }
    }
}

/// A linker with the WASI base, `types`, and exactly the units `grants` turn on.
pub(crate) fn linker(
    engine: &wasmtime::Engine,
    grants: &Grants,
) -> wasmtime::Result<Linker<LaneState>> {
    let mut linker = Linker::<LaneState>::new(engine);
    wasi::link_base(&mut linker)?;
    for unit in UNITS {
        if (unit.granted)(grants) {
            (unit.link)(&mut linker)?;
        }
    }
    Ok(linker)
}

/// The grant that allows `import`, when `import` is a unit's interface `grants` lack.
pub(crate) fn missing_for(grants: &Grants, import: &str) -> Option<&'static str> {
    UNITS
        .iter()
        .find(|unit| unit.imports.iter().any(|prefix| import.starts_with(prefix)))
        .filter(|unit| !(unit.granted)(grants))
        .map(|unit| unit.grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::HttpGrants;

    #[test]
    fn each_import_family_is_refused_without_its_grant_and_allowed_with_it() {
        let cases = [
            ("execution-plane:lane/events@0.1.0", "events"),
            ("execution-plane:lane/logging@0.1.0", "logging"),
            ("wasi:http/outgoing-handler@0.2.6", "http"),
            ("wasi:filesystem/preopens@0.2.6", "filesystem"),
            ("wasi:sockets/tcp@0.2.6", "sockets"),
        ];
        let none = Grants::none();
        let all = Grants {
            events: true,
            logging: true,
            http: HttpGrants::parse(&["http://127.0.0.1:*"], &[]).unwrap_or_default(),
            filesystem: true,
            sockets: true,
        };
        assert!(!all.http.is_empty(), "the http grant parses");
        for (import, grant) in cases {
            assert_eq!(missing_for(&none, import), Some(grant), "{import}");
            assert_eq!(missing_for(&all, import), None, "{import}");
        }
        // The WASI base and the type-only interface need no grant.
        assert_eq!(missing_for(&none, "wasi:io/streams@0.2.6"), None);
        assert_eq!(missing_for(&none, "execution-plane:lane/types@0.1.0"), None);
    }

    #[test]
    fn every_unit_has_its_own_grant_name() {
        let mut names: Vec<_> = UNITS.iter().map(|unit| unit.grant).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), UNITS.len());
    }
}
