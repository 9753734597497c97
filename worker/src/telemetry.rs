//! Structured logs with `tracing`: pretty for people, JSON for machines. Phone numbers never reach
//! a log line in clear: the `Phone` type only prints masked.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `format` is `json` or `pretty`. Safe to call twice (tests).
pub fn init(format: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,temporalio_sdk_core=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        "json" => builder.json().flatten_event(true).try_init(),
        "pretty" => builder.try_init(),
        other => anyhow::bail!("invalid log_format: expected json or pretty, got {other:?}"),
    };
    // A second init (several tests in one process) is not an error worth failing for.
    drop(result);
    Ok(())
}
