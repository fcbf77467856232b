//! Which lane ABI a component targets, and the export calls whatever the version. A component
//! exports `lane-adapter` of exactly one package version; the host reads which from the
//! component's exports when it loads, pre-instantiates the matching bindings, and every call
//! site then speaks [`Pre`] and [`Guest`] without caring. 0.1.0 and 0.2.0 share their types,
//! so requests, outcomes and events are the same Rust values; only a stream's pull differs (0.2.0
//! ends a stream with an outcome, [`Pulled::End`]).

use wasmtime::component::{Component, InstancePre, ResourceAny};
use wasmtime::{Engine, Store};

use crate::bindings::v2_0::lane_adapter::StreamItem;
use crate::bindings::{Lane, LanePre, types, v2_0};
use crate::state::LaneState;

/// A version of the lane ABI this host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AbiVersion {
    /// `execution-plane:lane@0.1.0`: frozen, still loaded.
    V0_1,
    /// `execution-plane:lane@0.2.0`: what the SDK and the first-party lanes target.
    V0_2,
}

impl AbiVersion {
    /// Every version, newest first.
    pub const ALL: [Self; 2] = [Self::V0_2, Self::V0_1];

    /// The WIT package and version, as manifests name it (`wit_version`).
    pub const fn package(self) -> &'static str {
        match self {
            Self::V0_1 => "execution-plane:lane@0.1.0",
            Self::V0_2 => "execution-plane:lane@0.2.0",
        }
    }

    /// The version a manifest's `wit_version` names, if this host implements it.
    pub fn from_package(package: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|version| version.package() == package)
    }

    /// The name of its `lane-adapter` export.
    fn adapter_export(self) -> String {
        let package = self.package();
        let (name, version) = package.split_once('@').unwrap_or((package, ""));
        format!("{name}/lane-adapter@{version}")
    }

    /// The version whose `lane-adapter` `component` exports, if any.
    pub(crate) fn of(engine: &Engine, component: &Component) -> Option<Self> {
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        Self::ALL
            .into_iter()
            .find(|version| exports.contains(&version.adapter_export()))
    }
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.package())
    }
}

/// A pre-instantiated component of either version.
pub(crate) enum Pre {
    V1(LanePre<LaneState>),
    V2(v2_0::LanePre<LaneState>),
}

/// An instantiated component of either version.
pub(crate) enum Guest {
    V1(Lane),
    V2(v2_0::Lane),
}

/// What one pull of a stream gave.
pub(crate) enum Pulled {
    /// An event.
    Event(types::Event),
    /// The end; with the stream's outcome when the component reports one (0.2.0).
    End(Option<types::Outcome>),
}

type Result<T> = wasmtime::Result<T>;

impl Pre {
    /// Checks `instance_pre` exports `version`'s `lane-adapter`.
    pub(crate) fn new(instance_pre: InstancePre<LaneState>, version: AbiVersion) -> Result<Self> {
        Ok(match version {
            AbiVersion::V0_1 => Self::V1(LanePre::new(instance_pre)?),
            AbiVersion::V0_2 => Self::V2(v2_0::LanePre::new(instance_pre)?),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        match self {
            Self::V1(pre) => pre.engine(),
            Self::V2(pre) => pre.engine(),
        }
    }

    pub(crate) async fn instantiate(&self, store: &mut Store<LaneState>) -> Result<Guest> {
        Ok(match self {
            Self::V1(pre) => Guest::V1(pre.instantiate_async(store).await?),
            Self::V2(pre) => Guest::V2(pre.instantiate_async(store).await?),
        })
    }
}

impl Guest {
    pub(crate) async fn capabilities(
        &self,
        store: &mut Store<LaneState>,
    ) -> Result<types::LaneCapabilities> {
        match self {
            Self::V1(lane) => {
                let adapter = lane.execution_plane_lane0_1_0_lane_adapter();
                adapter.call_capabilities(store).await
            }
            Self::V2(lane) => {
                let adapter = lane.execution_plane_lane0_2_0_lane_adapter();
                adapter.call_capabilities(store).await
            }
        }
    }

    pub(crate) async fn validate(
        &self,
        store: &mut Store<LaneState>,
        request: &types::ExecutionRequest,
    ) -> Result<std::result::Result<(), types::Rejection>> {
        match self {
            Self::V1(lane) => {
                let adapter = lane.execution_plane_lane0_1_0_lane_adapter();
                adapter.call_validate(store, request).await
            }
            Self::V2(lane) => {
                let adapter = lane.execution_plane_lane0_2_0_lane_adapter();
                adapter.call_validate(store, request).await
            }
        }
    }

    pub(crate) async fn execute(
        &self,
        store: &mut Store<LaneState>,
        request: &types::ExecutionRequest,
    ) -> Result<types::Outcome> {
        match self {
            Self::V1(lane) => {
                let adapter = lane.execution_plane_lane0_1_0_lane_adapter();
                adapter.call_execute(store, request).await
            }
            Self::V2(lane) => {
                let adapter = lane.execution_plane_lane0_2_0_lane_adapter();
                adapter.call_execute(store, request).await
            }
        }
    }

    pub(crate) async fn stream(
        &self,
        store: &mut Store<LaneState>,
        request: &types::ExecutionRequest,
    ) -> Result<std::result::Result<ResourceAny, types::Rejection>> {
        match self {
            Self::V1(lane) => {
                let adapter = lane.execution_plane_lane0_1_0_lane_adapter();
                adapter.call_stream(store, request).await
            }
            Self::V2(lane) => {
                let adapter = lane.execution_plane_lane0_2_0_lane_adapter();
                adapter.call_stream(store, request).await
            }
        }
    }

    pub(crate) async fn next(
        &self,
        store: &mut Store<LaneState>,
        stream: ResourceAny,
    ) -> Result<Pulled> {
        match self {
            Self::V1(lane) => {
                let adapter = lane.execution_plane_lane0_1_0_lane_adapter();
                let item = adapter.event_stream().call_next(store, stream).await?;
                Ok(item.map_or(Pulled::End(None), Pulled::Event))
            }
            Self::V2(lane) => {
                let adapter = lane.execution_plane_lane0_2_0_lane_adapter();
                let item = adapter.event_stream().call_next(store, stream).await?;
                Ok(match item {
                    StreamItem::Event(event) => Pulled::Event(event),
                    StreamItem::End(outcome) => Pulled::End(Some(outcome)),
                })
            }
        }
    }
}
