//! Metrics as CloudWatch Embedded Metric Format: one JSON line per data point on stdout,
//! which Lambda ships to CloudWatch Logs and CloudWatch turns into metrics, with no API call
//! and no extra latency. Nothing is printed until [`init`] is called (tests stay quiet).
//! Metric lines never carry bodies, links or secrets: only names, numbers and dimensions.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use crate::ingest::IngestOutcome;

struct Sink {
    namespace: String,
    service: &'static str,
}

static SINK: OnceLock<Sink> = OnceLock::new();

thread_local! {
    /// Data points of this thread, while a test records them ([`record_on_this_thread`]).
    static RECORDED: std::cell::RefCell<Option<Vec<(String, f64)>>> =
        const { std::cell::RefCell::new(None) };
}

/// Starts keeping this thread's data points (name, value) in memory, in addition to any
/// output, until [`take_recorded`]. For tests: a single-threaded async test sees every
/// metric its code under test emits.
pub fn record_on_this_thread() {
    RECORDED.with(|r| *r.borrow_mut() = Some(Vec::new()));
}

/// The data points kept since [`record_on_this_thread`]; stops keeping them.
pub fn take_recorded() -> Vec<(String, f64)> {
    RECORDED.with(|r| r.borrow_mut().take().unwrap_or_default())
}

/// Enables metric output for this process; `service` becomes the `Service` dimension.
/// The namespace is `METRICS_NAMESPACE`, default `MeetingHooks`.
pub fn init(service: &'static str) {
    let namespace = std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "MeetingHooks".into());
    let _ = SINK.set(Sink { namespace, service });
}

/// Builds the EMF document for one metric (public for tests and the local stack).
///
/// `dims` are the extra dimensions besides `Service`. A `Provider` among them adds a second
/// dimension set: the metric is published both without it (the totals every existing alarm
/// and dashboard row reads) and with it (per provider), from the one line.
pub fn emf_line(
    namespace: &str,
    service: &str,
    name: &str,
    value: f64,
    unit: &str,
    dims: &[(&str, &str)],
    timestamp_ms: i64,
) -> String {
    let mut doc = Map::new();
    doc.insert("Service".into(), Value::from(service));
    let mut without_provider = vec!["Service"];
    let mut with_provider = vec!["Service"];
    for (k, v) in dims {
        doc.insert((*k).into(), Value::from(*v));
        with_provider.push(k);
        if *k != "Provider" {
            without_provider.push(k);
        }
    }
    let sets = if with_provider.len() == without_provider.len() {
        json!([without_provider])
    } else {
        json!([without_provider, with_provider])
    };
    doc.insert(name.into(), json!(value));
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": sets,
                "Metrics": [{"Name": name, "Unit": unit}]
            }]
        }),
    );
    Value::Object(doc).to_string()
}

fn emit(name: &str, value: f64, unit: &str, dims: &[(&str, &str)]) {
    RECORDED.with(|r| {
        if let Some(points) = r.borrow_mut().as_mut() {
            points.push((name.to_owned(), value));
        }
    });
    if let Some(sink) = SINK.get() {
        println!(
            "{}",
            emf_line(
                &sink.namespace,
                sink.service,
                name,
                value,
                unit,
                dims,
                crate::respond::now_ms()
            )
        );
    }
}

/// A count.
pub fn count(name: &str, value: f64) {
    emit(name, value, "Count", &[]);
}

/// A count with extra dimensions (e.g. `Provider`, `EventType`).
pub fn count_by(name: &str, value: f64, dims: &[(&str, &str)]) {
    emit(name, value, "Count", dims);
}

/// A value with a unit (`Bytes`, `Seconds`, `Milliseconds`).
pub fn value(name: &str, value: f64, unit: &str) {
    emit(name, value, unit, &[]);
}

/// A value with a unit and extra dimensions.
pub fn value_by(name: &str, value: f64, unit: &str, dims: &[(&str, &str)]) {
    emit(name, value, unit, dims);
}

/// The counter for an ingest outcome, per provider.
pub fn ingest_outcome(provider: &str, outcome: &IngestOutcome) {
    let p = ("Provider", provider);
    match outcome {
        IngestOutcome::Stored | IngestOutcome::StoredWithNotes { .. } => {
            count_by("EventsStored", 1.0, &[p])
        }
        IngestOutcome::Duplicate => count_by("Duplicates", 1.0, &[p]),
        IngestOutcome::Conflict => count_by("Conflicts", 1.0, &[p]),
        IngestOutcome::Quarantined { .. } => count_by("Quarantined", 1.0, &[p]),
        IngestOutcome::Probe => count_by("Probes", 1.0, &[p]),
        // Not a provider we serve: no Provider dimension from a caller-chosen path.
        IngestOutcome::UnknownProvider => count("UnknownProvider", 1.0),
        IngestOutcome::Unauthorized(e) => {
            count_by("SignatureFailures", 1.0, &[p, ("Reason", e.code)])
        }
        IngestOutcome::TooLarge { .. } => count_by("TooLarge", 1.0, &[p]),
        IngestOutcome::MethodNotAllowed => count_by("MethodNotAllowed", 1.0, &[p]),
        IngestOutcome::InProgress => count_by("InProgress", 1.0, &[p]),
        IngestOutcome::StorageUnavailable => count_by("StorageFailures", 1.0, &[p]),
        IngestOutcome::QueueUnavailable => count_by("QueueFailures", 1.0, &[p]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_names_metric_dimensions_and_value() {
        let line = emf_line(
            "NS",
            "svc",
            "Duplicates",
            1.0,
            "Count",
            &[("Provider", "daily"), ("EventType", "X")],
            5,
        );
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["Duplicates"], json!(1.0));
        assert_eq!(v["EventType"], "X");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["Service", "EventType"])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1],
            json!(["Service", "Provider", "EventType"])
        );
        assert_eq!(v["Provider"], "daily");
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "NS");
    }
}
