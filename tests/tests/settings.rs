//! settings-provisioning through its real HTTP handler, the real DynamoDB adapter and the
//! AWS SDK against moto_server: precedence, cache, stale and fallback answers on real storage
//! failures, caller checks and refusals.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{REGION, emulator, workspace_root};
use lambda_http::{Body, Request};
use meeting_hooks::aws::{self, settings::DynamoSettingsStore};
use meeting_hooks::jaas::signature::signature_header;
use meeting_hooks::schema::{self, SETTINGS};
use meeting_hooks::settings::ports::SettingsStore;
use meeting_hooks::settings::{Fqn, Scope, Settings, SettingsConfig, SettingsService, http};
use serde_json::{Value, json};

const APP: &str = "vpaas-magic-cookie-0123456789abcdef";
const OTHER_APP: &str = "vpaas-magic-cookie-other";
const AUTH: &str = "Bearer settings-token";
const SECRET: &str = "whsec_settings_test_secret";
/// A fixed "now" (Unix ms): tests move the clock by passing later times.
const T0: i64 = 1_770_000_000_000;

type Service = SettingsService<DynamoSettingsStore>;

fn config(table: &str, extra: &[(&str, &str)]) -> SettingsConfig {
    let mut env: HashMap<String, String> = [
        ("SETTINGS_TABLE", table),
        ("ALLOWED_APP_IDS", &format!("{APP},{OTHER_APP}")),
        ("JAAS_AUTHORIZATION", AUTH),
        ("JAAS_WEBHOOK_SECRETS", SECRET),
        ("SIGNATURE_TOLERANCE_SECONDS", "300"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    SettingsConfig::from_env(&env).expect("test config")
}

fn store(table: &str) -> DynamoSettingsStore {
    DynamoSettingsStore::new(emulator().dynamodb(), table)
}

fn service(table: &str, extra: &[(&str, &str)]) -> Service {
    SettingsService::new(store(table), &config(table, extra))
}

fn request(method: &str, body: &str, headers: &[(&str, &str)]) -> Request {
    let mut b = ::http::Request::builder()
        .method(method)
        .uri("https://hooks.example/settings");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.to_owned())).expect("request")
}

fn ask(fqn: &str) -> Request {
    request(
        "POST",
        &json!({ "fqn": fqn }).to_string(),
        &[
            ("authorization", AUTH),
            ("content-type", "application/json"),
        ],
    )
}

async fn call(service: &Service, req: Request, now_ms: i64) -> (u16, Value) {
    let resp = http::handle_at(service, req, now_ms).await;
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_slice(resp.body().as_ref()).expect("JSON answer");
    (status, body)
}

async fn answer(service: &Service, fqn: &str, now_ms: i64) -> Value {
    let (status, body) = call(service, ask(fqn), now_ms).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn put(table: &str, scope: Scope, settings: Value) {
    let s = Settings::from_json(&settings).expect("valid settings");
    let store = store(table);
    let expected = store.get(&scope).await.expect("get").map(|x| x.version);
    store.put(&scope, &s, expected, T0).await.expect("put");
}

fn room(fqn: &str) -> Scope {
    Scope::Room(Fqn::parse(fqn).expect("fqn"))
}

fn app(id: &str) -> Scope {
    Scope::App(meeting_hooks::settings::AppId::parse(id).expect("app id"))
}

#[tokio::test]
async fn room_overrides_app_overrides_global_field_by_field() {
    let table = emulator().table(&SETTINGS).await;
    put(
        &table,
        app(APP),
        json!({"lobbyEnabled": true, "maxOccupants": 50, "lobbyType": "WAIT_FOR_MODERATOR"}),
    )
    .await;
    put(
        &table,
        room(&format!("{APP}/board")),
        json!({"passcode": "004711", "maxOccupants": 8, "participantsSoftLimit": 6}),
    )
    .await;
    put(&table, app(OTHER_APP), json!({"visitorsEnabled": true})).await;
    let svc = service(
        &table,
        &[(
            "SETTINGS_DEFAULT",
            r#"{"lobbyEnabled": false, "transcriberType": "GOOGLE", "hideDisplayName": "GUEST"}"#,
        )],
    );

    assert_eq!(
        answer(&svc, &format!("{APP}/board"), T0).await,
        json!({
            "lobbyEnabled": true,
            "maxOccupants": 8,
            "participantsSoftLimit": 6,
            "lobbyType": "WAIT_FOR_MODERATOR",
            "passcode": "004711",
            "transcriberType": "GOOGLE",
            "hideDisplayName": "GUEST"
        })
    );
    // A room without its own item gets the app defaults over the global default.
    assert_eq!(
        answer(&svc, &format!("{APP}/lobby"), T0).await,
        json!({
            "lobbyEnabled": true,
            "maxOccupants": 50,
            "lobbyType": "WAIT_FOR_MODERATOR",
            "transcriberType": "GOOGLE",
            "hideDisplayName": "GUEST"
        })
    );
    // Another app's defaults never leak into this one, and vice versa.
    assert_eq!(
        answer(&svc, &format!("{OTHER_APP}/board"), T0).await,
        json!({
            "lobbyEnabled": false,
            "visitorsEnabled": true,
            "transcriberType": "GOOGLE",
            "hideDisplayName": "GUEST"
        })
    );
}

#[tokio::test]
async fn fields_nobody_set_are_omitted() {
    let table = emulator().table(&SETTINGS).await;
    let svc = service(&table, &[]);
    assert_eq!(answer(&svc, &format!("{APP}/empty"), T0).await, json!({}));
}

#[tokio::test]
async fn soft_limit_inherited_above_the_room_capacity_is_lowered() {
    let table = emulator().table(&SETTINGS).await;
    put(&table, app(APP), json!({"participantsSoftLimit": 100})).await;
    put(
        &table,
        room(&format!("{APP}/small")),
        json!({"maxOccupants": 4}),
    )
    .await;
    let svc = service(&table, &[]);
    assert_eq!(
        answer(&svc, &format!("{APP}/small"), T0).await,
        json!({"participantsSoftLimit": 4, "maxOccupants": 4})
    );
}

/// The store is the authority: with the default configuration a room locked between two
/// requests of a warm function is locked on the very next one (it was `{}` for up to the
/// cache TTL before).
#[tokio::test]
async fn a_change_applies_to_the_next_request_by_default() {
    let table = emulator().table(&SETTINGS).await;
    let fqn = format!("{APP}/locked-now");
    let svc = service(&table, &[]);
    assert_eq!(answer(&svc, &fqn, T0).await, json!({}));
    put(
        &table,
        room(&fqn),
        json!({"passcode": "2468", "lobbyEnabled": true}),
    )
    .await;
    assert_eq!(
        answer(&svc, &fqn, T0 + 1).await,
        json!({"passcode": "2468", "lobbyEnabled": true}),
        "the next request (1 ms later, same warm service) sees the change"
    );
}

#[tokio::test]
async fn cached_answer_is_served_within_ttl_and_refreshed_after() {
    let table = emulator().table(&SETTINGS).await;
    let fqn = format!("{APP}/cached");
    put(
        &table,
        room(&fqn),
        json!({"passcode": "1234", "lobbyEnabled": true}),
    )
    .await;
    let svc = service(&table, &[("SETTINGS_CACHE_TTL_SECONDS", "30")]);
    let first = answer(&svc, &fqn, T0).await;
    assert_eq!(first, json!({"passcode": "1234", "lobbyEnabled": true}));

    // Gone from storage: within the TTL the cached answer still comes, without a read.
    assert!(store(&table).delete(&room(&fqn)).await.expect("delete"));
    assert_eq!(answer(&svc, &fqn, T0 + 29_999).await, first);

    // After the TTL the store is read again and the deletion shows.
    assert_eq!(answer(&svc, &fqn, T0 + 30_000).await, json!({}));
}

#[tokio::test]
async fn storage_failure_answers_the_stale_cached_settings() {
    let table = emulator().table(&SETTINGS).await;
    let fqn = format!("{APP}/stale");
    put(
        &table,
        room(&fqn),
        json!({"passcode": "8642", "lobbyEnabled": true}),
    )
    .await;
    let svc = service(&table, &[("SETTINGS_CACHE_TTL_SECONDS", "1")]);
    let first = answer(&svc, &fqn, T0).await;

    // A real outage: the table disappears, every read now fails (ResourceNotFoundException).
    emulator()
        .dynamodb()
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("delete table");
    assert!(
        store(&table)
            .load(&Fqn::parse(&fqn).unwrap())
            .await
            .is_err()
    );

    // Long past the TTL, the room keeps its passcode and lobby.
    assert_eq!(answer(&svc, &fqn, T0 + 3_600_000).await, first);
    // A room never seen before gets the fallback, not an error.
    assert_eq!(
        answer(&svc, &format!("{APP}/unseen"), T0 + 3_600_000).await,
        json!({"lobbyEnabled": true})
    );
}

#[tokio::test]
async fn missing_table_with_empty_cache_answers_the_configured_fallback() {
    let svc = service(
        "settings-table-that-does-not-exist",
        &[(
            "SETTINGS_FALLBACK",
            r#"{"lobbyEnabled": true, "lobbyType": "WAIT_FOR_MODERATOR"}"#,
        )],
    );
    assert_eq!(
        answer(&svc, &format!("{APP}/room"), T0).await,
        json!({"lobbyEnabled": true, "lobbyType": "WAIT_FOR_MODERATOR"})
    );
}

#[tokio::test]
async fn closed_port_answers_the_default_fallback() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    // The listener is dropped: connections to the port are refused.
    let sdk = aws::emulator_config(&format!("http://127.0.0.1:{port}"), REGION);
    let table = "settings";
    let svc = SettingsService::new(
        DynamoSettingsStore::new(aws::dynamodb(&sdk), table),
        &config(table, &[]),
    );
    assert_eq!(
        answer(&svc, &format!("{APP}/room"), T0).await,
        json!({"lobbyEnabled": true})
    );
}

#[tokio::test]
async fn hung_store_falls_back_within_the_store_timeout() {
    // Accepts connections (kernel backlog) but never answers: the SDK call hangs.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let addr = listener.local_addr().expect("addr");
    let sdk = aws::emulator_config(&format!("http://{addr}"), REGION);
    let table = "settings";
    let svc = SettingsService::new(
        DynamoSettingsStore::new(aws::dynamodb(&sdk), table),
        &config(table, &[("SETTINGS_STORE_TIMEOUT_MS", "300")]),
    );
    let started = Instant::now();
    let body = answer(&svc, &format!("{APP}/room"), T0).await;
    let took = started.elapsed();
    assert_eq!(body, json!({"lobbyEnabled": true}));
    assert!(
        // Before JaaS gives up (about 3 s) and opens the room.
        took >= Duration::from_millis(300) && took < Duration::from_millis(2_900),
        "answered after {took:?}"
    );
    drop(listener);
}

#[tokio::test]
async fn hand_edited_invalid_item_is_treated_as_an_outage_not_as_no_settings() {
    let table = emulator().table(&SETTINGS).await;
    let fqn = format!("{APP}/edited");
    emulator()
        .dynamodb()
        .put_item()
        .table_name(&table)
        .item(
            schema::settings_attr::ID,
            AttributeValue::S(format!("room#{fqn}")),
        )
        .item(
            schema::settings_attr::SETTINGS,
            AttributeValue::S(r#"{"passcode": "12ab"}"#.into()),
        )
        .send()
        .await
        .expect("raw put");
    let svc = service(&table, &[]);
    assert_eq!(answer(&svc, &fqn, T0).await, json!({"lobbyEnabled": true}));
}

#[tokio::test]
async fn caller_checks() {
    let table = emulator().table(&SETTINGS).await;
    let svc = service(&table, &[]);
    let body = json!({ "fqn": format!("{APP}/room") }).to_string();
    let now_s = T0 / 1000;
    let good_sig = signature_header(SECRET, now_s, body.as_bytes());
    type Headers = Vec<(&'static str, String)>;
    let cases: Vec<(Headers, u16, &str)> = vec![
        (vec![], 401, "authorization_missing"),
        (
            vec![("authorization", "Bearer wrong".into())],
            401,
            "authorization_mismatch",
        ),
        (
            vec![
                ("authorization", AUTH.into()),
                (
                    "x-jaas-signature",
                    signature_header("whsec_other", now_s, body.as_bytes()),
                ),
            ],
            401,
            "signature_mismatch",
        ),
        (
            vec![
                ("authorization", AUTH.into()),
                (
                    "x-jaas-signature",
                    signature_header(SECRET, now_s - 301, body.as_bytes()),
                ),
            ],
            401,
            "signature_stale",
        ),
        (
            vec![
                ("authorization", AUTH.into()),
                ("x-jaas-signature", "garbage".into()),
            ],
            401,
            "signature_malformed",
        ),
        // Signature verifies but the static header is still required.
        (
            vec![("x-jaas-signature", good_sig.clone())],
            401,
            "authorization_missing",
        ),
        (
            vec![
                ("authorization", AUTH.into()),
                ("x-jaas-signature", good_sig.clone()),
            ],
            200,
            "",
        ),
        // Unsigned requests are fine when the Authorization header matches.
        (vec![("authorization", AUTH.into())], 200, ""),
    ];
    for (headers, status, code) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, answer) = call(&svc, request("POST", &body, &h), T0).await;
        assert_eq!(got, status, "{headers:?} -> {answer}");
        if status != 200 {
            assert_eq!(answer["error"], code, "{answer}");
            assert!(answer["reason"].as_str().is_some_and(|r| !r.is_empty()));
        }
    }
}

#[tokio::test]
async fn secret_only_deployment_requires_a_valid_signature() {
    // Without JAAS_AUTHORIZATION the signature is the only check, so it is mandatory.
    let table = emulator().table(&SETTINGS).await;
    let env: HashMap<String, String> = [
        ("SETTINGS_TABLE", table.as_str()),
        ("ALLOWED_APP_IDS", APP),
        ("JAAS_WEBHOOK_SECRETS", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let svc = SettingsService::new(store(&table), &SettingsConfig::from_env(&env).unwrap());
    let body = json!({ "fqn": format!("{APP}/room") }).to_string();
    let (status, answer) = call(&svc, request("POST", &body, &[]), T0).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("signature_missing"))
    );
    let bad = signature_header("whsec_other", T0 / 1000, body.as_bytes());
    let (status, answer) = call(
        &svc,
        request("POST", &body, &[("x-jaas-signature", &bad)]),
        T0,
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("signature_mismatch"))
    );
    let good = signature_header(SECRET, T0 / 1000, body.as_bytes());
    let (status, _) = call(
        &svc,
        request("POST", &body, &[("x-jaas-signature", &good)]),
        T0,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn explicitly_insecure_deployment_answers_anyone() {
    let table = emulator().table(&SETTINGS).await;
    let env: HashMap<String, String> = [
        ("SETTINGS_TABLE", table.as_str()),
        ("ALLOWED_APP_IDS", APP),
        ("ALLOW_INSECURE_NO_AUTH", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let svc = SettingsService::new(store(&table), &SettingsConfig::from_env(&env).unwrap());
    let body = json!({ "fqn": format!("{APP}/room") }).to_string();
    let (status, _) = call(&svc, request("POST", &body, &[]), T0).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_app_is_forbidden() {
    let table = emulator().table(&SETTINGS).await;
    // Settings stored for a foreign app must not be handed out either.
    put(
        &table,
        app("vpaas-magic-cookie-foreign"),
        json!({"passcode": "1"}),
    )
    .await;
    let svc = service(&table, &[]);
    let (status, body) = call(&svc, ask("vpaas-magic-cookie-foreign/room"), T0).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "unknown_app");
}

#[tokio::test]
async fn malformed_bodies_and_methods_are_refused_with_a_reason() {
    let table = emulator().table(&SETTINGS).await;
    let svc = service(&table, &[]);
    let auth = [("authorization", AUTH)];
    for (body, reason) in [
        ("", "body is not JSON"),
        ("fqn=a/b", "body is not JSON"),
        ("[]", "body is not a JSON object"),
        ("{}", "fqn is missing"),
        (r#"{"fqn": 7}"#, "fqn is not a string"),
        (r#"{"fqn": "no-room"}"#, "fqn must look like <appId>/<room>"),
        (
            r#"{"fqn": "bad app/room"}"#,
            "appId may hold only letters, digits, '-', '_' and '.'",
        ),
    ] {
        let (status, answer) = call(&svc, request("POST", body, &auth), T0).await;
        assert_eq!(status, 400, "{body:?}");
        assert_eq!(answer, json!({"error": "malformed_body", "reason": reason}));
    }
    let resp = http::handle_at(&svc, request("GET", "", &auth), T0).await;
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn sample_events_are_answered() {
    // The files `sam local invoke -e` and `cargo lambda invoke --data-file` use (events/,
    // signed with the documented local-only credentials at t=1700000000).
    let table = emulator().table(&SETTINGS).await;
    put(
        &table,
        room("AppID/roomName"),
        json!({"lobbyEnabled": true, "passcode": "2468"}),
    )
    .await;
    let svc = service(
        &table,
        &[
            ("ALLOWED_APP_IDS", "AppID"),
            ("JAAS_AUTHORIZATION", "Bearer local_development_only"),
            ("JAAS_WEBHOOK_SECRETS", "whsec_local_development_only"),
            ("SIGNATURE_TOLERANCE_SECONDS", "1000000000"),
        ],
    );
    for file in [
        "events/settings/request.json",
        "events/settings/request-signed.json",
    ] {
        let raw = std::fs::read_to_string(workspace_root().join(file)).expect("event file");
        let request = lambda_http::request::from_str(&raw).expect("API Gateway HTTP API event");
        let (status, body) = call(&svc, request, T0).await;
        assert_eq!(status, 200, "{file}: {body}");
        assert_eq!(
            body,
            json!({"lobbyEnabled": true, "passcode": "2468"}),
            "{file}"
        );
    }
}

#[tokio::test]
async fn writes_are_optimistically_locked() {
    let table = emulator().table(&SETTINGS).await;
    let store = store(&table);
    let scope = room(&format!("{APP}/locked"));
    let one = Settings::from_json(&json!({"lobbyEnabled": true})).unwrap();
    let two = Settings::from_json(&json!({"lobbyEnabled": false})).unwrap();
    assert_eq!(store.put(&scope, &one, None, T0).await.unwrap(), 1);
    // Creating again, or writing over a version that is no longer current, is refused.
    for expected in [None, Some(0), Some(2)] {
        let err = store.put(&scope, &two, expected, T0).await.unwrap_err();
        assert!(
            matches!(
                err,
                meeting_hooks::settings::ports::SettingsStoreError::Conflict { .. }
            ),
            "{expected:?}: {err}"
        );
    }
    assert_eq!(store.put(&scope, &two, Some(1), T0 + 5).await.unwrap(), 2);
    let stored = store.get(&scope).await.unwrap().expect("stored");
    assert_eq!((stored.version, stored.updated_at_ms), (2, T0 + 5));
    assert_eq!(stored.settings, two);
    // A version for an item that is gone is a conflict too, not a silent re-create.
    assert!(store.delete(&scope).await.unwrap());
    assert!(!store.delete(&scope).await.unwrap());
    assert!(store.put(&scope, &one, Some(2), T0).await.is_err());
    assert!(store.get(&scope).await.unwrap().is_none());
}
