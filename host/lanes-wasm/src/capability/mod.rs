//! One unit per capability. Each host import family a lane may be granted is one module here,
//! holding its grant check, its linker function, its per-execution state and its evidence:
//!
//! | unit | grant | imports | state | evidence |
//! |---|---|---|---|---|
//! | [`events`] | `events` | `execution-plane:lane/events` | [`EventBuffer`] | the execution's events |
//! | [`logging`] | `logging` | `execution-plane:lane/logging` | [`LogContext`] | `dropped_log_lines` |
//! | [`http`] | `http` (`http://` / `https://` patterns) | `wasi:http/*`, `http-egress` | [`HttpState`] | `http: {requests, denied}`, denials |
//! | [`websocket`] | `http` (`ws://` / `wss://` patterns) | `execution-plane:lane/websocket` | [`WebSocketState`] | `websocket: {connections, messages_*, bytes_*, closes, ...}`, denials |
//! | [`input`] | none (always linked) | `execution-plane:lane/input` | [`InputState`] | the node's `execution.input` |
//! | [`process`] | `process` (commands) | `execution-plane:lane/process` | [`ProcessState`] | `process: {spawned, denied, commands, exits, bytes_in, bytes_out}`, denials |
//! | [`wasi`] `FILESYSTEM` | `filesystem` | `wasi:filesystem/*` | the WASI context (no preopens) | — |
//! | [`wasi`] `SOCKETS` | `sockets` | `wasi:sockets/*` | the WASI context (nothing allowed) | — |
//!
//! A lane's linker is the WASI base plus exactly the units its grants turn on ([`UNITS`]), and a
//! component importing a unit's interface without the grant is refused at load, naming the
//! import and the grant. The store's data composes the units' states in [`States`]; adding a
//! capability adds a module here and a line to each of [`UNITS`] and [`States`], never an edit
//! to the store's core (`crate::state`). What a unit records for evidence lives in the
//! execution's [`ExecutionLog`], outside the store, so a cancel or a fault that drops the store
//! still leaves it.

pub(crate) mod events;
pub(crate) mod http;
pub(crate) mod input;
pub(crate) mod logging;
pub(crate) mod process;
pub(crate) mod wasi;
pub(crate) mod websocket;

use wasmtime::component::Linker;

pub(crate) use events::EventBuffer;
pub(crate) use http::HttpState;
pub(crate) use input::InputState;
pub(crate) use logging::LogContext;
pub(crate) use process::ProcessState;
pub(crate) use websocket::WebSocketState;

use std::sync::Arc;

use ep_lane_api::LaneEvidence;

use crate::egress::hooks::{EgressLog, LaneHttpHooks};
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
    /// The manifest's `[grants] optional` entry that links it even when the grant ends up
    /// empty (every use then denied at run time), for lanes with alternative transports.
    pub(crate) optional_as: Option<&'static str>,
}

impl Unit {
    /// Whether a lane with `grants` gets this unit linked.
    fn linked(&self, grants: &Grants) -> bool {
        (self.granted)(grants)
            || self
                .optional_as
                .is_some_and(|key| grants.optional.iter().any(|optional| optional == key))
    }
}

/// Every unit, in link order.
pub(crate) static UNITS: [&Unit; 7] = [
    &events::EVENTS,
    &logging::LOGGING,
    &http::HTTP,
    &websocket::WEBSOCKET,
    &process::PROCESS,
    &wasi::FILESYSTEM,
    &wasi::SOCKETS,
];

/// The per-execution state of the units that keep one.
pub(crate) struct States {
    pub(crate) events: EventBuffer,
    pub(crate) log: LogContext,
    pub(crate) http: HttpState,
    pub(crate) input: InputState,
    pub(crate) process: ProcessState,
    pub(crate) websocket: WebSocketState,
}

impl States {
    pub(crate) fn new(
        who: Attribution,
        limits: &LaneLimits,
        hooks: LaneHttpHooks,
        process: ProcessState,
    ) -> Self {
        Self {
            events: EventBuffer::new(who.execution_ref.clone(), limits),
            log: LogContext::new(who, limits),
            http: HttpState::new(hooks),
            input: InputState::default(),
            process,
            websocket: WebSocketState::default(),
        }
    }
}

/// What one execution's units record for its evidence, outside its store: outbound HTTP's
/// egress log and the process log. Shared by the store (through each unit's state) and by
/// whoever reports the execution (a unary result, or a stream pull by pull).
#[derive(Debug, Default)]
pub(crate) struct ExecutionLog {
    pub(crate) http: Arc<EgressLog>,
    pub(crate) process: Arc<process::ProcessLog>,
}

impl ExecutionLog {
    /// Moves the denials every unit kept since the last call to `evidence`.
    pub(crate) fn report_denials(&self, evidence: &LaneEvidence) {
        for denial in self.http.take_denials() {
            evidence.denied(denial);
        }
        for denial in self.process.take_denials() {
            evidence.denied(denial);
        }
    }
}

/// Reports a stream's denials as they happen (a unary execution reports them once, with its
/// result): after the stream opens and after each pull, the denials since the last report go
/// to the execution's evidence, so the node shows each in the event it came with.
pub(crate) struct StreamDenials {
    log: Arc<ExecutionLog>,
    evidence: LaneEvidence,
}

impl StreamDenials {
    pub(crate) fn new(log: Arc<ExecutionLog>, evidence: LaneEvidence) -> Self {
        Self { log, evidence }
    }

    /// Reports the denials since the last report.
    pub(crate) fn report_new(&self) {
        self.log.report_denials(&self.evidence);
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
        if unit.linked(grants) {
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
        .filter(|unit| !unit.linked(grants))
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
            (
                "execution-plane:lane/websocket@0.2.0",
                "http (a ws:// or wss:// pattern)",
            ),
            ("wasi:filesystem/preopens@0.2.6", "filesystem"),
            ("wasi:sockets/tcp@0.2.6", "sockets"),
            ("execution-plane:lane/process@0.2.0", "process"),
        ];
        let none = Grants::none();
        let all = Grants {
            events: true,
            logging: true,
            http: HttpGrants::parse(&["http://127.0.0.1:*", "ws://127.0.0.1:*"], &[])
                .unwrap_or_default(),
            filesystem: true,
            sockets: true,
            process: vec!["cat".to_owned()],
            optional: Vec::new(),
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
    fn an_http_pattern_links_http_only_and_a_ws_pattern_websocket_only() {
        let only = |pattern: &str| Grants {
            http: HttpGrants::parse(&[pattern], &[]).unwrap_or_default(),
            ..Grants::none()
        };
        let websocket = "execution-plane:lane/websocket@0.2.0";
        let http = only("https://*:*");
        assert_eq!(missing_for(&http, "wasi:http/types@0.2.6"), None);
        assert_eq!(
            missing_for(&http, websocket),
            Some("http (a ws:// or wss:// pattern)")
        );
        let ws = only("wss://*:*");
        assert_eq!(missing_for(&ws, websocket), None);
        assert_eq!(missing_for(&ws, "wasi:http/types@0.2.6"), Some("http"));
    }

    #[test]
    fn an_optional_grant_links_its_units_with_nothing_granted() {
        let mut grants = Grants::none();
        grants.optional = vec!["http".to_owned(), "process".to_owned()];
        for import in [
            "wasi:http/outgoing-handler@0.2.6",
            "execution-plane:lane/websocket@0.2.0",
            "execution-plane:lane/process@0.2.0",
        ] {
            assert_eq!(missing_for(&grants, import), None, "{import}");
        }
        assert_eq!(
            missing_for(&grants, "execution-plane:lane/events@0.2.0"),
            Some("events")
        );
    }

    #[test]
    fn every_unit_has_its_own_grant_name() {
        let mut names: Vec<_> = UNITS.iter().map(|unit| unit.grant).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), UNITS.len());
    }
}
