//! A minimal host for lane components, shaped like the runtime's per-store state (WASI scoped
//! to nothing, a bounded resource table, memory and table limits, the epoch deadline, events
//! and logging, `wasi:http` through a pooled hyper client or refused), built on the runtime's
//! own engine so instantiation goes through the same pooling allocator. The runtime keeps its
//! `InstancePre` and store setup private; this lets a benchmark time a lane call in parts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::{Duration, Instant};

use ep_lanes_wasm::LaneLimits;
use ep_lanes_wasm::bindings::{Lane, LanePre, events, logging, types, v2_0};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

/// Where a store's outbound HTTP goes.
// One value per benchmark run; its size does not matter (and it grows with the hyper
// client features the workspace enables).
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Egress {
    /// Every request is refused.
    Refuse,
    /// Every request goes through this pooled client.
    Client(Client<HttpConnector, WasiBody>),
}

impl Egress {
    /// A pooled keep-alive client with `TCP_NODELAY`, like the runtime's.
    pub fn pooled() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self::Client(
            Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(32)
                .build(connector),
        )
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let Self::Client(client) = self else {
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        let client = client.clone();
        Box::new(async move {
            let response = client
                .request(request)
                .await
                .map_err(|_| HttpError::ConnectionTerminated)?;
            let response = response.map(|body| {
                body.map_err(|_| HttpError::ConnectionTerminated)
                    .boxed_unsync()
            });
            Ok((response, Box::new(async { Ok(()) }) as IoFuture))
        })
    }
}

/// Per-store data.
pub struct BenchState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    egress: Egress,
    limits: StoreLimits,
    pub events: Vec<types::Event>,
}

impl BenchState {
    pub fn new(limits: &LaneLimits, egress: Egress) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .max_random_size(1 << 20);
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_host_resources);
        Self {
            wasi: wasi.build(),
            table,
            http: WasiHttpCtx::new(),
            egress,
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.max_memory_bytes)
                .table_elements(limits.max_table_elements)
                .instances(limits.max_instances)
                .tables(limits.max_tables)
                .memories(limits.max_memories)
                .build(),
            events: Vec::new(),
        }
    }

    /// A store with the limiter, handle cap and epoch deadline installed.
    pub fn into_store(self, engine: &Engine, limits: &LaneLimits) -> Store<Self> {
        let mut store = Store::new(engine, self);
        store.limiter(|state| &mut state.limits);
        store.set_max_component_handles(limits.max_component_handles);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(1)));
        store
    }
}

impl WasiView for BenchState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for BenchState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}

impl types::Host for BenchState {}

impl events::Host for BenchState {
    async fn emit(&mut self, event: types::Event) -> wasmtime::Result<()> {
        self.events.push(event);
        Ok(())
    }
}

impl logging::Host for BenchState {
    async fn log(&mut self, _level: logging::Level, _message: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl v2_0::events::Host for BenchState {
    async fn emit(&mut self, event: types::Event) -> wasmtime::Result<()> {
        self.events.push(event);
        Ok(())
    }
}

impl v2_0::logging::Host for BenchState {
    async fn log(&mut self, _: v2_0::logging::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl v2_0::http_egress::Host for BenchState {
    async fn last_denial(&mut self) -> wasmtime::Result<Option<v2_0::http_egress::Denial>> {
        Ok(None)
    }
}

impl v2_0::input::Host for BenchState {
    async fn subscribe(
        &mut self,
    ) -> wasmtime::Result<wasmtime::component::Resource<wasmtime_wasi::p2::DynPollable>> {
        Err(wasmtime::Error::msg("benchmarks send no input"))
    }
    async fn take(&mut self) -> wasmtime::Result<Option<v2_0::input::InputItem>> {
        Ok(None)
    }
}

/// A linker with WASI, `wasi:http` and every lane interface of both ABI versions.
fn linker(engine: &Engine) -> Linker<BenchState> {
    let mut linker = Linker::<BenchState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
    let l = &mut linker;
    types::add_to_linker::<BenchState, HasSelf<BenchState>>(l, |s| s).unwrap();
    events::add_to_linker::<BenchState, HasSelf<BenchState>>(l, |s| s).unwrap();
    logging::add_to_linker::<BenchState, HasSelf<BenchState>>(l, |s| s).unwrap();
    l.instance(ep_lanes_wasm::bindings::TYPES_0_2_0).unwrap();
    v2_0::events::add_to_linker::<BenchState, HasSelf<BenchState>>(l, |s| s).unwrap();
    v2_0::logging::add_to_linker::<BenchState, HasSelf<BenchState>>(l, |s| s).unwrap();
    v2_0::http_egress::add_to_linker::<BenchState, HasSelf<BenchState>>(l, |s| s).unwrap();
    v2_0::input::add_to_linker::<BenchState, HasSelf<BenchState>>(l, |s| s).unwrap();
    linker
}

/// `bytes` (a lane of either ABI version) compiled and pre-instantiated.
pub fn lane_pre(engine: &Engine, bytes: &[u8]) -> AnyPre {
    let component = Component::new(engine, bytes).unwrap_or_else(|e| panic!("{e:#}"));
    let pre = linker(engine).instantiate_pre(&component).unwrap();
    match LanePre::new(pre.clone()) {
        Ok(v1) => AnyPre::V1(v1),
        Err(_) => AnyPre::V2(v2_0::LanePre::new(pre).unwrap()),
    }
}

/// A pre-instantiated lane of either ABI version.
pub enum AnyPre {
    V1(LanePre<BenchState>),
    V2(v2_0::LanePre<BenchState>),
}

/// An instantiated lane of either ABI version.
pub enum AnyLane {
    V1(Lane),
    V2(v2_0::Lane),
}

impl AnyPre {
    async fn instantiate(&self, store: &mut Store<BenchState>) -> AnyLane {
        match self {
            Self::V1(pre) => AnyLane::V1(pre.instantiate_async(store).await.unwrap()),
            Self::V2(pre) => AnyLane::V2(pre.instantiate_async(store).await.unwrap()),
        }
    }
}

impl AnyLane {
    /// The guest's `capabilities`.
    pub async fn capabilities(&self, store: &mut Store<BenchState>) -> types::LaneCapabilities {
        match self {
            Self::V1(lane) => {
                lane.execution_plane_lane0_1_0_lane_adapter()
                    .call_capabilities(store)
                    .await
            }
            Self::V2(lane) => {
                lane.execution_plane_lane0_2_0_lane_adapter()
                    .call_capabilities(store)
                    .await
            }
        }
        .unwrap()
    }

    /// The guest's `execute`.
    pub async fn execute(
        &self,
        store: &mut Store<BenchState>,
        request: &types::ExecutionRequest,
    ) -> types::Outcome {
        match self {
            Self::V1(lane) => {
                lane.execution_plane_lane0_1_0_lane_adapter()
                    .call_execute(store, request)
                    .await
            }
            Self::V2(lane) => {
                lane.execution_plane_lane0_2_0_lane_adapter()
                    .call_execute(store, request)
                    .await
            }
        }
        .unwrap()
    }
}

/// One instance's life, timed in parts.
pub struct Cycle<T> {
    /// What the call returned.
    pub answer: T,
    /// A fresh store + `instantiate_async` from the `InstancePre`.
    pub instantiate: Duration,
    /// The guest call (and whatever host work it waits on).
    pub call: Duration,
    /// Dropping the store: the pooling allocator resets the instance's memory and tables.
    pub drop: Duration,
}

impl<T> Cycle<T> {
    /// The three parts together.
    pub fn whole(&self) -> Duration {
        self.instantiate + self.call + self.drop
    }
}

/// Instantiates `pre` in a fresh store, runs `call`, drops the store; each part timed.
pub async fn cycle<T, F>(
    pre: &AnyPre,
    engine: &Engine,
    limits: &LaneLimits,
    egress: Egress,
    call: F,
) -> Cycle<T>
where
    F: AsyncFnOnce(&AnyLane, &mut Store<BenchState>) -> T,
{
    let started = Instant::now();
    let mut store = BenchState::new(limits, egress).into_store(engine, limits);
    let lane = pre.instantiate(&mut store).await;
    let instantiated = Instant::now();
    let answer = call(&lane, &mut store).await;
    let called = Instant::now();
    drop(store);
    let dropped = Instant::now();
    Cycle {
        answer,
        instantiate: instantiated - started,
        call: called - instantiated,
        drop: dropped - called,
    }
}
