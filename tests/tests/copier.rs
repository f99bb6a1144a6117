//! Recording copier against moto (S3, DynamoDB, SQS) and a local HTTP origin: the real
//! service, the real DynamoDB/S3 adapters and the real SSRF-checked HTTP client.
//!
//! The origin is plain http on 127.0.0.1, so the copier runs with the development-only
//! loopback exception; the SSRF tests use the production policy (and prove that the
//! exception does not extend to redirect targets).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use bytes::Bytes;
use integration_tests::origin::{Route, TestOrigin};
use integration_tests::queue::{MemoryQueue, QueueCall};
use integration_tests::{emulator, unique};
use meeting_hooks::aws::copies::{DynamoCopyStore, progress_of, status_of};
use meeting_hooks::aws::objects::S3MultipartSink;
use meeting_hooks::aws::queue::SqsJobQueue;
use meeting_hooks::aws::queue::lambda_event;
use meeting_hooks::copier::layout::{self, ObjectMeta};
use meeting_hooks::copier::origin::HttpOrigin;
use meeting_hooks::copier::parts::MIB;
use meeting_hooks::copier::policy::{HostPattern, SourcePolicy};
use meeting_hooks::copier::ports::{MultipartSink, SinkError};
use meeting_hooks::copier::service::{
    Attempt, CopyFailure, CopyService, CopySettings, Done, FailureClass,
};
use meeting_hooks::copier::sqs::{
    HEARTBEAT_SLACK, Invocation, JobHandler, RetryBackoff, handle_batch,
};
use meeting_hooks::copier::state::{CopyStatus, ListedPart, PartRecord};
use meeting_hooks::jobs::{CopyJob, FileKind, FileMeta, JOB_VERSION, Link, SourceEvent};
use meeting_hooks::respond::now_ms;
use meeting_hooks::schema::{COPIES, copy_attr};
use sha2::{Digest, Sha256};

const PART: u64 = 5 * MIB;

/// Deterministic, incompressible test bytes.
fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Wraps the S3 sink to record which part numbers each attempt uploaded.
#[derive(Debug, Clone)]
struct CountingSink {
    inner: S3MultipartSink,
    parts: Arc<Mutex<Vec<u32>>>,
    creates: Arc<AtomicU32>,
}

impl CountingSink {
    fn take_parts(&self) -> Vec<u32> {
        let mut p = std::mem::take(&mut *self.parts.lock().expect("parts"));
        p.sort_unstable();
        p
    }
}

impl MultipartSink for CountingSink {
    async fn create(&self, key: &str, meta: &ObjectMeta) -> Result<String, SinkError> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        self.inner.create(key, meta).await
    }
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
        sha256_b64: &str,
    ) -> Result<String, SinkError> {
        let etag = self
            .inner
            .upload_part(key, upload_id, number, body, sha256_b64)
            .await?;
        self.parts.lock().expect("parts").push(number);
        Ok(etag)
    }
    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartRecord],
    ) -> Result<(), SinkError> {
        self.inner.complete(key, upload_id, parts).await
    }
    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), SinkError> {
        self.inner.abort(key, upload_id).await
    }
    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, SinkError> {
        self.inner.list_parts(key, upload_id).await
    }
    async fn tag_sha256(&self, key: &str, sha256_hex: &str) -> Result<(), SinkError> {
        self.inner.tag_sha256(key, sha256_hex).await
    }
    async fn existing(&self, key: &str) -> Result<Option<(u64, Option<String>)>, SinkError> {
        self.inner.existing(key).await
    }
}

type Service = CopyService<DynamoCopyStore, CountingSink, HttpOrigin>;

struct Fixture {
    table: String,
    bucket: String,
    origin: TestOrigin,
}

async fn fixture() -> Fixture {
    let emu = emulator();
    Fixture {
        table: emu.table(&COPIES).await,
        bucket: emu.bucket().await,
        origin: TestOrigin::start().await,
    }
}

fn dev_policy() -> SourcePolicy {
    let prod = SourcePolicy::production_default();
    SourcePolicy::new(prod.patterns().to_vec(), true)
}

fn settings(lease: Duration) -> CopySettings {
    CopySettings {
        part_size: PART,
        max_parts_in_flight: 2,
        lease,
        max_attempts: None,
        // The tests of single deliveries see each failure as it happens; the inline retry
        // tests turn this on.
        inline_retries: 0,
        at_risk_window: Duration::from_secs(meeting_hooks::jobs::DEFAULT_AT_RISK_SECS),
    }
}

impl Fixture {
    fn service_with(
        &self,
        policy: SourcePolicy,
        settings: CopySettings,
    ) -> (Service, CountingSink) {
        let emu = emulator();
        let sink = CountingSink {
            inner: S3MultipartSink::new(meeting_hooks::aws::s3(&emu.sdk), &self.bucket),
            parts: Arc::default(),
            creates: Arc::default(),
        };
        let origin = HttpOrigin::new(policy, 3, Duration::from_secs(5), Duration::from_secs(10))
            .expect("http client");
        let service = CopyService::new(
            DynamoCopyStore::new(emu.dynamodb(), &self.table),
            sink.clone(),
            origin,
            settings,
        );
        (service, sink)
    }

    fn service(&self) -> (Service, CountingSink) {
        self.service_with(dev_policy(), settings(Duration::from_secs(60)))
    }

    async fn object(&self, key: &str) -> Option<Bytes> {
        let out = emulator()
            .s3()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.expect("object body").into_bytes())
    }

    async fn tag(&self, key: &str) -> Option<String> {
        emulator()
            .s3()
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .expect("tagging")
            .tag_set
            .into_iter()
            .find(|t| t.key == "sha256")
            .map(|t| t.value)
    }

    async fn open_uploads(&self) -> usize {
        emulator()
            .s3()
            .list_multipart_uploads()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("list uploads")
            .uploads
            .unwrap_or_default()
            .len()
    }

    async fn state(
        &self,
        job: &CopyJob,
    ) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        DynamoCopyStore::new(emulator().dynamodb(), &self.table)
            .get(&job.job_id)
            .await
            .expect("get state")
            .expect("state item")
    }

    async fn status(&self, job: &CopyJob) -> CopyStatus {
        status_of(&self.state(job).await).expect("status")
    }
}

fn job(kind: FileKind, link: &str) -> CopyJob {
    let now = now_ms();
    CopyJob {
        v: JOB_VERSION,
        job_id: unique("job"),
        provider: "jaas".into(),
        kind,
        file: meeting_hooks::facts::FileSource::Url(Link::new(link)),
        link_expires_at: now + 3_600_000,
        source: SourceEvent {
            stored_key: unique("event"),
            event_type: "RECORDING_UPLOADED".into(),
            timestamp: now,
        },
        session_id: Some("session-1".into()),
        fqn: Some("app-1/room-1".into()),
        room: Some("room-1".into()),
        app_id: Some("app-1".into()),
        customer_id: Some("customer-1".into()),
        meta: FileMeta {
            duration_sec: Some(15),
            ..FileMeta::default()
        },
    }
}

fn attempt(secs: u64) -> Attempt {
    Attempt {
        owner: unique("owner"),
        stop_at: tokio::time::Instant::now() + Duration::from_secs(secs),
        receive_count: 1,
    }
}

fn expect_failure(r: Result<Done, CopyFailure>, class: FailureClass) -> CopyFailure {
    match r {
        Err(f) if f.class == class => f,
        other => panic!("expected a {class:?} failure, got {other:?}"),
    }
}

#[tokio::test]
async fn copies_byte_for_byte_with_checksum_metadata_and_state() {
    let f = fixture().await;
    let bytes = data((2 * PART + 123_457) as usize, 1);
    let url = f.origin.route(
        "/rec/meeting.mp4",
        Route::file(bytes.clone()).content_type("video/mp4"),
    );
    let job = job(FileKind::Recording, &url);
    let (service, sink) = f.service();

    let done = service.process(&job, &attempt(60)).await.expect("copied");
    let Done::Copied(result) = done else {
        panic!("expected a copy, got {done:?}")
    };
    let key = layout::object_key(&job);
    assert_eq!(result.key, key);
    assert!(
        key.starts_with("jaas/app-1/room-1/session-1/recording/") && key.ends_with("-meeting.mp4"),
        "{key}"
    );
    assert_eq!(result.bytes, bytes.len() as u64);
    assert_eq!(sink.take_parts(), vec![1, 2, 3]);

    let stored = f.object(&key).await.expect("object exists");
    assert!(stored == bytes, "object differs from the origin's bytes");
    assert_eq!(f.tag(&key).await.as_deref(), Some(sha_hex(&bytes).as_str()));
    assert_eq!(result.sha256, sha_hex(&bytes));

    let head = emulator()
        .s3()
        .head_object()
        .bucket(&f.bucket)
        .key(&key)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type.as_deref(), Some("video/mp4"));
    let meta = head.metadata.unwrap_or_default();
    assert_eq!(
        meta.get("session-id").map(String::as_str),
        Some("session-1")
    );
    assert_eq!(meta.get("fqn").map(String::as_str), Some("app-1/room-1"));
    assert_eq!(
        meta.get("event-type").map(String::as_str),
        Some("RECORDING_UPLOADED")
    );
    assert_eq!(meta.get("duration-sec").map(String::as_str), Some("15"));
    assert_eq!(meta.get("job-id"), Some(&job.job_id));

    let item = f.state(&job).await;
    assert_eq!(status_of(&item), Some(CopyStatus::Copied));
    assert_eq!(
        item.get("sha256").and_then(|v| v.as_s().ok()),
        Some(&sha_hex(&bytes))
    );
    assert!(progress_of(&item).is_none(), "progress removed once copied");
    assert_eq!(f.open_uploads().await, 0);
}

#[tokio::test]
async fn origin_403_is_permanent_acknowledged_and_not_retried() {
    let f = fixture().await;
    let url = f.origin.route("/gone", Route::status(403));
    let job = job(FileKind::Recording, &url);
    let (service, _) = f.service();
    let queue = MemoryQueue::new();
    let handler = JobHandler::new(service, queue.clone(), RetryBackoff::default());
    let service = handler.service();
    let event = sqs_event(&[("m-403", job.to_json(), 1)]);

    let response = handle_batch(&handler, event.clone(), &invocation(60)).await;
    assert!(
        queue.calls().is_empty(),
        "no backoff for an acknowledged record"
    );
    assert!(
        response.batch_item_failures.is_empty(),
        "a permanent failure is acknowledged"
    );
    match f.status(&job).await {
        CopyStatus::Failed { permanent, reason } => {
            assert!(permanent);
            assert!(reason.contains("403"), "{reason}");
        }
        other => panic!("expected failed, got {other:?}"),
    }
    // A redelivery does no work.
    let again = service
        .process(&job, &attempt(60))
        .await
        .expect("acknowledged");
    assert!(matches!(again, Done::AlreadyFailed { .. }), "{again:?}");
    assert_eq!(f.origin.seen("/gone").len(), 1);
    assert!(f.object(&layout::object_key(&job)).await.is_none());
    assert_eq!(f.open_uploads().await, 0);
}

#[tokio::test]
async fn expired_link_is_permanent_without_a_request() {
    let f = fixture().await;
    let url = f.origin.route("/late", Route::file(data(10, 2)));
    let mut job = job(FileKind::Chat, &url);
    job.link_expires_at = now_ms() - 1;
    let (service, _) = f.service();
    let failure = expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Permanent,
    );
    assert!(failure.reason.contains("expired"), "{}", failure.reason);
    assert!(f.origin.seen("/late").is_empty());
}

#[tokio::test]
async fn truncated_body_is_retried_and_resumes_with_a_range_request() {
    let f = fixture().await;
    let bytes = data((2 * PART + 1000) as usize, 3);
    let url = f.origin.route(
        "/trunc",
        Route::file(bytes.clone()).truncated(1, PART + MIB),
    );
    let job = job(FileKind::Recording, &url);
    let (service, sink) = f.service();

    let failure = expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Retryable,
    );
    assert!(!failure.class.acknowledged());
    assert_eq!(sink.take_parts(), vec![1], "the full first part was kept");
    assert_eq!(f.status(&job).await, CopyStatus::Pending);
    assert_eq!(f.open_uploads().await, 1, "upload kept for the resume");
    // Handed back with an hour left on its link (inside the 6 h window): flagged at risk.
    let flagged = f.state(&job).await;
    assert_eq!(
        text(&flagged, copy_attr::AT_RISK_CAUSE),
        Some("link_expiring")
    );
    assert_eq!(
        flagged[copy_attr::LINK_EXPIRES_AT].as_n().ok(),
        Some(&job.link_expires_at.to_string())
    );
    assert!(
        text(&flagged, copy_attr::ABOUT).is_some_and(|a| a.contains("session-1")),
        "the event can say what the file belongs to"
    );

    service
        .process(&job, &attempt(60))
        .await
        .expect("second delivery copies");
    // Copied: the flag stays as it was written, once.
    let done = f.state(&job).await;
    assert_eq!(done[copy_attr::AT_RISK_AT], flagged[copy_attr::AT_RISK_AT]);
    assert_eq!(
        sink.take_parts(),
        vec![2, 3],
        "finished parts are not uploaded again"
    );
    let seen = f.origin.seen("/trunc");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].range, None);
    assert_eq!(
        seen[1].range.as_deref(),
        Some(format!("bytes={PART}-").as_str())
    );
    let key = layout::object_key(&job);
    assert!(f.object(&key).await.expect("object") == bytes);
    assert_eq!(f.tag(&key).await, Some(sha_hex(&bytes)));
    assert_eq!(f.open_uploads().await, 0);
}

fn with_inline_retries(retries: u32) -> CopySettings {
    CopySettings {
        inline_retries: retries,
        ..settings(Duration::from_secs(60))
    }
}

#[tokio::test]
async fn a_connection_cut_mid_way_is_resumed_within_the_same_delivery() {
    let f = fixture().await;
    // 12 MiB in 5 MiB parts; the first answer is cut after 7 MiB (part 1 done, part 2 half).
    let bytes = data((12 * MIB) as usize, 11);
    let url = f.origin.route(
        "/cut-once",
        Route::file(bytes.clone()).truncated(1, PART + 2 * MIB),
    );
    let job = job(FileKind::Recording, &url);
    let (service, sink) = f.service_with(dev_policy(), with_inline_retries(4));

    let done = service
        .process(&job, &attempt(60))
        .await
        .expect("copied in one delivery");
    let Done::Copied(result) = done else {
        panic!("expected a copy, got {done:?}")
    };
    assert_eq!(result.bytes, bytes.len() as u64);
    assert_eq!(result.sha256, sha_hex(&bytes));
    let mut parts = sink.take_parts();
    parts.sort_unstable();
    assert_eq!(parts, vec![1, 2, 3], "part 1 is not uploaded again");
    let seen = f.origin.seen("/cut-once");
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range, None);
    assert_eq!(
        seen[1].range.as_deref(),
        Some(format!("bytes={PART}-").as_str()),
        "resumed from the last completed part, not byte 0"
    );
    let key = layout::object_key(&job);
    let stored = f.object(&key).await.expect("object");
    assert_eq!(stored.len(), bytes.len());
    assert_eq!(sha_hex(&stored), sha_hex(&bytes));
    assert_eq!(f.tag(&key).await, Some(sha_hex(&bytes)));
    assert_eq!(f.status(&job).await, CopyStatus::Copied);
    assert_eq!(f.open_uploads().await, 0, "no multipart upload left");
}

#[tokio::test]
async fn a_5xx_answered_once_is_retried_within_the_same_delivery() {
    let f = fixture().await;
    let bytes = data((PART + 4321) as usize, 12);
    let url = f
        .origin
        .route("/503-once", Route::file(bytes.clone()).failing(1));
    let job = job(FileKind::Recording, &url);
    let (service, _sink) = f.service_with(dev_policy(), with_inline_retries(4));

    let done = service
        .process(&job, &attempt(60))
        .await
        .expect("copied in one delivery");
    assert!(matches!(done, Done::Copied(_)), "{done:?}");
    assert_eq!(f.origin.seen("/503-once").len(), 2);
    let key = layout::object_key(&job);
    let stored = f.object(&key).await.expect("object");
    assert_eq!(stored.len(), bytes.len());
    assert_eq!(sha_hex(&stored), sha_hex(&bytes));
    assert_eq!(f.status(&job).await, CopyStatus::Copied);
    assert_eq!(f.open_uploads().await, 0);
}

#[tokio::test]
async fn inline_retries_stop_at_their_limit_and_keep_the_upload_for_the_next_delivery() {
    let f = fixture().await;
    let url = f
        .origin
        .route("/503-always", Route::file(data(1000, 13)).failing(100));
    let job = job(FileKind::Recording, &url);
    let (service, _sink) = f.service_with(dev_policy(), with_inline_retries(2));

    let failure = expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Retryable,
    );
    assert!(failure.reason.contains("503"), "{}", failure.reason);
    assert_eq!(f.origin.seen("/503-always").len(), 3, "1 try + 2 retries");
    assert_eq!(f.status(&job).await, CopyStatus::Pending);
}

#[tokio::test]
async fn origin_ignoring_range_restarts_from_zero_without_orphans() {
    let f = fixture().await;
    let bytes = data((2 * PART + 10) as usize, 4);
    let url = f.origin.route(
        "/norange",
        Route::file(bytes.clone())
            .without_ranges()
            .truncated(1, PART + 10),
    );
    let job = job(FileKind::Recording, &url);
    let (service, sink) = f.service();
    expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Retryable,
    );
    assert_eq!(sink.take_parts(), vec![1]);
    service.process(&job, &attempt(60)).await.expect("copied");
    assert_eq!(
        sink.take_parts(),
        vec![1, 2, 3],
        "whole file again into a new upload"
    );
    assert_eq!(sink.creates.load(Ordering::SeqCst), 2);
    assert!(f.object(&layout::object_key(&job)).await.expect("object") == bytes);
    assert_eq!(f.open_uploads().await, 0, "the first upload was aborted");
}

#[tokio::test]
async fn duplicate_job_is_copied_once() {
    let f = fixture().await;
    let bytes = data(300_000, 5);
    let url = f.origin.route("/dup", Route::file(bytes.clone()));
    let job = job(FileKind::Transcription, &url);
    let (service, sink) = f.service();
    assert!(matches!(
        service.process(&job, &attempt(60)).await.expect("first"),
        Done::Copied(_)
    ));
    assert_eq!(
        service.process(&job, &attempt(60)).await.expect("second"),
        Done::AlreadyCopied
    );
    assert_eq!(f.origin.seen("/dup").len(), 1);
    assert_eq!(sink.take_parts(), vec![1]);
    assert_eq!(sink.creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_concurrent_duplicate_finds_the_lease_held() {
    let f = fixture().await;
    let bytes = data((PART + 100) as usize, 6);
    let url = f.origin.route(
        "/slow",
        Route::file(bytes.clone()).stalled(MIB, Duration::from_secs(4)),
    );
    let job = job(FileKind::Recording, &url);
    let (service, _) = f.service();
    let first_attempt = attempt(60);
    let first = service.process(&job, &first_attempt);
    let second = async {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        service.process(&job, &attempt(60)).await
    };
    let (first, second) = tokio::join!(first, second);
    assert!(matches!(first, Ok(Done::Copied(_))), "{first:?}");
    let busy = expect_failure(second, FailureClass::Busy);
    assert!(
        !busy.class.acknowledged(),
        "returned to the queue, not dropped"
    );
    assert_eq!(f.origin.seen("/slow").len(), 1);
}

#[tokio::test]
async fn copy_stopped_before_the_deadline_resumes_without_reuploading_finished_parts() {
    let f = fixture().await;
    let bytes = data((3 * PART + 77) as usize, 7);
    // The first answer stalls after two parts and a bit: the deadline falls inside the stall.
    let url = f.origin.route(
        "/long",
        Route::file(bytes.clone()).stalled(2 * PART + MIB, Duration::from_secs(8)),
    );
    let job = job(FileKind::Recording, &url);
    let (service, sink) = f.service();

    let started = std::time::Instant::now();
    let failure = expect_failure(
        service.process(&job, &attempt(3)).await,
        FailureClass::Interrupted,
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "stopped at the deadline"
    );
    assert!(!failure.class.acknowledged());
    assert_eq!(sink.take_parts(), vec![1, 2]);
    let item = f.state(&job).await;
    assert_eq!(
        status_of(&item),
        Some(CopyStatus::Pending),
        "lease released"
    );
    let checkpoint = progress_of(&item)
        .and_then(|p| p.checkpoint)
        .expect("checkpoint");
    assert_eq!((checkpoint.parts, checkpoint.bytes), (2, 2 * PART));

    service.process(&job, &attempt(60)).await.expect("resumed");
    assert_eq!(sink.take_parts(), vec![3, 4], "only the missing parts");
    let seen = f.origin.seen("/long");
    assert_eq!(
        seen[1].range.as_deref(),
        Some(format!("bytes={}-", 2 * PART).as_str())
    );
    let key = layout::object_key(&job);
    assert!(f.object(&key).await.expect("object") == bytes);
    assert_eq!(
        f.tag(&key).await,
        Some(sha_hex(&bytes)),
        "whole-file digest across attempts"
    );
}

#[tokio::test]
async fn a_crashed_copiers_lease_is_taken_over_once_it_runs_out() {
    let f = fixture().await;
    let bytes = data((2 * PART + 5) as usize, 8);
    let url = f.origin.route(
        "/crash",
        Route::file(bytes.clone()).stalled(PART + MIB, Duration::from_secs(30)),
    );
    let job = job(FileKind::Recording, &url);
    let (service, sink) = f.service_with(dev_policy(), settings(Duration::from_secs(2)));
    // The "crash": the copy is dropped mid-body, with no chance to release anything.
    let crashed =
        tokio::time::timeout(Duration::from_secs(4), service.process(&job, &attempt(600))).await;
    assert!(crashed.is_err(), "still copying when it crashed");
    assert_eq!(sink.take_parts(), vec![1]);
    assert!(matches!(f.status(&job).await, CopyStatus::Copying { .. }));

    tokio::time::sleep(Duration::from_millis(2_200)).await;
    service
        .process(&job, &attempt(60))
        .await
        .expect("taken over");
    assert_eq!(sink.take_parts(), vec![2, 3]);
    assert!(f.object(&layout::object_key(&job)).await.expect("object") == bytes);
}

#[tokio::test]
async fn last_delivery_aborts_the_upload_and_marks_the_job_failed() {
    let f = fixture().await;
    let bytes = data((PART + 10) as usize, 9);
    let url = f
        .origin
        .route("/flaky", Route::file(bytes).truncated(5, PART + 5));
    let job = job(FileKind::Recording, &url);
    let mut s = settings(Duration::from_secs(60));
    s.max_attempts = Some(2);
    let (service, _) = f.service_with(dev_policy(), s);
    let mut last = attempt(60);
    last.receive_count = 2;
    let failure = expect_failure(service.process(&job, &last).await, FailureClass::Retryable);
    assert!(
        failure.reason.contains("retries exhausted"),
        "{}",
        failure.reason
    );
    assert!(matches!(
        f.status(&job).await,
        CopyStatus::Failed {
            permanent: false,
            ..
        }
    ));
    assert_eq!(f.open_uploads().await, 0, "no orphaned parts");
    // Waiting in the DLQ for a redrive: at risk, whatever its link has left.
    let state = f.state(&job).await;
    assert_eq!(
        text(&state, copy_attr::AT_RISK_CAUSE),
        Some("retries_exhausted")
    );
    assert!(
        text(&state, copy_attr::AT_RISK_REASON).is_some_and(|r| r.contains("retries exhausted"))
    );
}

fn text<'a>(
    item: &'a HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    name: &str,
) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

async fn refused(f: &Fixture, policy: SourcePolicy, link: &str) -> String {
    let job = job(FileKind::Recording, link);
    let (service, _) = f.service_with(policy, settings(Duration::from_secs(60)));
    let failure = expect_failure(
        service.process(&job, &attempt(30)).await,
        FailureClass::Permanent,
    );
    assert!(
        failure.reason.contains("refused by the source policy"),
        "{link}: {}",
        failure.reason
    );
    assert!(
        !failure.reason.contains(link),
        "the reason must not echo the link"
    );
    assert!(matches!(
        f.status(&job).await,
        CopyStatus::Failed {
            permanent: true,
            ..
        }
    ));
    failure.reason
}

#[tokio::test]
async fn ssrf_production_policy_refuses_every_internal_or_unlisted_target() {
    let f = fixture().await;
    let prod = SourcePolicy::production_default;
    let port = f.origin.addr.port();
    let reason = refused(&f, prod(), &f.origin.url("/x")).await;
    assert!(reason.contains("scheme"), "{reason}");
    let reason = refused(
        &f,
        prod(),
        "http://objectstorage.eu-frankfurt-1.oraclecloud.com/x",
    )
    .await;
    assert!(reason.contains("scheme"), "{reason}");
    let reason = refused(&f, prod(), "https://evil.example.com/x?sig=secret").await;
    assert!(reason.contains("allowed source hosts"), "{reason}");
    for link in [
        format!("https://127.0.0.1:{port}/x"),
        "https://10.1.2.3/x".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        format!("https://[::1]:{port}/x"),
        "https://[fc00::1]/x".to_owned(),
        "https://[::ffff:169.254.169.254]/x".to_owned(),
    ] {
        let reason = refused(&f, prod(), &link).await;
        assert!(
            reason.contains("not a public unicast address"),
            "{link}: {reason}"
        );
    }
    // A listed name is still refused when it resolves to an internal address: the check runs
    // on the resolved address the client would connect to.
    let listed = SourcePolicy::new(
        vec![HostPattern::parse("localhost").expect("pattern")],
        false,
    );
    let reason = refused(&f, listed, &format!("https://localhost:{port}/x")).await;
    assert!(
        reason.contains("127.0.0.1") || reason.contains("::1"),
        "{reason}"
    );
    assert!(
        f.origin.seen("/x").is_empty(),
        "no request reached the origin"
    );
}

#[tokio::test]
async fn ssrf_redirects_are_rechecked_even_from_the_allowed_local_origin() {
    let f = fixture().await;
    for (path, target) in [
        (
            "/to-metadata",
            "http://169.254.169.254/latest/meta-data/iam/",
        ),
        (
            "/to-metadata-tls",
            "https://169.254.169.254/latest/meta-data/",
        ),
        ("/to-private", "https://10.0.0.1/"),
        ("/to-unlisted", "https://evil.example.com/"),
    ] {
        let url = f.origin.route(path, Route::redirect(target));
        refused(&f, dev_policy(), &url).await;
        assert_eq!(f.origin.seen(path).len(), 1);
    }
    // Redirects to allowed targets are followed (and limited).
    let bytes = data(1000, 10);
    let file = f.origin.route("/target", Route::file(bytes.clone()));
    let hop = f.origin.route("/hop", Route::redirect(file));
    let hop_job = job(FileKind::Chat, &hop);
    let (service, _) = f.service();
    service
        .process(&hop_job, &attempt(30))
        .await
        .expect("followed");
    assert!(
        f.object(&layout::object_key(&hop_job))
            .await
            .expect("object")
            == bytes
    );
    let mut loop_url = f.origin.url("/loop0");
    for i in 0..5 {
        loop_url = f
            .origin
            .route(&format!("/loop{}", i + 1), Route::redirect(loop_url));
    }
    let job = job(FileKind::Chat, &loop_url);
    let failure = expect_failure(
        service.process(&job, &attempt(30)).await,
        FailureClass::Permanent,
    );
    assert!(failure.reason.contains("redirects"), "{}", failure.reason);
}

#[tokio::test]
async fn every_kind_is_copied_including_screenshot_lists() {
    let f = fixture().await;
    let (service, _) = f.service();
    for (kind, path, content_type) in [
        (
            FileKind::Transcription,
            "/t/transcript.json",
            "application/json",
        ),
        (FileKind::Chat, "/c/chat.json", "application/json"),
        (FileKind::VideoSegment, "/v/segment.mp4", "video/mp4"),
        (FileKind::Document, "/d/slides.pdf", "application/pdf"),
        (FileKind::Rtcstats, "/r/stats.gz", "application/gzip"),
    ] {
        let bytes = data(50_000, path.len() as u64);
        let url = f
            .origin
            .route(path, Route::file(bytes.clone()).content_type(content_type));
        let mut job = job(kind, &url);
        if kind == FileKind::Document {
            job.meta.file_name = Some("Quarterly slides.pdf".into());
        }
        service.process(&job, &attempt(30)).await.expect("copied");
        let key = layout::object_key(&job);
        assert!(key.contains(&format!("/{}/", kind.as_str())), "{key}");
        if kind == FileKind::Document {
            assert!(key.ends_with("-Quarterly%20slides.pdf"), "{key}");
        }
        assert!(f.object(&key).await.expect("object") == bytes, "{key}");
    }

    let shots: Vec<Bytes> = (0..3).map(|i| data(20_000 + i, 100 + i as u64)).collect();
    let links: Vec<String> = shots
        .iter()
        .enumerate()
        .map(|(i, b)| {
            f.origin.route(
                &format!("/s/shot{i}.png"),
                Route::file(b.clone()).content_type("image/png"),
            )
        })
        .collect();
    let list = serde_json::json!({"screenshots": [
        {"url": links[0], "timestamp": 1},
        links[1],
        {"preAuthenticatedLink": links[2]},
    ]});
    let list_url = f.origin.route(
        "/s/list",
        Route::file(list.to_string()).content_type("application/json"),
    );
    let job = job(FileKind::Screenshots, &list_url);
    let done = service.process(&job, &attempt(30)).await.expect("copied");
    let Done::Copied(result) = done else {
        panic!("{done:?}")
    };
    assert_eq!(result.objects, 3);
    for (i, (link, bytes)) in links.iter().zip(&shots).enumerate() {
        let key = layout::screenshot_key(&job, i, link);
        assert!(key.contains("/screenshots/"), "{key}");
        assert!(f.object(&key).await.expect("screenshot") == *bytes, "{key}");
        assert_eq!(f.tag(&key).await, Some(sha_hex(bytes)));
    }
    assert_eq!(f.open_uploads().await, 0);
}

#[tokio::test]
async fn a_screenshot_that_is_gone_fails_the_job_permanently_without_orphans() {
    let f = fixture().await;
    let ok = f.origin.route("/s2/a.png", Route::file(data(100, 1)));
    let gone = f.origin.route("/s2/b.png", Route::status(404));
    let list = f.origin.route(
        "/s2/list",
        Route::file(serde_json::json!([ok, gone]).to_string()),
    );
    let job = job(FileKind::Screenshots, &list);
    let (service, _) = f.service();
    let failure = expect_failure(
        service.process(&job, &attempt(30)).await,
        FailureClass::Permanent,
    );
    assert!(
        failure.reason.contains("screenshot 1"),
        "{}",
        failure.reason
    );
    assert_eq!(f.open_uploads().await, 0);
}

fn sqs_event(records: &[(&str, String, u32)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (id, body, receives) in records {
        let mut m = SqsMessage::default();
        m.message_id = Some((*id).to_owned());
        m.receipt_handle = Some(format!("receipt-{id}"));
        m.body = Some(body.clone());
        m.attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
        event.records.push(m);
    }
    event
}

fn invocation(secs: u64) -> Invocation {
    Invocation {
        request_id: unique("request"),
        stop_at: tokio::time::Instant::now() + Duration::from_secs(secs),
    }
}

#[tokio::test]
async fn a_batch_from_sqs_reports_exactly_the_failing_record() {
    let f = fixture().await;
    let emu = emulator();
    let queue = emu.queue().await;
    let good1 = f.origin.route("/b/one.json", Route::file(data(1000, 1)));
    let broken = f
        .origin
        .route("/b/broken", Route::file(data(1000, 2)).failing(100));
    let forbidden = f.origin.route("/b/forbidden", Route::status(403));
    let good2 = f.origin.route("/b/two.json", Route::file(data(2000, 3)));
    let jobs = [
        job(FileKind::Chat, &good1),
        job(FileKind::Chat, &broken),
        job(FileKind::Chat, &forbidden),
        job(FileKind::Chat, &good2),
    ];
    for j in &jobs {
        emu.sqs()
            .send_message()
            .queue_url(&queue)
            .message_body(j.to_json())
            .send()
            .await
            .expect("send");
    }
    let mut event = SqsEvent::default();
    while event.records.len() < jobs.len() {
        let out = emu
            .sqs()
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .visibility_timeout(60)
            .send()
            .await
            .expect("receive");
        let received = lambda_event(&out.messages.unwrap_or_default(), &queue);
        event.records.extend(received.records);
    }
    let broken_id = event
        .records
        .iter()
        .find(|r| r.body.as_deref() == Some(jobs[1].to_json().as_str()))
        .and_then(|r| r.message_id.clone())
        .expect("broken job's message");

    let (service, _) = f.service();
    let handler = JobHandler::new(
        service,
        SqsJobQueue::new(emu.sqs(), &queue),
        RetryBackoff::default(),
    );
    let response = handle_batch(&handler, event, &invocation(60)).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec![broken_id]);
    assert_eq!(f.status(&jobs[0]).await, CopyStatus::Copied);
    assert_eq!(f.status(&jobs[3]).await, CopyStatus::Copied);
    assert!(matches!(
        f.status(&jobs[2]).await,
        CopyStatus::Failed {
            permanent: true,
            ..
        }
    ));
    assert_eq!(f.status(&jobs[1]).await, CopyStatus::Pending);
}

#[tokio::test]
async fn unsupported_job_versions_are_recorded_and_acknowledged_unreadable_ones_kept() {
    let f = fixture().await;
    let (service, _) = f.service();
    let handler = JobHandler::new(service, MemoryQueue::new(), RetryBackoff::default());
    let future = job(FileKind::Chat, "https://8x8.vc/x");
    let body = future.to_json().replacen("\"v\":2", "\"v\":99", 1);
    let event = sqs_event(&[("m-v99", body, 1), ("m-junk", "not json".into(), 1)]);
    let response = handle_batch(&handler, event, &invocation(60)).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        vec!["m-junk"],
        "unreadable messages go to the DLQ intact"
    );
    match f.status(&future).await {
        CopyStatus::Failed { permanent, reason } => {
            assert!(permanent);
            assert!(reason.contains("version 99"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failing_record_comes_back_after_a_growing_backoff_not_the_visibility_timeout() {
    let f = fixture().await;
    let url = f
        .origin
        .route("/backoff", Route::file(data(1000, 20)).failing(100));
    let job = job(FileKind::Chat, &url);
    let (service, _) = f.service();
    let queue = MemoryQueue::new();
    let handler = JobHandler::new(service, queue.clone(), RetryBackoff::default());
    for (receives, secs) in [(1, 10), (2, 30), (3, 90), (4, 270)] {
        let event = sqs_event(&[("m-retry", job.to_json(), receives)]);
        let response = handle_batch(&handler, event, &invocation(60)).await;
        assert_eq!(response.batch_item_failures.len(), 1, "returned");
        assert_eq!(
            queue.calls().last(),
            Some(&QueueCall::RetryAfter {
                receipt_handle: "receipt-m-retry".into(),
                delay: Duration::from_secs(secs),
            }),
            "delivery {receives}"
        );
    }
    // ChangeMessageVisibility failing: the record is still returned (it waits the full
    // visibility timeout instead: late, never lost).
    queue.fail_retry(true);
    let event = sqs_event(&[("m-retry", job.to_json(), 1)]);
    let response = handle_batch(&handler, event, &invocation(60)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(f.status(&job).await, CopyStatus::Pending);
}

#[tokio::test]
async fn a_busy_job_comes_back_when_the_other_lease_runs_out() {
    let f = fixture().await;
    let bytes = data((PART + 10) as usize, 21);
    let url = f.origin.route(
        "/busy",
        Route::file(bytes).stalled(MIB, Duration::from_secs(30)),
    );
    let job = job(FileKind::Recording, &url);
    let (service, _) = f.service_with(dev_policy(), settings(Duration::from_secs(40)));
    let queue = MemoryQueue::new();
    let handler = std::sync::Arc::new(JobHandler::new(
        service,
        queue.clone(),
        RetryBackoff::default(),
    ));
    let first = {
        let (handler, job) = (handler.clone(), job.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(3),
                handler.service().process(&job, &attempt(600)),
            )
            .await;
        })
    };
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let event = sqs_event(&[("m-dup", job.to_json(), 1)]);
    let response = handle_batch(&handler, event, &invocation(60)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    match queue.calls().as_slice() {
        [QueueCall::RetryAfter { delay, .. }] => assert!(
            (Duration::from_secs(30)..=Duration::from_secs(41)).contains(delay),
            "waits for the 40 s lease, not 10 s nor 5400 s: {delay:?}"
        ),
        other => panic!("{other:?}"),
    }
    first.await.expect("first copier");
}

#[tokio::test]
async fn a_running_copy_beats_its_lease_and_its_records_visibility() {
    let f = fixture().await;
    // One part that takes longer than the lease: only the heartbeat keeps the job this
    // copier's (checkpoints come per part).
    let bytes = data((PART + 10) as usize, 23);
    let url = f.origin.route(
        "/slow-part",
        Route::file(bytes.clone()).stalled(MIB, Duration::from_secs(9)),
    );
    let job = job(FileKind::Recording, &url);
    let lease = Duration::from_secs(5);
    let (service, _) = f.service_with(dev_policy(), settings(lease));
    let queue = MemoryQueue::new();
    let handler = std::sync::Arc::new(JobHandler::new(
        service,
        queue.clone(),
        RetryBackoff::default(),
    ));
    let running = {
        let (handler, job) = (handler.clone(), job.clone());
        tokio::spawn(async move {
            let event = sqs_event(&[("m-slow", job.to_json(), 1)]);
            handle_batch(&handler, event, &invocation(120)).await
        })
    };
    // Past the lease, a second copier finds the job still held, not free to take over.
    tokio::time::sleep(lease + Duration::from_secs(2)).await;
    let second = handler.service().process(&job, &attempt(60)).await;
    assert!(
        matches!(&second, Err(e) if e.class == FailureClass::Busy),
        "{second:?}"
    );
    let response = running.await.expect("first copier");
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(f.status(&job).await, CopyStatus::Copied);
    let stored = f.object(&layout::object_key(&job)).await.expect("object");
    assert_eq!(sha_hex(&stored), sha_hex(&bytes));
    // The record was kept invisible for a lease and a bit, from the start, several times.
    let holds = queue.holds();
    assert!(holds.len() >= 3, "{holds:?}");
    assert!(
        holds
            .iter()
            .all(|(r, h)| r == "receipt-m-slow" && *h == lease + HEARTBEAT_SLACK),
        "{holds:?}"
    );
}

#[tokio::test]
async fn the_backoff_shortens_the_real_messages_visibility_on_sqs() {
    let f = fixture().await;
    let emu = emulator();
    let sqs = emu.sqs();
    // The production queue's visibility timeout: without the backoff the record would be
    // invisible for 90 minutes.
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("backoff"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            meeting_hooks::schema::JOBS_QUEUE
                .visibility_timeout_secs
                .to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let url = f
        .origin
        .route("/sqs-backoff", Route::file(data(1000, 22)).failing(100));
    let job = job(FileKind::Chat, &url);
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(job.to_json())
        .send()
        .await
        .expect("send");
    let (service, _) = f.service();
    let handler = JobHandler::new(
        service,
        SqsJobQueue::new(sqs.clone(), &queue_url),
        RetryBackoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        },
    );
    let receive = || async {
        sqs.receive_message()
            .queue_url(&queue_url)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    };
    let to_event =
        |m: &aws_sdk_sqs::types::Message| lambda_event(std::slice::from_ref(m), &queue_url);
    let first = receive().await;
    assert_eq!(first.len(), 1);
    let returned_at = std::time::Instant::now();
    let response = handle_batch(&handler, to_event(&first[0]), &invocation(60)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(receive().await.is_empty(), "hidden during the backoff");
    let again = loop {
        let m = receive().await;
        if !m.is_empty() {
            break m;
        }
        assert!(
            returned_at.elapsed() < Duration::from_secs(15),
            "the record did not come back after its 2 s backoff"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(returned_at.elapsed() >= Duration::from_millis(1_500));
    let count = again[0]
        .attributes
        .as_ref()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .cloned();
    assert_eq!(count.as_deref(), Some("2"));
    // The second failure waits three times longer.
    handle_batch(&handler, to_event(&again[0]), &invocation(60)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        receive().await.is_empty(),
        "6 s backoff after the second delivery"
    );
}

fn with_attempts(max: u32) -> CopySettings {
    let mut s = settings(Duration::from_secs(60));
    s.max_attempts = Some(max);
    s
}

#[tokio::test]
async fn a_deadline_stop_after_progress_continues_in_a_fresh_message_without_spending_receives() {
    let f = fixture().await;
    let bytes = data((3 * PART + 77) as usize, 30);
    // Every answer stalls after a part and a bit: each invocation (3 s) checkpoints one part.
    let url = f.origin.route(
        "/continued",
        Route::file(bytes.clone()).stalled(PART + MIB, Duration::from_secs(8)),
    );
    let job = job(FileKind::Recording, &url);
    let (service, _) = f.service_with(dev_policy(), with_attempts(4));
    let queue = MemoryQueue::new();
    let handler = JobHandler::new(service, queue.clone(), RetryBackoff::default());

    // The queue's last receive: a deadline stop with progress is not a failure.
    let event = sqs_event(&[("m-first", job.to_json(), 4)]);
    let response = handle_batch(&handler, event, &invocation(3)).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "acknowledged: the continuation carries the job"
    );
    assert_eq!(
        queue.calls(),
        vec![QueueCall::Continue {
            job_id: job.job_id.clone(),
            body: job.to_json(),
            delay: Duration::ZERO,
        }]
    );
    assert_eq!(f.status(&job).await, CopyStatus::Pending, "lease released");
    let cp = progress_of(&f.state(&job).await)
        .and_then(|p| p.checkpoint)
        .expect("checkpoint");
    assert_eq!(cp.parts, 1);

    // The continuation cannot be sent: the record is returned (with its backoff), not lost.
    queue.fail_continue(true);
    let event = sqs_event(&[("m-second", job.to_json(), 1)]);
    let response = handle_batch(&handler, event, &invocation(3)).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        queue.calls().last(),
        Some(&QueueCall::RetryAfter {
            receipt_handle: "receipt-m-second".into(),
            delay: Duration::from_secs(10),
        })
    );
    queue.fail_continue(false);

    // Duplicated continuations are harmless: both deliveries in one batch, one copy.
    let event = sqs_event(&[("m-cont", job.to_json(), 1), ("m-dup", job.to_json(), 1)]);
    let response = handle_batch(&handler, event, &invocation(60)).await;
    assert!(response.batch_item_failures.is_empty());
    let key = layout::object_key(&job);
    assert!(f.object(&key).await.expect("object") == bytes);
    assert_eq!(f.tag(&key).await, Some(sha_hex(&bytes)));
    assert_eq!(f.status(&job).await, CopyStatus::Copied);
    assert_eq!(f.open_uploads().await, 0);
    let objects = emulator()
        .s3()
        .list_objects_v2()
        .bucket(&f.bucket)
        .send()
        .await
        .expect("list")
        .key_count();
    assert_eq!(objects, Some(1), "no duplicate object");
}

#[tokio::test]
async fn a_deadline_stop_without_progress_counts_as_a_failure_and_the_last_one_aborts() {
    let f = fixture().await;
    let bytes = data((2 * PART) as usize, 31);
    // Stalls before the first part is complete: no invocation ever makes progress.
    let url = f.origin.route(
        "/hopeless",
        Route::file(bytes).stalled(MIB, Duration::from_secs(8)),
    );
    let job = job(FileKind::Recording, &url);
    let (service, _) = f.service_with(dev_policy(), with_attempts(2));
    let queue = MemoryQueue::new();
    let handler = JobHandler::new(service, queue.clone(), RetryBackoff::default());
    let event = sqs_event(&[("m-1", job.to_json(), 1)]);
    let response = handle_batch(&handler, event, &invocation(2)).await;
    assert_eq!(response.batch_item_failures.len(), 1, "returned");
    assert_eq!(
        queue.calls(),
        vec![QueueCall::RetryAfter {
            receipt_handle: "receipt-m-1".into(),
            delay: Duration::from_secs(10),
        }]
    );
    assert_eq!(f.status(&job).await, CopyStatus::Pending);
    assert_eq!(f.open_uploads().await, 1, "kept for the next delivery");
    // The last receive: the upload is aborted and the failure recorded before the DLQ.
    let event = sqs_event(&[("m-1", job.to_json(), 2)]);
    let response = handle_batch(&handler, event, &invocation(2)).await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "returned to reach the DLQ"
    );
    assert!(matches!(
        f.status(&job).await,
        CopyStatus::Failed {
            permanent: false,
            ..
        }
    ));
    assert_eq!(f.open_uploads().await, 0, "no orphaned upload");
}

/// Attempt 1 is cut after a part and a bit; then the origin's file is replaced by another of
/// the same length before attempt 2 resumes.
async fn changed_between_attempts(f: &Fixture, path: &str, route: Route) -> (CopyJob, Bytes) {
    let new = data((2 * PART + 77) as usize, 41);
    let url = f.origin.route(
        path,
        route
            .truncated(1, PART + MIB)
            .changing_after(1, new.clone()),
    );
    let job = job(FileKind::Recording, &url);
    let (service, _) = f.service();
    expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Retryable,
    );
    let cp = progress_of(&f.state(&job).await)
        .and_then(|p| p.checkpoint)
        .expect("checkpoint");
    assert_eq!(cp.parts, 1, "one part of the old file stored");
    service.process(&job, &attempt(60)).await.expect("copied");
    let key = layout::object_key(&job);
    assert!(
        f.object(&key).await.expect("object") == new,
        "the stored object is exactly the new file (no splice)"
    );
    assert_eq!(f.tag(&key).await, Some(sha_hex(&new)), "sha tag matches");
    assert_eq!(f.open_uploads().await, 0, "the old upload was aborted");
    (job, new)
}

#[tokio::test]
async fn content_changed_between_attempts_with_the_same_length_is_copied_anew_via_if_range() {
    let f = fixture().await;
    let old = data((2 * PART + 77) as usize, 40);
    changed_between_attempts(&f, "/changed", Route::file(old.clone())).await;
    let seen = f.origin.seen("/changed");
    assert_eq!(seen.len(), 2, "the 200 answer to If-Range is used as is");
    assert_eq!(seen[1].range.as_deref(), Some("bytes=5242880-"));
    assert_eq!(
        seen[1].if_range.as_deref(),
        Some(integration_tests::origin::etag_of(&old).as_str())
    );
}

#[tokio::test]
async fn an_origin_ignoring_if_range_is_caught_by_the_validator_of_its_206() {
    let f = fixture().await;
    let old = data((2 * PART + 77) as usize, 40);
    changed_between_attempts(&f, "/changed-206", Route::file(old).ignoring_if_range()).await;
    let seen = f.origin.seen("/changed-206");
    assert_eq!(seen.len(), 3, "resume refused, then the whole new file");
    assert_eq!(seen[2].range, None);
}

#[tokio::test]
async fn a_weak_etag_is_never_sent_as_if_range() {
    let f = fixture().await;
    let old = data((2 * PART + 77) as usize, 40);
    // Weak ETag and Last-Modified: the date is the validator.
    let date = "Wed, 21 Oct 2026 07:28:00 GMT";
    changed_between_attempts(
        &f,
        "/weak-dated",
        Route::file(old.clone())
            .etag(Some("W/\"v1\""))
            .last_modified(date),
    )
    .await;
    let seen = f.origin.seen("/weak-dated");
    assert_eq!(seen[1].if_range.as_deref(), Some(date));
    // Weak ETag only: nothing to resume against, so attempt 2 starts from byte 0.
    changed_between_attempts(&f, "/weak", Route::file(old).etag(Some("W/\"v1\""))).await;
    let seen = f.origin.seen("/weak");
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[1].range.as_deref(), seen[1].if_range.as_deref()),
        (None, None)
    );
}

#[tokio::test]
async fn a_huge_announced_length_is_refused_before_any_upload_or_buffer() {
    let f = fixture().await;
    // 1 TiB announced (old code sized 105 MiB parts from it), a few bytes sent.
    let url = f
        .origin
        .route("/huge.mp4", Route::file(data(4096, 50)).declaring(1 << 40));
    let job = job(FileKind::Recording, &url);
    let (service, sink) = f.service();
    let failure = expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Permanent,
    );
    assert!(
        failure.reason.contains("1099511627776 bytes"),
        "{}",
        failure.reason
    );
    assert!(!failure.reason.contains("http"), "no link in the reason");
    assert_eq!(sink.creates.load(Ordering::SeqCst), 0, "no upload started");
    assert_eq!(f.open_uploads().await, 0);
    assert!(matches!(
        f.status(&job).await,
        CopyStatus::Failed {
            permanent: true,
            ..
        }
    ));
}

#[tokio::test]
async fn a_body_longer_than_the_jobs_declared_size_is_refused() {
    let f = fixture().await;
    // Announced honestly but far larger than the webhook's fileSize (beyond twice it plus
    // 1 MiB): refused before reading.
    let url = f
        .origin
        .route("/doc-big", Route::file(data((2 * MIB) as usize, 51)));
    let mut declared = job(FileKind::Document, &url);
    declared.meta.file_size = Some(1000);
    let (service, sink) = f.service();
    let failure = expect_failure(
        service.process(&declared, &attempt(60)).await,
        FailureClass::Permanent,
    );
    assert!(failure.reason.contains("1050576"), "{}", failure.reason);
    assert_eq!(sink.creates.load(Ordering::SeqCst), 0);
    // No length at all: the body is cut off at the limit, the upload aborted.
    let url = f.origin.route(
        "/doc-unbounded",
        Route::file(data((5 * MIB) as usize, 52)).without_length(),
    );
    let mut unbounded = job(FileKind::Document, &url);
    unbounded.meta.file_size = Some(MIB as i64);
    let failure = expect_failure(
        service.process(&unbounded, &attempt(60)).await,
        FailureClass::Permanent,
    );
    assert!(
        failure.reason.contains("more than the 3145728 bytes"),
        "{}",
        failure.reason
    );
    assert_eq!(f.open_uploads().await, 0, "upload aborted");
    assert!(f.object(&layout::object_key(&unbounded)).await.is_none());
    // A declared size that is a little off never costs the file: 1500 bytes declared 1000.
    let off = data(1500, 54);
    let url = f.origin.route("/doc-off", Route::file(off.clone()));
    let mut slightly_off = job(FileKind::Document, &url);
    slightly_off.meta.file_size = Some(1000);
    service
        .process(&slightly_off, &attempt(60))
        .await
        .expect("copied despite an inexact fileSize");
    assert!(
        f.object(&layout::object_key(&slightly_off))
            .await
            .expect("object")
            == off
    );
    // Within the declared size, a body without a length is copied.
    let small = data(700, 53);
    let url = f
        .origin
        .route("/doc-ok", Route::file(small.clone()).without_length());
    let mut ok = job(FileKind::Document, &url);
    ok.meta.file_size = Some(1000);
    service.process(&ok, &attempt(60)).await.expect("copied");
    assert!(f.object(&layout::object_key(&ok)).await.expect("object") == small);
}

// ---- Provider objects (Daily): the link is asked of the provider's REST API per attempt ----

const DAILY_KEY: &str = "daily-api-key-never-logged";

/// A Daily recording job whose access link the test origin's `/v1` answers.
fn daily_job(recording_id: &str) -> CopyJob {
    CopyJob {
        provider: "daily".into(),
        job_id: format!("daily:recording:{recording_id}"),
        file: meeting_hooks::facts::FileSource::Object(meeting_hooks::facts::ProviderObject {
            object: "recording".into(),
            id: recording_id.into(),
            part: None,
        }),
        ..job(FileKind::Recording, "https://unused.invalid/")
    }
}

fn daily_api(f: &Fixture) -> meeting_hooks::providers::daily::api::DailyApi {
    meeting_hooks::providers::daily::api::DailyApi::new(
        &f.origin.url("/v1"),
        secrecy::SecretString::from(DAILY_KEY),
        Duration::from_secs(5),
    )
    .expect("client")
}

/// Routes the access-link endpoint of `id` to an answer pointing at `file_path`.
fn access_link_route(f: &Fixture, id: &str, file_path: &str, route: fn(Bytes) -> Route) -> String {
    let answer = serde_json::json!({
        "download_link": f.origin.url(file_path),
        "expires": now_ms() / 1000 + 3600,
    });
    let path = format!("/v1/recordings/{id}/access-link");
    f.origin.route(
        &path,
        route(Bytes::from(answer.to_string())).content_type("application/json"),
    );
    path
}

#[tokio::test]
async fn a_daily_recording_gets_a_fresh_access_link_on_every_attempt() {
    let f = fixture().await;
    let bytes = data((PART + 999) as usize, 31);
    let id = unique("rec");
    // The API fails once, then the file fails once: three links asked, two fetches.
    let link_path = access_link_route(&f, &id, "/daily-file", |b| Route::file(b).failing(1));
    f.origin
        .route("/daily-file", Route::file(bytes.clone()).failing(1));
    let job = daily_job(&id);
    let (service, _) = f.service_with(dev_policy(), with_inline_retries(4));
    let service = service.with_resolver(Arc::new(daily_api(&f)));

    let done = service
        .process(&job, &attempt(60))
        .await
        .expect("copied in one delivery");
    assert!(matches!(done, Done::Copied(_)), "{done:?}");
    assert_eq!(f.origin.seen(&link_path).len(), 3, "a link per attempt");
    assert_eq!(f.origin.seen("/daily-file").len(), 2);
    let stored = f.object(&layout::object_key(&job)).await.expect("object");
    assert_eq!(sha_hex(&stored), sha_hex(&bytes));
    assert_eq!(f.status(&job).await, CopyStatus::Copied);
    assert_eq!(f.open_uploads().await, 0);
}

#[tokio::test]
async fn a_refused_api_key_is_retried_later_and_never_named_in_the_failure() {
    let f = fixture().await;
    let id = unique("rec");
    let path = format!("/v1/recordings/{id}/access-link");
    f.origin.route(&path, Route::status(401));
    let job = daily_job(&id);
    let (service, _) = f.service();
    let service = service.with_resolver(Arc::new(daily_api(&f)));

    // A fixed key makes the job succeed: retryable, the upload never started.
    let failure = expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Retryable,
    );
    let text = format!("{failure:?} {}", failure.reason);
    assert!(failure.reason.contains("401"), "{}", failure.reason);
    assert!(!text.contains(DAILY_KEY), "{text}");
    assert!(f.object(&layout::object_key(&job)).await.is_none());

    // The key is fixed: the next delivery copies.
    let bytes = data(4096, 32);
    access_link_route(&f, &id, "/daily-fixed", Route::file);
    f.origin.route("/daily-fixed", Route::file(bytes.clone()));
    let done = service
        .process(&job, &attempt(60))
        .await
        .expect("copied once the key works");
    assert!(matches!(done, Done::Copied(_)), "{done:?}");
    let stored = f.object(&layout::object_key(&job)).await.expect("object");
    assert_eq!(stored, bytes);
}

#[tokio::test]
async fn a_recording_daily_no_longer_has_fails_for_good_without_a_fetch() {
    let f = fixture().await;
    let id = unique("rec");
    let path = format!("/v1/recordings/{id}/access-link");
    f.origin.route(&path, Route::status(404));
    let job = daily_job(&id);
    let (service, _) = f.service();
    let service = service.with_resolver(Arc::new(daily_api(&f)));
    let failure = expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Permanent,
    );
    assert!(failure.reason.contains("404"), "{}", failure.reason);
    assert!(matches!(
        f.status(&job).await,
        CopyStatus::Failed {
            permanent: true,
            ..
        }
    ));
}

#[tokio::test]
async fn a_daily_access_link_outside_dailys_hosts_is_refused() {
    let f = fixture().await;
    let id = unique("rec");
    let answer = serde_json::json!({"download_link": "https://files.example.com/r.mp4"});
    f.origin.route(
        &format!("/v1/recordings/{id}/access-link"),
        Route::file(Bytes::from(answer.to_string())).content_type("application/json"),
    );
    let job = daily_job(&id);
    // Production hosts for Daily; the link's host is not among them.
    let policies = meeting_hooks::copier::policy::SourcePolicies::new(vec![(
        "daily".into(),
        SourcePolicy::new(
            meeting_hooks::providers::daily::SOURCE_HOSTS
                .iter()
                .map(|h| HostPattern::parse(h).expect("pattern"))
                .collect(),
            false,
        ),
    )]);
    let emu = emulator();
    let origin = HttpOrigin::with_policies(
        policies,
        3,
        Duration::from_secs(5),
        Duration::from_secs(10),
        meeting_hooks::copier::origin::SystemLookup,
    )
    .expect("client");
    let service = CopyService::new(
        DynamoCopyStore::new(emu.dynamodb(), &f.table),
        S3MultipartSink::new(meeting_hooks::aws::s3(&emu.sdk), &f.bucket),
        origin,
        settings(Duration::from_secs(60)),
    )
    .with_resolver(Arc::new(daily_api(&f)));
    let failure = expect_failure(
        service.process(&job, &attempt(60)).await,
        FailureClass::Permanent,
    );
    assert!(
        failure.reason.contains("allowed source hosts"),
        "{}",
        failure.reason
    );
    assert!(!failure.reason.contains("/r.mp4"), "{}", failure.reason);
}
