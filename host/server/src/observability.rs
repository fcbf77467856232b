//! Log and trace setup for `serve`: human lines or one JSON object per line on stderr, at the
//! configured level (`EXECUTION_PLANE_LOG` overrides it), and — in a build with the `otel`
//! feature and `[telemetry] otlp_endpoint` set — the same spans exported to an OpenTelemetry
//! collector over OTLP/HTTP. Every API request and every execution has its own `tracing` span
//! (`request`: request id, method, path, route, status; `execution`: lane, execution ref,
//! target, generation digest, status), so a JSON log line carries them as fields and an
//! exported trace carries them as attributes, the execution span a child of its request's.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LogSection, TelemetrySection};

/// Why logging or trace export could not be set up; `serve` refuses to start on it.
#[derive(Debug, thiserror::Error)]
pub enum ObservabilityError {
    /// An export endpoint is configured in a build that cannot export.
    #[error(
        "telemetry.otlp_endpoint is set to {endpoint:?} but this build has no OpenTelemetry \
         export; build with `--features otel` (cargo build --release -p execution-plane \
         --features otel) or leave the endpoint empty"
    )]
    NotBuilt {
        /// The configured endpoint.
        endpoint: String,
    },
    /// The OTLP exporter refused its configuration.
    #[error("OpenTelemetry exporter for {endpoint}: {message}")]
    Exporter {
        /// Where spans would have gone.
        endpoint: String,
        /// What the exporter said.
        message: String,
    },
    /// Another global subscriber was installed first (a second `init` in one process).
    #[error("a global tracing subscriber is already installed in this process")]
    AlreadyInstalled,
    /// Exporting the spans queued failed (the collector was unreachable or refused them).
    #[error("OpenTelemetry export: {0}")]
    Flush(String),
}

/// Keeps the trace exporter alive while the service runs; [`Telemetry::shutdown`] flushes the
/// spans still queued. Without export it holds nothing.
#[derive(Debug)]
#[must_use = "dropping it stops trace export; call `shutdown` after the service stopped"]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        #[cfg(feature = "otel")]
        {
            self.provider.is_some()
        }
        #[cfg(not(feature = "otel"))]
        {
            false
        }
    }

    /// Exports what is queued now and answers whether the collector took it. Blocks while it
    /// sends, so call it outside async code (or in `spawn_blocking`).
    pub fn flush(&self) -> Result<(), ObservabilityError> {
        #[cfg(feature = "otel")]
        if let Some(provider) = &self.provider {
            return provider
                .force_flush()
                .map_err(|e| ObservabilityError::Flush(e.to_string()));
        }
        Ok(())
    }

    /// Exports what is still queued and stops the exporter. Blocks while it sends, so call it
    /// outside async code (or in `spawn_blocking`).
    pub fn shutdown(self) -> Result<(), ObservabilityError> {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider {
            return provider
                .shutdown()
                .map_err(|e| ObservabilityError::Flush(e.to_string()));
        }
        Ok(())
    }
}

/// Whether this build can export traces (the `otel` cargo feature).
pub const EXPORT_BUILT: bool = cfg!(feature = "otel");

/// The traces URL export will post to, `None` when export is off; an endpoint in a build
/// without export is refused rather than silently ignored.
pub fn export_target(telemetry: &TelemetrySection) -> Result<Option<String>, ObservabilityError> {
    match telemetry.traces_url() {
        Some(_) if !EXPORT_BUILT => Err(ObservabilityError::NotBuilt {
            endpoint: telemetry.otlp_endpoint.clone(),
        }),
        url => Ok(url),
    }
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: logs in `format` at `log.level` on stderr, plus trace export
/// when `telemetry` names an endpoint. Call it before building the async runtime: the
/// exporter's blocking HTTP client must not be created inside one.
pub fn init(
    format: LogFormat,
    log: &LogSection,
    telemetry: &TelemetrySection,
) -> Result<Telemetry, ObservabilityError> {
    let target = export_target(telemetry)?;
    let filter = EnvFilter::try_from_env("EXECUTION_PLANE_LOG")
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs: BoxedLayer = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (export, telemetry) = match target {
        None => (
            None,
            Telemetry {
                #[cfg(feature = "otel")]
                provider: None,
            },
        ),
        Some(url) => {
            #[cfg(feature = "otel")]
            {
                let (layer, provider) = otel::layer(&url, &telemetry.service_name)?;
                (
                    Some(layer),
                    Telemetry {
                        provider: Some(provider),
                    },
                )
            }
            #[cfg(not(feature = "otel"))]
            {
                // `export_target` refused the endpoint already.
                return Err(ObservabilityError::NotBuilt { endpoint: url });
            }
        }
    };
    let layers: Vec<BoxedLayer> = std::iter::once(logs).chain(export).collect();
    tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .try_init()
        .map_err(|_| ObservabilityError::AlreadyInstalled)?;
    Ok(telemetry)
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer as _;

    use super::{BoxedLayer, ObservabilityError};

    /// The export layer and the provider that batches and sends its spans to `url`.
    pub(super) fn layer(
        url: &str,
        service_name: &str,
    ) -> Result<(BoxedLayer, SdkTracerProvider), ObservabilityError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .build()
            .map_err(|e| ObservabilityError::Exporter {
                endpoint: url.to_owned(),
                message: e.to_string(),
            })?;
        let resource = Resource::builder()
            .with_service_name(service_name.to_owned())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("execution-plane");
        // No `target` attribute from the tracing target: the execution span has its own `target`.
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_target(false)
            .boxed();
        Ok((layer, provider))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn telemetry(endpoint: &str) -> TelemetrySection {
        TelemetrySection {
            otlp_endpoint: endpoint.to_owned(),
            service_name: "execution-plane".to_owned(),
        }
    }

    #[test]
    fn no_endpoint_means_no_export_in_any_build() {
        assert_eq!(export_target(&telemetry("")).unwrap(), None);
        assert_eq!(export_target(&telemetry("  ")).unwrap(), None);
    }

    #[test]
    fn an_endpoint_exports_to_its_traces_path_or_is_refused_without_the_feature() {
        let answer = export_target(&telemetry("http://127.0.0.1:4318/"));
        if EXPORT_BUILT {
            assert_eq!(
                answer.unwrap().as_deref(),
                Some("http://127.0.0.1:4318/v1/traces")
            );
        } else {
            let message = answer.unwrap_err().to_string();
            assert!(message.contains("--features otel"), "{message}");
        }
    }
}
