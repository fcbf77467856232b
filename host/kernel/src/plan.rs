//! `build_dispatch`: validates a route and an intent against each other and plans the dispatch
//! (protocol, placement surface, effective timeout). Pure: no I/O, no clock unless none is given.

use chrono::{DateTime, Utc};
use ep_contracts::Contract;
use ep_contracts::flow::{ExecutionIntentEnvelope, ExecutionRoute};
use ep_contracts::intents::{HttpExecutionIntent, JsonRpcExecutionIntent, ProcessExecutionIntent};
use ep_contracts::surface::{ExecutionSurface, SurfaceKind};
use serde_json::Value;

use crate::error::KernelError;
use crate::protocol::Protocol;
use crate::timeout::{Budgets, Timeout, effective_timeout};

/// The intent, typed by the route's protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// An HTTP intent.
    Http(HttpExecutionIntent),
    /// A JSON-RPC intent.
    JsonRpc(JsonRpcExecutionIntent),
    /// A process intent.
    Process(ProcessExecutionIntent),
}

impl Intent {
    /// The family-neutral envelope.
    pub fn envelope(&self) -> &ExecutionIntentEnvelope {
        match self {
            Self::Http(i) => &i.envelope,
            Self::JsonRpc(i) => &i.envelope,
            Self::Process(i) => &i.envelope,
        }
    }

    fn parse(protocol: Protocol, value: &Value) -> Result<Self, KernelError> {
        let parsed = match protocol {
            Protocol::Http => HttpExecutionIntent::from_value(value).map(Self::Http),
            Protocol::JsonRpc => JsonRpcExecutionIntent::from_value(value).map(Self::JsonRpc),
            Protocol::Process => ProcessExecutionIntent::from_value(value).map(Self::Process),
        };
        parsed.map_err(KernelError::Intent)
    }
}

/// Caller options for planning.
#[derive(Debug, Clone, Copy, Default)]
pub struct DispatchOptions {
    /// The caller's timeout budget in milliseconds.
    pub timeout_ms: Option<i64>,
    /// The planning time (defaults to the current UTC time); also stamps kernel events.
    pub now: Option<DateTime<Utc>>,
}

impl DispatchOptions {
    /// The planning time.
    pub fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }
}

/// A validated, planned dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchPlan {
    /// The route id.
    pub route_id: String,
    /// The route family.
    pub family: String,
    /// The protocol that runs it.
    pub protocol: Protocol,
    /// The validated route.
    pub route: ExecutionRoute,
    /// The validated intent.
    pub intent: Intent,
    /// The placement surface (none for HTTP).
    pub placement_surface: Option<ExecutionSurface>,
    /// The effective timeout, or an already-passed deadline.
    pub timeout: Timeout,
}

impl DispatchPlan {
    /// The effective timeout in milliseconds (0 when the deadline already passed).
    pub fn timeout_ms(&self) -> u64 {
        self.timeout.as_ms()
    }
}

/// Validates `route` and `intent` (JSON attrs) and plans the dispatch, in the upstream order:
/// route, protocol, intent by the route's protocol, placement surface, timeout, then the
/// envelope ↔ route checks (family, protocol, idempotency key, trace id, placement family).
pub fn build_dispatch(
    intent: &Value,
    route: &Value,
    options: &DispatchOptions,
) -> Result<DispatchPlan, KernelError> {
    let route = ExecutionRoute::from_value(route).map_err(KernelError::Route)?;
    let protocol = Protocol::parse(&route.protocol)
        .ok_or_else(|| KernelError::UnsupportedProtocol(route.protocol.clone()))?;
    let intent = Intent::parse(protocol, intent)?;
    let placement_surface = placement_surface(&intent, &route)?;
    let timeout = plan_timeout(&intent, &route, options)?;
    check_envelope_matches_route(intent.envelope(), &route)?;
    check_placement(placement_surface.as_ref(), &route)?;
    Ok(DispatchPlan {
        route_id: route.route_id.clone(),
        family: route.family.clone(),
        protocol,
        route,
        intent,
        placement_surface,
        timeout,
    })
}

fn placement_surface(
    intent: &Intent,
    route: &ExecutionRoute,
) -> Result<Option<ExecutionSurface>, KernelError> {
    let attrs = match intent {
        Intent::Http(_) => return Ok(None),
        Intent::Process(i) if i.execution_surface.is_empty() => None,
        Intent::Process(i) => Some(Value::Object(i.execution_surface.clone())),
        Intent::JsonRpc(_) => route.resolved_target.get("execution_surface").cloned(),
    };
    match attrs {
        None | Some(Value::Null) => Ok(Some(ExecutionSurface::of_kind(
            SurfaceKind::LocalSubprocess,
        ))),
        Some(value) => ExecutionSurface::parse(&value)
            .map(Some)
            .map_err(KernelError::Surface),
    }
}

fn plan_timeout(
    intent: &Intent,
    route: &ExecutionRoute,
    options: &DispatchOptions,
) -> Result<Timeout, KernelError> {
    let deadline = match &intent.envelope().deadline_at {
        // The envelope constructor already checked the format; a failure here cannot happen,
        // but is reported rather than ignored.
        Some(s) => Some(DateTime::parse_from_rfc3339(s).map_err(|_| {
            KernelError::Intent(ep_contracts::ContractError::NotIso8601 {
                field: "deadline_at".to_owned(),
                got: format!("{s:?}"),
            })
        })?),
        None => None,
    };
    let request_ms = match intent {
        Intent::Http(i) => i.request_timeout_ms().and_then(|ms| i64::try_from(ms).ok()),
        _ => None,
    };
    let budgets = Budgets {
        option_ms: options.timeout_ms,
        route_ms: route
            .resolved_budget
            .get("timeout_ms")
            .and_then(Value::as_i64),
        request_ms,
        deadline,
    };
    Ok(effective_timeout(&budgets, options.now()))
}

fn check_envelope_matches_route(
    envelope: &ExecutionIntentEnvelope,
    route: &ExecutionRoute,
) -> Result<(), KernelError> {
    if envelope.family != route.family {
        return Err(KernelError::FamilyMismatch {
            intent: envelope.family.clone(),
            route: route.family.clone(),
        });
    }
    if envelope.protocol != route.protocol {
        return Err(KernelError::ProtocolMismatch {
            intent: envelope.protocol.clone(),
            route: route.protocol.clone(),
        });
    }
    if route.lineage.get("idempotency_key") != Some(envelope.idempotency_key.as_str()) {
        return Err(KernelError::IdempotencyMismatch);
    }
    if let Some(trace_id) = &envelope.trace_id
        && route.lineage.get("trace_id") != Some(trace_id.as_str())
    {
        return Err(KernelError::TraceIdMismatch {
            got: trace_id.clone(),
        });
    }
    Ok(())
}

fn check_placement(
    surface: Option<&ExecutionSurface>,
    route: &ExecutionRoute,
) -> Result<(), KernelError> {
    let Some(surface) = surface else {
        return Ok(());
    };
    if surface.placement_family().as_str() != route.placement_family {
        return Err(KernelError::PlacementMismatch {
            placement: route.placement_family.clone(),
            surface: surface.surface_kind.as_str().to_owned(),
        });
    }
    Ok(())
}
