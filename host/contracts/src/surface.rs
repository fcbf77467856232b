//! Placements (§6): the `execution_surface.v1` contract that says *where* a process runs
//! (`local_subprocess`, `ssh_exec`, `guest_bridge`), the static capability table of each surface
//! kind, and the Local/SSH/Guest placement families.
//!
//! A surface never carries launch fields: `command`, `args`, `cwd`, `env`, `clear_env?` and
//! `user` found in `transport_options` are dropped, so a transport cannot be told to run
//! something other than the intent's command. Capability values are parsed only from a closed
//! set of names; anything else is refused, never invented.
//!
//! ```
//! use ep_contracts::surface::{self, ExecutionSurface, PathSemantics, PlacementFamily};
//! use serde_json::json;
//!
//! let ssh = ExecutionSurface::parse(&json!({
//!     "surface_kind": "ssh_exec",
//!     "transport_options": {"destination": "ssh.example", "command": "cat"}
//! }))?;
//! assert_eq!(ssh.placement_family(), PlacementFamily::Ssh);
//! assert!(!ssh.transport_options.contains_key("command"));
//! assert_eq!(surface::path_semantics("ssh_exec"), Some(PathSemantics::Remote));
//!
//! let err = ExecutionSurface::parse(&json!({"surface_kind": "x"})).unwrap_err();
//! assert_eq!(err.to_string(), r#"invalid execution surface: invalid surface_kind "x""#);
//! # Ok::<(), ep_contracts::surface::SurfaceError>(())
//! ```

use serde_json::{Map, Value};

use crate::contract::Contract;
use crate::error::ContractError;
use crate::inspect::inspect;

/// The contract version of an execution surface.
pub const CONTRACT_VERSION: &str = "execution_surface.v1";

/// Launch fields silently stripped from `transport_options`. Upstream spells the boolean
/// `clear_env?`; the port's process intent spells it `clear_env`, so both are stripped.
pub const LAUNCH_KEYS: [&str; 7] = [
    "command",
    "args",
    "cwd",
    "env",
    "clear_env?",
    "clear_env",
    "user",
];

// ---------------------------------------------------------------------------------------------
// Closed vocabularies

/// Where a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SurfaceKind {
    /// `guest_bridge`: an already-running guest runtime speaking the bridge protocol.
    GuestBridge,
    /// `local_subprocess`: a child process on this node (the default).
    #[default]
    LocalSubprocess,
    /// `ssh_exec`: a remote shell reached through `ssh`.
    SshExec,
}

impl SurfaceKind {
    /// All kinds, sorted by wire name.
    pub const ALL: [SurfaceKind; 3] = [Self::GuestBridge, Self::LocalSubprocess, Self::SshExec];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GuestBridge => "guest_bridge",
            Self::LocalSubprocess => "local_subprocess",
            Self::SshExec => "ssh_exec",
        }
    }

    /// The kind for a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The placement family this kind belongs to.
    pub fn placement_family(self) -> PlacementFamily {
        match self {
            Self::LocalSubprocess => PlacementFamily::Local,
            Self::SshExec => PlacementFamily::Ssh,
            Self::GuestBridge => PlacementFamily::Guest,
        }
    }

    /// The static (conservative) capabilities of this kind (§6.2).
    pub fn capabilities(self) -> PlacementCapabilities {
        let all = PlacementCapabilities::default();
        match self {
            Self::LocalSubprocess => all,
            Self::SshExec => PlacementCapabilities {
                remote: true,
                path_semantics: PathSemantics::Remote,
                ..all
            },
            Self::GuestBridge => PlacementCapabilities {
                remote: true,
                startup_kind: StartupKind::Bridge,
                path_semantics: PathSemantics::Guest,
                supports_pty: false,
                supports_user: false,
                supports_env: false,
                supports_cwd: false,
                interrupt_kind: InterruptKind::Rpc,
                ..all
            },
        }
    }
}

impl std::fmt::Display for SurfaceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The placement family a route names (`route.placement_family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlacementFamily {
    /// `local`: same node.
    Local,
    /// `ssh`: truthful remote shell; no stronger sandbox claim.
    Ssh,
    /// `guest`: a guest runtime behind the bridge protocol.
    Guest,
}

impl PlacementFamily {
    /// All families.
    pub const ALL: [PlacementFamily; 3] = [Self::Local, Self::Ssh, Self::Guest];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Ssh => "ssh",
            Self::Guest => "guest",
        }
    }

    /// The family for a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The surface kinds this family runs.
    pub fn surface_kinds(self) -> &'static [&'static str] {
        match self {
            Self::Local => Local::SURFACE_KINDS,
            Self::Ssh => Ssh::SURFACE_KINDS,
            Self::Guest => Guest::SURFACE_KINDS,
        }
    }
}

impl std::fmt::Display for PlacementFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! closed_enum {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vmeta])* $variant, )+ }

        impl $name {
            /// All values, in upstream order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire,)+ }
            }

            /// The value for a wire name; only the closed set is accepted.
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($wire => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_enum! {
    /// How a session on the surface starts.
    StartupKind {
        /// `spawn`: a new process is started.
        Spawn => "spawn",
        /// `attach`: an existing session is attached.
        Attach => "attach",
        /// `bridge`: a bridge peer starts it.
        Bridge => "bridge",
    }
}

closed_enum! {
    /// What paths (`cwd`, files) mean on the surface.
    PathSemantics {
        /// `local`: this node's filesystem.
        Local => "local",
        /// `remote`: the remote host's filesystem.
        Remote => "remote",
        /// `guest`: the guest's filesystem, distinct from SSH remote paths.
        Guest => "guest",
    }
}

closed_enum! {
    /// How a running session is interrupted.
    InterruptKind {
        /// `signal`: a signal to the process group.
        Signal => "signal",
        /// `stdin`: a control character on stdin.
        Stdin => "stdin",
        /// `rpc`: an `interrupt` request to the bridge.
        Rpc => "rpc",
        /// `none`: not interruptible.
        None => "none",
    }
}

// ---------------------------------------------------------------------------------------------
// Capabilities

/// What a surface can do; the static table is conservative (§6.2), transports may negotiate
/// less at attach time but never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlacementCapabilities {
    /// Runs off this node (`remote?`).
    pub remote: bool,
    /// How sessions start.
    pub startup_kind: StartupKind,
    /// What paths mean.
    pub path_semantics: PathSemantics,
    /// One-shot runs (`supports_run?`).
    pub supports_run: bool,
    /// Streaming stdio sessions (`supports_streaming_stdio?`).
    pub supports_streaming_stdio: bool,
    /// Pseudo-terminals (`supports_pty?`).
    pub supports_pty: bool,
    /// Running as another user (`supports_user?`).
    pub supports_user: bool,
    /// Environment projection (`supports_env?`).
    pub supports_env: bool,
    /// Working directory (`supports_cwd?`).
    pub supports_cwd: bool,
    /// How sessions are interrupted.
    pub interrupt_kind: InterruptKind,
}

impl Default for PlacementCapabilities {
    fn default() -> Self {
        Self {
            remote: false,
            startup_kind: StartupKind::Spawn,
            path_semantics: PathSemantics::Local,
            supports_run: true,
            supports_streaming_stdio: true,
            supports_pty: true,
            supports_user: true,
            supports_env: true,
            supports_cwd: true,
            interrupt_kind: InterruptKind::Signal,
        }
    }
}

/// Why capability attrs were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CapabilitiesError {
    /// The attrs were not a JSON object.
    #[error("invalid placement capabilities: expected a map, got: {}", inspect(.0))]
    NotAMap(Value),
    /// A key held a value outside its closed set (or not a boolean).
    #[error("invalid placement capabilities: {key} {}", inspect(.value))]
    InvalidValue {
        /// The key, in its wire spelling (`startup_kind`, `remote?`).
        key: &'static str,
        /// The refused value.
        value: Value,
    },
}

impl PlacementCapabilities {
    /// Parses capability attrs in wire spelling (`remote?`, `startup_kind`, ...); missing keys
    /// take the defaults, unknown keys are ignored, values must come from the closed sets.
    pub fn from_value(value: &Value) -> Result<Self, CapabilitiesError> {
        let Value::Object(map) = value else {
            return Err(CapabilitiesError::NotAMap(value.clone()));
        };
        let d = Self::default();
        Ok(Self {
            remote: flag(map, "remote?", d.remote)?,
            startup_kind: member(map, "startup_kind", d.startup_kind, StartupKind::parse)?,
            path_semantics: member(
                map,
                "path_semantics",
                d.path_semantics,
                PathSemantics::parse,
            )?,
            supports_run: flag(map, "supports_run?", d.supports_run)?,
            supports_streaming_stdio: flag(
                map,
                "supports_streaming_stdio?",
                d.supports_streaming_stdio,
            )?,
            supports_pty: flag(map, "supports_pty?", d.supports_pty)?,
            supports_user: flag(map, "supports_user?", d.supports_user)?,
            supports_env: flag(map, "supports_env?", d.supports_env)?,
            supports_cwd: flag(map, "supports_cwd?", d.supports_cwd)?,
            interrupt_kind: member(
                map,
                "interrupt_kind",
                d.interrupt_kind,
                InterruptKind::parse,
            )?,
        })
    }

    /// Dumps in wire spelling; `from_value(&c.to_value()) == Ok(c)`.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("remote?".into(), self.remote.into());
        map.insert("startup_kind".into(), self.startup_kind.as_str().into());
        map.insert("path_semantics".into(), self.path_semantics.as_str().into());
        map.insert("supports_run?".into(), self.supports_run.into());
        map.insert(
            "supports_streaming_stdio?".into(),
            self.supports_streaming_stdio.into(),
        );
        map.insert("supports_pty?".into(), self.supports_pty.into());
        map.insert("supports_user?".into(), self.supports_user.into());
        map.insert("supports_env?".into(), self.supports_env.into());
        map.insert("supports_cwd?".into(), self.supports_cwd.into());
        map.insert("interrupt_kind".into(), self.interrupt_kind.as_str().into());
        Value::Object(map)
    }
}

/// A boolean capability; a present `null` is refused like any other non-boolean (upstream).
fn flag(
    map: &Map<String, Value>,
    key: &'static str,
    default: bool,
) -> Result<bool, CapabilitiesError> {
    match map.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(CapabilitiesError::InvalidValue {
            key,
            value: other.clone(),
        }),
    }
}

/// A closed-set capability parsed only through `parse`.
fn member<T>(
    map: &Map<String, Value>,
    key: &'static str,
    default: T,
    parse: fn(&str) -> Option<T>,
) -> Result<T, CapabilitiesError> {
    match map.get(key) {
        None => Ok(default),
        Some(value) => {
            value
                .as_str()
                .and_then(parse)
                .ok_or_else(|| CapabilitiesError::InvalidValue {
                    key,
                    value: value.clone(),
                })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The surface contract

/// Why surface attrs were refused; mirrors the upstream `{:invalid_*, value}` tuples and
/// renders as `invalid execution surface: ...`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SurfaceError {
    /// The attrs were not a JSON object.
    #[error("invalid execution surface: expected a map, got: {}", inspect(.0))]
    InvalidExecutionSurface(Value),
    /// `contract_version` present and not `execution_surface.v1`.
    #[error("invalid execution surface: invalid contract_version {}", inspect(.0))]
    InvalidContractVersion(Value),
    /// `surface_kind` outside `guest_bridge`, `local_subprocess`, `ssh_exec`.
    #[error("invalid execution surface: invalid surface_kind {}", inspect(.0))]
    InvalidSurfaceKind(Value),
    /// `transport_options` present and not a map.
    #[error("invalid execution surface: invalid transport_options {}", inspect(.0))]
    InvalidTransportOptions(Value),
    /// `target_id` present and not a non-empty string.
    #[error("invalid execution surface: invalid target_id {}", inspect(.0))]
    InvalidTargetId(Value),
    /// `lease_ref` present and not a non-empty string.
    #[error("invalid execution surface: invalid lease_ref {}", inspect(.0))]
    InvalidLeaseRef(Value),
    /// `surface_ref` present and not a non-empty string.
    #[error("invalid execution surface: invalid surface_ref {}", inspect(.0))]
    InvalidSurfaceRef(Value),
    /// `boundary_class` present and not a non-empty string.
    #[error("invalid execution surface: invalid boundary_class {}", inspect(.0))]
    InvalidBoundaryClass(Value),
    /// `observability` present and not a map.
    #[error("invalid execution surface: invalid observability {}", inspect(.0))]
    InvalidObservability(Value),
}

impl SurfaceError {
    /// The field the error is about (`execution_surface` for a non-map input).
    pub fn field(&self) -> &'static str {
        match self {
            Self::InvalidExecutionSurface(_) => "execution_surface",
            Self::InvalidContractVersion(_) => "contract_version",
            Self::InvalidSurfaceKind(_) => "surface_kind",
            Self::InvalidTransportOptions(_) => "transport_options",
            Self::InvalidTargetId(_) => "target_id",
            Self::InvalidLeaseRef(_) => "lease_ref",
            Self::InvalidSurfaceRef(_) => "surface_ref",
            Self::InvalidBoundaryClass(_) => "boundary_class",
            Self::InvalidObservability(_) => "observability",
        }
    }

    /// The refused value.
    pub fn value(&self) -> &Value {
        match self {
            Self::InvalidExecutionSurface(v)
            | Self::InvalidContractVersion(v)
            | Self::InvalidSurfaceKind(v)
            | Self::InvalidTransportOptions(v)
            | Self::InvalidTargetId(v)
            | Self::InvalidLeaseRef(v)
            | Self::InvalidSurfaceRef(v)
            | Self::InvalidBoundaryClass(v)
            | Self::InvalidObservability(v) => v,
        }
    }
}

impl From<SurfaceError> for ContractError {
    fn from(err: SurfaceError) -> Self {
        ContractError::rule(err.field(), err.to_string())
    }
}

/// A placement surface (`execution_surface.v1`): the kind, its transport options (launch keys
/// stripped) and opaque placement refs carried for the layers above.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutionSurface {
    /// Where the process runs (default `local_subprocess`).
    pub surface_kind: SurfaceKind,
    /// Transport options (`destination`, `endpoint`, ...), never launch fields.
    pub transport_options: Map<String, Value>,
    /// Target id.
    pub target_id: Option<String>,
    /// Lease ref.
    pub lease_ref: Option<String>,
    /// Surface ref.
    pub surface_ref: Option<String>,
    /// Boundary class, carried opaque (never an isolation claim).
    pub boundary_class: Option<String>,
    /// Observability attrs passed through to transports.
    pub observability: Map<String, Value>,
}

/// An optional non-empty string, or `err(value)`.
fn optional_binary(
    map: &Map<String, Value>,
    key: &str,
    err: fn(Value) -> SurfaceError,
) -> Result<Option<String>, SurfaceError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(other) => Err(err(other.clone())),
    }
}

fn kind_from_value(value: Option<&Value>) -> Result<SurfaceKind, SurfaceError> {
    match value {
        None | Some(Value::Null) => Ok(SurfaceKind::LocalSubprocess),
        Some(Value::String(s)) => SurfaceKind::parse(s)
            .ok_or_else(|| SurfaceError::InvalidSurfaceKind(Value::String(s.clone()))),
        Some(other) => Err(SurfaceError::InvalidSurfaceKind(other.clone())),
    }
}

impl ExecutionSurface {
    /// Validates surface attrs in the upstream order: version, kind, transport options (launch
    /// keys stripped), target/lease/surface refs, boundary class, observability.
    pub fn parse(value: &Value) -> Result<Self, SurfaceError> {
        let Value::Object(map) = value else {
            return Err(SurfaceError::InvalidExecutionSurface(value.clone()));
        };
        match map.get("contract_version") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v == CONTRACT_VERSION => {}
            Some(other) => return Err(SurfaceError::InvalidContractVersion(other.clone())),
        }
        let surface_kind = kind_from_value(map.get("surface_kind"))?;
        let transport_options = match map.get("transport_options") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(options)) => options
                .iter()
                .filter(|(key, _)| !LAUNCH_KEYS.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            Some(other) => return Err(SurfaceError::InvalidTransportOptions(other.clone())),
        };
        let target_id = optional_binary(map, "target_id", SurfaceError::InvalidTargetId)?;
        let lease_ref = optional_binary(map, "lease_ref", SurfaceError::InvalidLeaseRef)?;
        let surface_ref = optional_binary(map, "surface_ref", SurfaceError::InvalidSurfaceRef)?;
        let boundary_class =
            optional_binary(map, "boundary_class", SurfaceError::InvalidBoundaryClass)?;
        // Upstream: a present `null` is not a map.
        let observability = match map.get("observability") {
            None => Map::new(),
            Some(Value::Object(o)) => o.clone(),
            Some(other) => return Err(SurfaceError::InvalidObservability(other.clone())),
        };
        Ok(Self {
            surface_kind,
            transport_options,
            target_id,
            lease_ref,
            surface_ref,
            boundary_class,
            observability,
        })
    }

    /// A surface of `kind` with no options or refs.
    pub fn of_kind(kind: SurfaceKind) -> Self {
        Self {
            surface_kind: kind,
            ..Self::default()
        }
    }

    /// The placement family of this surface's kind.
    pub fn placement_family(&self) -> PlacementFamily {
        self.surface_kind.placement_family()
    }

    /// The static capabilities of this surface's kind.
    pub fn capabilities(&self) -> PlacementCapabilities {
        self.surface_kind.capabilities()
    }

    /// The string-keyed map of all eight fields (upstream `to_map`).
    pub fn to_map(&self) -> Value {
        let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        let mut map = Map::new();
        map.insert("contract_version".into(), CONTRACT_VERSION.into());
        map.insert("surface_kind".into(), self.surface_kind.as_str().into());
        map.insert(
            "transport_options".into(),
            Value::Object(self.transport_options.clone()),
        );
        map.insert("target_id".into(), opt(&self.target_id));
        map.insert("lease_ref".into(), opt(&self.lease_ref));
        map.insert("surface_ref".into(), opt(&self.surface_ref));
        map.insert("boundary_class".into(), opt(&self.boundary_class));
        map.insert(
            "observability".into(),
            Value::Object(self.observability.clone()),
        );
        Value::Object(map)
    }
}

impl Contract for ExecutionSurface {
    const NAME: &'static str = CONTRACT_VERSION;

    fn from_value(value: &Value) -> Result<Self, ContractError> {
        Self::parse(value).map_err(ContractError::from)
    }

    fn to_value(&self) -> Value {
        self.to_map()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers over "anything that names a surface kind"

/// Anything the surface helpers accept: a kind name, a kind, surface attrs or a parsed surface.
/// A missing kind (`null`, attrs without `surface_kind`) means `local_subprocess`, as upstream.
pub trait SurfaceKindSource {
    /// The surface kind named, or [`SurfaceError::InvalidSurfaceKind`].
    fn resolve_surface_kind(&self) -> Result<SurfaceKind, SurfaceError>;
}

impl SurfaceKindSource for SurfaceKind {
    fn resolve_surface_kind(&self) -> Result<SurfaceKind, SurfaceError> {
        Ok(*self)
    }
}

impl SurfaceKindSource for str {
    fn resolve_surface_kind(&self) -> Result<SurfaceKind, SurfaceError> {
        SurfaceKind::parse(self)
            .ok_or_else(|| SurfaceError::InvalidSurfaceKind(Value::String(self.to_owned())))
    }
}

impl SurfaceKindSource for String {
    fn resolve_surface_kind(&self) -> Result<SurfaceKind, SurfaceError> {
        self.as_str().resolve_surface_kind()
    }
}

impl SurfaceKindSource for ExecutionSurface {
    fn resolve_surface_kind(&self) -> Result<SurfaceKind, SurfaceError> {
        Ok(self.surface_kind)
    }
}

impl SurfaceKindSource for Value {
    fn resolve_surface_kind(&self) -> Result<SurfaceKind, SurfaceError> {
        match self {
            Value::Object(map) => kind_from_value(map.get("surface_kind")),
            Value::Null | Value::String(_) => kind_from_value(Some(self)),
            // Upstream maps other terms to the default kind; a number or list naming a
            // surface is a caller bug, so it is refused here.
            other => Err(SurfaceError::InvalidSurfaceKind(other.clone())),
        }
    }
}

impl<T: SurfaceKindSource + ?Sized> SurfaceKindSource for &T {
    fn resolve_surface_kind(&self) -> Result<SurfaceKind, SurfaceError> {
        (**self).resolve_surface_kind()
    }
}

/// The placement family of a surface, or `None` for an unknown kind.
pub fn placement_family<S: SurfaceKindSource + ?Sized>(surface: &S) -> Option<PlacementFamily> {
    surface
        .resolve_surface_kind()
        .ok()
        .map(SurfaceKind::placement_family)
}

/// The static capabilities of a surface, or the kind error.
pub fn capabilities<S: SurfaceKindSource + ?Sized>(
    surface: &S,
) -> Result<PlacementCapabilities, SurfaceError> {
    surface
        .resolve_surface_kind()
        .map(SurfaceKind::capabilities)
}

/// What paths mean on a surface, or `None` for an unknown kind.
pub fn path_semantics<S: SurfaceKindSource + ?Sized>(surface: &S) -> Option<PathSemantics> {
    capabilities(surface).ok().map(|c| c.path_semantics)
}

/// Whether a surface runs off this node (`false` for an unknown kind).
pub fn is_remote<S: SurfaceKindSource + ?Sized>(surface: &S) -> bool {
    capabilities(surface).is_ok_and(|c| c.remote)
}

/// Whether a surface's paths are not this node's (remote or guest paths).
pub fn is_nonlocal_path<S: SurfaceKindSource + ?Sized>(surface: &S) -> bool {
    matches!(
        path_semantics(surface),
        Some(PathSemantics::Remote | PathSemantics::Guest)
    )
}

/// The supported surface kinds, sorted.
pub fn supported_surface_kinds() -> [&'static str; 3] {
    SurfaceKind::ALL.map(SurfaceKind::as_str)
}

// ---------------------------------------------------------------------------------------------
// Placement families

/// A placement family: its name, the surface kinds it runs, and whether a surface is its own.
pub trait Placement {
    /// The family.
    const FAMILY: PlacementFamily;
    /// The surface kinds it runs.
    const SURFACE_KINDS: &'static [&'static str];

    /// The family's wire name.
    fn placement_family() -> &'static str {
        Self::FAMILY.as_str()
    }

    /// The surface kinds it runs.
    fn supported_surface_kinds() -> &'static [&'static str] {
        Self::SURFACE_KINDS
    }

    /// Whether `surface` belongs to this family.
    fn supports_surface<S: SurfaceKindSource + ?Sized>(surface: &S) -> bool {
        placement_family(surface) == Some(Self::FAMILY)
    }
}

/// Same-node placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Local;

impl Placement for Local {
    const FAMILY: PlacementFamily = PlacementFamily::Local;
    const SURFACE_KINDS: &'static [&'static str] = &["local_subprocess"];
}

/// SSH placement: a truthful remote shell with remote path semantics and no stronger sandbox
/// claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ssh;

impl Placement for Ssh {
    const FAMILY: PlacementFamily = PlacementFamily::Ssh;
    const SURFACE_KINDS: &'static [&'static str] = &["ssh_exec"];
}

/// Guest placement: an already-available guest runtime speaking the bridge protocol; no
/// isolation stronger than its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Guest;

impl Placement for Guest {
    const FAMILY: PlacementFamily = PlacementFamily::Guest;
    const SURFACE_KINDS: &'static [&'static str] = &["guest_bridge"];
}
