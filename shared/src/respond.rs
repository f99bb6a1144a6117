//! JSON responses for the HTTP functions: one shape for success and one for refusals
//! (`{"error": "<code>", "reason": "<short text>"}`), so callers always learn why.

use lambda_http::{Body, Response};
use serde_json::{Value, json};

/// A JSON response with the given status.
pub fn json(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("status and header are valid")
}

/// A refusal: machine-readable code plus a short human reason.
pub fn error(status: u16, code: &str, reason: &str) -> Response<Body> {
    json(status, &json!({ "error": code, "reason": reason }))
}

/// A 405 refusal with the `Allow` header RFC 9110 requires (the methods the route takes).
pub fn method_not_allowed(allow: &'static str, reason: &str) -> Response<Body> {
    let mut r = error(405, "method_not_allowed", reason);
    r.headers_mut()
        .insert("allow", lambda_http::http::HeaderValue::from_static(allow));
    r
}

/// The raw body bytes of a request, as API Gateway delivered them (base64 already decoded).
pub fn body_bytes(body: &Body) -> &[u8] {
    // `Body` derefs to its bytes whatever the variant (empty, text, binary).
    body.as_ref()
}

/// Current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
