//! webhook-ingest end to end: the real handler (lambda_http request in, response out) with the
//! real AWS SDK against moto_server on loopback.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{Emulator, emulator};
use lambda_http::{Body, Request};
use meeting_hooks::aws::copies::DynamoCopyStore;
use meeting_hooks::aws::{blobs::S3BlobStore, events::DynamoEventStore, queue::SqsJobQueue};
use meeting_hooks::ingest::ports::{JobQueue, QueueError};
use meeting_hooks::ingest::{IngestConfig, IngestService, http as ingest_http};
use meeting_hooks::jaas::catalogue;
use meeting_hooks::jaas::signature::signature_header;
use meeting_hooks::jobs::{CopyJob, decode_job};
use meeting_hooks::respond::now_ms;
use meeting_hooks::schema::{self, event_attr as a};
use serde_json::Value;

const SECRET: &str = "whsec_integration_test_secret";

struct Stack {
    table: String,
    copies: String,
    queue_url: String,
    bucket: String,
}

impl Stack {
    async fn new() -> Self {
        let emu = emulator();
        Self {
            table: emu.table(&schema::EVENTS).await,
            copies: emu.table(&schema::COPIES).await,
            queue_url: emu.queue().await,
            bucket: emu.bucket().await,
        }
    }

    fn config(&self, extra: &[(&str, &str)]) -> IngestConfig {
        let mut env: HashMap<String, String> = [
            ("EVENTS_TABLE", self.table.as_str()),
            ("JOBS_QUEUE_URL", self.queue_url.as_str()),
            ("PAYLOAD_BUCKET", self.bucket.as_str()),
            ("JAAS_WEBHOOK_SECRETS", SECRET),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        IngestConfig::from_env(&env).expect("valid test config")
    }

    fn service(
        &self,
        extra: &[(&str, &str)],
    ) -> IngestService<DynamoEventStore, SqsJobQueue, S3BlobStore> {
        self.service_with_queue(extra, SqsJobQueue::new(emulator().sqs(), &self.queue_url))
    }

    fn service_with_queue<Q: JobQueue>(
        &self,
        extra: &[(&str, &str)],
        queue: Q,
    ) -> IngestService<DynamoEventStore, Q, S3BlobStore> {
        let emu = emulator();
        IngestService::new(
            DynamoEventStore::new(emu.dynamodb(), &self.table),
            queue,
            S3BlobStore::new(emu.s3(), &self.bucket),
            &self.config(extra),
        )
    }

    async fn items(&self) -> Vec<HashMap<String, AttributeValue>> {
        emulator().scan(&self.table).await
    }

    async fn jobs(&self) -> Vec<CopyJob> {
        emulator()
            .drain(&self.queue_url)
            .await
            .iter()
            .map(|b| decode_job(b).expect("valid job"))
            .collect()
    }
}

fn signed(body: &str) -> Request {
    signed_at(body, now_ms() / 1000)
}

fn signed_at(body: &str, t: i64) -> Request {
    ::http::Request::builder()
        .uri("/webhooks/jaas")
        .method("POST")
        .uri("/webhooks/jaas")
        .header("content-type", "application/json")
        .header(
            "x-jaas-signature",
            signature_header(SECRET, t, body.as_bytes()),
        )
        .body(Body::Text(body.to_owned()))
        .expect("request")
}

async fn send<S, Q, B>(svc: &IngestService<S, Q, B>, req: Request) -> (u16, Value)
where
    S: meeting_hooks::ingest::ports::EventStore + meeting_hooks::ingest::ports::ItemSize,
    Q: JobQueue,
    B: meeting_hooks::ingest::ports::BlobStore,
{
    let resp = ingest_http::handle(svc, req).await;
    let status = resp.status().as_u16();
    let body: Value = serde_json::from_slice(resp.body().as_ref()).expect("JSON response");
    (status, body)
}

fn s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn events(items: &[HashMap<String, AttributeValue>]) -> Vec<&HashMap<String, AttributeValue>> {
    items
        .iter()
        .filter(|i| s(i, a::KIND) == Some("event"))
        .collect()
}

#[tokio::test]
async fn every_catalogue_example_is_stored_once_and_recoverable_exactly() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    let examples = catalogue::examples();
    let mut statuses = Vec::new();
    for ex in &examples {
        let (code, body) = send(&svc, signed(&ex.body)).await;
        assert_eq!(code, 200, "{}: {body}", ex.section);
        statuses.push(body["status"].as_str().expect("status").to_owned());
    }
    // The catalogue reuses idempotency keys across different events: those are conflicts,
    // kept under derived keys, never dropped.
    assert!(
        statuses.iter().all(|s| s == "stored" || s == "conflict"),
        "{statuses:?}"
    );
    assert!(statuses.iter().any(|s| s == "conflict"));

    let items = stack.items().await;
    let stored = events(&items);
    assert_eq!(stored.len(), examples.len());
    for ex in &examples {
        let matching = stored
            .iter()
            .filter(|i| s(i, a::PAYLOAD) == Some(ex.body.as_str()))
            .count();
        assert_eq!(
            matching, 1,
            "{} stored byte for byte exactly once",
            ex.section
        );
    }
    let conflicts = stored
        .iter()
        .filter(|i| s(i, a::CONFLICT_OF).is_some())
        .count();
    assert_eq!(
        conflicts,
        statuses.iter().filter(|s| *s == "conflict").count()
    );

    // Every file event produced exactly one job, marked queued on its item.
    let jobs = stack.jobs().await;
    assert_eq!(
        jobs.len(),
        7,
        "{:?}",
        jobs.iter().map(|j| &j.job_id).collect::<Vec<_>>()
    );
    for job in &jobs {
        let item = stored
            .iter()
            .find(|i| s(i, a::KEY) == Some(job.source.stored_key.as_str()))
            .expect("job names a stored event");
        assert_eq!(s(item, a::JOB_STATE), Some("queued"));
        assert_eq!(s(item, a::JOB_ID), Some(job.job_id.as_str()));
    }

    // Delivering the whole catalogue again changes nothing.
    for ex in &examples {
        let (code, body) = send(&svc, signed(&ex.body)).await;
        assert_eq!(
            (code, body["status"].as_str()),
            (200, Some("duplicate")),
            "{}",
            ex.section
        );
    }
    assert_eq!(events(&stack.items().await).len(), examples.len());
    assert!(stack.jobs().await.is_empty());
}

#[tokio::test]
async fn a_repeat_is_a_duplicate_and_leaves_one_item() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    let body = catalogue::example("PARTICIPANT_JOINED").body;
    assert_eq!(send(&svc, signed(&body)).await.1["status"], "stored");
    assert_eq!(send(&svc, signed(&body)).await.1["status"], "duplicate");
    assert_eq!(events(&stack.items().await).len(), 1);
}

#[tokio::test]
async fn twenty_concurrent_deliveries_give_one_item_and_at_most_one_job() {
    let stack = Stack::new().await;
    let svc = Arc::new(stack.service(&[]));
    let body = catalogue::example("RECORDING_UPLOADED").body;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let svc = Arc::clone(&svc);
        let body = body.clone();
        tasks.push(tokio::spawn(
            async move { send(&*svc, signed(&body)).await },
        ));
    }
    let mut stored = 0;
    for t in tasks {
        let (code, body) = t.await.expect("task");
        match (code, body["status"].as_str(), body["error"].as_str()) {
            (200, Some("stored"), _) => stored += 1,
            (200, Some("duplicate"), _) | (503, _, Some("in_progress")) => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(events(&stack.items().await).len(), 1);
    assert_eq!(stack.jobs().await.len(), 1);
}

#[tokio::test]
async fn a_key_reused_with_a_different_payload_keeps_both() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    let first = catalogue::example("ROOM_DESTROYED").body;
    let second = catalogue::example("LIVE_STREAM_STARTED").body;
    assert_eq!(send(&svc, signed(&first)).await.1["status"], "stored");
    assert_eq!(send(&svc, signed(&second)).await.1["status"], "conflict");
    // A retry of the colliding delivery is a duplicate of the kept copy, not a third item.
    assert_eq!(send(&svc, signed(&second)).await.1["status"], "duplicate");
    let items = stack.items().await;
    let stored = events(&items);
    assert_eq!(stored.len(), 2);
    let flagged: Vec<_> = stored
        .iter()
        .filter(|i| s(i, a::CONFLICT_OF).is_some())
        .collect();
    assert_eq!(flagged.len(), 1);
    assert_eq!(
        s(flagged[0], a::CONFLICT_OF),
        Some("251d4ca8-6192-403c-9098-645042679257")
    );
    assert_eq!(s(flagged[0], a::PAYLOAD), Some(second.as_str()));
}

#[tokio::test]
async fn unknown_event_types_and_misshapen_data_are_stored() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    let unknown = r#"{"idempotencyKey":"u-1","eventType":"TRANSCRIPTION_STARTED","sessionId":"s","timestamp":1,"fqn":"a/r","data":{"x":1}}"#;
    let misshapen = r#"{"idempotencyKey":"u-2","eventType":"USAGE","sessionId":"s","timestamp":2,"fqn":"a/r","data":{"not":"a list"}}"#;
    assert_eq!(send(&svc, signed(unknown)).await.1["status"], "stored");
    assert_eq!(send(&svc, signed(misshapen)).await.1["status"], "stored");
    let items = stack.items().await;
    let by_key = |k: &str| {
        items
            .iter()
            .find(|i| s(i, a::KEY) == Some(k))
            .expect("stored")
    };
    assert_eq!(s(by_key("u-1"), a::PAYLOAD), Some(unknown));
    assert_eq!(
        s(by_key("u-1"), a::EVENT_TYPE),
        Some("TRANSCRIPTION_STARTED")
    );
    assert!(s(by_key("u-2"), a::DATA_ERROR).is_some_and(|e| e.starts_with("USAGE data")));
}

#[tokio::test]
async fn a_broken_sibling_field_still_yields_its_copy_job() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    let body = r#"{"idempotencyKey":"sib-1","eventType":"RECORDING_UPLOADED","sessionId":"s","timestamp":1,"fqn":"a/r","data":{"participants":null,"preAuthenticatedLink":"https://x.example/rec.mp4?sig=1"}}"#;
    assert_eq!(send(&svc, signed(body)).await.1["status"], "stored");
    let items = stack.items().await;
    let item = items
        .iter()
        .find(|i| s(i, a::KEY) == Some("sib-1"))
        .expect("stored");
    assert!(s(item, a::DATA_ERROR).is_some(), "still flagged");
    let jobs = stack.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].url().expect("url").expose(),
        "https://x.example/rec.mp4?sig=1"
    );
}

#[tokio::test]
async fn an_event_without_idempotency_key_is_deduplicated_by_content() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    let body = catalogue::example("PARTICIPANT_JOINED").body.replace(
        "\"idempotencyKey\":\"45892714-7bf6-49b8-8c6a-856a92ff6d8a\",",
        "",
    );
    assert!(!body.contains("idempotencyKey"));
    assert_eq!(send(&svc, signed(&body)).await.1["status"], "stored");
    assert_eq!(send(&svc, signed(&body)).await.1["status"], "duplicate");
    let items = stack.items().await;
    assert_eq!(events(&items).len(), 1);
    assert!(s(events(&items)[0], a::KEY).is_some_and(|k| k.starts_with("sha256:")));
}

/// A queue that is unreachable: the real SDK against a port nothing listens on.
fn unreachable_queue() -> SqsJobQueue {
    let dead = meeting_hooks::aws::emulator_config("http://127.0.0.1:9", integration_tests::REGION);
    SqsJobQueue::new(
        meeting_hooks::aws::sqs(&dead),
        "http://127.0.0.1:9/000000000000/nowhere",
    )
}

#[tokio::test]
async fn queue_failure_answers_5xx_and_the_retry_enqueues_exactly_one_job() {
    let stack = Stack::new().await;
    let body = catalogue::example("RECORDING_UPLOADED").body;

    let broken = stack.service_with_queue(&[], unreachable_queue());
    let (code, answer) = send(&broken, signed(&body)).await;
    assert_eq!(
        (code, answer["error"].as_str()),
        (503, Some("queue_unavailable"))
    );
    let items = stack.items().await;
    assert_eq!(events(&items).len(), 1, "the event itself is kept");
    assert_eq!(s(events(&items)[0], a::JOB_STATE), Some("sending"));
    assert!(stack.jobs().await.is_empty());

    // JaaS retries: a duplicate by key that sees the job was never enqueued.
    let healthy = stack.service(&[]);
    assert_eq!(send(&healthy, signed(&body)).await.1["status"], "duplicate");
    assert_eq!(send(&healthy, signed(&body)).await.1["status"], "duplicate");
    let jobs = stack.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].source.event_type, "RECORDING_UPLOADED");
    assert_eq!(
        s(events(&stack.items().await)[0], a::JOB_STATE),
        Some("queued")
    );
}

/// A queue whose send never completes: the function is killed (timeout) mid-send, after the
/// DynamoDB write. Nothing releases the lease.
#[derive(Debug)]
struct HangingQueue;

impl JobQueue for HangingQueue {
    async fn enqueue(&self, _job: &CopyJob) -> Result<(), QueueError> {
        std::future::pending().await
    }
}

/// A delivery of `body` that stores its event and dies before the send (the queue hangs, the
/// caller gives up): the job is left `sending` under a 30 s lease. Returns when it started.
async fn crash_after_store(stack: &Stack, body: &str) -> i64 {
    let crashed = stack.service_with_queue(&[("ENQUEUE_LEASE_SECONDS", "30")], HangingQueue);
    let start = now_ms();
    let cut = tokio::time::timeout(
        Duration::from_secs(5),
        crashed.handle(
            "jaas",
            &::http::Method::POST,
            signed(body).headers(),
            body.as_bytes(),
            start,
        ),
    )
    .await;
    assert!(cut.is_err(), "the crashed delivery never answered");
    start
}

#[tokio::test]
async fn a_crash_between_write_and_send_is_recovered_once_the_lease_runs_out() {
    let stack = Stack::new().await;
    let body = catalogue::example("CHAT_UPLOADED").body;
    let start = crash_after_store(&stack, &body).await;
    assert_eq!(events(&stack.items().await).len(), 1);

    let svc = stack.service(&[("ENQUEUE_LEASE_SECONDS", "30")]);
    let req = signed(&body);
    // A retry inside the lease is told to come back: the first writer may still send.
    let early = svc
        .handle(
            "jaas",
            &::http::Method::POST,
            req.headers(),
            body.as_bytes(),
            start + 1_000,
        )
        .await;
    assert_eq!(early, meeting_hooks::ingest::IngestOutcome::InProgress);
    assert!(stack.jobs().await.is_empty());
    // After the lease the retry takes over and enqueues.
    let late = svc
        .handle(
            "jaas",
            &::http::Method::POST,
            req.headers(),
            body.as_bytes(),
            start + 31_000,
        )
        .await;
    assert_eq!(late, meeting_hooks::ingest::IngestOutcome::Duplicate);
    assert_eq!(stack.jobs().await.len(), 1);
    let again = svc
        .handle(
            "jaas",
            &::http::Method::POST,
            req.headers(),
            body.as_bytes(),
            start + 62_000,
        )
        .await;
    assert_eq!(again, meeting_hooks::ingest::IngestOutcome::Duplicate);
    assert!(stack.jobs().await.is_empty(), "still exactly one job");
}

/// The sweeper over the same tables and queue (the integration suite's own wiring).
fn sweeper(
    stack: &Stack,
) -> meeting_hooks::sweep::SweepService<DynamoEventStore, SqsJobQueue, DynamoCopyStore> {
    let emu = emulator();
    let env: HashMap<String, String> = [
        ("EVENTS_TABLE", stack.table.as_str()),
        ("COPIES_TABLE", stack.copies.as_str()),
        ("JOBS_QUEUE_URL", stack.queue_url.as_str()),
        ("ENQUEUE_LEASE_SECONDS", "30"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = meeting_hooks::sweep::SweepConfig::from_env(&env).expect("config");
    meeting_hooks::sweep::SweepService::new(
        DynamoEventStore::new(emu.dynamodb(), &stack.table),
        SqsJobQueue::new(emu.sqs(), &stack.queue_url),
        DynamoCopyStore::new(emu.dynamodb(), &stack.copies),
        &config,
    )
}

#[tokio::test]
async fn a_crash_between_write_and_send_with_no_retry_is_swept_after_the_lease() {
    let stack = Stack::new().await;
    let body = catalogue::example("RECORDING_UPLOADED").body;
    let start = crash_after_store(&stack, &body).await;
    let sweeper = sweeper(&stack);
    // Inside the lease the writer may still send: the sweeper leaves it alone.
    let early = sweeper.sweep(start + 1_000).await.expect("sweep");
    assert_eq!((early.examined, early.enqueued), (0, 0));
    assert!(stack.jobs().await.is_empty());
    // After it, the job is sent once and the item marked queued; JaaS never retried.
    let late = sweeper.sweep(start + 31_000).await.expect("sweep");
    assert_eq!(late.enqueued, 1);
    let jobs = stack.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].source.event_type, "RECORDING_UPLOADED");
    let items = stack.items().await;
    assert_eq!(s(events(&items)[0], a::JOB_STATE), Some("queued"));
    assert!(
        s(events(&items)[0], a::JOB_PENDING).is_none(),
        "left the index"
    );
    assert_eq!(
        sweeper
            .sweep(start + 120_000)
            .await
            .expect("sweep")
            .enqueued,
        0
    );
    assert!(stack.jobs().await.is_empty(), "still exactly one job");
}

/// A RECORDING_UPLOADED sample under `key` whose link dies at `expires` (Unix ms).
fn recording_dying_at(key: &str, expires: i64) -> String {
    let mut body: Value =
        serde_json::from_str(&catalogue::example("RECORDING_UPLOADED").body).expect("sample");
    body["idempotencyKey"] = key.into();
    body["data"]["linkExpiration"] = expires.into();
    body.to_string()
}

#[tokio::test]
async fn files_no_copier_made_safe_are_flagged_at_risk_by_the_link_watch_once() {
    let stack = Stack::new().await;
    let emu = emulator();
    let start = now_ms();
    // One recording queued normally, but no copier ever claims it (the copier is down);
    // another whose delivery died before the send (never queued). Both links die in an hour.
    let queued = recording_dying_at("watch-queued", start + 3_600_000);
    let outcome = stack
        .service(&[])
        .handle(
            "jaas",
            &::http::Method::POST,
            signed(&queued).headers(),
            queued.as_bytes(),
            start,
        )
        .await;
    assert_eq!(outcome, meeting_hooks::ingest::IngestOutcome::Stored);
    assert_eq!(stack.jobs().await.len(), 1, "on the queue");
    let unsent = recording_dying_at("watch-unsent", start + 3_600_000);
    crash_after_store(&stack, &unsent).await;
    let watched = |items: &[HashMap<String, AttributeValue>]| {
        items
            .iter()
            .filter(|i| i.contains_key(a::LINK_WATCH))
            .count()
    };
    assert_eq!(watched(&stack.items().await), 2, "both on the watch");

    // Within the grace the copier has its turn: nothing looked at (the unsent one is sent).
    let sweeper = sweeper(&stack);
    let early = sweeper.sweep(start + 60_000).await.expect("sweep");
    assert_eq!((early.watched, early.at_risk, early.enqueued), (0, 0, 1));
    // Then both are flagged, though both are on the queue, and leave the watch.
    let report = sweeper.sweep(start + 6 * 60_000).await.expect("sweep");
    assert_eq!((report.watched, report.at_risk), (2, 2));
    assert_eq!(watched(&stack.items().await), 0);
    let copies = emu.scan(&stack.copies).await;
    assert_eq!(copies.len(), 2, "{copies:?}");
    for c in &copies {
        let text = |k: &str| c.get(k).and_then(|v| v.as_s().ok()).cloned();
        assert_eq!(
            text(schema::copy_attr::AT_RISK_CAUSE).as_deref(),
            Some("link_expiring")
        );
        assert_eq!(
            text(schema::copy_attr::AT_RISK_REASON).as_deref(),
            Some("not claimed by a copier yet")
        );
        assert_eq!(text(schema::copy_attr::STATE).as_deref(), Some("pending"));
        assert_eq!(
            c[schema::copy_attr::LINK_EXPIRES_AT].as_n().ok(),
            Some(&(start + 3_600_000).to_string())
        );
        let about = text(schema::copy_attr::ABOUT).expect("about");
        assert!(about.contains("\"provider\":\"jaas\""), "{about}");
        assert!(about.contains("\"kind\":\"recording\""), "{about}");
    }
    // Looked at once: a later run flags nothing, and the flagged items are claimable.
    let later = sweeper.sweep(start + 20 * 60_000).await.expect("sweep");
    assert_eq!((later.watched, later.at_risk), (0, 0));
    assert_eq!(emu.scan(&stack.copies).await, copies, "flags unchanged");
    let job = stack
        .jobs()
        .await
        .pop()
        .expect("the unsent one, sent by the sweeper");
    let store = DynamoCopyStore::new(emu.dynamodb(), &stack.copies);
    let claim = meeting_hooks::copier::ports::CopyStateStore::claim(
        &store,
        &job.job_id,
        "copier-1",
        now_ms(),
        now_ms() + 60_000,
        0,
    )
    .await
    .expect("claim");
    assert!(
        matches!(claim, meeting_hooks::copier::state::Claim::Claimed { .. }),
        "{claim:?}"
    );
}

#[tokio::test]
async fn forged_stale_and_unsigned_requests_store_nothing() {
    let stack = Stack::new().await;
    let svc = stack.service(&[("SIGNATURE_TOLERANCE_SECONDS", "300")]);
    let body = catalogue::example("PARTICIPANT_JOINED").body;
    let now = now_ms() / 1000;

    let forged = ::http::Request::builder()
        .uri("/webhooks/jaas")
        .method("POST")
        .header(
            "x-jaas-signature",
            signature_header("whsec_attacker", now, body.as_bytes()),
        )
        .body(Body::Text(body.clone()))
        .expect("request");
    let stale = signed_at(&body, now - 301);
    let unsigned = ::http::Request::builder()
        .uri("/webhooks/jaas")
        .method("POST")
        .body(Body::Text(body.clone()))
        .expect("request");
    let mut tampered = signed(&body);
    *tampered.body_mut() = Body::Text(body.replace("John Doe", "John Dow"));

    for (req, code) in [
        (forged, "signature_mismatch"),
        (stale, "signature_stale"),
        (unsigned, "signature_missing"),
        (tampered, "signature_mismatch"),
    ] {
        let (status, answer) = send(&svc, req).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some(code)));
        assert!(answer["reason"].is_string());
    }
    assert!(stack.items().await.is_empty());
    assert!(stack.jobs().await.is_empty());
}

#[tokio::test]
async fn verified_garbage_is_quarantined_as_it_came_with_credentials_redacted() {
    let stack = Stack::new().await;
    let svc = stack.service(&[("JAAS_AUTHORIZATION", "Bearer integration")]);
    for (body, reason) in [
        ("this is not json", "not_json"),
        ("[1,2,3]", "not_an_object"),
        (r#"{"hello":"world"}"#, "missing_event_type"),
    ] {
        let mut req = signed(body);
        req.headers_mut().insert(
            "authorization",
            "Bearer integration".parse().expect("header"),
        );
        let (status, answer) = send(&svc, req).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("quarantined"))
        );
        assert_eq!(answer["reason"], reason);
    }
    let items = stack.items().await;
    let quarantined: Vec<_> = items
        .iter()
        .filter(|i| s(i, a::KIND) == Some("quarantine"))
        .collect();
    assert_eq!(quarantined.len(), 3);
    let q = quarantined
        .iter()
        .find(|i| s(i, a::REASON) == Some("not_json"))
        .expect("not_json kept");
    assert_eq!(
        q.get(a::PAYLOAD)
            .and_then(|v| v.as_b().ok())
            .map(|b| b.as_ref()),
        Some(&b"this is not json"[..])
    );
    let headers = q
        .get(a::HEADERS)
        .and_then(|v| v.as_m().ok())
        .expect("headers kept");
    assert_eq!(
        headers
            .get("authorization")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("[redacted]")
    );
    assert!(headers.contains_key("x-jaas-signature"));
}

#[tokio::test]
async fn oversized_bodies_get_413_and_large_ones_go_to_s3() {
    let stack = Stack::new().await;
    let svc = stack.service(&[("MAX_BODY_BYTES", "600000")]);
    let pad = "x".repeat(500_000);
    let large = format!(
        r#"{{"idempotencyKey":"big-1","eventType":"SPEAKER_STATS","sessionId":"s","timestamp":1,"fqn":"a/r","data":{{}},"padding":"{pad}"}}"#
    );
    assert_eq!(send(&svc, signed(&large)).await.1["status"], "stored");
    let items = stack.items().await;
    let item = events(&items)[0];
    let key = s(item, a::PAYLOAD_REF).expect("payload kept outside the item");
    let object = emulator()
        .s3()
        .get_object()
        .bucket(&stack.bucket)
        .key(key)
        .send()
        .await
        .expect("object");
    let bytes = object.body.collect().await.expect("body").into_bytes();
    assert_eq!(bytes.as_ref(), large.as_bytes());

    let too_big = format!("{large}{}", "y".repeat(200_000));
    let (status, answer) = send(&svc, signed(&too_big)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (413, Some("body_too_large"))
    );
    assert_eq!(stack.items().await.len(), 1);
}

async fn object(bucket: &str, key: &str) -> Vec<u8> {
    emulator()
        .s3()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("object")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

#[tokio::test]
async fn keys_beyond_dynamodb_limits_get_2xx_and_are_stored_with_their_raw_bytes() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    let long_key = "k".repeat(3000);
    let file_event = format!(
        r#"{{"idempotencyKey":"{long_key}","eventType":"RECORDING_UPLOADED","sessionId":"s-long-key","timestamp":1,"fqn":"a/r","data":{{"preAuthenticatedLink":"https://x.example/r.mp4"}}}}"#
    );
    let (code, answer) = send(&svc, signed(&file_event)).await;
    assert_eq!(
        (code, answer["status"].as_str()),
        (200, Some("stored")),
        "{answer}"
    );
    assert_eq!(
        answer["notes"][0].as_str(),
        Some(meeting_hooks::ingest::notes::KEY_HASHED),
        "the answer says why"
    );
    // The retry is a duplicate: the derived key deduplicates as the original would.
    assert_eq!(
        send(&svc, signed(&file_event)).await.1["status"],
        "duplicate"
    );

    let long_session = "s".repeat(1500);
    let room_created = format!(
        r#"{{"idempotencyKey":"room-long-session","eventType":"ROOM_CREATED","sessionId":"{long_session}","timestamp":2,"fqn":"a/r","data":{{}}}}"#
    );
    let (code, answer) = send(&svc, signed(&room_created)).await;
    assert_eq!(
        (code, answer["status"].as_str()),
        (200, Some("stored")),
        "{answer}"
    );
    let longer_session = "s".repeat(3000);
    let joined = format!(
        r#"{{"idempotencyKey":"joined-longer-session","eventType":"PARTICIPANT_JOINED","sessionId":"{longer_session}","timestamp":3,"fqn":"a/r","data":{{}}}}"#
    );
    let (code, answer) = send(&svc, signed(&joined)).await;
    assert_eq!(
        (code, answer["status"].as_str()),
        (200, Some("stored")),
        "{answer}"
    );
    assert_eq!(
        answer["notes"][0].as_str(),
        Some(meeting_hooks::ingest::notes::SESSION_NOT_INDEXED)
    );

    let items = stack.items().await;
    let stored = events(&items);
    assert_eq!(stored.len(), 3);
    for body in [&file_event, &room_created, &joined] {
        assert_eq!(
            stored
                .iter()
                .filter(|i| s(i, a::PAYLOAD) == Some(body.as_str()))
                .count(),
            1,
            "stored byte for byte once"
        );
    }
    let hashed = stored
        .iter()
        .find(|i| s(i, a::PAYLOAD) == Some(file_event.as_str()))
        .expect("file event");
    let key = s(hashed, a::KEY).expect("key");
    assert!(key.starts_with("key-sha256:") && key.len() < 100, "{key}");
    let jobs = stack.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, format!("{key}/recording"));
    assert_eq!(s(hashed, a::JOB_STATE), Some("queued"));

    // The 1500-byte session is still one Query away, in both indexes.
    let ddb = emulator().dynamodb();
    let session = ddb
        .query()
        .table_name(&stack.table)
        .index_name(schema::EVENTS_BY_SESSION)
        .key_condition_expression("#s = :s")
        .expression_attribute_names("#s", a::SESSION_ID)
        .expression_attribute_values(":s", AttributeValue::S(long_session.clone()))
        .send()
        .await
        .expect("query");
    assert_eq!(session.items().len(), 1);
    let room = ddb
        .query()
        .table_name(&stack.table)
        .index_name(schema::EVENTS_BY_ROOM)
        .key_condition_expression("#r = :r")
        .expression_attribute_names("#r", a::ROOM_FQN)
        .expression_attribute_values(":r", AttributeValue::S("a/r".into()))
        .send()
        .await
        .expect("query");
    assert_eq!(
        room.items()
            .iter()
            .filter_map(|i| s(i, a::SESSION_ID))
            .collect::<Vec<_>>(),
        [long_session.as_str()]
    );
    let unindexed = stored
        .iter()
        .find(|i| s(i, a::KEY) == Some("joined-longer-session"))
        .expect("stored");
    assert_eq!(s(unindexed, a::SESSION_ID), None);
    assert!(s(unindexed, a::STORAGE_NOTES).is_some());
}

#[tokio::test]
async fn the_item_size_decides_overflow_and_an_event_no_item_can_hold_is_quarantined() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    // Under the old 350 KiB body threshold, but customerId and fqn are repeated as attributes:
    // the item would exceed 400 KB.
    let body = format!(
        r#"{{"idempotencyKey":"wide","eventType":"USAGE","sessionId":"s","timestamp":1,"customerId":"{}","fqn":"a/{}","data":[],"pad":"{}"}}"#,
        "c".repeat(60_000),
        "r".repeat(60_000),
        "p".repeat(220_000)
    );
    assert!(body.len() < 350 * 1024);
    let (code, answer) = send(&svc, signed(&body)).await;
    assert_eq!(
        (code, answer["status"].as_str()),
        (200, Some("stored")),
        "{answer}"
    );
    let items = stack.items().await;
    let item = events(&items)[0];
    assert!(item.get(a::PAYLOAD).is_none());
    let key = s(item, a::PAYLOAD_REF).expect("payload kept outside the item");
    assert!(key.starts_with("raw/"), "{key}");
    assert_eq!(object(&stack.bucket, key).await, body.as_bytes());

    // No item holds a 450 KB event type: quarantined with its raw bytes, 2xx, and why.
    let huge = format!(
        r#"{{"idempotencyKey":"huge","eventType":"{}","data":{{}}}}"#,
        "X".repeat(450_000)
    );
    let (code, answer) = send(&svc, signed(&huge)).await;
    assert_eq!(
        (code, answer["status"].as_str(), answer["reason"].as_str()),
        (200, Some("quarantined"), Some("too_large_for_an_item"))
    );
    let items = stack.items().await;
    let q = items
        .iter()
        .find(|i| s(i, a::KIND) == Some("quarantine"))
        .expect("quarantined");
    let key = s(q, a::PAYLOAD_REF).expect("raw bytes in the bucket");
    assert!(key.starts_with("quarantine/"), "{key}");
    assert_eq!(object(&stack.bucket, key).await, huge.as_bytes());
    // A retry changes nothing.
    assert_eq!(send(&svc, signed(&huge)).await.0, 200);
    assert_eq!(stack.items().await.len(), 2);
}

#[tokio::test]
async fn storage_failure_answers_503_so_jaas_retries() {
    let stack = Stack::new().await;
    let mut config = stack.config(&[]);
    config.events_table = "no-such-table".into();
    let emu: &Emulator = emulator();
    let svc = IngestService::new(
        DynamoEventStore::new(emu.dynamodb(), &config.events_table),
        SqsJobQueue::new(emu.sqs(), &stack.queue_url),
        S3BlobStore::new(emu.s3(), &stack.bucket),
        &config,
    );
    let (status, answer) = send(&svc, signed(&catalogue::example("RECORDING_UPLOADED").body)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (503, Some("storage_unavailable"))
    );
    assert!(stack.jobs().await.is_empty());
}

#[tokio::test]
async fn wrong_method_is_refused_with_a_reason() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    for method in ["GET", "PUT", "DELETE"] {
        let req = ::http::Request::builder()
            .uri("/webhooks/jaas")
            .method(method)
            .body(Body::Empty)
            .expect("request");
        let resp = ingest_http::handle(&svc, req).await;
        assert_eq!(resp.status().as_u16(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "POST", "{method}: RFC 9110 Allow");
        let answer: Value = serde_json::from_slice(resp.body().as_ref()).expect("JSON");
        assert_eq!(answer["error"], "method_not_allowed");
    }
    assert!(stack.items().await.is_empty());
}

#[tokio::test]
async fn one_query_reads_a_session_in_time_order_and_one_lists_a_rooms_sessions() {
    let stack = Stack::new().await;
    let svc = stack.service(&[]);
    let event = |key: &str, ty: &str, session: &str, ts: i64| {
        format!(
            r#"{{"idempotencyKey":"{key}","eventType":"{ty}","sessionId":"{session}","timestamp":{ts},"fqn":"app-1/room-a","data":{{}}}}"#
        )
    };
    // Delivered out of order, as JaaS may.
    for body in [
        event("k3", "ROOM_DESTROYED", "s1", 3_000),
        event("k2", "PARTICIPANT_JOINED", "s1", 2_000),
        event("k1", "ROOM_CREATED", "s1", 1_000),
        event("k4", "ROOM_CREATED", "s2", 10_000),
        event("k5", "PARTICIPANT_JOINED", "s2", 11_000),
    ] {
        assert_eq!(send(&svc, signed(&body)).await.1["status"], "stored");
    }
    let ddb = emulator().dynamodb();
    let session = ddb
        .query()
        .table_name(&stack.table)
        .index_name(schema::EVENTS_BY_SESSION)
        .key_condition_expression("#s = :s")
        .expression_attribute_names("#s", a::SESSION_ID)
        .expression_attribute_values(":s", AttributeValue::S("s1".into()))
        .send()
        .await
        .expect("query");
    let keys: Vec<_> = session
        .items()
        .iter()
        .filter_map(|i| s(i, a::KEY))
        .collect();
    assert_eq!(keys, ["k1", "k2", "k3"]);

    let room = ddb
        .query()
        .table_name(&stack.table)
        .index_name(schema::EVENTS_BY_ROOM)
        .key_condition_expression("#r = :r")
        .expression_attribute_names("#r", a::ROOM_FQN)
        .expression_attribute_values(":r", AttributeValue::S("app-1/room-a".into()))
        .scan_index_forward(false)
        .send()
        .await
        .expect("query");
    let mut sessions: Vec<_> = room
        .items()
        .iter()
        .filter_map(|i| s(i, a::SESSION_ID))
        .collect();
    sessions.dedup();
    assert_eq!(sessions, ["s2", "s1"], "newest session first");
}

// ---- Daily through the same handler and tables ----

const DAILY_SECRET: &str = "ZGFpbHlfaW50ZWdyYXRpb25fdGVzdA==";

fn daily_request(body: &str, secret: &str, ts: Option<i64>) -> Request {
    let mut req = ::http::Request::builder()
        .method("POST")
        .uri("/webhooks/daily");
    if let Some(ts) = ts {
        let ts = ts.to_string();
        req = req
            .header(
                meeting_hooks::providers::daily::SIGNATURE_HEADER,
                meeting_hooks::providers::daily::sign(secret, &ts, body.as_bytes()),
            )
            .header(meeting_hooks::providers::daily::TIMESTAMP_HEADER, ts);
    }
    req.body(Body::Text(body.to_owned())).expect("request")
}

fn daily_service(stack: &Stack) -> IngestService<DynamoEventStore, SqsJobQueue, S3BlobStore> {
    stack.service(&[
        ("DAILY_WEBHOOK_SECRETS", DAILY_SECRET),
        ("DAILY_SIGNATURE_TOLERANCE_SECONDS", "300"),
    ])
}

#[tokio::test]
async fn forged_stale_and_unsigned_daily_requests_store_nothing() {
    let stack = Stack::new().await;
    let svc = daily_service(&stack);
    let body = meeting_hooks::providers::daily::catalogue::body(
        "participant.joined",
        "ev-forged",
        1_708_972_205.5,
    );
    let now = now_ms() / 1000;
    let mut tampered = daily_request(&body, DAILY_SECRET, Some(now));
    *tampered.body_mut() = Body::Text(body.replace("Ana", "Anna"));
    for (req, code) in [
        (
            daily_request(&body, "YXR0YWNrZXI=", Some(now)),
            "signature_mismatch",
        ),
        (
            daily_request(&body, DAILY_SECRET, Some(now - 301)),
            "signature_stale",
        ),
        (
            daily_request(&body, DAILY_SECRET, None),
            "signature_missing",
        ),
        (tampered, "signature_mismatch"),
    ] {
        let (status, answer) = send(&svc, req).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some(code)));
    }
    assert!(stack.items().await.is_empty());
    assert!(stack.jobs().await.is_empty());
    // The same body, signed: stored.
    let (status, answer) = send(&svc, daily_request(&body, DAILY_SECRET, Some(now))).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")));
}

#[tokio::test]
async fn a_raw_tracks_recording_stores_every_track_job_on_its_event() {
    let stack = Stack::new().await;
    let svc = daily_service(&stack);
    let body = r#"{"version":"1.0.0","type":"recording.ready-to-download","id":"ev-tracks","event_ts":1708972800.5,"payload":{"type":"raw-tracks","recording_id":"rt-1","room_name":"r","start_ts":1708972230,"tracks":[{"s3Key":"d/r/1-cam-video.webm","size":100,"type":"video"},{"s3Key":"d/r/1-mic-audio.webm","size":50,"type":"audio"}]}}"#;
    let (status, answer) = send(
        &svc,
        daily_request(body, DAILY_SECRET, Some(now_ms() / 1000)),
    )
    .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")));
    let items = stack.items().await;
    let item = events(&items)[0];
    assert_eq!(s(item, a::KEY), Some("daily:ev-tracks"));
    let mut stored = meeting_hooks::aws::events::job_ids_of(item);
    let mut queued: Vec<String> = stack.jobs().await.into_iter().map(|j| j.job_id).collect();
    stored.sort();
    queued.sort();
    assert_eq!(stored.len(), 2, "{item:?}");
    assert_eq!(stored, queued);
    assert!(
        stored
            .iter()
            .all(|id| id.starts_with("daily:recording:rt-1/track-"))
    );
}

// ---- VideoSDK ----

#[tokio::test]
async fn forged_unsigned_and_reserialised_videosdk_requests_store_nothing() {
    use meeting_hooks::providers::videosdk::{self, catalogue, keys};
    let stack = Stack::new().await;
    let (private, public) = keys::generate_pem_pair().expect("pair");
    let (attacker, _) = keys::generate_pem_pair().expect("pair");
    let svc = stack.service(&[("VIDEOSDK_PUBLIC_KEYS", public.as_str())]);
    let body = catalogue::DOCUMENTED_RECORDING_STOPPED;
    let request = |sig: Option<String>, body: &str| {
        let mut req = ::http::Request::builder()
            .method("POST")
            .uri("/webhooks/videosdk");
        if let Some(sig) = sig {
            req = req.header(videosdk::SIGNATURE_HEADER, sig);
        }
        req.body(Body::Text(body.to_owned())).expect("request")
    };
    let sign = |key: &str, b: &str| Some(keys::sign(key, b.as_bytes()).expect("sign"));
    let reserialised = serde_json::to_string(
        &meeting_hooks::lenient::parse_relaxed(body.as_bytes()).expect("relaxed"),
    )
    .expect("json");
    for (req, code) in [
        (request(sign(&attacker, body), body), "signature_mismatch"),
        (request(None, body), "signature_missing"),
        (
            request(sign(&private, body), &reserialised),
            "signature_mismatch",
        ),
    ] {
        let (status, answer) = send(&svc, req).await;
        assert_eq!((status, answer["error"].as_str()), (401, Some(code)));
    }
    assert!(stack.items().await.is_empty());
    assert!(stack.jobs().await.is_empty());
    // Signed over its raw bytes, trailing commas and all: stored, and its recording queued.
    let (status, answer) = send(&svc, request(sign(&private, body), body)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("stored")));
    let jobs = stack.jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].url().map(|l| l.expose().to_owned()),
        Some(catalogue::documented_file_url())
    );
}
