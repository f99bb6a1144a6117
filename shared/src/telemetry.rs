//! Structured logging set-up shared by every binary: JSON lines in Lambda (CloudWatch
//! Logs Insights can query fields), compact text on a terminal. `RUST_LOG` sets the filter.
//! What is logged is decided at each call site: ids and reasons, never bodies, links,
//! signatures, passcodes or secrets.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `service` names the binary in metric output too.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if in_lambda {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .without_time()
            .try_init()
    } else {
        builder.compact().with_writer(std::io::stderr).try_init()
    };
    if in_lambda {
        crate::metrics::init(service);
    }
}

/// An error with its causes, `: `-separated (SDK errors name the operation and the service's
/// answer; none of ours carries a link).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
