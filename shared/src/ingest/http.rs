//! HTTP glue for webhook-ingest: a lambda_http request in, a JSON response out. The status
//! mapping lives here and only here.

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::ports::{BlobStore, EventStore, ItemSize, JobQueue};
use super::{IngestOutcome, IngestService};
use crate::respond;

/// Handles one API Gateway request with the real clock.
pub async fn handle<S: EventStore + ItemSize, Q: JobQueue, B: BlobStore>(
    service: &IngestService<S, Q, B>,
    request: Request,
) -> Response<Body> {
    let outcome = service
        .handle(
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
        IngestOutcome::MethodNotAllowed => {
            respond::method_not_allowed("POST", "webhooks are delivered with POST")
        }
        IngestOutcome::TooLarge { limit } => respond::error(
            413,
            "body_too_large",
            &format!("body exceeds the limit of {limit} bytes"),
        ),
        IngestOutcome::Unauthorized(e) => respond::error(401, e.code(), &e.to_string()),
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
    fn method_not_allowed_names_the_allowed_method() {
        let r = response(&IngestOutcome::MethodNotAllowed);
        assert_eq!(r.status().as_u16(), 405);
        assert_eq!(r.headers()["allow"], "POST");
        let body: serde_json::Value = serde_json::from_slice(r.body().as_ref()).expect("JSON");
        assert_eq!(body["error"], "method_not_allowed");
    }
}
