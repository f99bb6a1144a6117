//! Ingest benchmark: `cargo bench -p integration-tests --bench ingest`.
//!
//! 1. CPU cost per event of the pure path (verify signature + parse + plan the copy job) over
//!    every catalogue example: median of several timed rounds, in nanoseconds per event.
//! 2. AWS calls per event kind, counted by an SDK interceptor on the real clients against
//!    moto_server: first delivery, a duplicate, and the queue-failure retry path.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use http::{HeaderMap, HeaderValue, Method};
use integration_tests::emulator;
use meeting_hooks::aws::{blobs::S3BlobStore, events::DynamoEventStore, queue::SqsJobQueue};
use meeting_hooks::ingest::{IngestConfig, IngestService};
use meeting_hooks::jaas::plan_job;
use meeting_hooks::jaas::signature::signature_header;
use meeting_hooks::jaas::{JaasEvent, JaasVerifier, catalogue};
use meeting_hooks::schema;
use secrecy::SecretString;

const SECRET: &str = "whsec_benchmark";
const T: i64 = 1_700_000_000;

fn cpu_cost() {
    let verifier = JaasVerifier::new(
        vec![SecretString::from(SECRET.to_owned())],
        std::time::Duration::from_secs(300),
        None,
    );
    let cases: Vec<_> = catalogue::examples()
        .into_iter()
        .map(|ex| {
            let mut h = HeaderMap::new();
            let sig = signature_header(SECRET, T, ex.body.as_bytes());
            h.insert(
                "x-jaas-signature",
                HeaderValue::from_str(&sig).expect("header"),
            );
            (ex.section, ex.body, h)
        })
        .collect();
    const ITER: u32 = 2_000;
    const ROUNDS: usize = 9;
    println!("== CPU: verify + parse + plan per event (median of {ROUNDS} rounds x {ITER}) ==");
    let mut all = Vec::new();
    for (section, body, headers) in &cases {
        let mut rounds = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..ITER {
                let v = verifier
                    .verify(black_box(headers), black_box(body.as_bytes()), T)
                    .expect("verifies");
                let ev = JaasEvent::parse(v.bytes()).expect("parses");
                let job = plan_job(&ev, "key", 0).expect("plans");
                black_box(job);
            }
            rounds.push(start.elapsed().as_nanos() as f64 / f64::from(ITER));
        }
        rounds.sort_by(f64::total_cmp);
        let median = rounds[ROUNDS / 2];
        all.push(median);
        println!(
            "{section:<30} {:>6} bytes {median:>9.0} ns/event",
            body.len()
        );
    }
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    println!(
        "catalogue mean: {mean:.0} ns/event ({:.0} events/s on one core)\n",
        1e9 / mean
    );
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
    let env: std::collections::HashMap<String, String> = [
        ("EVENTS_TABLE", table.as_str()),
        ("JOBS_QUEUE_URL", queue.as_str()),
        ("PAYLOAD_BUCKET", bucket.as_str()),
        ("JAAS_WEBHOOK_SECRETS", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = IngestConfig::from_env(&env).expect("config");
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
    let now = meeting_hooks::respond::now_ms();
    let deliver = |svc_body: &str| {
        let mut h = HeaderMap::new();
        let sig = signature_header(SECRET, now / 1000, svc_body.as_bytes());
        h.insert(
            "x-jaas-signature",
            HeaderValue::from_str(&sig).expect("header"),
        );
        h
    };
    println!("== AWS calls per delivery (counted by an SDK interceptor, against moto_server) ==");
    let mut rows: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (i, ex) in catalogue::examples().into_iter().enumerate() {
        // A unique key per example so every row measures a first delivery.
        let body = ex.body.replacen(
            "\"idempotencyKey\"",
            &format!("\"bench\":{i},\"idempotencyKey\""),
            1,
        );
        let body = match JaasEvent::parse(body.as_bytes())
            .ok()
            .and_then(|e| e.idempotency_key)
        {
            Some(k) => body.replacen(&k, &format!("{k}-bench-{i}"), 1),
            None => body,
        };
        let h = deliver(&body);
        counter.take();
        let first = svc
            .handle("jaas", &Method::POST, &h, body.as_bytes(), now)
            .await;
        let first_calls = fmt(&counter.take());
        let dup = svc
            .handle("jaas", &Method::POST, &h, body.as_bytes(), now)
            .await;
        let dup_calls = fmt(&counter.take());
        let kind = match plan_job(&JaasEvent::parse(body.as_bytes()).expect("parses"), "k", 0) {
            Ok(Some(j)) => format!("{} ({})", ex.section, j.kind.as_str()),
            _ => ex.section.clone(),
        };
        rows.insert(
            kind,
            (
                format!("{first:?}: {first_calls}"),
                format!("{dup:?}: {dup_calls}"),
            ),
        );
    }
    for (kind, (first, dup)) in &rows {
        println!("{kind:<45} first: {first:<60} repeat: {dup}");
    }
    // Queue failure, then the retry that recovers the job.
    let body = catalogue::example("RECORDING_UPLOADED")
        .body
        .replace("c2b42ad3d-12a6-5908-cf38-f21ae2451fc0", "bench-recovery");
    let h = deliver(&body);
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
