//! `openapi.yaml` describes host-api as it is: every route it serves and nothing else, and
//! every answer it gives here (each refusal, an empty room, a token) matches the document's
//! schema for that route and status. The answers about real meetings (timeline, attendance,
//! files of the four providers' demos) are checked against it in the stack test
//! (`cli/tests/stack.rs`).

use http::Method;
use integration_tests::contract::OpenApi;
use integration_tests::emulator;
use lambda_http::{Body, Request};
use meeting_hooks::aws::wiring;
use meeting_hooks::providers::jaas::token::{self, http::ROUTE as TOKEN_ROUTE};
use meeting_hooks::schema;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const CALLER: &str = "openapi_test_caller_token";

/// `{path template}` matches one segment.
fn covers(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

#[test]
fn the_document_describes_exactly_the_routes_host_api_serves() {
    let doc = OpenApi::load();
    assert_eq!(doc.document()["openapi"], "3.1.0");
    let operations = doc.operations();
    assert!(!operations.is_empty());
    for (method, path) in &operations {
        assert!(
            meeting_hooks::host_api::ROUTES
                .iter()
                .any(|route| covers(route, path)),
            "{method} {path} is documented but not served"
        );
        let want = if path == TOKEN_ROUTE { "POST" } else { "GET" };
        assert_eq!(method, want, "{path}");
    }
    for route in meeting_hooks::host_api::ROUTES {
        assert!(
            operations.iter().any(|(_, path)| covers(route, path)),
            "{route} is served but not documented"
        );
    }
    for view in ["timeline", "attendance", "files"] {
        let path = format!("/v1/sessions/{{sessionId}}/{view}");
        assert!(operations.iter().any(|(_, p)| *p == path), "{path}");
    }
}

/// host-api as the Lambda main builds it, over empty tables in the emulator.
async fn host_api(with_key: bool) -> (wiring::HostApi, String) {
    let emu = emulator();
    let events = emu.table(&schema::EVENTS).await;
    let copies = emu.table(&schema::COPIES).await;
    let bucket = emu.bucket().await;
    let pair = token::generate_local_key_pair().expect("key pair");
    let mut env: std::collections::HashMap<String, String> = [
        ("EVENTS_TABLE", events.as_str()),
        ("COPIES_TABLE", copies.as_str()),
        ("RECORDINGS_BUCKET", bucket.as_str()),
        ("READ_API_TOKENS", CALLER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if with_key {
        env.insert(
            token::http::APP_ID_VAR.into(),
            "vpaas-magic-cookie-openapi".into(),
        );
        env.insert(token::http::KEY_ID_VAR.into(), "k1".into());
        env.insert(
            token::http::PRIVATE_KEY_VAR.into(),
            pair.private_pem.expose_secret().to_owned(),
        );
    }
    let (api, _) = wiring::host_api(&emu.sdk, &env).expect("host-api wiring");
    (api, pair.public_pem)
}

async fn call(
    api: &wiring::HostApi,
    method: Method,
    path_and_query: &str,
    authorized: bool,
    body: &str,
) -> (u16, Value) {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("https://api.example.com{path_and_query}"));
    if authorized {
        builder = builder.header("authorization", format!("Bearer {CALLER}"));
    }
    let request: Request = builder.body(Body::from(body.to_owned())).expect("request");
    let response = meeting_hooks::host_api::handle(api, request).await;
    let status = response.status().as_u16();
    let body = serde_json::from_slice(meeting_hooks::respond::body_bytes(response.body()))
        .expect("every answer is JSON");
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_matches_the_document() {
    let doc = OpenApi::load();
    let (api, public) = host_api(true).await;
    let (unkeyed, _) = host_api(false).await;
    let token_request = json!({
        "roomPrefix": "sales-",
        "user": {"id": "u1", "name": "Ana", "email": "ana@example.com",
                 "avatar": "https://example.com/a.png", "moderator": true},
        "features": {"recording": true, "outboundCall": true},
        "ttlSeconds": 600,
    });
    doc.check_request("POST", TOKEN_ROUTE, &token_request)
        .expect("the README's kind of request is what the document describes");
    let big = format!(
        r#"{{"room":"r","user":{{"id":"u","name":"{}"}}}}"#,
        "x".repeat(20_000)
    );
    let cases: Vec<(&wiring::HostApi, Method, String, bool, String, u16)> = vec![
        (
            &api,
            Method::GET,
            "/v1/sessions?room=daily%3Anone".into(),
            true,
            String::new(),
            200,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions?room=daily%3Anone&limit=0".into(),
            true,
            String::new(),
            400,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions?room=r&cursor=nope".into(),
            true,
            String::new(),
            400,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions?from=yesterday&room=r".into(),
            true,
            String::new(),
            400,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions?room=r".into(),
            false,
            String::new(),
            401,
        ),
        (
            &api,
            Method::POST,
            "/v1/sessions?room=r".into(),
            true,
            String::new(),
            405,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions/mtg-unknown/timeline".into(),
            true,
            String::new(),
            404,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions/mtg-unknown/attendance".into(),
            true,
            String::new(),
            404,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions/mtg-unknown/attendance?includeBots=maybe".into(),
            true,
            String::new(),
            400,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions/mtg-unknown/files".into(),
            true,
            String::new(),
            404,
        ),
        (
            &api,
            Method::GET,
            "/v1/sessions/mtg-unknown/files".into(),
            false,
            String::new(),
            401,
        ),
        (
            &api,
            Method::POST,
            TOKEN_ROUTE.into(),
            true,
            token_request.to_string(),
            200,
        ),
        (
            &api,
            Method::POST,
            TOKEN_ROUTE.into(),
            false,
            token_request.to_string(),
            401,
        ),
        (
            &api,
            Method::GET,
            TOKEN_ROUTE.into(),
            true,
            String::new(),
            405,
        ),
        (
            &api,
            Method::POST,
            TOKEN_ROUTE.into(),
            true,
            "{".into(),
            400,
        ),
        (&api, Method::POST, TOKEN_ROUTE.into(), true, big, 413),
        (
            &api,
            Method::POST,
            TOKEN_ROUTE.into(),
            true,
            r#"{"room":"r","user":{"id":"u","name":"Bo"},"features":{"recording":true}}"#.into(),
            422,
        ),
        (
            &unkeyed,
            Method::POST,
            TOKEN_ROUTE.into(),
            true,
            token_request.to_string(),
            501,
        ),
    ];
    for (api, method, path, authorized, body, want) in cases {
        let (status, answer) = call(api, method.clone(), &path, authorized, &body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        let bare = path.split('?').next().unwrap_or_default();
        doc.check_response(method.as_str(), bare, status, &answer)
            .unwrap_or_else(|e| panic!("{e}\n{answer}"));
        if status == 200 && bare == TOKEN_ROUTE {
            let now = meeting_hooks::respond::now_ms() / 1000;
            let verified = token::verify(answer["token"].as_str().expect("token"), &public, now)
                .expect("the token verifies with the public key");
            assert_eq!(verified.claims, answer["claims"]);
        }
    }
}

#[test]
fn the_checker_refuses_an_answer_that_drifted() {
    let doc = OpenApi::load();
    let page = json!({"roomKey": "r", "sessions": [], "nextCursor": null});
    doc.check_response("GET", "/v1/sessions", 200, &page)
        .expect("a page");
    let extra = json!({"roomKey": "r", "sessions": [], "nextCursor": null, "more": 1});
    assert!(
        doc.check_response("GET", "/v1/sessions", 200, &extra)
            .is_err()
    );
    let missing = json!({"roomKey": "r", "sessions": []});
    assert!(
        doc.check_response("GET", "/v1/sessions", 200, &missing)
            .is_err()
    );
    let bad_time = json!({"roomKey": "r", "nextCursor": null, "sessions": [{
        "id": "s", "sessionId": "s", "provider": "daily", "room": null, "roomKey": null,
        "tenant": null, "startedAt": "yesterday", "endedAt": null, "durationSecs": null}]});
    assert!(
        doc.check_response("GET", "/v1/sessions", 200, &bad_time)
            .is_err()
    );
    assert!(
        doc.check_response("GET", "/v1/nothing", 200, &page)
            .is_err()
    );
    // Under a templated path too: an attendance row without its intervals.
    let session = json!({"id": "s", "sessionId": "s", "provider": "jaas", "room": "r",
        "roomKey": "a/r", "tenant": "a", "startedAt": "2026-11-23T10:00:00.000Z",
        "endedAt": null, "durationSecs": null});
    let row = json!({"identity": "u1", "name": "Ana", "moderator": true, "role": null,
        "firstJoin": "2026-11-23T10:00:00.000Z", "lastLeave": null, "totalSecs": 5,
        "lobbySecs": null, "intervals": []});
    let answer = json!({"session": session, "includeBots": false, "participants": [row]});
    doc.check_response("GET", "/v1/sessions/s/attendance", 200, &answer)
        .expect("an attendance");
    let mut broken = answer.clone();
    broken["participants"][0]
        .as_object_mut()
        .expect("row")
        .remove("intervals");
    assert!(
        doc.check_response("GET", "/v1/sessions/s/attendance", 200, &broken)
            .is_err()
    );
    assert!(
        doc.check_response("GET", "/v1/sessions", 418, &page)
            .is_err()
    );
}
