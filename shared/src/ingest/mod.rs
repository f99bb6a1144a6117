//! The webhook-ingest logic: verify, parse, store exactly once, enqueue copy jobs.
//!
//! Per delivery there is one conditional `PutItem` that both deduplicates on the
//! idempotencyKey and stores the event. For events that carry a file the same write takes an
//! *enqueue lease*; after the job is on the queue one more write marks it queued. A crash or
//! queue failure between the two leaves the lease behind, and the retry JaaS sends (a duplicate
//! by key) sees it, takes it over once it has run out, and enqueues. Concurrent duplicates that
//! see a live lease answer 503 so JaaS comes back later rather than being told "done" for a job
//! that may never be enqueued.

pub mod http;
pub mod ports;

use std::time::Duration;

use ::http::{HeaderMap, Method};
use sha2::{Digest, Sha256};
use tracing::{Span, error, info, instrument, warn};

use crate::config::{self, ConfigError, Env};
use crate::jaas::{EventType, JaasEvent, JaasVerifier, SignatureError};
use crate::jobs::{CopyJob, LinkPolicy, plan_job_with};
use crate::metrics;
use ports::{
    BlobStore, EventRecord, EventStore, JobQueue, JobState, PutOutcome, QuarantineRecord,
    StoreError, StoredPayload,
};

/// Items are limited to 400 KB; bodies above this go to the blob store first.
pub const INLINE_PAYLOAD_MAX: usize = 350 * 1024;

/// Headers whose values are credentials and are never stored.
const REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "x-api-key",
    "proxy-authorization",
];

/// Configuration of the webhook-ingest function, read once at cold start.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub events_table: String,
    pub jobs_queue_url: String,
    /// Bucket for payloads too large for an item (prefixes `raw/` and `quarantine/`).
    pub payload_bucket: String,
    pub verifier: JaasVerifier,
    pub max_body_bytes: usize,
    pub enqueue_lease: Duration,
    /// How long events are kept (TTL); `None` keeps them for good.
    pub retention: Option<Duration>,
    /// Which links make a copy job (https only, except in the local stack).
    pub link_policy: LinkPolicy,
}

impl IngestConfig {
    pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
    pub const DEFAULT_LEASE_SECS: u64 = 30;

    /// Reads `EVENTS_TABLE`, `JOBS_QUEUE_URL`, `PAYLOAD_BUCKET`, `JAAS_WEBHOOK_SECRETS`
    /// (comma-separated, for rotation), `JAAS_AUTHORIZATION` (optional),
    /// `SIGNATURE_TOLERANCE_SECONDS`, `MAX_BODY_BYTES`, `ENQUEUE_LEASE_SECONDS`,
    /// `EVENT_RETENTION_DAYS` (optional), `ALLOW_INSECURE_LOCAL_ORIGIN` (development only:
    /// `http://` links to a loopback host make jobs too; the copier refuses to fetch them in
    /// Lambda unless the AWS APIs are a loopback emulator).
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let verifier = JaasVerifier::from_env(env)?;
        if !verifier.has_secrets() {
            return Err(ConfigError::Missing("JAAS_WEBHOOK_SECRETS"));
        }
        let retention_days: Option<u64> = config::parsed_opt(env, "EVENT_RETENTION_DAYS")?;
        let retention = retention_days.map(|d| Duration::from_secs(d.saturating_mul(86_400)));
        if let Some(r) = retention
            && verifier.tolerance() >= r
        {
            // A replay older than the dedup retention would be stored again.
            return Err(ConfigError::Invalid {
                var: "SIGNATURE_TOLERANCE_SECONDS",
                reason: "must be shorter than EVENT_RETENTION_DAYS".into(),
            });
        }
        let lease: u64 = config::parsed_or(env, "ENQUEUE_LEASE_SECONDS", Self::DEFAULT_LEASE_SECS)?;
        Ok(Self {
            events_table: config::required(env, "EVENTS_TABLE")?,
            jobs_queue_url: config::required(env, "JOBS_QUEUE_URL")?,
            payload_bucket: config::required(env, "PAYLOAD_BUCKET")?,
            verifier,
            max_body_bytes: config::parsed_or(env, "MAX_BODY_BYTES", Self::DEFAULT_MAX_BODY)?,
            enqueue_lease: Duration::from_secs(lease),
            retention,
            link_policy: if config::flag(env, "ALLOW_INSECURE_LOCAL_ORIGIN")? {
                LinkPolicy::HttpsOrLoopbackHttp
            } else {
                LinkPolicy::HttpsOnly
            },
        })
    }
}

/// How one delivery ended. Mapped to a status and JSON body in [`http`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// First delivery: stored (and its job enqueued, if any).
    Stored,
    /// Same key, same payload: nothing new (a missing job was enqueued if needed).
    Duplicate,
    /// Same key, different payload: kept under a derived key and flagged.
    Conflict,
    /// Verified but not a JaaS event: kept as it came.
    Quarantined {
        reason: &'static str,
    },
    MethodNotAllowed,
    TooLarge {
        limit: usize,
    },
    Unauthorized(SignatureError),
    /// Another delivery of this event holds the enqueue lease: come back later.
    InProgress,
    /// Storage failed: nothing acknowledged, JaaS should retry.
    StorageUnavailable,
    /// The event is stored but its job could not be enqueued: JaaS should retry.
    QueueUnavailable,
}

enum Failure {
    Storage(StoreError),
    Queue,
    InProgress,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Storage(e)
    }
}

enum Written {
    Created,
    Duplicate,
    KeyTakenByOtherPayload,
}

/// The ingest use case over its three ports.
#[derive(Debug)]
pub struct IngestService<S, Q, B> {
    store: S,
    queue: Q,
    blobs: B,
    verifier: JaasVerifier,
    max_body_bytes: usize,
    lease_ms: i64,
    retention_secs: Option<i64>,
    link_policy: LinkPolicy,
}

impl<S: EventStore, Q: JobQueue, B: BlobStore> IngestService<S, Q, B> {
    pub fn new(store: S, queue: Q, blobs: B, config: &IngestConfig) -> Self {
        Self {
            store,
            queue,
            blobs,
            verifier: config.verifier.clone(),
            max_body_bytes: config.max_body_bytes,
            lease_ms: i64::try_from(config.enqueue_lease.as_millis()).unwrap_or(i64::MAX),
            retention_secs: config
                .retention
                .map(|r| i64::try_from(r.as_secs()).unwrap_or(i64::MAX)),
            link_policy: config.link_policy,
        }
    }

    /// Handles one delivery. `now_ms` is the current Unix time in milliseconds.
    #[instrument(
        name = "ingest",
        skip_all,
        fields(event_type, idempotency_key, session_id, outcome)
    )]
    pub async fn handle(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> IngestOutcome {
        let outcome = self.handle_inner(method, headers, body, now_ms).await;
        Span::current().record("outcome", tracing::field::debug(&outcome));
        metrics::ingest_outcome(&outcome);
        outcome
    }

    async fn handle_inner(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> IngestOutcome {
        if method != Method::POST {
            return IngestOutcome::MethodNotAllowed;
        }
        if body.len() > self.max_body_bytes {
            return IngestOutcome::TooLarge {
                limit: self.max_body_bytes,
            };
        }
        let verified = match self.verifier.verify(headers, body, now_ms.div_euclid(1000)) {
            Ok(v) => v,
            Err(e) => {
                warn!(reason = e.code(), "webhook refused");
                return IngestOutcome::Unauthorized(e);
            }
        };
        let body = verified.bytes();
        let sha = hex::encode(Sha256::digest(body));
        let event = match JaasEvent::parse(body) {
            Ok(ev) => ev,
            Err(e) => return self.quarantine(headers, body, sha, e.code(), now_ms).await,
        };
        // Every verified JaaS event, duplicates included: the dashboard's "events by type".
        metrics::count_by("Events", 1.0, "EventType", event.event_type.as_str());
        let span = Span::current();
        span.record("event_type", event.event_type.as_str());
        span.record(
            "idempotency_key",
            event.idempotency_key.as_deref().unwrap_or("-"),
        );
        span.record("session_id", event.session_id.as_deref().unwrap_or("-"));
        if let Some(reason) = &event.data_error {
            warn!(
                reason,
                "event data does not match its documented shape; stored as sent"
            );
        }

        let payload = match self.payload_location(body, &sha, "raw/jaas").await {
            Ok(p) => p,
            Err(()) => return IngestOutcome::StorageUnavailable,
        };
        let key = event
            .idempotency_key
            .clone()
            .unwrap_or_else(|| format!("sha256:{sha}"));
        let attempt = attempt_token(now_ms);
        let result = match self
            .write(&event, &key, &payload, &sha, None, &attempt, now_ms)
            .await
        {
            Ok(Written::Created) => Ok(IngestOutcome::Stored),
            Ok(Written::Duplicate) => Ok(IngestOutcome::Duplicate),
            Ok(Written::KeyTakenByOtherPayload) => {
                // Not a duplicate: keep it under a key derived from its own content, so a
                // retry of this delivery deduplicates against it.
                let conflict_key = format!("{key}#conflict#{sha}");
                warn!("idempotencyKey reused with a different payload; kept under a derived key");
                match self
                    .write(
                        &event,
                        &conflict_key,
                        &payload,
                        &sha,
                        Some(&key),
                        &attempt,
                        now_ms,
                    )
                    .await
                {
                    Ok(Written::Created) => Ok(IngestOutcome::Conflict),
                    Ok(Written::Duplicate) => Ok(IngestOutcome::Duplicate),
                    Ok(Written::KeyTakenByOtherPayload) => {
                        // Only a foreign writer could put another payload under a key that
                        // contains this payload's hash. Refuse rather than overwrite; JaaS retries.
                        error!("conflict key holds a different payload; not overwriting it");
                        Ok(IngestOutcome::StorageUnavailable)
                    }
                    Err(f) => Err(f),
                }
            }
            Err(f) => Err(f),
        };
        match result {
            Ok(o) => o,
            Err(Failure::Storage(e)) => {
                error!(error = %e, source = %e.source, "event storage failed");
                IngestOutcome::StorageUnavailable
            }
            Err(Failure::Queue) => IngestOutcome::QueueUnavailable,
            Err(Failure::InProgress) => IngestOutcome::InProgress,
        }
    }

    /// The one conditional write, then whatever job bookkeeping the outcome calls for.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        event: &JaasEvent,
        key: &str,
        payload: &StoredPayload,
        sha: &str,
        conflict_of: Option<&str>,
        attempt: &str,
        now_ms: i64,
    ) -> Result<Written, Failure> {
        let (job, link_error) = match plan_job_with(event, key, now_ms, self.link_policy) {
            Ok(job) => (job, None),
            Err(missing) => (None, Some(missing)),
        };
        let record = EventRecord {
            key: key.to_owned(),
            event_type: event.event_type.clone(),
            session_id: event.session_id.clone(),
            fqn: event.fqn.clone(),
            app_id: event.app().map(str::to_owned),
            customer_id: event.customer_id.clone(),
            timestamp_ms: event.timestamp.unwrap_or(now_ms),
            received_at_ms: now_ms,
            payload: payload.clone(),
            payload_sha256: sha.to_owned(),
            indexes_room_session: matches!(
                event.known_type(),
                Some(EventType::RoomCreated | EventType::RoomDestroyed)
            ),
            data_error: event.data_error.clone(),
            link_error: link_error.as_ref().map(ToString::to_string),
            conflict_of: conflict_of.map(str::to_owned),
            job_id: job.as_ref().map(|j| j.job_id.clone()),
            job_state: job.as_ref().map(|_| JobState::Sending {
                lease_until_ms: now_ms.saturating_add(self.lease_ms),
            }),
            job_message: job.as_ref().map(CopyJob::to_json),
            expires_at_secs: self.expiry(now_ms),
            attempt: attempt.to_owned(),
        };
        let outcome = match self.store.put_if_absent(&record).await? {
            // Our own write, applied, whose answer was lost: the SDK's retry met it. The
            // lease in it is ours, so this delivery goes on as the one that created it.
            PutOutcome::Exists(old) if old.attempt.as_deref() == Some(attempt) => {
                info!("write met its own applied item (answer lost): continuing as created");
                PutOutcome::Created
            }
            other => other,
        };
        match outcome {
            PutOutcome::Created => {
                if let Some(missing) = &link_error {
                    // Counted once per stored event (not per duplicate) and alarmed: the file
                    // behind it will not be copied unless someone fetches it by hand in time.
                    warn!(
                        field = missing.field,
                        problem = missing.problem.as_str(),
                        "file event without a usable link: stored, nothing to copy"
                    );
                    metrics::count("FileEventsWithoutLink", 1.0);
                }
                if let Some(job) = &job {
                    self.enqueue(key, job).await?;
                }
                Ok(Written::Created)
            }
            PutOutcome::Exists(old) if old.payload_sha256.as_deref() == Some(sha) => {
                if let (Some(JobState::Sending { lease_until_ms }), Some(job)) =
                    (old.job_state, &job)
                {
                    if lease_until_ms > now_ms {
                        info!("another delivery holds the enqueue lease");
                        return Err(Failure::InProgress);
                    }
                    if !self
                        .store
                        .claim_enqueue(key, sha, now_ms, now_ms.saturating_add(self.lease_ms))
                        .await?
                    {
                        return Err(Failure::InProgress);
                    }
                    warn!(
                        "earlier delivery stored the event but never enqueued its job: recovering"
                    );
                    metrics::count("JobsRecovered", 1.0);
                    self.enqueue(key, job).await?;
                }
                Ok(Written::Duplicate)
            }
            PutOutcome::Exists(_) => Ok(Written::KeyTakenByOtherPayload),
        }
    }

    async fn enqueue(&self, key: &str, job: &CopyJob) -> Result<(), Failure> {
        if let Err(e) = self.queue.enqueue(job).await {
            error!(error = %e, source = %e.source, job_id = %job.job_id, "enqueue failed; the retry will enqueue");
            if let Err(e) = self.store.release_enqueue(key).await {
                // The lease then simply runs out; the retry after it takes over.
                warn!(error = %e, "could not release the enqueue lease");
            }
            return Err(Failure::Queue);
        }
        if let Err(e) = self.store.mark_queued(key).await {
            // The job is on the queue; at worst a later duplicate enqueues it again and the
            // copier's own exactly-once state absorbs it.
            warn!(error = %e, job_id = %job.job_id, "job enqueued but not marked queued");
        }
        info!(job_id = %job.job_id, kind = job.kind.as_str(), link = %job.link, "copy job enqueued");
        Ok(())
    }

    async fn quarantine(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        sha: String,
        reason: &'static str,
        now_ms: i64,
    ) -> IngestOutcome {
        warn!(
            reason,
            bytes = body.len(),
            "verified body is not a JaaS event: quarantined"
        );
        let Ok(payload) = self.payload_location(body, &sha, "quarantine").await else {
            return IngestOutcome::StorageUnavailable;
        };
        let record = QuarantineRecord {
            key: format!("quarantine#{sha}"),
            reason: reason.to_owned(),
            received_at_ms: now_ms,
            payload,
            payload_sha256: sha,
            headers: redacted_headers(headers),
            expires_at_secs: self.expiry(now_ms),
        };
        match self.store.put_quarantine(&record).await {
            Ok(()) => IngestOutcome::Quarantined { reason },
            Err(e) => {
                error!(error = %e, source = %e.source, "quarantine write failed");
                IngestOutcome::StorageUnavailable
            }
        }
    }

    /// Inline when it fits an item, else written to the blob store (content-addressed, so a
    /// retry rewrites the same object and a crash before the item leaves no harm).
    async fn payload_location(
        &self,
        body: &[u8],
        sha: &str,
        prefix: &str,
    ) -> Result<StoredPayload, ()> {
        if body.len() <= INLINE_PAYLOAD_MAX {
            return Ok(StoredPayload::Inline(body.to_vec()));
        }
        let key = format!("{prefix}/{sha}");
        match self
            .blobs
            .put(&key, body.to_vec(), "application/octet-stream")
            .await
        {
            Ok(()) => Ok(StoredPayload::External(key)),
            Err(e) => {
                error!(error = %e, source = %e.source, "large payload write failed");
                Err(())
            }
        }
    }

    fn expiry(&self, now_ms: i64) -> Option<i64> {
        self.retention_secs
            .map(|r| now_ms.div_euclid(1000).saturating_add(r))
    }
}

/// A random token per delivery: 128 bits from std's randomly keyed hasher over the time and a
/// process-wide counter (no two calls in a process hash the same input).
fn attempt_token(now_ms: i64) -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = RandomState::new().hash_one((now_ms, n, 0u8));
    let lo = RandomState::new().hash_one((now_ms, n, 1u8));
    format!("{hi:016x}{lo:016x}")
}

fn redacted_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_owned();
            let value = if REDACTED_HEADERS.contains(&name.as_str()) {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Ports that are never called: the tests below exercise pure arithmetic only.
    struct Never;

    impl EventStore for Never {
        async fn put_if_absent(&self, _: &EventRecord) -> Result<PutOutcome, StoreError> {
            unreachable!()
        }
        async fn claim_enqueue(
            &self,
            _: &str,
            _: &str,
            _: i64,
            _: i64,
        ) -> Result<bool, StoreError> {
            unreachable!()
        }
        async fn mark_queued(&self, _: &str) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn release_enqueue(&self, _: &str) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn put_quarantine(&self, _: &QuarantineRecord) -> Result<(), StoreError> {
            unreachable!()
        }
    }

    impl JobQueue for Never {
        async fn enqueue(&self, _: &CopyJob) -> Result<(), ports::QueueError> {
            unreachable!()
        }
    }

    impl BlobStore for Never {
        async fn put(&self, _: &str, _: Vec<u8>, _: &str) -> Result<(), ports::BlobError> {
            unreachable!()
        }
    }

    /// The three ports in memory, for the use case's own tests.
    #[derive(Default)]
    struct Mem {
        events: std::sync::Mutex<HashMap<String, EventRecord>>,
        quarantined: std::sync::Mutex<Vec<QuarantineRecord>>,
        jobs: std::sync::Mutex<Vec<CopyJob>>,
        blobs: std::sync::Mutex<HashMap<String, Vec<u8>>>,
    }

    fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    impl EventStore for &Mem {
        async fn put_if_absent(&self, r: &EventRecord) -> Result<PutOutcome, StoreError> {
            let mut events = lock(&self.events);
            if let Some(old) = events.get(&r.key) {
                return Ok(PutOutcome::Exists(ports::ExistingEvent {
                    payload_sha256: Some(old.payload_sha256.clone()),
                    job_state: old.job_state,
                    attempt: Some(old.attempt.clone()),
                }));
            }
            events.insert(r.key.clone(), r.clone());
            Ok(PutOutcome::Created)
        }
        async fn claim_enqueue(
            &self,
            key: &str,
            _: &str,
            now: i64,
            until: i64,
        ) -> Result<bool, StoreError> {
            let mut events = lock(&self.events);
            match events.get_mut(key) {
                Some(r) if matches!(r.job_state, Some(JobState::Sending { lease_until_ms }) if lease_until_ms < now) =>
                {
                    r.job_state = Some(JobState::Sending {
                        lease_until_ms: until,
                    });
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        async fn mark_queued(&self, key: &str) -> Result<(), StoreError> {
            if let Some(r) = lock(&self.events).get_mut(key) {
                r.job_state = Some(JobState::Queued);
            }
            Ok(())
        }
        async fn release_enqueue(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        async fn put_quarantine(&self, r: &QuarantineRecord) -> Result<(), StoreError> {
            lock(&self.quarantined).push(r.clone());
            Ok(())
        }
    }

    impl JobQueue for &Mem {
        async fn enqueue(&self, job: &CopyJob) -> Result<(), ports::QueueError> {
            lock(&self.jobs).push(job.clone());
            Ok(())
        }
    }

    impl BlobStore for &Mem {
        async fn put(&self, key: &str, bytes: Vec<u8>, _: &str) -> Result<(), ports::BlobError> {
            lock(&self.blobs).insert(key.to_owned(), bytes);
            Ok(())
        }
    }

    const SECRET: &str = "whsec_unit";
    const NOW: i64 = 1_700_000_000_000;

    fn test_config(extra: &[(&str, &str)]) -> IngestConfig {
        let mut env: HashMap<String, String> = [
            ("EVENTS_TABLE", "t"),
            ("JOBS_QUEUE_URL", "q"),
            ("PAYLOAD_BUCKET", "b"),
            ("JAAS_WEBHOOK_SECRETS", SECRET),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        IngestConfig::from_env(&env).expect("config")
    }

    fn signed_headers(body: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-jaas-signature",
            crate::jaas::signature::signature_header(SECRET, NOW / 1000, body)
                .parse()
                .expect("header"),
        );
        h
    }

    async fn deliver(
        svc: &IngestService<&Mem, &Mem, &Mem>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> IngestOutcome {
        svc.handle(&Method::POST, headers, body, NOW).await
    }

    #[tokio::test]
    async fn a_file_event_without_a_usable_link_is_stored_counted_once_and_flagged() {
        let links = [
            ("RECORDING_UPLOADED", r#""durationSec":5"#),
            ("TRANSCRIPTION_UPLOADED", r#""preAuthenticatedLink":42"#),
            (
                "CHAT_UPLOADED",
                r#""preAuthenticatedLink":"http://x.example/c?sig=secret""#,
            ),
            (
                "DOCUMENT_ADDED",
                r#""preAuthenticatedLink":"not a link sig=secret""#,
            ),
            ("RTCSTATS_UPLOADED", r#""statsUrl":null"#),
        ];
        for (i, (ty, data)) in links.into_iter().enumerate() {
            let mem = Mem::default();
            let svc = IngestService::new(&mem, &mem, &mem, &test_config(&[]));
            let body = format!(
                r#"{{"idempotencyKey":"nolink-{i}","eventType":"{ty}","sessionId":"s","timestamp":1,"fqn":"a/r","data":{{{data}}}}}"#
            );
            let headers = signed_headers(body.as_bytes());
            metrics::record_on_this_thread();
            assert_eq!(
                deliver(&svc, &headers, body.as_bytes()).await,
                IngestOutcome::Stored,
                "{ty}"
            );
            // A retry of the same delivery is a duplicate and is not counted again.
            assert_eq!(
                deliver(&svc, &headers, body.as_bytes()).await,
                IngestOutcome::Duplicate,
                "{ty}"
            );
            let counted = metrics::take_recorded()
                .into_iter()
                .filter(|(name, _)| name == "FileEventsWithoutLink")
                .count();
            assert_eq!(counted, 1, "{ty}: counted once");
            let events = lock(&mem.events);
            let record = &events[&format!("nolink-{i}")];
            assert_eq!(
                record.payload,
                StoredPayload::Inline(body.clone().into_bytes()),
                "{ty}: stored as sent"
            );
            assert_eq!(
                (record.job_id.as_ref(), record.job_state),
                (None, None),
                "{ty}: no job"
            );
            let why = record.link_error.as_deref().expect("flagged");
            assert!(why.contains(ty) && !why.contains("secret"), "{why}");
            assert!(lock(&mem.jobs).is_empty(), "{ty}: nothing queued");
        }
        // An event with a usable link is not counted.
        let mem = Mem::default();
        let svc = IngestService::new(&mem, &mem, &mem, &test_config(&[]));
        let body = br#"{"idempotencyKey":"ok","eventType":"RECORDING_UPLOADED","data":{"preAuthenticatedLink":"https://x.example/r"}}"#;
        metrics::record_on_this_thread();
        assert_eq!(
            deliver(&svc, &signed_headers(body), body).await,
            IngestOutcome::Stored
        );
        assert!(
            metrics::take_recorded()
                .iter()
                .all(|(n, _)| n != "FileEventsWithoutLink")
        );
        assert_eq!(lock(&mem.jobs).len(), 1);
        assert!(lock(&mem.events)["ok"].link_error.is_none());
    }

    #[tokio::test]
    async fn loopback_http_links_make_jobs_only_in_the_local_stack() {
        let body = br#"{"idempotencyKey":"local","eventType":"RECORDING_UPLOADED","data":{"preAuthenticatedLink":"http://127.0.0.1:9/r.mp4"}}"#;
        for (flag, jobs) in [("false", 0), ("true", 1)] {
            let mem = Mem::default();
            let config = test_config(&[("ALLOW_INSECURE_LOCAL_ORIGIN", flag)]);
            let svc = IngestService::new(&mem, &mem, &mem, &config);
            assert_eq!(
                deliver(&svc, &signed_headers(body), body).await,
                IngestOutcome::Stored
            );
            assert_eq!(
                lock(&mem.jobs).len(),
                jobs,
                "ALLOW_INSECURE_LOCAL_ORIGIN={flag}"
            );
        }
    }

    #[test]
    fn attempt_tokens_differ_per_delivery() {
        let tokens: std::collections::HashSet<_> = (0..1000).map(|_| attempt_token(5)).collect();
        assert_eq!(tokens.len(), 1000);
        assert!(tokens.iter().all(|t| t.len() == 32));
    }

    #[test]
    fn huge_lease_and_retention_saturate_instead_of_wrapping() {
        let env: HashMap<String, String> = [
            ("EVENTS_TABLE", "t"),
            ("JOBS_QUEUE_URL", "q"),
            ("PAYLOAD_BUCKET", "b"),
            ("JAAS_WEBHOOK_SECRETS", "s"),
            ("EVENT_RETENTION_DAYS", "18446744073709551615"),
            ("ENQUEUE_LEASE_SECONDS", "18446744073709551615"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = IngestConfig::from_env(&env).expect("valid");
        let svc = IngestService::new(Never, Never, Never, &config);
        assert_eq!(svc.lease_ms, i64::MAX);
        assert_eq!(svc.retention_secs, Some(i64::MAX));
        for now in [i64::MIN, -1, 0, 1_700_000_000_000, i64::MAX] {
            assert_eq!(
                svc.expiry(now),
                Some(now.div_euclid(1000).saturating_add(i64::MAX))
            );
            assert!(svc.expiry(now) >= Some(now.div_euclid(1000)));
            let _ = now.saturating_add(svc.lease_ms);
        }
    }
}
