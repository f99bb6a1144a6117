//! The fault matrix: the real handlers, built by the production wiring
//! (`meeting_hooks::aws::wiring`), against the emulator through the fault-injecting HTTP client
//! of `integration_tests::faults` (and, for the origin, the local test origin's fault modes).
//!
//! Every row asserts what the product promises: no event lost, exactly one job, no file lost or
//! corrupted, no duplicate object, no multipart upload left behind; and prints its time to
//! safety (`cargo test --test fault_matrix -- --nocapture` shows them). The README's matrix
//! table names each row.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::faults::{Fault, Faults};
use integration_tests::origin::{Route, TestOrigin};
use integration_tests::{REGION, emulator, unique};
use lambda_http::{Body, Request};
use meeting_hooks::aws::wiring;
use meeting_hooks::copier::service::{Attempt, Done};
use meeting_hooks::ingest::http as ingest_http;
use meeting_hooks::jaas::signature::signature_header;
use meeting_hooks::jobs::{
    CopyJob, FileKind, FileMeta, JOB_VERSION, Link, SourceEvent, decode_job,
};
use meeting_hooks::respond::now_ms;
use meeting_hooks::schema::{self, event_attr as a};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SECRET: &str = "whsec_fault_matrix";
const MIB: usize = 1024 * 1024;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn report(row: &str, started: Instant) {
    println!(
        "fault matrix | {row} | time to safety {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------- ingest rows

struct IngestRow {
    table: String,
    queue_url: String,
    faults: Faults,
    service: wiring::Ingest,
}

async fn ingest_row() -> IngestRow {
    let emu = emulator();
    let table = emu.table(&schema::EVENTS).await;
    let queue_url = emu.queue().await;
    let bucket = emu.bucket().await;
    let faults = Faults::new();
    let sdk = faults.sdk(&emu.endpoint, REGION);
    let (service, _) = wiring::ingest(
        &sdk,
        &env(&[
            ("EVENTS_TABLE", &table),
            ("JOBS_QUEUE_URL", &queue_url),
            ("PAYLOAD_BUCKET", &bucket),
            ("JAAS_WEBHOOK_SECRETS", SECRET),
            ("ENQUEUE_LEASE_SECONDS", "30"),
        ]),
    )
    .expect("wiring");
    IngestRow {
        table,
        queue_url,
        faults,
        service,
    }
}

fn recording_uploaded() -> String {
    json!({
        "idempotencyKey": unique("rec"),
        "customerId": "c1",
        "appId": "vpaas-magic-cookie-fault",
        "eventType": "RECORDING_UPLOADED",
        "sessionId": unique("session"),
        "timestamp": now_ms(),
        "fqn": "vpaas-magic-cookie-fault/room",
        "data": {"preAuthenticatedLink": "https://8x8.vc/recordings/r.mp4?sig=secret", "durationSec": 60}
    })
    .to_string()
}

impl IngestRow {
    async fn deliver(&self, body: &str) -> (u16, Value) {
        let req: Request = ::http::Request::builder()
            .method("POST")
            .uri("/webhooks/jaas")
            .header(
                "x-jaas-signature",
                signature_header(SECRET, now_ms() / 1000, body.as_bytes()),
            )
            .body(Body::Text(body.to_owned()))
            .expect("request");
        let resp = ingest_http::handle(&self.service, req).await;
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_slice(resp.body().as_ref()).expect("JSON answer"),
        )
    }

    /// Stored events (not conflicts or quarantine) and the jobs on the queue.
    async fn safety(&self) -> (Vec<HashMap<String, AttributeValue>>, Vec<CopyJob>) {
        let emu = emulator();
        let items = emu
            .scan(&self.table)
            .await
            .into_iter()
            .filter(|i| {
                i.get(a::KIND)
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some("event")
            })
            .collect();
        let jobs = emu
            .drain(&self.queue_url)
            .await
            .iter()
            .map(|b| decode_job(b).expect("job"))
            .collect();
        (items, jobs)
    }
}

fn job_state(item: &HashMap<String, AttributeValue>) -> Option<&str> {
    item.get(a::JOB_STATE)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

#[tokio::test]
async fn dynamodb_down_is_refused_with_503_and_the_retry_stores_it_once() {
    let row = ingest_row().await;
    let body = recording_uploaded();
    let started = Instant::now();
    row.faults.always("dynamodb:*", Fault::Refuse);
    let (code, answer) = row.deliver(&body).await;
    assert_eq!(
        (code, answer["error"].as_str()),
        (503, Some("storage_unavailable"))
    );
    row.faults.clear();
    // JaaS retries a 5xx.
    let (code, answer) = row.deliver(&body).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("stored")));
    let (items, jobs) = row.safety().await;
    assert_eq!((items.len(), jobs.len()), (1, 1));
    assert_eq!(job_state(&items[0]), Some("queued"));
    report("DynamoDB down, then back", started);
}

#[tokio::test]
async fn dynamodb_slow_still_stores_and_enqueues_once() {
    let row = ingest_row().await;
    let started = Instant::now();
    row.faults
        .always("dynamodb:*", Fault::Delay(Duration::from_millis(1_500)));
    let (code, answer) = row.deliver(&recording_uploaded()).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("stored")));
    row.faults.clear();
    let (items, jobs) = row.safety().await;
    assert_eq!((items.len(), jobs.len()), (1, 1));
    report("DynamoDB slow (1.5 s per call)", started);
}

#[tokio::test]
async fn sqs_failing_after_the_write_is_recovered_by_the_retry_exactly_once() {
    let row = ingest_row().await;
    let body = recording_uploaded();
    let started = Instant::now();
    row.faults.always("sqs:SendMessage", Fault::Refuse);
    let (code, answer) = row.deliver(&body).await;
    assert_eq!(
        (code, answer["error"].as_str()),
        (503, Some("queue_unavailable"))
    );
    row.faults.clear();
    let (code, answer) = row.deliver(&body).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("duplicate")));
    let (items, jobs) = row.safety().await;
    assert_eq!((items.len(), jobs.len()), (1, 1), "stored once, one job");
    assert_eq!(job_state(&items[0]), Some("queued"));
    report("SQS send failing after the write", started);
}

#[tokio::test]
async fn a_putitem_applied_whose_answer_is_lost_still_enqueues_its_job_at_once() {
    let row = ingest_row().await;
    let started = Instant::now();
    row.faults.once("dynamodb:PutItem", Fault::LoseResponse);
    let (code, answer) = row.deliver(&recording_uploaded()).await;
    assert_eq!(
        (code, answer["status"].as_str()),
        (200, Some("stored")),
        "the delivery recognises its own applied write: {answer}"
    );
    let (items, jobs) = row.safety().await;
    assert_eq!((items.len(), jobs.len()), (1, 1));
    assert_eq!(job_state(&items[0]), Some("queued"));
    report("PutItem applied, answer lost", started);
}

// ---------------------------------------------------------------- copier rows

struct CopierRow {
    bucket: String,
    faults: Faults,
    origin: TestOrigin,
    service: wiring::Copier,
}

async fn copier_row() -> CopierRow {
    let emu = emulator();
    let table = emu.table(&schema::COPIES).await;
    let bucket = emu.bucket().await;
    let queue_url = emu.queue().await;
    let faults = Faults::new();
    let sdk = faults.sdk(&emu.endpoint, REGION);
    let (service, _) = wiring::copier(
        &sdk,
        &env(&[
            ("COPIES_TABLE", &table),
            ("RECORDINGS_BUCKET", &bucket),
            ("JOBS_QUEUE_URL", &queue_url),
            // The test origin serves http on 127.0.0.1 (development only, refused in Lambda).
            ("ALLOW_INSECURE_LOCAL_ORIGIN", "true"),
            ("COPY_PART_SIZE_MIB", "5"),
            ("COPY_MAX_PARTS_IN_FLIGHT", "2"),
        ]),
    )
    .expect("wiring");
    CopierRow {
        bucket,
        faults,
        origin: TestOrigin::start().await,
        service,
    }
}

fn recording(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn copy_job(link: &str) -> CopyJob {
    let now = now_ms();
    CopyJob {
        v: JOB_VERSION,
        job_id: unique("job"),
        provider: "jaas".into(),
        kind: FileKind::Recording,
        link: Link::new(link),
        link_expires_at: now + 3_600_000,
        source: SourceEvent {
            stored_key: unique("event"),
            event_type: "RECORDING_UPLOADED".into(),
            timestamp: now,
        },
        session_id: Some(unique("session")),
        fqn: Some("app/room".into()),
        room: Some("room".into()),
        app_id: Some("app".into()),
        customer_id: None,
        meta: FileMeta::default(),
    }
}

fn one_delivery() -> Attempt {
    Attempt {
        owner: unique("invocation"),
        stop_at: tokio::time::Instant::now() + Duration::from_secs(120),
        receive_count: 1,
    }
}

impl CopierRow {
    /// The file is in S3 byte for byte, once, with its digest; no upload is left open.
    async fn assert_safe(&self, file: &[u8]) {
        let s3 = emulator().s3();
        let objects = s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("list")
            .contents
            .unwrap_or_default();
        assert_eq!(objects.len(), 1, "exactly one object");
        let key = objects[0].key.clone().expect("key");
        let body = s3
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(body.len(), file.len(), "not truncated");
        assert_eq!(
            hex::encode(Sha256::digest(&body)),
            hex::encode(Sha256::digest(file)),
            "not corrupted"
        );
        let open = s3
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("uploads")
            .uploads
            .unwrap_or_default();
        assert!(
            open.is_empty(),
            "orphaned multipart uploads: {}",
            open.len()
        );
    }

    /// One delivery of a 12 MiB recording (3 parts of 5 MiB) served by `route`.
    async fn copy_in_one_delivery(&self, row: &str, route: Route, file: &[u8]) {
        let started = Instant::now();
        let link = self.origin.route(&format!("/{}.mp4", unique("rec")), route);
        let done = self
            .service
            .service()
            .process(&copy_job(&link), &one_delivery())
            .await
            .unwrap_or_else(|f| panic!("{row}: not copied in one delivery: {f}"));
        assert!(matches!(done, Done::Copied(_)), "{row}: {done:?}");
        self.faults.clear();
        self.assert_safe(file).await;
        report(row, started);
    }
}

#[tokio::test]
async fn s3_upload_part_failing_is_retried_in_the_same_delivery() {
    let row = copier_row().await;
    let file = recording(12 * MIB);
    // More failures than the SDK's own 3 attempts: the copier itself must retry.
    row.faults
        .inject("s3:UploadPart", Fault::Status(500), Some(4));
    row.copy_in_one_delivery(
        "S3 UploadPart failing (4 × 500)",
        Route::file(file.clone()),
        &file,
    )
    .await;
}

#[tokio::test]
async fn s3_complete_failing_or_its_answer_lost_still_yields_one_object() {
    let row = copier_row().await;
    let file = recording(12 * MIB);
    row.faults
        .once("s3:CompleteMultipartUpload", Fault::LoseResponse);
    row.copy_in_one_delivery(
        "S3 CompleteMultipartUpload applied, answer lost",
        Route::file(file.clone()),
        &file,
    )
    .await;
    let row = copier_row().await;
    row.faults
        .inject("s3:CompleteMultipartUpload", Fault::Status(500), Some(4));
    row.copy_in_one_delivery(
        "S3 CompleteMultipartUpload failing (4 × 500)",
        Route::file(file.clone()),
        &file,
    )
    .await;
}

#[tokio::test]
async fn origin_truncating_mid_download_is_resumed_in_the_same_delivery() {
    let row = copier_row().await;
    let file = recording(12 * MIB);
    row.copy_in_one_delivery(
        "origin cuts the download once at 7 MiB",
        Route::file(file.clone()).truncated(1, 7 * MIB as u64),
        &file,
    )
    .await;
}

#[tokio::test]
async fn origin_answering_5xx_is_retried_in_the_same_delivery() {
    let row = copier_row().await;
    let file = recording(12 * MIB);
    row.copy_in_one_delivery(
        "origin answers 5xx twice",
        Route::file(file.clone()).failing(2),
        &file,
    )
    .await;
}
