//! Ingest benchmark: `./dev bench ingest` (`cargo bench -p integration-tests --bench ingest`).
//!
//! For every provider served (JaaS, Daily, VideoSDK, self-hosted Jitsi), over every documented
//! example:
//!
//! 1. CPU cost per event of the pure path through the provider seam (verify the signature
//!    over the raw bytes, interpret the body into facts and file plans): median of several
//!    timed rounds, in nanoseconds per event, beside its floor measured in the same run: the
//!    provider's signature primitive over the body (one HMAC-SHA256; for VideoSDK one
//!    RSA-2048 verification; for Jitsi, which signs nothing, one constant-time token
//!    comparison) plus one `serde_json::from_slice` of it, the least any verifying receiver
//!    does.
//! 2. AWS calls per delivery, counted by an SDK interceptor on the real clients against
//!    moto_server: a first delivery, a repeat, and the queue-failure retry path, beside the
//!    floor (one conditional `PutItem` per event, plus one `SendMessage` when it carries files).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, Method};
use integration_tests::emulator;
use meeting_hooks::aws::{blobs::S3BlobStore, events::DynamoEventStore, queue::SqsJobQueue};
use meeting_hooks::ingest::{IngestConfig, IngestService};
use meeting_hooks::jaas::catalogue;
use meeting_hooks::jaas::signature::signature_header;
use meeting_hooks::jobs::LinkPolicy;
use meeting_hooks::providers::{Interpretation, Registry, daily, jitsi, videosdk};
use meeting_hooks::schema;
use sha2::Sha256;

const JAAS_SECRET: &str = "whsec_benchmark";
/// base64 of "daily benchmark secret".
const DAILY_SECRET: &str = "ZGFpbHkgYmVuY2htYXJrIHNlY3JldA==";
const T: i64 = 1_700_000_000;

/// One signed delivery: (label, body, headers).
type Delivery = (String, String, HeaderMap);

fn header_map(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(*name, HeaderValue::from_str(value).expect("header"));
    }
    h
}

/// Every documented example of `provider`, signed at `t`. `unique` makes each event id
/// unseen (so each measures a first delivery).
fn deliveries(provider: &str, t: i64, unique: Option<&str>) -> Vec<Delivery> {
    match provider {
        "jaas" => catalogue::examples()
            .into_iter()
            .enumerate()
            .map(|(i, ex)| {
                let body = match unique {
                    None => ex.body,
                    Some(tag) => {
                        let key = serde_json::from_str::<serde_json::Value>(&ex.body)
                            .ok()
                            .and_then(|v| v["idempotencyKey"].as_str().map(str::to_owned));
                        match key {
                            Some(k) => ex.body.replacen(&k, &format!("{k}-{tag}-{i}"), 1),
                            None => ex.body.replacen('{', &format!("{{\"{tag}\":{i},"), 1),
                        }
                    }
                };
                let sig = signature_header(JAAS_SECRET, t, body.as_bytes());
                (ex.section, body, header_map(&[("x-jaas-signature", sig)]))
            })
            .collect(),
        "daily" => daily::catalogue::examples()
            .into_iter()
            .enumerate()
            .map(|(i, (ty, body))| {
                let body = match unique {
                    None => body,
                    Some(tag) => daily::catalogue::body(
                        ty,
                        &format!("{tag}-{i}"),
                        daily::catalogue::START + 600.0,
                    ),
                };
                let ts = t.to_string();
                let sig = daily::sign(DAILY_SECRET, &ts, body.as_bytes());
                let h = header_map(&[
                    (daily::SIGNATURE_HEADER, sig),
                    (daily::TIMESTAMP_HEADER, ts),
                ]);
                (ty.to_owned(), body, h)
            })
            .collect(),
        "videosdk" => integration_tests::sample_events::videosdk_bodies()
            .into_iter()
            .enumerate()
            .map(|(i, (name, body))| {
                let body = match unique {
                    None => body,
                    Some(tag) => {
                        body.replace(videosdk::catalogue::SESSION_ID, &format!("{tag}-{i}"))
                    }
                };
                let sig = videosdk::keys::sign(VIDEOSDK_KEY, body.as_bytes()).expect("sign");
                (name, body, header_map(&[(videosdk::SIGNATURE_HEADER, sig)]))
            })
            .collect(),
        "jitsi" => jitsi::catalogue::examples()
            .into_iter()
            .enumerate()
            .map(|(i, (name, body))| {
                let body = match unique {
                    None => body,
                    Some(tag) => body.replace(
                        jitsi::catalogue::ROOM_JID,
                        &format!("{tag}-{i}@conference.meet.example.com"),
                    ),
                };
                let h = header_map(&[("authorization", format!("Bearer {JITSI_TOKEN}"))]);
                (name.to_owned(), body, h)
            })
            .collect(),
        other => panic!("no deliveries for {other}"),
    }
}

fn env(extra: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let public = videosdk::keys::public_pem_of(VIDEOSDK_KEY).expect("public half");
    [
        ("JAAS_WEBHOOK_SECRETS", JAAS_SECRET),
        ("DAILY_WEBHOOK_SECRETS", DAILY_SECRET),
        ("VIDEOSDK_PUBLIC_KEYS", public.as_str()),
        ("JITSI_TOKENS", JITSI_TOKEN),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

const PROVIDERS: [&str; 4] = ["jaas", "daily", "videosdk", "jitsi"];
const JITSI_TOKEN: &str = "jitsi-benchmark-token-0123456789";

/// The sample key (`shared/testdata/videosdk-sample-key.pem`).
const VIDEOSDK_KEY: &str = integration_tests::sample_events::VIDEOSDK_SAMPLE_KEY;

/// The least a verifying receiver of `provider` does with `body`: its signature primitive
/// (one HMAC-SHA256, or one RSA-2048 verification) and one JSON parse.
fn floor_work(provider: &str, body: &[u8], headers: &HeaderMap, rsa: &videosdk::keys::PublicKey) {
    if provider == videosdk::NAME {
        let sig = headers[videosdk::SIGNATURE_HEADER].as_bytes();
        let sig = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sig)
            .expect("base64");
        assert!(rsa.verifies(black_box(body), &sig));
    } else if provider == jitsi::NAME {
        let got = headers["authorization"].as_bytes();
        let want = format!("Bearer {JITSI_TOKEN}");
        assert!(bool::from(subtle::ConstantTimeEq::ct_eq(
            black_box(got),
            want.as_bytes()
        )));
    } else {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(b"a 32-byte benchmark key, exactly").expect("key");
        mac.update(black_box(body));
        black_box(mac.finalize());
    }
    // The documented VideoSDK sample has trailing commas: the floor parses what parses.
    black_box(serde_json::from_slice::<serde_json::Value>(body).ok());
}

fn median_ns(iter: u32, rounds: usize, mut f: impl FnMut()) -> f64 {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iter {
            f();
        }
        times.push(start.elapsed().as_nanos() as f64 / f64::from(iter));
    }
    times.sort_by(f64::total_cmp);
    times[rounds / 2]
}

fn cpu_cost() {
    let registry = Registry::from_env(&env(&[])).expect("providers");
    let rsa = videosdk::keys::public_keys_in(
        &videosdk::keys::public_pem_of(VIDEOSDK_KEY).expect("public half"),
    )
    .expect("key")
    .remove(0);
    const ITER: u32 = 2_000;
    const ROUNDS: usize = 9;
    println!(
        "== CPU per event: verify + interpret through the seam, beside the floor (the signature primitive + JSON parse), median of {ROUNDS} rounds x {ITER} =="
    );
    for name in PROVIDERS {
        let provider = registry.get(name).expect("served");
        let (mut ours, mut floor) = (Vec::new(), Vec::new());
        for (label, body, headers) in deliveries(name, T, None) {
            let bytes = body.as_bytes();
            let t_ours = median_ns(ITER, ROUNDS, || {
                provider
                    .verify(black_box(&headers), black_box(bytes), T)
                    .expect("verifies");
                let i = provider
                    .interpret(bytes, 0, LinkPolicy::HttpsOnly)
                    .expect("an event");
                black_box(matches!(i, Interpretation::Event(_)));
            });
            let t_floor = median_ns(ITER, ROUNDS, || floor_work(name, bytes, &headers, &rsa));
            println!(
                "{name:<8} {label:<34} {:>6} bytes {t_ours:>9.0} ns/event  floor {t_floor:>7.0} ns  ({:.1}x)",
                body.len(),
                t_ours / t_floor
            );
            ours.push(t_ours);
            floor.push(t_floor);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (o, f) = (mean(&ours), mean(&floor));
        println!(
            "{name} mean over {} examples: {o:.0} ns/event ({:.0} events/s on one core), floor {f:.0} ns ({:.1}x)",
            ours.len(),
            1e9 / o,
            o / f
        );
        integration_tests::bench::figure(&format!("ingest.cpu_ns_per_event.{name}"), o);
        println!();
    }
}

#[derive(Debug, Default, Clone)]
struct Counter(Arc<Mutex<BTreeMap<String, u32>>>);

impl Counter {
    fn take(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "call-counter"
    }

    fn read_before_serialization(
        &self,
        _ctx: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            *self
                .0
                .lock()
                .expect("lock")
                .entry(format!("{}.{}", m.service(), m.name()))
                .or_default() += 1;
        }
        Ok(())
    }
}

fn fmt(calls: &BTreeMap<String, u32>) -> String {
    if calls.is_empty() {
        return "none".into();
    }
    calls
        .iter()
        .map(|(k, v)| format!("{v}x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn aws_calls() {
    let emu = emulator();
    let counter = Counter::default();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&emu.sdk)
            .interceptor(counter.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&emu.sdk)
            .interceptor(counter.clone())
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&emu.sdk)
            .force_path_style(true)
            .interceptor(counter.clone())
            .build(),
    );
    let table = emu.table(&schema::EVENTS).await;
    let queue = emu.queue().await;
    let bucket = emu.bucket().await;
    let config = IngestConfig::from_env(&env(&[
        ("EVENTS_TABLE", &table),
        ("JOBS_QUEUE_URL", &queue),
        ("PAYLOAD_BUCKET", &bucket),
    ]))
    .expect("config");
    let svc = IngestService::new(
        DynamoEventStore::new(ddb.clone(), &table),
        SqsJobQueue::new(sqs, &queue),
        S3BlobStore::new(s3, &bucket),
        &config,
    );
    let broken_sdk = meeting_hooks::aws::emulator_config("http://127.0.0.1:9", "us-east-1");
    let broken = IngestService::new(
        DynamoEventStore::new(ddb, &table),
        SqsJobQueue::new(
            aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(&broken_sdk)
                    .interceptor(counter.clone())
                    .build(),
            ),
            "http://127.0.0.1:9/000000000000/none",
        ),
        S3BlobStore::new(meeting_hooks::aws::s3(&broken_sdk), &bucket),
        &config,
    );
    let registry = Registry::from_env(&env(&[])).expect("providers");
    let now = meeting_hooks::respond::now_ms();
    println!(
        "== AWS calls per delivery (counted by an SDK interceptor, against moto_server), floor: 1 PutItem, +1 SendMessage with files =="
    );
    for name in PROVIDERS {
        let provider = registry.get(name).expect("served");
        let (mut total, mut floor_total, mut n) = (0u32, 0u32, 0u32);
        let mut rows: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (label, body, h) in deliveries(name, now / 1000, Some("bench")) {
            let files = match provider.interpret(body.as_bytes(), now, LinkPolicy::HttpsOnly) {
                Ok(Interpretation::Event(e)) => e.files.as_ref().map_or(0, Vec::len),
                _ => 0,
            };
            counter.take();
            let first = svc
                .handle(name, &Method::POST, &h, body.as_bytes(), now)
                .await;
            let first_calls = counter.take();
            let dup = svc
                .handle(name, &Method::POST, &h, body.as_bytes(), now)
                .await;
            let dup_calls = counter.take();
            total += first_calls.values().sum::<u32>();
            floor_total += 1 + u32::from(files > 0);
            n += 1;
            let label = if files > 0 {
                format!("{label} ({files} file(s))")
            } else {
                label
            };
            rows.insert(
                label,
                (
                    format!("{first:?}: {}", fmt(&first_calls)),
                    format!("{dup:?}: {}", fmt(&dup_calls)),
                ),
            );
        }
        for (label, (first, dup)) in &rows {
            println!("{name:<8} {label:<45} first: {first:<60} repeat: {dup}");
        }
        println!(
            "{name} first deliveries: {:.2} AWS calls per delivery, floor {:.2} ({n} examples)",
            f64::from(total) / f64::from(n),
            f64::from(floor_total) / f64::from(n)
        );
        integration_tests::bench::figure(
            &format!("ingest.aws_calls_per_delivery.{name}"),
            f64::from(total) / f64::from(n),
        );
        println!();
    }
    // What a stored event costs DynamoDB: its size, and the write units of the table and of
    // every index it is in (KEYS_ONLY/INCLUDE indexes are counted at the item's size too: an
    // upper bound).
    let items = emu.scan(&table).await;
    let mut units = 0.0;
    let mut bytes = 0usize;
    for item in &items {
        let size = integration_tests::bench::item_bytes(item);
        bytes += size;
        let indexes = schema::EVENTS
            .indexes
            .iter()
            .filter(|ix| item.contains_key(ix.hash_key))
            .count();
        units += (size.div_ceil(1024) * (1 + indexes)) as f64;
    }
    let n = items.len().max(1) as f64;
    println!(
        "stored events: {} items, {:.0} bytes and {:.2} write units (table + indexes) per item",
        items.len(),
        bytes as f64 / n,
        units / n
    );
    integration_tests::bench::figure("ingest.item_bytes", bytes as f64 / n);
    integration_tests::bench::figure("ingest.write_units_per_item", units / n);
    // Queue failure, then the retry that recovers the job (the JaaS recording).
    let body = catalogue::example("RECORDING_UPLOADED")
        .body
        .replace("c2b42ad3d-12a6-5908-cf38-f21ae2451fc0", "bench-recovery");
    let h = header_map(&[(
        "x-jaas-signature",
        signature_header(JAAS_SECRET, now / 1000, body.as_bytes()),
    )]);
    counter.take();
    let failed = broken
        .handle("jaas", &Method::POST, &h, body.as_bytes(), now)
        .await;
    let failed_calls = fmt(&counter.take());
    let retry = svc
        .handle("jaas", &Method::POST, &h, body.as_bytes(), now)
        .await;
    let retry_calls = fmt(&counter.take());
    println!("RECORDING_UPLOADED, SQS down:   {failed:?}: {failed_calls}");
    println!("RECORDING_UPLOADED, retry:      {retry:?}: {retry_calls}");
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is only a build check.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "benchmark skipped: run it with `cargo bench -p integration-tests --bench ingest`"
        );
        return;
    }
    cpu_cost();
    aws_calls().await;
}
