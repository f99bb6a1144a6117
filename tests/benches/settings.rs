//! Handler time of settings-provisioning, measured through the real lambda_http handler with
//! the real DynamoDB adapter against moto_server on loopback:
//!
//! - **cache hit**: the same room asked again within the TTL (no storage call);
//! - **cache miss**: TTL 0, so every request makes its one `BatchGetItem` to the emulator.
//!
//! Each request carries the static Authorization header and a valid `X-Jaas-Signature`, so
//! both caller checks are included. Requests are built before the clock starts; the time is
//! that of `http::handle_at` (caller check, parse, cache or storage, resolution, JSON answer).
//! Counts: `BENCH_HITS` (default 10000) and `BENCH_MISSES` (default 1000).
//!
//! Run: `cargo bench -p integration-tests --bench settings`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use integration_tests::emulator;
use lambda_http::{Body, Request};
use meeting_hooks::aws::settings::DynamoSettingsStore;
use meeting_hooks::jaas::signature::signature_header;
use meeting_hooks::schema::SETTINGS;
use meeting_hooks::settings::ports::SettingsStore;
use meeting_hooks::settings::{AppId, Fqn, Scope, Settings, SettingsConfig, SettingsService, http};
use serde_json::json;

const APP: &str = "vpaas-magic-cookie-0123456789abcdef0123456789abcdef";
const AUTH: &str = "Bearer bench-token";
const SECRET: &str = "whsec_bench_secret";

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn service(table: &str, ttl_secs: &str) -> SettingsService<DynamoSettingsStore> {
    let env: HashMap<String, String> = [
        ("SETTINGS_TABLE", table),
        ("ALLOWED_APP_IDS", APP),
        ("JAAS_AUTHORIZATION", AUTH),
        ("JAAS_WEBHOOK_SECRETS", SECRET),
        ("SETTINGS_CACHE_TTL_SECONDS", ttl_secs),
        ("SETTINGS_DEFAULT", r#"{"lobbyEnabled": true}"#),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = SettingsConfig::from_env(&env).expect("bench config");
    SettingsService::new(
        DynamoSettingsStore::new(emulator().dynamodb(), table),
        &config,
    )
}

fn request(fqn: &str, now_s: i64) -> Request {
    let body = json!({ "fqn": fqn }).to_string();
    ::http::Request::builder()
        .method("POST")
        .uri("https://hooks.example/settings")
        .header("content-type", "application/json")
        .header("authorization", AUTH)
        .header(
            "x-jaas-signature",
            signature_header(SECRET, now_s, body.as_bytes()),
        )
        .body(Body::from(body))
        .expect("request")
}

async fn measure(
    service: &SettingsService<DynamoSettingsStore>,
    fqn: &str,
    n: usize,
) -> Vec<Duration> {
    let now_ms = meeting_hooks::respond::now_ms();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let req = request(fqn, now_ms / 1000);
        let started = Instant::now();
        let resp = http::handle_at(service, req, now_ms).await;
        times.push(started.elapsed());
        assert_eq!(resp.status(), 200);
    }
    times
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort_unstable();
    let pct = |p: f64| {
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1e6
    };
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / times.len() as f64;
    println!(
        "{label:<11} n={:<6} p50={:>9.1} us  p99={:>9.1} us  max={:>9.1} us  mean={:>9.1} us",
        times.len(),
        pct(0.50),
        pct(0.99),
        pct(1.0),
        mean
    );
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` this is only a build check.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "benchmark skipped: run it with `cargo bench -p integration-tests --bench settings`"
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let emu = emulator();
        let table = emu.table(&SETTINGS).await;
        let fqn = format!("{APP}/weekly-all-hands");
        let store = DynamoSettingsStore::new(emu.dynamodb(), &table);
        let app =
            Settings::from_json(&json!({"maxOccupants": 200, "lobbyType": "WAIT_FOR_MODERATOR"}))
                .expect("app settings");
        let room = Settings::from_json(&json!({"passcode": "4711", "participantsSoftLimit": 150}))
            .expect("room settings");
        store
            .put(&Scope::App(AppId::parse(APP).expect("app")), &app, None, 0)
            .await
            .expect("seed app");
        store
            .put(&Scope::Room(Fqn::parse(&fqn).expect("fqn")), &room, None, 0)
            .await
            .expect("seed room");

        let hits = count("BENCH_HITS", 10_000);
        let misses = count("BENCH_MISSES", 1_000);
        println!(
            "settings-provisioning handler time against moto_server at {}",
            emu.endpoint
        );

        let cached = service(&table, "300");
        measure(&cached, &fqn, 50).await; // warm-up: first read fills the cache
        report("cache hit", measure(&cached, &fqn, hits).await);

        let uncached = service(&table, "0");
        measure(&uncached, &fqn, 50).await; // warm-up: connection pool
        report("cache miss", measure(&uncached, &fqn, misses).await);
    });
}
