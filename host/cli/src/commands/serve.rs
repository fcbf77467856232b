//! `serve`: the node host as a network service (docs/api.md) on the configuration of
//! docs/config.md, until SIGINT or SIGTERM (graceful drain); SIGHUP reloads the policy and the
//! plugin directory. Prints where it listens and where its keys, token and evidence are, and the
//! public key of the node key that signs the evidence head.

use std::io::Write as _;

use ep_server::config::LogFormat;
use ep_server::lifecycle::StopSignals;
use ep_server::start;

use crate::cli::ServeArgs;
use crate::error::CliError;

/// Runs `serve` until a stop signal.
pub fn run(args: ServeArgs) -> Result<(), CliError> {
    let mut config = crate::host::load_config(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    let format = match args.log_format.as_deref() {
        Some(text) => text.parse::<LogFormat>().map_err(CliError::msg)?,
        None => config.log.format,
    };
    // Before the runtime: the trace exporter's blocking client must not start inside one.
    let telemetry = ep_server::observability::init(format, &config.log, &config.telemetry)
        .map_err(CliError::msg)?;
    let served = serve(config);
    // After the runtime is gone, so the exporter's flush blocks nothing.
    if let Err(error) = telemetry.shutdown() {
        tracing::warn!(%error, "spans queued at shutdown were not exported");
    }
    served
}

/// Builds the runtime and serves on it until a stop signal.
fn serve(config: ep_server::ServeConfig) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::msg)?;
    runtime.block_on(async {
        let drain = config.server.drain_timeout();
        // Handled from here on: a signal that arrives while the service starts is not lost.
        let signals = StopSignals::install().map_err(CliError::msg)?;
        let server = start(config).await.map_err(CliError::msg)?;
        if let Some(service) = server.service() {
            let info = service.info();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {}", server.url());
            let _ = writeln!(out, "node id: {}", info.node_id);
            let _ = writeln!(out, "evidence log: {}", info.evidence_log.display());
            let _ = writeln!(
                out,
                "node key (signs the evidence head): {}",
                info.node_key.display()
            );
            let _ = writeln!(
                out,
                "node public key: {} (check the log with `evidence verify --key <this key>`)",
                info.node_public_key
            );
            if let Some(key) = &info.dev_key {
                let _ = writeln!(out, "development signing key: {}", key.display());
            }
            let _ = writeln!(out, "trust store: {}", info.trust_store.display());
            let _ = writeln!(out, "operator token: {}", info.token_file.display());
            let _ = writeln!(out, "{}", info.sandbox);
            let _ = out.flush();
            tokio::spawn(report_lanes(std::sync::Arc::clone(service)));
        }
        let report = signals.run(server, drain).await.map_err(CliError::msg)?;
        // Stdout may be gone by now (a supervisor that stopped reading): never panic on it.
        let _ = writeln!(
            std::io::stdout().lock(),
            "stopped: {} in flight, {} drained, {} cancelled, {} streams cut",
            report.in_flight,
            report.drained,
            report.cancelled,
            report.streams_cut
        );
        match report.flush_error {
            Some(error) => Err(CliError::msg(format!("evidence flush failed: {error}"))),
            None => Ok(()),
        }
    })
}

/// Prints the lanes serving once the plugin directory has loaded (the host answers, and serves
/// the lanes that are ready, before that), and every lane not served, with why.
async fn report_lanes(service: std::sync::Arc<ep_server::Service>) {
    let report = service.loaded().await;
    let mut out = std::io::stdout().lock();
    for refusal in &report.refused {
        let _ = writeln!(out, "lane not served: {refusal}");
    }
    let served = if report.served.is_empty() {
        "none".to_owned()
    } else {
        report.served.join(", ")
    };
    let _ = writeln!(
        out,
        "lanes ready in {} ms: {served}",
        report.took.as_millis()
    );
    let _ = out.flush();
}
