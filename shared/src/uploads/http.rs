//! HTTP glue for jibri-uploads: a lambda_http request in, a JSON response out. The status
//! mapping lives here and only here; no answer carries a token, and presigned URLs appear only
//! in a successful grant to the authenticated host.

use lambda_http::{Body, Request, Response};
use serde_json::json;

use super::ports::{RecordingLedger, UploadBucket};
use super::{UploadOutcome, UploadService};
use crate::ingest::ports::EventStore;
use crate::respond;

/// Handles one API Gateway request with the real clock.
pub async fn handle<B: UploadBucket, L: RecordingLedger, E: EventStore>(
    service: &UploadService<B, L, E>,
    request: Request,
) -> Response<Body> {
    let outcome = service
        .handle(
            request.method(),
            request.uri().path(),
            request.headers(),
            respond::body_bytes(request.body()),
            respond::now_ms(),
        )
        .await;
    response(&outcome)
}

/// The HTTP answer for an outcome.
pub fn response(outcome: &UploadOutcome) -> Response<Body> {
    match outcome {
        UploadOutcome::Answer(answer) => match serde_json::to_value(answer) {
            Ok(v) => respond::json(200, &v),
            Err(_) => respond::error(500, "internal", "answer could not be written"),
        },
        UploadOutcome::MethodNotAllowed => {
            respond::method_not_allowed("POST", "uploads are requested with POST")
        }
        UploadOutcome::NotFound => respond::error(404, "not_found", "no such route"),
        UploadOutcome::Unauthorized(refused) => respond::error(401, refused.code, &refused.message),
        UploadOutcome::Malformed(reason) => respond::error(400, "malformed_body", reason),
        UploadOutcome::TooLarge => respond::error(
            413,
            "recording_too_large",
            "the recording is larger than this deployment accepts (UPLOAD_MAX_GIB)",
        ),
        UploadOutcome::PartsMissing(missing) => respond::json(
            409,
            &json!({
                "error": "parts_missing",
                "reason": "not every part is uploaded: ask for a grant again",
                "missingParts": missing.iter().take(100).collect::<Vec<_>>(),
            }),
        ),
        UploadOutcome::UnknownUpload => respond::error(
            409,
            "upload_unknown",
            "no such upload (aborted or expired): start again without uploadId",
        ),
        UploadOutcome::Mismatch(code) => respond::error(
            422,
            code,
            "the uploaded object is not the declared file; it was deleted: upload again",
        ),
        UploadOutcome::Unavailable(operation) => respond::error(
            503,
            "unavailable",
            &format!("storage failed ({operation}); retry later"),
        ),
    }
}
