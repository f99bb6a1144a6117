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
use aws_sdk_sqs::types::MessageSystemAttributeName;
use futures::future::BoxFuture;
use integration_tests::faults::{Fault, Faults};
use integration_tests::origin::{Route, TestOrigin};
use integration_tests::{REGION, emulator, unique};
use lambda_http::{Body, Request};
use meeting_hooks::aws::queue::lambda_event;
use meeting_hooks::aws::wiring;
use meeting_hooks::copier::origin::{Lookup, SystemLookup};
use meeting_hooks::copier::service::{Attempt, Done};
use meeting_hooks::copier::sqs::{Invocation, handle_batch};
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
    sweeper: wiring::Sweeper,
}

async fn ingest_row() -> IngestRow {
    let emu = emulator();
    let table = emu.table(&schema::EVENTS).await;
    let copies = emu.table(&schema::COPIES).await;
    let queue_url = emu.queue().await;
    let bucket = emu.bucket().await;
    let faults = Faults::new();
    let sdk = faults.sdk(&emu.endpoint, REGION);
    let vars = env(&[
        ("EVENTS_TABLE", &table),
        ("COPIES_TABLE", &copies),
        ("JOBS_QUEUE_URL", &queue_url),
        ("PAYLOAD_BUCKET", &bucket),
        ("JAAS_WEBHOOK_SECRETS", SECRET),
        ("ENQUEUE_LEASE_SECONDS", "30"),
    ]);
    let (service, _) = wiring::ingest(&sdk, &vars).expect("wiring");
    let (sweeper, _) = wiring::sweeper(&sdk, &vars).expect("wiring");
    IngestRow {
        table,
        queue_url,
        faults,
        service,
        sweeper,
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

/// Keys of the items in the pending-job index (what the sweeper reads).
async fn pending_index(table: &str) -> Vec<String> {
    emulator()
        .dynamodb()
        .query()
        .table_name(table)
        .index_name(schema::EVENTS_PENDING_JOBS)
        .key_condition_expression("#p = :p")
        .expression_attribute_names("#p", a::JOB_PENDING)
        .expression_attribute_values(":p", AttributeValue::S(schema::JOB_PENDING_VALUE.into()))
        .send()
        .await
        .expect("query the pending-job index")
        .items()
        .iter()
        .filter_map(|i| i.get(a::KEY).and_then(|v| v.as_s().ok()).cloned())
        .collect()
}

#[tokio::test]
async fn sqs_failing_after_the_write_with_no_retry_is_enqueued_by_the_sweeper_exactly_once() {
    let row = ingest_row().await;
    let body = recording_uploaded();
    let started = Instant::now();
    row.faults.always("sqs:SendMessage", Fault::Refuse);
    let (code, answer) = row.deliver(&body).await;
    assert_eq!(
        (code, answer["error"].as_str()),
        (503, Some("queue_unavailable"))
    );
    let (items, jobs) = row.safety().await;
    assert_eq!((items.len(), jobs.len()), (1, 0));
    assert_eq!(job_state(&items[0]), Some("sending"));
    let key = items[0][a::KEY].as_s().expect("key").clone();
    assert_eq!(pending_index(&row.table).await, vec![key.clone()]);

    // JaaS never retries. While SQS still fails, the sweep fails (Lambda counts an error)
    // and leaves the job in the index.
    let now = now_ms();
    let failed = row.sweeper.sweep(now).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(pending_index(&row.table).await, vec![key.clone()]);

    row.faults.clear();
    let swept = row.sweeper.sweep(now + 1).await.expect("sweep");
    assert_eq!((swept.examined, swept.enqueued), (1, 1));
    let (items, jobs) = row.safety().await;
    assert_eq!((items.len(), jobs.len()), (1, 1), "stored once, one job");
    assert_eq!(jobs[0].source.stored_key, key);
    assert_eq!(
        jobs[0].url().expect("url").expose(),
        "https://8x8.vc/recordings/r.mp4?sig=secret"
    );
    assert_eq!(job_state(&items[0]), Some("queued"));
    assert!(
        !items[0].contains_key(a::JOB_MESSAGE),
        "job message dropped once queued"
    );
    assert!(pending_index(&row.table).await.is_empty(), "left the index");

    // Later runs (and a late JaaS retry) send nothing more.
    let again = row.sweeper.sweep(now + 120_000).await.expect("sweep");
    assert_eq!(again.enqueued, 0);
    let (code, answer) = row.deliver(&body).await;
    assert_eq!((code, answer["status"].as_str()), (200, Some("duplicate")));
    let (_, jobs) = row.safety().await;
    assert!(jobs.is_empty(), "still exactly one job");
    report(
        "SQS send failing after the write, no retry: the sweeper",
        started,
    );
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

#[tokio::test]
async fn every_ingest_write_applied_with_its_first_answer_lost_still_stores_and_queues_once() {
    let row = ingest_row().await;
    let started = Instant::now();
    // PutItem, the enqueue bookkeeping and SendMessage: each applied, its first answer lost.
    row.faults
        .every_other("dynamodb:*", Fault::LoseResponse)
        .every_other("sqs:SendMessage", Fault::LoseResponse);
    let (code, answer) = row.deliver(&recording_uploaded()).await;
    row.faults.clear();
    assert_eq!(code, 200, "{answer}");
    let (items, jobs) = row.safety().await;
    assert_eq!(items.len(), 1, "stored once");
    assert_eq!(job_state(&items[0]), Some("queued"));
    // A lost SendMessage answer may send the job twice: the copier's job id dedups it.
    assert!(!jobs.is_empty() && jobs.len() <= 2, "{jobs:?}");
    assert!(jobs.windows(2).all(|w| w[0] == w[1]), "one job: {jobs:?}");
    report("every ingest write's first answer lost", started);
}

// ---------------------------------------------------------------- copier rows

struct CopierRow {
    bucket: String,
    queue_url: String,
    dlq_url: String,
    faults: Faults,
    origin: TestOrigin,
    service: wiring::Copier,
}

async fn copier_row() -> CopierRow {
    copier_row_with(&[], SystemLookup).await
}

/// The jobs queue as the template declares it: its visibility timeout, and a DLQ after
/// maxReceiveCount receives.
async fn jobs_queue() -> (String, String) {
    let spec = &schema::JOBS_QUEUE;
    emulator()
        .queue_with_dlq(spec.visibility_timeout_secs, spec.max_receive_count)
        .await
}

async fn copier_row_with(extra: &[(&str, &str)], lookup: impl Lookup + Clone) -> CopierRow {
    let emu = emulator();
    let table = emu.table(&schema::COPIES).await;
    let bucket = emu.bucket().await;
    let (queue_url, dlq_url) = jobs_queue().await;
    let faults = Faults::new();
    let sdk = faults.sdk(&emu.endpoint, REGION);
    let max_attempts = schema::JOBS_QUEUE.max_receive_count.to_string();
    let mut vars = env(&[
        ("COPIES_TABLE", &table),
        ("RECORDINGS_BUCKET", &bucket),
        ("JOBS_QUEUE_URL", &queue_url),
        // The test origin serves http on 127.0.0.1 (development only, refused in Lambda).
        ("ALLOW_INSECURE_LOCAL_ORIGIN", "true"),
        ("COPY_PART_SIZE_MIB", "5"),
        ("COPY_MAX_PARTS_IN_FLIGHT", "2"),
        ("COPY_MAX_ATTEMPTS", &max_attempts),
    ]);
    vars.extend(env(extra));
    let (service, _) = wiring::copier_with_lookup(&sdk, &vars, lookup).expect("wiring");
    CopierRow {
        bucket,
        queue_url,
        dlq_url,
        faults,
        origin: TestOrigin::start().await,
        service,
    }
}

/// One pass of the SQS event source mapping (batch size 1): receive, invoke with `budget`,
/// delete the record unless reported. `None` when no message was visible.
struct Delivery {
    receive_count: u32,
    returned: bool,
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
        file: meeting_hooks::facts::FileSource::Url(Link::new(link)),
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
    async fn enqueue(&self, job: &CopyJob) {
        emulator()
            .sqs()
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(job.to_json())
            .send()
            .await
            .expect("send job");
    }

    async fn deliver(&self, budget: Duration) -> Option<Delivery> {
        let sqs = emulator().sqs();
        let m = sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
            .into_iter()
            .next()?;
        let event = lambda_event(std::slice::from_ref(&m), &self.queue_url);
        let receive_count = event.records[0].attributes["ApproximateReceiveCount"]
            .parse()
            .expect("count");
        let invocation = Invocation::with_budget(unique("invocation"), budget, Duration::ZERO);
        let response = handle_batch(&self.service, event, &invocation).await;
        let returned = !response.batch_item_failures.is_empty();
        if !returned {
            sqs.delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
        Some(Delivery {
            receive_count,
            returned,
        })
    }

    async fn dead_letters(&self) -> usize {
        emulator().drain(&self.dlq_url).await.len()
    }

    /// Nothing in the bucket and no upload open (a job that is still to be copied).
    async fn assert_untouched(&self) {
        let s3 = emulator().s3();
        let listed = s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("list");
        assert_eq!(listed.key_count(), Some(0));
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
        let tag = s3
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .expect("tagging")
            .tag_set
            .into_iter()
            .find(|t| t.key == "sha256")
            .map(|t| t.value);
        assert_eq!(
            tag.as_deref(),
            Some(hex::encode(Sha256::digest(file)).as_str()),
            "sha256 tag"
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
    /// Like [`Self::copy_in_one_delivery`], but a delivery may fail retryably: deliveries go
    /// on (as SQS would after the short backoff) until the job is copied, at most four.
    async fn copy_until_safe(&self, row: &str, route: Route, file: &[u8]) {
        let started = Instant::now();
        let link = self.origin.route(&format!("/{}.mp4", unique("rec")), route);
        let job = copy_job(&link);
        let mut outcomes = Vec::new();
        for _ in 0..4 {
            match self.service.service().process(&job, &one_delivery()).await {
                Ok(done @ (Done::Copied(_) | Done::AlreadyCopied)) => {
                    outcomes.push(format!("{done:?}"));
                    break;
                }
                Ok(other) => panic!("{row}: {other:?}"),
                Err(f) => {
                    assert!(
                        !f.class.acknowledged(),
                        "{row}: a fault made the job fail for good: {f}"
                    );
                    outcomes.push(f.to_string());
                }
            }
        }
        assert!(
            outcomes
                .last()
                .is_some_and(|o| o.starts_with("Copied") || o.starts_with("AlreadyCopied")),
            "{row}: not copied in 4 deliveries: {outcomes:?}"
        );
        self.faults.clear();
        self.assert_safe(file).await;
        report(&format!("{row} ({} deliveries)", outcomes.len()), started);
    }

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
async fn copier_state_writes_failing_or_their_answers_lost_still_yield_one_object() {
    // Every copy-state write (start, checkpoints, copied) applied but its answer lost: the
    // SDK's retry meets its own write.
    let row = copier_row().await;
    let file = recording(12 * MIB);
    row.faults
        .every_other("dynamodb:UpdateItem", Fault::LoseResponse);
    row.copy_until_safe(
        "copy-state writes applied, answers lost",
        Route::file(file.clone()),
        &file,
    )
    .await;
    // The copy state unavailable for more than the SDK's own attempts.
    let row = copier_row().await;
    row.faults
        .inject("dynamodb:UpdateItem", Fault::Status(500), Some(4));
    row.copy_until_safe(
        "copy-state writes failing (4 × 500)",
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

#[tokio::test]
async fn origin_resetting_the_connection_mid_download_is_resumed_in_the_same_delivery() {
    let row = copier_row().await;
    let file = recording(12 * MIB);
    row.copy_in_one_delivery(
        "origin resets the connection once at 7 MiB",
        Route::file(file.clone()).reset(1, 7 * MIB as u64),
        &file,
    )
    .await;
}

#[tokio::test]
async fn origin_changing_content_between_attempts_yields_exactly_the_new_file() {
    let old = recording(12 * MIB);
    let new: Vec<u8> = old.iter().map(|b| b ^ 0x5a).collect();
    let row = copier_row().await;
    // Attempt 1 is cut at 7 MiB (one part stored); the file is replaced, same length, before
    // the inline retry resumes with If-Range.
    row.copy_in_one_delivery(
        "origin changes the file between attempts (If-Range answered 200)",
        Route::file(old.clone())
            .truncated(1, 7 * MIB as u64)
            .changing_after(1, new.clone()),
        &new,
    )
    .await;
    let row = copier_row().await;
    row.copy_in_one_delivery(
        "origin changes the file between attempts (If-Range ignored, 206)",
        Route::file(old)
            .truncated(1, 7 * MIB as u64)
            .changing_after(1, new.clone())
            .ignoring_if_range(),
        &new,
    )
    .await;
}

/// A resolver that is down: every lookup times out.
#[derive(Debug, Clone, Default)]
struct DnsDown(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl Lookup for DnsDown {
    fn lookup(&self, _: &str) -> BoxFuture<'static, std::io::Result<Vec<std::net::SocketAddr>>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "simulated resolver timeout",
            ))
        })
    }
}

#[tokio::test]
async fn origin_dns_failing_returns_the_job_after_a_short_backoff_and_loses_nothing() {
    // (The vetting resolver never lets a name reach loopback, so the recovery cannot be shown
    // against the local origin: the row shows the job kept, retried soon, nothing written.)
    let dns = DnsDown::default();
    let row = copier_row_with(
        &[
            ("ALLOWED_SOURCE_HOSTS", "files.example"),
            ("COPY_RETRY_BASE_SECONDS", "1"),
        ],
        dns.clone(),
    )
    .await;
    let mut job = copy_job("https://files.example/rec.mp4?sig=secret");
    job.kind = FileKind::Recording;
    row.enqueue(&job).await;
    let started = Instant::now();
    let first = row
        .deliver(Duration::from_secs(60))
        .await
        .expect("delivered");
    assert!(first.returned, "a failed lookup is not permanent");
    let lookups = dns.0.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        lookups >= 5,
        "retried inside the invocation: {lookups} lookups"
    );
    // Back on the queue after the 1 s backoff, not the 5400 s visibility timeout.
    let again = loop {
        if let Some(d) = row.deliver(Duration::from_secs(1)).await {
            break d;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job did not come back"
        );
    };
    assert_eq!(again.receive_count, 2);
    report("origin DNS failing (job back on the queue)", started);
    row.assert_untouched().await;
    assert_eq!(row.dead_letters().await, 0);
}

#[tokio::test]
async fn a_file_needing_many_invocations_finishes_without_spending_the_receive_budget() {
    let row = copier_row().await;
    let file = recording(6 * MIB * 5 + 77);
    // Every answer stalls after a part and a bit, past the invocation's short budget: each
    // invocation stores one part and continues the job in a fresh message.
    let link = row.origin.route(
        &format!("/{}.mp4", unique("long")),
        Route::file(file.clone()).stalled(6 * MIB as u64, Duration::from_secs(10)),
    );
    row.enqueue(&copy_job(&link)).await;
    let started = Instant::now();
    let mut invocations = 0;
    let mut most_receives = 0;
    loop {
        match row.deliver(Duration::from_secs(4)).await {
            Some(d) => {
                invocations += 1;
                most_receives = most_receives.max(d.receive_count);
                assert!(!d.returned, "invocation {invocations} returned its record");
            }
            None if invocations > 0 => break,
            None => {}
        }
        assert!(started.elapsed() < Duration::from_secs(120), "not finished");
    }
    assert!(invocations >= 6, "{invocations} invocations");
    assert!(
        most_receives <= schema::JOBS_QUEUE.max_receive_count,
        "receive budget exceeded: {most_receives}"
    );
    assert_eq!(most_receives, 1, "every continuation is a fresh message");
    row.assert_safe(&file).await;
    assert_eq!(row.dead_letters().await, 0, "nothing in the DLQ");
    report(
        &format!("file needing {invocations} invocations (4 s each)"),
        started,
    );
}
