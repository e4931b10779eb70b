//! Issue 22's telemetry tests: metrics, traces, logging callbacks and error logs, each read back
//! through a real parser or receiver.

mod callbacks;
mod errorlogs;
mod metrics;
mod otel_logs;
mod s3;
mod sinks_under_load;
mod traces;
