//! OTLP log export (`callbacks: ["otel"]` as a logging sink): an exporter of opentelemetry-otlp
//! (HTTP protobuf or JSON through our own client, or gRPC) driven by the caller, which batches
//! (the logging callbacks' sink task): no SDK processor, no global logger. Records come from
//! [`OtlpLogs::record`] and go out with [`OtlpLogs::export`].

use opentelemetry::InstrumentationScope;
use opentelemetry::logs::{Logger as _, LoggerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter as _, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};

use super::otlp::{OtlpError, Settings};

/// An OTLP log exporter and what its records are made with. `Debug` names none of its settings
/// (the exporter's headers may hold credentials).
pub struct OtlpLogs {
    exporter: opentelemetry_otlp::LogExporter,
    logger: SdkLogger,
    scope: InstrumentationScope,
    /// Kept for the logger (it makes the records; nothing is processed through it).
    _provider: SdkLoggerProvider,
}

impl std::fmt::Debug for OtlpLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtlpLogs")
    }
}

impl OtlpLogs {
    /// An exporter with `settings`, HTTP going through `client` (gRPC needs a tokio runtime).
    pub fn start<C>(settings: &Settings, client: C) -> Result<Self, OtlpError>
    where
        C: opentelemetry_http::HttpClient + 'static,
    {
        let mut exporter =
            super::otlp::exporter!(opentelemetry_otlp::LogExporter::builder(), settings, client)?;
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name(settings.service.clone())
                .build(),
        );
        let provider = SdkLoggerProvider::builder().build();
        let logger = provider.logger("tianji");
        Ok(Self {
            exporter,
            logger,
            scope: InstrumentationScope::builder("tianji").build(),
            _provider: provider,
        })
    }

    /// An empty record to fill.
    pub fn record(&self) -> SdkLogRecord {
        self.logger.create_log_record()
    }

    /// Export `records` in one request; whether the collector took them.
    pub async fn export(&self, records: &[SdkLogRecord]) -> bool {
        let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|r| (r, &self.scope)).collect();
        match self.exporter.export(LogBatch::new(&pairs)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "OTLP logs export");
                false
            }
        }
    }
}
