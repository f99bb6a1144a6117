//! HTTP glue for settings-provisioning: a lambda_http request in, a JSON response out. The
//! status mapping lives here and only here. Every answer to a known caller about one of our
//! rooms is a 200: storage trouble is absorbed by the service (stale cache or fallback).

use lambda_http::{Body, Request, Response};

use super::ports::SettingsStore;
use super::{SettingsOutcome, SettingsService};
use crate::respond;

/// Handles one API Gateway request with the real clock.
pub async fn handle<S: SettingsStore>(
    service: &SettingsService<S>,
    request: Request,
) -> Response<Body> {
    handle_at(service, request, respond::now_ms()).await
}

/// [`handle`] at a given time (Unix ms): tests age the cache with it instead of sleeping.
pub async fn handle_at<S: SettingsStore>(
    service: &SettingsService<S>,
    request: Request,
    now_ms: i64,
) -> Response<Body> {
    let outcome = service
        .handle(
            request.method(),
            request.headers(),
            respond::body_bytes(request.body()),
            now_ms,
        )
        .await;
    response(&outcome)
}

/// The HTTP answer for an outcome.
pub fn response(outcome: &SettingsOutcome) -> Response<Body> {
    match outcome {
        SettingsOutcome::Answer { settings, .. } => respond::json(200, &settings.to_json()),
        SettingsOutcome::MethodNotAllowed => {
            respond::method_not_allowed("POST", "settings are requested with POST")
        }
        SettingsOutcome::Unauthorized(e) => respond::error(401, e.code(), &e.to_string()),
        SettingsOutcome::Malformed(reason) => respond::error(400, "malformed_body", reason),
        SettingsOutcome::UnknownApp => respond::error(
            403,
            "unknown_app",
            "the fqn's appId is not served by this deployment",
        ),
    }
}
