//! `POST /v1/jaas/token` on host-api: the host application's backend says who the user is and
//! which rights they get; the answer is the signed join token. The caller authenticates as for
//! the read API (the secret's `readApi.tokens`, checked before anything else); the private key
//! comes from the secret's `jaas` section and never leaves the function.
//!
//! Answers: 200 `{token, expiresAt, notBefore, header, claims}` (with `Cache-Control: no-store`:
//! it is a credential), 401 without a valid caller token, 405 for another method, 413 for a body
//! over [`MAX_BODY_BYTES`], 400 for a body that is not a token request, 422 for a request the
//! token rules refuse (the error's code: `features_need_moderator`, `room_choice`, ...), 501 when
//! the deployment has no JaaS API key, 500 if signing itself fails. Refusals name fields, never
//! their values; the token is never logged.

use http::{HeaderMap, HeaderValue, Method};
use lambda_http::{Body, Response};
use serde_json::json;

use super::{SigningKey, TokenRequest, mint};
use crate::auth::BearerTokens;
use crate::config::{ConfigError, Env};
use crate::respond;

/// The route (the template's and the local stack's).
pub const ROUTE: &str = "/v1/jaas/token";
/// A token request is a few hundred bytes; anything near this is not one.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Variables the signing key is read from (the secret's `jaas.appId`, `jaas.apiKeyId`,
/// `jaas.apiPrivateKey`).
pub const APP_ID_VAR: &str = "JAAS_APP_ID";
pub const KEY_ID_VAR: &str = "JAAS_API_KEY_ID";
pub const PRIVATE_KEY_VAR: &str = "JAAS_API_PRIVATE_KEY";

/// The deployment's signing key: `None` when none of the three variables is set (the route
/// then answers 501); an error when only some are, or the key is unusable (at cold start,
/// never on a request).
pub fn signing_key_from_env(env: &impl Env) -> Result<Option<SigningKey>, ConfigError> {
    let app = env.get(APP_ID_VAR);
    let key_id = env.get(KEY_ID_VAR);
    let pem = env.get(PRIVATE_KEY_VAR);
    match (app, key_id, pem) {
        (None, None, None) => Ok(None),
        (Some(app), Some(key_id), Some(pem)) => SigningKey::new(&app, &key_id, &pem)
            .map(Some)
            .map_err(|e| ConfigError::Invalid {
                var: PRIVATE_KEY_VAR,
                // KeyError's texts never quote the key.
                reason: crate::telemetry::chain(&e),
            }),
        (app, key_id, _) => Err(ConfigError::Missing(if app.is_none() {
            APP_ID_VAR
        } else if key_id.is_none() {
            KEY_ID_VAR
        } else {
            PRIVATE_KEY_VAR
        })),
    }
}

/// The answer to one request on [`ROUTE`] at `now_secs`.
pub fn answer(
    key: Option<&SigningKey>,
    callers: &BearerTokens,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Response<Body> {
    if let Err(refused) = callers.check(headers) {
        return respond::error(401, refused.code, &refused.message);
    }
    if method != Method::POST {
        return respond::method_not_allowed("POST", "the token route takes POST");
    }
    let Some(key) = key else {
        return respond::error(
            501,
            "not_configured",
            "this deployment has no JaaS API key (the secret's jaas.appId, jaas.apiKeyId, \
             jaas.apiPrivateKey)",
        );
    };
    if body.len() > MAX_BODY_BYTES {
        return respond::error(
            413,
            "body_too_large",
            &format!("a token request is at most {MAX_BODY_BYTES} bytes"),
        );
    }
    let request: TokenRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        // serde's own text may quote a value (a name, an email): give the place only.
        Err(e) => {
            return respond::error(
                400,
                "bad_request",
                &format!(
                    "the body is not a token request ({} at line {}, column {}); see openapi.yaml",
                    category(&e),
                    e.line(),
                    e.column()
                ),
            );
        }
    };
    match mint(key, &request, now_secs) {
        Ok(minted) => {
            tracing::info!(
                kid = key.kid(),
                room_pattern = request.room_prefix.is_some(),
                moderator = request.user.moderator,
                features = minted_features(&request).as_str(),
                expires_at = minted.expires_at,
                "minted a JaaS token"
            );
            let mut response = respond::json(
                200,
                &json!({
                    "token": minted.token,
                    "expiresAt": minted.expires_at,
                    "notBefore": minted.not_before,
                    "header": minted.header,
                    "claims": minted.claims,
                }),
            );
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-store"));
            response
        }
        Err(e) if e.is_request_error() => respond::error(422, e.code(), &e.to_string()),
        Err(e) => {
            tracing::error!(error = %crate::telemetry::chain(&e), "JaaS token not minted");
            respond::error(500, e.code(), "the token could not be signed; retry later")
        }
    }
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
        serde_json::error::Category::Data => "a field is missing, unknown or of the wrong type",
        serde_json::error::Category::Io => "unreadable",
    }
}

fn minted_features(request: &TokenRequest) -> String {
    let names: Vec<&str> = request
        .features
        .granted()
        .iter()
        .map(|f| f.request_name())
        .collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::jaas::token::{generate_local_key_pair, verify};
    use secrecy::{ExposeSecret, SecretString};
    use std::collections::HashMap;

    const CALLER: &str = "caller_token_0123456789";
    const NOW: i64 = 1_800_000_000;

    fn callers() -> BearerTokens {
        BearerTokens::new(vec![SecretString::from(CALLER)])
    }

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
            );
        }
        h
    }

    fn body_json(r: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(respond::body_bytes(r.body())).unwrap()
    }

    fn key() -> (SigningKey, String) {
        let pair = generate_local_key_pair().unwrap();
        let key = SigningKey::new(
            "vpaas-magic-cookie-abc",
            "kid1",
            pair.private_pem.expose_secret(),
        )
        .unwrap();
        (key, pair.public_pem)
    }

    fn post(key: Option<&SigningKey>, token: Option<&str>, body: &str) -> Response<Body> {
        answer(
            key,
            &callers(),
            &Method::POST,
            &headers(token),
            body.as_bytes(),
            NOW,
        )
    }

    #[test]
    fn mints_a_token_that_verifies_and_carries_exactly_the_rights_asked() {
        let (key, public) = key();
        let r = post(
            Some(&key),
            Some(CALLER),
            r#"{"room":"standup","user":{"id":"u1","name":"Ana","moderator":true},
                "features":{"recording":true},"ttlSeconds":600}"#,
        );
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let b = body_json(&r);
        let token = b["token"].as_str().unwrap();
        let verified = verify(token, &public, NOW).unwrap();
        assert_eq!(verified.claims, b["claims"]);
        assert_eq!(b["expiresAt"], NOW + 600);
        let c = &verified.claims;
        assert_eq!(c["room"], "standup");
        assert_eq!(c["context"]["user"]["moderator"], "true");
        assert_eq!(c["context"]["features"]["recording"], "true");
        assert_eq!(c["context"]["features"]["livestreaming"], "false");
    }

    #[test]
    fn refuses_callers_without_the_token_before_reading_the_body() {
        let (key, _) = key();
        for token in [None, Some("wrong_token_0123456789")] {
            let r = post(Some(&key), token, "not even json");
            assert_eq!(r.status(), 401);
        }
        // Even a deployment without a key says 401 first: nothing is told to strangers.
        assert_eq!(post(None, None, "{}").status(), 401);
    }

    #[test]
    fn says_why_it_refused_without_echoing_values() {
        let (key, _) = key();
        let r = answer(
            Some(&key),
            &callers(),
            &Method::GET,
            &headers(Some(CALLER)),
            b"",
            NOW,
        );
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()["allow"], "POST");

        let r = post(
            Some(&key),
            Some(CALLER),
            r#"{"room":"x","user":{"id":"u","name":"secret-name@example.com","moderator":"yes"}}"#,
        );
        assert_eq!(r.status(), 400);
        let text = String::from_utf8_lossy(respond::body_bytes(r.body())).into_owned();
        assert!(!text.contains("secret-name"), "{text}");
        assert!(!text.contains("yes"), "{text}");

        let r = post(
            Some(&key),
            Some(CALLER),
            r#"{"room":"x","user":{"id":"u","name":"Bo"},"features":{"recording":true}}"#,
        );
        assert_eq!(r.status(), 422);
        assert_eq!(body_json(&r)["error"], "features_need_moderator");

        let r = post(
            Some(&key),
            Some(CALLER),
            r#"{"room":"x","roomPrefix":"y","user":{"id":"u","name":"Bo"}}"#,
        );
        assert_eq!(r.status(), 422);
        assert_eq!(body_json(&r)["error"], "room_choice");

        let big = format!(
            r#"{{"room":"x","user":{{"id":"u","name":"{}"}}}}"#,
            "a".repeat(MAX_BODY_BYTES)
        );
        assert_eq!(post(Some(&key), Some(CALLER), &big).status(), 413);

        let r = post(None, Some(CALLER), "{}");
        assert_eq!(r.status(), 501);
        assert_eq!(body_json(&r)["error"], "not_configured");
    }

    #[test]
    fn the_key_is_all_three_variables_or_none() {
        let pair = generate_local_key_pair().unwrap();
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(signing_key_from_env(&env(&[])).unwrap().is_none());
        let pem = pair.private_pem.expose_secret().to_owned();
        let full = env(&[
            (APP_ID_VAR, "vpaas-magic-cookie-abc"),
            (KEY_ID_VAR, "kid1"),
            (PRIVATE_KEY_VAR, &pem),
        ]);
        let key = signing_key_from_env(&full).unwrap().unwrap();
        assert_eq!(key.kid(), "vpaas-magic-cookie-abc/kid1");
        let partial = env(&[(APP_ID_VAR, "vpaas-magic-cookie-abc"), (KEY_ID_VAR, "kid1")]);
        assert!(matches!(
            signing_key_from_env(&partial),
            Err(ConfigError::Missing(PRIVATE_KEY_VAR))
        ));
        let public = env(&[
            (APP_ID_VAR, "vpaas-magic-cookie-abc"),
            (KEY_ID_VAR, "kid1"),
            (PRIVATE_KEY_VAR, &pair.public_pem),
        ]);
        let err = signing_key_from_env(&public).unwrap_err().to_string();
        assert!(err.contains("public key"), "{err}");
        assert!(!err.contains("BEGIN"), "{err}");
    }
}
