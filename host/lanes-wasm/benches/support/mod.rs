//! A minimal host for lane components, shaped like the runtime's per-store state (WASI scoped
//! to nothing, a bounded resource table, memory and table limits, the epoch deadline, events
//! and logging, `wasi:http` through a pooled hyper client or refused), built on the runtime's
//! own engine so instantiation goes through the same pooling allocator. The runtime keeps its
//! `InstancePre` and store setup private; this lets a benchmark time a lane call in parts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::{Duration, Instant};

use ep_lanes_wasm::LaneLimits;
use ep_lanes_wasm::bindings::{Lane, LanePre, events, logging, types};
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

/// `bytes` compiled and pre-instantiated with WASI, `wasi:http` and every lane interface.
pub fn lane_pre(engine: &Engine, bytes: &[u8]) -> LanePre<BenchState> {
    let component = Component::new(engine, bytes).unwrap_or_else(|e| panic!("{e:#}"));
    let mut linker = Linker::<BenchState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
    types::add_to_linker::<BenchState, HasSelf<BenchState>>(&mut linker, |s| s).unwrap();
    events::add_to_linker::<BenchState, HasSelf<BenchState>>(&mut linker, |s| s).unwrap();
    logging::add_to_linker::<BenchState, HasSelf<BenchState>>(&mut linker, |s| s).unwrap();
    LanePre::new(linker.instantiate_pre(&component).unwrap()).unwrap()
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
    pre: &LanePre<BenchState>,
    engine: &Engine,
    limits: &LaneLimits,
    egress: Egress,
    call: F,
) -> Cycle<T>
where
    F: AsyncFnOnce(&Lane, &mut Store<BenchState>) -> T,
{
    let started = Instant::now();
    let mut store = BenchState::new(limits, egress).into_store(engine, limits);
    let lane = pre.instantiate_async(&mut store).await.unwrap();
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
