//! The `http` capability: outbound `wasi:http` (`types` and `outgoing-handler`), linked only
//! when the lane has at least one `http://` or `https://` URL pattern. What each request may
//! reach is checked per request by [`crate::egress`] (the grant matcher and the resolved-address
//! screen, through the send hooks kept here per execution); its evidence is the `http: {requests, denied}` summary
//! in the execution's entry and one typed [`ep_lane_api::CapabilityDenial`] per refusal.

use ep_lane_api::LaneEvidence;
use serde_json::{Map, Value, json};
use wasmtime::component::{HasSelf, Linker};

use super::Unit;
use crate::bindings::v2_0::http_egress;
use crate::egress::hooks::{EgressLog, LaneHttpHooks};
use crate::state::LaneState;

/// Import-name prefix of the `wasi:http` interfaces (`types`, `outgoing-handler`).
pub const HTTP_IMPORT: &str = "wasi:http/";
/// Import-name prefix of the `http-egress` interface (why a request was refused).
pub const HTTP_EGRESS_IMPORT: &str = "execution-plane:lane/http-egress@";

/// The unit: granted by `[grants] http` / `http_private` holding an `http://` or `https://`
/// pattern (`ws://` / `wss://` ones grant [`super::websocket`] only).
pub(crate) const HTTP: Unit = Unit {
    grant: "http",
    imports: &[HTTP_IMPORT, HTTP_EGRESS_IMPORT],
    granted: |grants| grants.http.has_http(),
    link: link_http,
    optional_as: Some("http"),
};

fn link_http(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    http_egress::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)
}

impl http_egress::Host for LaneState {
    async fn last_denial(&mut self) -> wasmtime::Result<Option<http_egress::Denial>> {
        Ok(self
            .caps
            .http
            .hooks
            .log()
            .last_denial()
            .map(|(reason, destination)| http_egress::Denial {
                message: denial_message(&reason, destination.as_deref()),
                reason,
            }))
    }
}

/// What a lane (and its author) can do about a denial, by reason (the same reasons as the
/// `capability.denied` evidence; `docs/egress.md` lists them), for HTTP and WebSocket alike.
pub(crate) fn denial_message(reason: &str, destination: Option<&str>) -> String {
    let to = destination.unwrap_or("the destination");
    let what = match reason {
        "invalid_destination" => "the URL has no host the host can check",
        "request_egress_invalid" => "the request's `metadata.egress` is invalid",
        "request_denies_egress" => "the request allows no egress (or the lane is validating)",
        "outside_request_egress" => "the request's `metadata.egress` does not include it",
        "no_http_grant" => "the lane has no grant for this scheme",
        "no_matching_grant" => "no grant of the lane matches it (operator policy `[lanes.<id>]`)",
        "address_not_allowed" => {
            "it resolves to a loopback or private address; grant it with `http_private`"
        }
        _ => "the host's egress policy refused it",
    };
    format!("{to} refused ({reason}): {what}")
}

/// One execution's outbound HTTP: the `wasi:http` context and the send hooks that check every
/// request against the grants.
pub(crate) struct HttpState {
    ctx: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) hooks: LaneHttpHooks,
}

impl HttpState {
    pub(crate) fn new(hooks: LaneHttpHooks) -> Self {
        Self {
            ctx: wasmtime_wasi_http::WasiHttpCtx::new(),
            hooks,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for LaneState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        let (table, http) = self.table_and_http();
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut http.ctx,
            table,
            hooks: &mut http.hooks,
        }
    }
}

/// Streams report HTTP denials (with every other unit's) pull by pull.
pub(crate) use super::StreamDenials;

/// The execution's HTTP evidence: the `{requests, denied}` summary into `entry` (the
/// execution's evidence entry) and each kept denial reported to `evidence`.
pub(crate) fn report(
    log: &EgressLog,
    entry: Option<&mut Map<String, Value>>,
    evidence: &LaneEvidence,
) {
    let (requests, denied) = log.counts();
    if let Some(entry) = entry {
        entry.insert(
            "http".to_owned(),
            json!({ "requests": requests, "denied": denied }),
        );
    }
    report_denials(log, evidence);
}

/// Moves the denials `log` kept since the last call to `evidence`.
fn report_denials(log: &EgressLog, evidence: &LaneEvidence) {
    for denial in log.take_denials() {
        evidence.denied(denial);
    }
}
