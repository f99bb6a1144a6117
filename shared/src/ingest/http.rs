//! HTTP glue for webhook-ingest: a lambda_http request in, a JSON response out. The status
//! mapping lives here and only here.

use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use super::ports::{BlobStore, EventStore, ItemSize, JobQueue};
use super::{IngestOutcome, IngestService};
use crate::respond;

/// The provider a request is for: the route's `{provider}` parameter, else the path segment
/// after `webhooks` (the local stack, a REST API stage prefix).
pub fn provider_of(request: &Request) -> String {
    if let Some(p) = request.path_parameters().first("provider") {
        return p.to_owned();
    }
    provider_in_path(request.uri().path()).to_owned()
}

/// `/webhooks/daily` -> `daily`; a path without a segment after `webhooks` -> "".
pub fn provider_in_path(path: &str) -> &str {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    segments
        .by_ref()
        .find(|s| *s == "webhooks")
        .and_then(|_| segments.next())
        .unwrap_or("")
}

/// Handles one API Gateway request with the real clock.
pub async fn handle<S: EventStore + ItemSize, Q: JobQueue, B: BlobStore>(
    service: &IngestService<S, Q, B>,
    request: Request,
) -> Response<Body> {
    let provider = provider_of(&request);
    let outcome = service
        .handle(
            &provider,
            request.method(),
            request.headers(),
            respond::body_bytes(request.body()),
            respond::now_ms(),
        )
        .await;
    response(&outcome)
}

/// The HTTP answer for an outcome. 2xx means "do not retry"; 5xx only when storage or the
/// queue failed, so JaaS retries exactly when a retry can help.
pub fn response(outcome: &IngestOutcome) -> Response<Body> {
    match outcome {
        IngestOutcome::Stored => respond::json(200, &json!({"status": "stored"})),
        IngestOutcome::StoredWithNotes { notes } => {
            respond::json(200, &json!({"status": "stored", "notes": notes}))
        }
        IngestOutcome::Duplicate => respond::json(200, &json!({"status": "duplicate"})),
        IngestOutcome::Conflict => respond::json(200, &json!({"status": "conflict"})),
        IngestOutcome::Quarantined { reason } => {
            respond::json(200, &json!({"status": "quarantined", "reason": reason}))
        }
        IngestOutcome::Probe => respond::json(200, &json!({"status": "ok"})),
        IngestOutcome::UnknownProvider => respond::error(
            404,
            "unknown_provider",
            "no webhook provider of this name is served here",
        ),
        IngestOutcome::MethodNotAllowed => {
            respond::method_not_allowed("POST", "webhooks are delivered with POST")
        }
        IngestOutcome::TooLarge { limit } => respond::error(
            413,
            "body_too_large",
            &format!("body exceeds the limit of {limit} bytes"),
        ),
        IngestOutcome::Unauthorized(e) => respond::error(401, e.code, &e.message),
        IngestOutcome::InProgress => {
            let mut r = respond::error(
                503,
                "in_progress",
                "another delivery of this event is being processed; retry later",
            );
            r.headers_mut().insert(
                "retry-after",
                lambda_http::http::HeaderValue::from_static("5"),
            );
            r
        }
        IngestOutcome::StorageUnavailable => respond::error(
            503,
            "storage_unavailable",
            "event storage failed; retry later",
        ),
        IngestOutcome::QueueUnavailable => respond::error(
            503,
            "queue_unavailable",
            "event stored but its copy job could not be queued; retry later",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_the_segment_after_webhooks() {
        assert_eq!(provider_in_path("/webhooks/daily"), "daily");
        assert_eq!(provider_in_path("/prod/webhooks/jaas/"), "jaas");
        assert_eq!(provider_in_path("/webhooks"), "");
        assert_eq!(provider_in_path("/other"), "");
    }

    #[test]
    fn method_not_allowed_names_the_allowed_method() {
        let r = response(&IngestOutcome::MethodNotAllowed);
        assert_eq!(r.status().as_u16(), 405);
        assert_eq!(r.headers()["allow"], "POST");
        let body: serde_json::Value = serde_json::from_slice(r.body().as_ref()).expect("JSON");
        assert_eq!(body["error"], "method_not_allowed");
    }
}
