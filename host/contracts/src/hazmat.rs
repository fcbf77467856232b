//! Phase-4 "hazmat" contracts: evidence and grants around attachable streams, worker budgets and
//! no-bypass scans. Every one carries the same tenant/authority/trace scope block
//! ([`HazmatScope`]) so hazardous access is always attributable, and the actor rule
//! (`principal_ref` or `system_actor_ref`) is checked before anything else.

use serde_json::{Map, Value};

use crate::contract::Contract;
use crate::error::ContractError;
use crate::fields::{Attrs, EnumWording, non_empty_string, put_opt};
use crate::inspect::inspect;

/// The 13-field scope block shared by every Phase-4 contract: who acted, on what, under which
/// authority decision, traceably. Dumped flat into the packet.
#[derive(Debug, Clone, PartialEq)]
pub struct HazmatScope {
    /// Tenant.
    pub tenant_ref: String,
    /// Installation within the tenant.
    pub installation_ref: String,
    /// Workspace.
    pub workspace_ref: String,
    /// Project.
    pub project_ref: String,
    /// Environment (`environment://prod`).
    pub environment_ref: String,
    /// Human principal; at least one of this and `system_actor_ref` is present.
    pub principal_ref: Option<String>,
    /// System actor; at least one of this and `principal_ref` is present.
    pub system_actor_ref: Option<String>,
    /// The resource acted on.
    pub resource_ref: String,
    /// The authority packet that allowed it.
    pub authority_packet_ref: String,
    /// The permission decision that allowed it.
    pub permission_decision_ref: String,
    /// Idempotency key of the request.
    pub idempotency_key: String,
    /// Trace id.
    pub trace_id: String,
    /// Correlation id.
    pub correlation_id: String,
    /// The release manifest in force.
    pub release_manifest_ref: String,
}

impl HazmatScope {
    /// Reads the scope strings (in upstream order) once the actor refs have been checked.
    fn read(
        attrs: &Attrs<'_>,
        actors: (Option<String>, Option<String>),
    ) -> Result<Self, ContractError> {
        Ok(Self {
            tenant_ref: attrs.required_string("tenant_ref")?,
            installation_ref: attrs.required_string("installation_ref")?,
            workspace_ref: attrs.required_string("workspace_ref")?,
            project_ref: attrs.required_string("project_ref")?,
            environment_ref: attrs.required_string("environment_ref")?,
            principal_ref: actors.0,
            system_actor_ref: actors.1,
            resource_ref: attrs.required_string("resource_ref")?,
            authority_packet_ref: attrs.required_string("authority_packet_ref")?,
            permission_decision_ref: attrs.required_string("permission_decision_ref")?,
            idempotency_key: attrs.required_string("idempotency_key")?,
            trace_id: attrs.required_string("trace_id")?,
            correlation_id: attrs.required_string("correlation_id")?,
            release_manifest_ref: attrs.required_string("release_manifest_ref")?,
        })
    }

    /// Writes the scope fields flat into a packet dump (absent actor refs as null).
    fn write(&self, map: &mut Map<String, Value>) {
        put(map, "tenant_ref", &self.tenant_ref);
        put(map, "installation_ref", &self.installation_ref);
        put(map, "workspace_ref", &self.workspace_ref);
        put(map, "project_ref", &self.project_ref);
        put(map, "environment_ref", &self.environment_ref);
        put_opt(map, "principal_ref", &self.principal_ref);
        put_opt(map, "system_actor_ref", &self.system_actor_ref);
        put(map, "resource_ref", &self.resource_ref);
        put(map, "authority_packet_ref", &self.authority_packet_ref);
        put(
            map,
            "permission_decision_ref",
            &self.permission_decision_ref,
        );
        put(map, "idempotency_key", &self.idempotency_key);
        put(map, "trace_id", &self.trace_id);
        put(map, "correlation_id", &self.correlation_id);
        put(map, "release_manifest_ref", &self.release_manifest_ref);
    }
}

fn put(map: &mut Map<String, Value>, key: &str, value: &str) {
    map.insert(key.to_owned(), Value::String(value.to_owned()));
}

fn start_dump(version: &str, scope: &HazmatScope) -> Map<String, Value> {
    let mut map = Map::new();
    put(&mut map, "contract_version", version);
    scope.write(&mut map);
    map
}

/// A required ISO 8601 timestamp, checked as a non-empty string first (upstream order).
fn required_iso8601(attrs: &Attrs<'_>, field: &str) -> Result<String, ContractError> {
    let value = attrs.required_string(field)?;
    crate::fields::iso8601(field, &Value::String(value))
}

/// Leading validation shared by the simple Phase-4 packets: actors, version, scope block.
fn scope_first<'a>(
    value: &'a Value,
    version: &str,
) -> Result<(Attrs<'a>, HazmatScope), ContractError> {
    let attrs = Attrs::new(value)?;
    let actors = attrs.actor_refs()?;
    attrs.check_version(version)?;
    let scope = HazmatScope::read(&attrs, actors)?;
    Ok((attrs, scope))
}

// ---------------------------------------------------------------------------------------------
// AttachGrant.v1
// ---------------------------------------------------------------------------------------------

/// A lease-bound, expiring, revocable grant to attach to a hazmat stream or session.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachGrant {
    /// The shared scope block.
    pub scope: HazmatScope,
    /// This grant's ref.
    pub attach_grant_ref: String,
    /// The lease the grant is bound to.
    pub lease_ref: String,
    /// The hazmat resource (`hazmat://runtime/.../stdio`).
    pub hazmat_resource_ref: String,
    /// What the grant allows (tenant, resource, capabilities).
    pub grant_scope: Map<String, Value>,
    /// When the grant expires (ISO 8601); expiry means a new grant, never an edit.
    pub expires_at: String,
    /// Where revocation is recorded.
    pub revocation_ref: String,
}

impl AttachGrant {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.AttachGrant.v1";
}

impl Contract for AttachGrant {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let (attrs, scope) = scope_first(value, Self::VERSION)?;
        Ok(Self {
            scope,
            attach_grant_ref: attrs.required_string("attach_grant_ref")?,
            lease_ref: attrs.required_string("lease_ref")?,
            hazmat_resource_ref: attrs.required_string("hazmat_resource_ref")?,
            grant_scope: attrs.required_map("grant_scope")?,
            expires_at: required_iso8601(&attrs, "expires_at")?,
            revocation_ref: attrs.required_string("revocation_ref")?,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = start_dump(Self::VERSION, &self.scope);
        put(&mut map, "attach_grant_ref", &self.attach_grant_ref);
        put(&mut map, "lease_ref", &self.lease_ref);
        put(&mut map, "hazmat_resource_ref", &self.hazmat_resource_ref);
        map.insert(
            "grant_scope".to_owned(),
            Value::Object(self.grant_scope.clone()),
        );
        put(&mut map, "expires_at", &self.expires_at);
        put(&mut map, "revocation_ref", &self.revocation_ref);
        Value::Object(map)
    }
}

// ---------------------------------------------------------------------------------------------
// StreamBackpressure.v1
// ---------------------------------------------------------------------------------------------

/// Pressure classes a stream can report.
pub const PRESSURE_CLASSES: [&str; 3] = ["soft_pressure", "hard_pressure", "budget_exhausted"];

/// Deterministic evidence that a stream came under pressure and how it was terminated.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamBackpressure {
    /// The shared scope block.
    pub scope: HazmatScope,
    /// The stream.
    pub stream_ref: String,
    /// The budget that applied.
    pub budget_ref: String,
    /// One of [`PRESSURE_CLASSES`].
    pub pressure_class: String,
    /// Why the stream was terminated.
    pub termination_reason: String,
    /// The last heartbeat seen (ISO 8601).
    pub last_heartbeat_at: String,
    /// Where the diagnostics are.
    pub diagnostics_ref: String,
}

impl StreamBackpressure {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.StreamBackpressure.v1";
}

impl Contract for StreamBackpressure {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        let actors = attrs.actor_refs()?;
        let pressure_class = attrs.one_of(
            "pressure_class",
            &PRESSURE_CLASSES,
            EnumWording::NotSupported,
        )?;
        attrs.check_version(Self::VERSION)?;
        let scope = HazmatScope::read(&attrs, actors)?;
        Ok(Self {
            scope,
            stream_ref: attrs.required_string("stream_ref")?,
            budget_ref: attrs.required_string("budget_ref")?,
            pressure_class,
            termination_reason: attrs.required_string("termination_reason")?,
            last_heartbeat_at: required_iso8601(&attrs, "last_heartbeat_at")?,
            diagnostics_ref: attrs.required_string("diagnostics_ref")?,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = start_dump(Self::VERSION, &self.scope);
        put(&mut map, "stream_ref", &self.stream_ref);
        put(&mut map, "budget_ref", &self.budget_ref);
        put(&mut map, "pressure_class", &self.pressure_class);
        put(&mut map, "termination_reason", &self.termination_reason);
        put(&mut map, "last_heartbeat_at", &self.last_heartbeat_at);
        put(&mut map, "diagnostics_ref", &self.diagnostics_ref);
        Value::Object(map)
    }
}

// ---------------------------------------------------------------------------------------------
// WorkerBudget.v1
// ---------------------------------------------------------------------------------------------

/// Worker admission and load-shedding evidence under a tenant-scoped budget.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerBudget {
    /// The shared scope block.
    pub scope: HazmatScope,
    /// The worker pool.
    pub worker_pool_ref: String,
    /// The budget that applied.
    pub budget_ref: String,
    /// The queue work waited in.
    pub queue_ref: String,
    /// Load at decision time (≥ 0).
    pub current_load: u64,
    /// The admission decision.
    pub admission_decision_ref: String,
    /// Why work was shed (`none` when it was not).
    pub shed_reason: String,
}

impl WorkerBudget {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.WorkerBudget.v1";
}

impl Contract for WorkerBudget {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let (attrs, scope) = scope_first(value, Self::VERSION)?;
        Ok(Self {
            scope,
            worker_pool_ref: attrs.required_string("worker_pool_ref")?,
            budget_ref: attrs.required_string("budget_ref")?,
            queue_ref: attrs.required_string("queue_ref")?,
            current_load: attrs.non_negative_integer("current_load")?,
            admission_decision_ref: attrs.required_string("admission_decision_ref")?,
            shed_reason: attrs.required_string("shed_reason")?,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = start_dump(Self::VERSION, &self.scope);
        put(&mut map, "worker_pool_ref", &self.worker_pool_ref);
        put(&mut map, "budget_ref", &self.budget_ref);
        put(&mut map, "queue_ref", &self.queue_ref);
        map.insert("current_load".to_owned(), Value::from(self.current_load));
        put(
            &mut map,
            "admission_decision_ref",
            &self.admission_decision_ref,
        );
        put(&mut map, "shed_reason", &self.shed_reason);
        Value::Object(map)
    }
}

// ---------------------------------------------------------------------------------------------
// StreamAttachRevocation.v1
// ---------------------------------------------------------------------------------------------

/// Evidence that an attached stream stopped after its grant or lease was revoked.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAttachRevocation {
    /// The shared scope block.
    pub scope: HazmatScope,
    /// The stream.
    pub stream_ref: String,
    /// The revoked grant.
    pub attach_grant_ref: String,
    /// The lease.
    pub lease_ref: String,
    /// The revocation.
    pub revocation_ref: String,
    /// The termination it caused.
    pub termination_ref: String,
    /// Position of the last event delivered before termination (≥ 0).
    pub last_event_position: u64,
}

impl StreamAttachRevocation {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.StreamAttachRevocation.v1";
}

impl Contract for StreamAttachRevocation {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let (attrs, scope) = scope_first(value, Self::VERSION)?;
        Ok(Self {
            scope,
            stream_ref: attrs.required_string("stream_ref")?,
            attach_grant_ref: attrs.required_string("attach_grant_ref")?,
            lease_ref: attrs.required_string("lease_ref")?,
            revocation_ref: attrs.required_string("revocation_ref")?,
            termination_ref: attrs.required_string("termination_ref")?,
            last_event_position: attrs.non_negative_integer("last_event_position")?,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = start_dump(Self::VERSION, &self.scope);
        put(&mut map, "stream_ref", &self.stream_ref);
        put(&mut map, "attach_grant_ref", &self.attach_grant_ref);
        put(&mut map, "lease_ref", &self.lease_ref);
        put(&mut map, "revocation_ref", &self.revocation_ref);
        put(&mut map, "termination_ref", &self.termination_ref);
        map.insert(
            "last_event_position".to_owned(),
            Value::from(self.last_event_position),
        );
        Value::Object(map)
    }
}

// ---------------------------------------------------------------------------------------------
// NoBypassScan.v1
// ---------------------------------------------------------------------------------------------

/// Outcomes of a no-bypass scan.
pub const SCAN_STATUSES: [&str; 2] = ["clear", "blocked"];

/// Keys every violation must carry, in check order (`line` an integer > 0, the rest non-empty
/// strings).
pub const VIOLATION_KEYS: [&str; 4] = ["path", "line", "forbidden_module", "required_facade"];

/// Source-boundary proof that public code does not import hazmat Execution Plane APIs
/// directly: `clear` carries no violations, `blocked` carries at least one.
#[derive(Debug, Clone, PartialEq)]
pub struct NoBypassScan {
    /// The shared scope block.
    pub scope: HazmatScope,
    /// This scan.
    pub scan_ref: String,
    /// The repository scanned.
    pub caller_repo: String,
    /// The module callers must not import.
    pub forbidden_module: String,
    /// The facade they must use instead.
    pub required_facade: String,
    /// Where violations are recorded (`violation://none` when clear).
    pub violation_ref: String,
    /// `clear` or `blocked`.
    pub scan_status: String,
    /// Paths scanned (non-empty strings).
    pub checked_paths: Vec<String>,
    /// Violations found: each with `path`, `line`, `forbidden_module`, `required_facade`.
    pub violations: Vec<Map<String, Value>>,
}

impl NoBypassScan {
    /// The exact `contract_version` string.
    pub const VERSION: &'static str = "ExecutionPlane.NoBypassScan.v1";

    /// Whether the scan found nothing.
    pub fn is_clear(&self) -> bool {
        self.scan_status == "clear"
    }
}

/// One violation map: every key of [`VIOLATION_KEYS`] present and well-formed.
fn violation(value: &Value) -> Result<Map<String, Value>, ContractError> {
    let Value::Object(map) = value else {
        return Err(ContractError::rule(
            "violation",
            format!("violation must be a map, got: {}", inspect(value)),
        ));
    };
    for key in VIOLATION_KEYS {
        let field = format!("violation.{key}");
        match (key, map.get(key)) {
            ("line", Some(line)) if line.as_u64().is_some_and(|n| n > 0) => {}
            ("line", _) | (_, None) => {
                return Err(ContractError::rule(
                    field.clone(),
                    format!("{field} is required"),
                ));
            }
            (_, Some(v)) => {
                non_empty_string(&field, v)?;
            }
        }
    }
    Ok(map.clone())
}

impl Contract for NoBypassScan {
    const NAME: &'static str = Self::VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        let attrs = Attrs::new(value)?;
        let actors = attrs.actor_refs()?;
        let scan_status = attrs.required_string("scan_status")?;
        let checked_paths =
            attrs.required_list("checked_paths", |v| non_empty_string("checked_path", v))?;
        let violations = attrs.list("violations", violation)?;
        if !SCAN_STATUSES.contains(&scan_status.as_str()) {
            return Err(ContractError::rule(
                "scan_status",
                format!(
                    "scan_status is not supported: {}",
                    inspect(&Value::String(scan_status))
                ),
            ));
        }
        match (scan_status.as_str(), violations.is_empty()) {
            ("clear", false) => {
                return Err(ContractError::rule(
                    "violations",
                    "clear no-bypass scan must not carry violations",
                ));
            }
            ("blocked", true) => {
                return Err(ContractError::rule(
                    "violations",
                    "blocked no-bypass scan must carry at least one violation",
                ));
            }
            _ => {}
        }
        attrs.check_version(Self::VERSION)?;
        let scope = HazmatScope::read(&attrs, actors)?;
        Ok(Self {
            scope,
            scan_ref: attrs.required_string("scan_ref")?,
            caller_repo: attrs.required_string("caller_repo")?,
            forbidden_module: attrs.required_string("forbidden_module")?,
            required_facade: attrs.required_string("required_facade")?,
            violation_ref: attrs.required_string("violation_ref")?,
            scan_status,
            checked_paths,
            violations,
        })
    }

    fn to_value(&self) -> Value {
        let mut map = start_dump(Self::VERSION, &self.scope);
        put(&mut map, "scan_ref", &self.scan_ref);
        put(&mut map, "caller_repo", &self.caller_repo);
        put(&mut map, "forbidden_module", &self.forbidden_module);
        put(&mut map, "required_facade", &self.required_facade);
        put(&mut map, "violation_ref", &self.violation_ref);
        put(&mut map, "scan_status", &self.scan_status);
        map.insert(
            "checked_paths".to_owned(),
            Value::Array(
                self.checked_paths
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
        map.insert(
            "violations".to_owned(),
            Value::Array(self.violations.iter().cloned().map(Value::Object).collect()),
        );
        Value::Object(map)
    }
}
