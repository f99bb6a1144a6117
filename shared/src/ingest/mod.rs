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
use crate::facts::{EventFacts, FilePlan, ParticipantFacts};
use crate::jobs::{CopyJob, JOB_MESSAGE_MAX_BYTES, LinkPolicy, encode_jobs, job_from_plan};
use crate::metrics;
use crate::providers::{self, Interpretation, Provider, Refused, Registry};
use crate::schema::limits;
use ports::{
    BlobStore, EventRecord, EventStore, ItemSize, JobQueue, JobState, PutOutcome, QuarantineRecord,
    StoreError, StoredPayload,
};

/// An idempotencyKey longer than this is stored under its SHA-256 (`key-sha256:<hex>`; the
/// original stays in the payload). JaaS sends 36-byte UUIDs; the bound keeps every key derived
/// from it inside DynamoDB's limits: the conflict key (+74 bytes) and the job id (+14) as
/// partition keys (2048 bytes), and the session index's sort key as one (1024 bytes, whose
/// tail the store shortens itself).
pub const MAX_RAW_KEY_BYTES: usize = 1024;

/// Why an event was stored differently from how it came; in the item (`storageNotes`) and
/// in the answer.
pub mod notes {
    pub const KEY_HASHED: &str = "idempotency_key_over_1024_bytes_stored_under_its_sha256";
    pub const KEY_IN_OTHER_NAMESPACE: &str =
        "idempotency_key_in_another_providers_namespace_stored_under_its_sha256";
    pub const SESSION_NOT_INDEXED: &str = "session_id_over_2048_bytes_not_indexed";
    pub const ROOM_NOT_INDEXED: &str = "fqn_over_2048_bytes_not_indexed";
    pub const JOB_TOO_LARGE: &str = "copy_job_over_256_kib_not_queued";
}

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
    /// The providers served (those whose secret section is configured).
    pub providers: Registry,
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

    /// Reads `EVENTS_TABLE`, `JOBS_QUEUE_URL`, `PAYLOAD_BUCKET`, each provider's section
    /// ([`Registry::from_env`]: at least one must be configured), `MAX_BODY_BYTES`, `ENQUEUE_LEASE_SECONDS`,
    /// `EVENT_RETENTION_DAYS` (optional), `ALLOW_INSECURE_LOCAL_ORIGIN` (development only:
    /// `http://` links to a loopback host make jobs too; the copier refuses to fetch them in
    /// Lambda unless the AWS APIs are a loopback emulator).
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let providers = Registry::from_env(env)?;
        if providers.is_empty() {
            return Err(ConfigError::Missing("JAAS_WEBHOOK_SECRETS"));
        }
        let retention_days: Option<u64> = config::parsed_opt(env, "EVENT_RETENTION_DAYS")?;
        let retention = retention_days.map(|d| Duration::from_secs(d.saturating_mul(86_400)));
        if let Some(r) = retention
            && Duration::from_secs(providers.max_tolerance_secs()) >= r
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
            providers,
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
    /// First delivery, stored, but not entirely as it came: each note says how (a key too
    /// long for DynamoDB stored under its hash, a session too long to index, ...).
    StoredWithNotes {
        notes: Vec<&'static str>,
    },
    /// Same key, same payload: nothing new (a missing job was enqueued if needed).
    Duplicate,
    /// Same key, different payload: kept under a derived key and flagged.
    Conflict,
    /// Verified but not an event of its provider: kept as it came.
    Quarantined {
        reason: &'static str,
    },
    /// A provider's signed connectivity test: answered, not stored.
    Probe,
    /// No provider of this name is served here (unknown, or its secret section is absent).
    UnknownProvider,
    MethodNotAllowed,
    TooLarge {
        limit: usize,
    },
    Unauthorized(Refused),
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
    /// The body could not be written to the blob store.
    Blob(ports::BlobError),
    /// Even with its payload in the blob store the item would exceed DynamoDB's item limit.
    TooLargeForAnItem,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Storage(e)
    }
}

enum Written {
    /// With the notes on how it was stored.
    Created(Vec<&'static str>),
    Duplicate,
    KeyTakenByOtherPayload,
}

/// One verified delivery as it will be stored: what [`IngestService::write`] needs besides
/// the key.
struct Delivery<'a> {
    provider: &'static str,
    facts: &'a EventFacts,
    files: &'a Result<Vec<FilePlan>, crate::jobs::MissingLink>,
    body: &'a [u8],
    sha: &'a str,
    attempt: &'a str,
    now_ms: i64,
    /// The session id when it fits an index key; `None` otherwise.
    session_id: Option<&'a str>,
    index_room: bool,
    notes: Vec<&'static str>,
}

/// The ingest use case over its three ports.
#[derive(Debug)]
pub struct IngestService<S, Q, B> {
    store: S,
    queue: Q,
    blobs: B,
    providers: Registry,
    max_body_bytes: usize,
    lease_ms: i64,
    retention_secs: Option<i64>,
    link_policy: LinkPolicy,
}

impl<S: EventStore + ItemSize, Q: JobQueue, B: BlobStore> IngestService<S, Q, B> {
    pub fn new(store: S, queue: Q, blobs: B, config: &IngestConfig) -> Self {
        Self {
            store,
            queue,
            blobs,
            providers: config.providers.clone(),
            max_body_bytes: config.max_body_bytes,
            lease_ms: i64::try_from(config.enqueue_lease.as_millis()).unwrap_or(i64::MAX),
            retention_secs: config
                .retention
                .map(|r| i64::try_from(r.as_secs()).unwrap_or(i64::MAX)),
            link_policy: config.link_policy,
        }
    }

    /// Handles one delivery to `/webhooks/{provider}`. `now_ms` is the current Unix time in
    /// milliseconds.
    #[instrument(
        name = "ingest",
        skip_all,
        fields(provider, event_type, idempotency_key, session_id, outcome)
    )]
    pub async fn handle(
        &self,
        provider: &str,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> IngestOutcome {
        Span::current().record("provider", provider);
        let outcome = match self.providers.get(provider) {
            Some(p) => self.handle_inner(p, method, headers, body, now_ms).await,
            None => IngestOutcome::UnknownProvider,
        };
        Span::current().record("outcome", tracing::field::debug(&outcome));
        metrics::ingest_outcome(provider, &outcome);
        outcome
    }

    async fn handle_inner(
        &self,
        provider: &dyn Provider,
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
        if let Err(e) = provider.verify(headers, body, now_ms.div_euclid(1000)) {
            warn!(reason = e.code, "webhook refused");
            return IngestOutcome::Unauthorized(e);
        }
        let name = provider.name();
        let sha = hex::encode(Sha256::digest(body));
        let interpreted = match provider.interpret(body, now_ms, self.link_policy) {
            Ok(Interpretation::Event(ev)) => ev,
            Ok(Interpretation::Probe) => {
                info!("provider's connectivity test answered; not stored");
                return IngestOutcome::Probe;
            }
            Err(e) => return self.quarantine(name, headers, body, sha, e.0, now_ms).await,
        };
        let event = &interpreted.facts;
        // Every verified event, duplicates included: the dashboard's "events by type".
        metrics::count_by(
            "Events",
            1.0,
            &[("Provider", name), ("EventType", &event.event_type)],
        );
        let span = Span::current();
        span.record("event_type", event.event_type.as_str());
        span.record("idempotency_key", event.event_id.as_deref().unwrap_or("-"));
        span.record("session_id", event.session_id.as_deref().unwrap_or("-"));
        if let Some(reason) = &event.data_error {
            warn!(
                reason,
                "event data does not match its documented shape; stored as sent"
            );
        }

        // Keys and indexed attributes within DynamoDB's limits, so that no delivery fails its
        // write on every retry (503 forever). What does not fit is kept in the payload.
        let mut notes = Vec::new();
        let key = storage_key(name, event.event_id.as_deref(), &sha, &mut notes);
        let session_id = match event.session_id.as_deref() {
            Some(id) if id.len() > limits::PARTITION_KEY_BYTES => {
                notes.push(notes::SESSION_NOT_INDEXED);
                None
            }
            other => other,
        };
        // Boundaries list the room's sessions; a file event that names no session is found
        // under its room by time (the read API's files).
        let sessionless_files = session_id.is_none()
            && interpreted
                .files
                .as_ref()
                .is_ok_and(|plans| !plans.is_empty());
        let mut index_room =
            event.room_key.is_some() && (event.is_session_boundary() || sessionless_files);
        if index_room
            && event
                .room_key
                .as_deref()
                .is_some_and(|f| f.len() > limits::PARTITION_KEY_BYTES)
        {
            notes.push(notes::ROOM_NOT_INDEXED);
            index_room = false;
        }
        if !notes.is_empty() {
            warn!(?notes, "event stored differently from how it came");
        }
        let attempt = attempt_token(now_ms);
        let delivery = Delivery {
            provider: name,
            facts: event,
            files: &interpreted.files,
            body,
            sha: &sha,
            attempt: &attempt,
            now_ms,
            session_id,
            index_room,
            notes,
        };
        let result = match self.write(&delivery, &key, None).await {
            Ok(Written::Created(notes)) if notes.is_empty() => Ok(IngestOutcome::Stored),
            Ok(Written::Created(notes)) => Ok(IngestOutcome::StoredWithNotes { notes }),
            Ok(Written::Duplicate) => Ok(IngestOutcome::Duplicate),
            Ok(Written::KeyTakenByOtherPayload) => {
                // Not a duplicate: keep it under a key derived from its own content, so a
                // retry of this delivery deduplicates against it.
                let conflict_key = format!("{key}#conflict#{sha}");
                warn!("idempotencyKey reused with a different payload; kept under a derived key");
                match self.write(&delivery, &conflict_key, Some(&key)).await {
                    Ok(Written::Created(_)) => Ok(IngestOutcome::Conflict),
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
            Err(Failure::Blob(e)) => {
                error!(error = %e, source = %e.source, "large payload write failed");
                IngestOutcome::StorageUnavailable
            }
            Err(Failure::Queue) => IngestOutcome::QueueUnavailable,
            Err(Failure::InProgress) => IngestOutcome::InProgress,
            // A retry could never store it as an event: keep it as it came and say why.
            Err(Failure::TooLargeForAnItem) => {
                self.quarantine(name, headers, body, sha, "too_large_for_an_item", now_ms)
                    .await
            }
        }
    }

    /// The one conditional write, then whatever job bookkeeping the outcome calls for.
    async fn write(
        &self,
        d: &Delivery<'_>,
        key: &str,
        conflict_of: Option<&str>,
    ) -> Result<Written, Failure> {
        let (event, sha, attempt, now_ms) = (d.facts, d.sha, d.attempt, d.now_ms);
        let (mut jobs, mut link_error) = match d.files {
            Ok(plans) => (
                plans
                    .iter()
                    .map(|plan| job_from_plan(d.provider, event, key, now_ms, plan.clone()))
                    .collect::<Vec<_>>(),
                None,
            ),
            Err(missing) => (Vec::new(), Some(missing.to_string())),
        };
        let mut notes = d.notes.clone();
        if jobs
            .iter()
            .any(|j| j.to_json().len() > JOB_MESSAGE_MAX_BYTES)
        {
            // SQS would refuse it on every attempt: stored without a job, counted and
            // alarmed like a file event without a link.
            jobs.clear();
            link_error = Some(format!(
                "{} copy job message over {JOB_MESSAGE_MAX_BYTES} bytes (SQS limit): not queued",
                event.event_type
            ));
            notes.push(notes::JOB_TOO_LARGE);
        }
        let has_jobs = !jobs.is_empty();
        let mut record = EventRecord {
            key: key.to_owned(),
            provider: d.provider,
            event_type: event.event_type.clone(),
            session_id: d.session_id.map(str::to_owned),
            room_key: event.room_key.clone(),
            room: bounded(&event.room),
            tenant: event.tenant.clone(),
            account: event.account.clone(),
            participant: event.participant.as_ref().map(|p| ParticipantFacts {
                participant_id: bounded(&p.participant_id),
                user_id: bounded(&p.user_id),
                name: bounded(&p.name),
                moderator: p.moderator,
                role: bounded(&p.role),
            }),
            presence: event.presence,
            timestamp_ms: event.occurred_at_ms.unwrap_or(now_ms),
            received_at_ms: now_ms,
            payload: StoredPayload::Inline(d.body.to_vec()),
            payload_sha256: sha.to_owned(),
            indexes_room_session: d.index_room,
            data_error: event.data_error.clone(),
            link_error: link_error.clone(),
            notes,
            conflict_of: conflict_of.map(str::to_owned),
            job_ids: jobs.iter().map(|j| j.job_id.clone()).collect(),
            job_kinds: jobs.iter().map(|j| j.kind).collect(),
            link_expires_at_ms: jobs.iter().map(|j| j.link_expires_at).min(),
            job_state: has_jobs.then(|| JobState::Sending {
                lease_until_ms: now_ms.saturating_add(self.lease_ms),
            }),
            job_message: has_jobs.then(|| encode_jobs(&jobs)),
            expires_at_secs: self.expiry(now_ms),
            attempt: attempt.to_owned(),
        };
        // Inline when the whole item fits DynamoDB's item limit (names and values), else the
        // body goes to the blob store first (content-addressed, so a retry rewrites the same
        // object and a crash before the item leaves no harm).
        if self.store.event_bytes(&record) > limits::ITEM_BYTES {
            record.payload = self
                .put_blob(d.body, sha, &format!("raw/{}", d.provider))
                .await
                .map_err(Failure::Blob)?;
            if self.store.event_bytes(&record) > limits::ITEM_BYTES {
                warn!("event too large for an item even without its payload");
                return Err(Failure::TooLargeForAnItem);
            }
        }
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
                if let Some(problem) = &link_error {
                    // Counted once per stored event (not per duplicate) and alarmed: the file
                    // behind it will not be copied unless someone fetches it by hand in time.
                    warn!(
                        problem = %problem,
                        "file event without a usable link: stored, nothing to copy"
                    );
                    metrics::count_by("FileEventsWithoutLink", 1.0, &[("Provider", d.provider)]);
                }
                if event.file_failure {
                    warn!(event_type = %event.event_type, "provider reports a failed file");
                    metrics::count_by("ProviderFileErrors", 1.0, &[("Provider", d.provider)]);
                }
                if has_jobs {
                    self.enqueue(key, &jobs).await?;
                }
                Ok(Written::Created(record.notes.clone()))
            }
            PutOutcome::Exists(old) if old.payload_sha256.as_deref() == Some(sha) => {
                if let (Some(JobState::Sending { lease_until_ms }), true) =
                    (old.job_state, has_jobs)
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
                    metrics::count_by("JobsRecovered", 1.0, &[("Provider", d.provider)]);
                    self.enqueue(key, &jobs).await?;
                }
                Ok(Written::Duplicate)
            }
            PutOutcome::Exists(_) => Ok(Written::KeyTakenByOtherPayload),
        }
    }

    /// Sends every job of an event, then marks the event queued. A failure part-way sends
    /// them all again on the retry: the copier's exactly-once state absorbs the repeats.
    async fn enqueue(&self, key: &str, jobs: &[CopyJob]) -> Result<(), Failure> {
        for job in jobs {
            if let Err(e) = self.queue.enqueue(job).await {
                error!(error = %e, source = %e.source, job_id = %job.job_id, "enqueue failed; the retry will enqueue");
                if let Err(e) = self.store.release_enqueue(key).await {
                    // The lease then simply runs out; the retry after it takes over.
                    warn!(error = %e, "could not release the enqueue lease");
                }
                return Err(Failure::Queue);
            }
            info!(job_id = %job.job_id, kind = job.kind.as_str(), source = %job.file, "copy job enqueued");
        }
        if let Err(e) = self.store.mark_queued(key).await {
            // The jobs are on the queue; at worst a later duplicate enqueues them again and
            // the copier's own exactly-once state absorbs it.
            warn!(error = %e, "jobs enqueued but not marked queued");
        }
        Ok(())
    }

    async fn quarantine(
        &self,
        provider: &'static str,
        headers: &HeaderMap,
        body: &[u8],
        sha: String,
        reason: &'static str,
        now_ms: i64,
    ) -> IngestOutcome {
        warn!(
            reason,
            bytes = body.len(),
            provider,
            "verified body is not an event of its provider: quarantined"
        );
        let mut record = QuarantineRecord {
            key: format!("quarantine#{sha}"),
            provider,
            reason: reason.to_owned(),
            received_at_ms: now_ms,
            payload: StoredPayload::Inline(body.to_vec()),
            payload_sha256: sha,
            headers: redacted_headers(headers),
            expires_at_secs: self.expiry(now_ms),
        };
        if self.store.quarantine_bytes(&record) > limits::ITEM_BYTES {
            match self
                .put_blob(body, &record.payload_sha256, "quarantine")
                .await
            {
                Ok(p) => record.payload = p,
                Err(e) => {
                    error!(error = %e, source = %e.source, "quarantine payload write failed");
                    return IngestOutcome::StorageUnavailable;
                }
            }
            // Headers are bounded by API Gateway (10 KB): without its body the record fits.
        }
        match self.store.put_quarantine(&record).await {
            Ok(()) => IngestOutcome::Quarantined { reason },
            Err(e) => {
                error!(error = %e, source = %e.source, "quarantine write failed");
                IngestOutcome::StorageUnavailable
            }
        }
    }

    /// Writes a body too large for its item to the blob store under `<prefix>/<sha256>`.
    async fn put_blob(
        &self,
        body: &[u8],
        sha: &str,
        prefix: &str,
    ) -> Result<StoredPayload, ports::BlobError> {
        let key = format!("{prefix}/{sha}");
        self.blobs
            .put(&key, body.to_vec(), "application/octet-stream")
            .await?;
        Ok(StoredPayload::External(key))
    }

    fn expiry(&self, now_ms: i64) -> Option<i64> {
        self.retention_secs
            .map(|r| now_ms.div_euclid(1000).saturating_add(r))
    }
}

/// The key an event is stored under: its id namespaced by provider, so that no two providers'
/// keys can ever meet. JaaS keys stay as they always were (un-prefixed), except one that would
/// fall in another provider's namespace (`daily:...`), which is stored under its hash like an
/// over-long one. Without an id, the body's SHA-256 is the key. Ids over
/// [`MAX_RAW_KEY_BYTES`] are stored under their own SHA-256; each rewrite adds a note.
pub fn storage_key(
    provider: &str,
    event_id: Option<&str>,
    body_sha: &str,
    notes: &mut Vec<&'static str>,
) -> String {
    let namespace = if provider == providers::jaas::NAME {
        String::new()
    } else {
        format!("{provider}:")
    };
    let hashed = |k: &str| {
        format!(
            "{namespace}key-sha256:{}",
            hex::encode(Sha256::digest(k.as_bytes()))
        )
    };
    match event_id {
        None => format!("{namespace}sha256:{body_sha}"),
        Some(k) if k.len() > MAX_RAW_KEY_BYTES => {
            notes.push(notes::KEY_HASHED);
            hashed(k)
        }
        Some(k)
            if namespace.is_empty()
                && providers::ALL.iter().any(|p| {
                    *p != providers::jaas::NAME
                        && k.strip_prefix(p).is_some_and(|r| r.starts_with(':'))
                }) =>
        {
            notes.push(notes::KEY_IN_OTHER_NAMESPACE);
            hashed(k)
        }
        Some(k) => format!("{namespace}{k}"),
    }
}

/// A copy of a fact for its own attribute, when it is short: a longer value stays only in
/// the payload, so a huge name never doubles an item's size.
fn bounded(value: &Option<String>) -> Option<String> {
    value
        .as_ref()
        .filter(|v| v.len() <= MAX_RAW_KEY_BYTES)
        .cloned()
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

    impl ItemSize for Never {
        fn event_bytes(&self, _: &EventRecord) -> usize {
            unreachable!()
        }
        fn quarantine_bytes(&self, _: &QuarantineRecord) -> usize {
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
    pub(super) struct Mem {
        pub(super) events: std::sync::Mutex<HashMap<String, EventRecord>>,
        pub(super) quarantined: std::sync::Mutex<Vec<QuarantineRecord>>,
        pub(super) jobs: std::sync::Mutex<Vec<CopyJob>>,
        blobs: std::sync::Mutex<HashMap<String, Vec<u8>>>,
    }

    pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

    /// Roughly what DynamoDB counts: the variable-length values plus a fixed overhead.
    impl ItemSize for &Mem {
        fn event_bytes(&self, r: &EventRecord) -> usize {
            let text = |v: &Option<String>| v.as_ref().map_or(0, String::len);
            let payload = match &r.payload {
                StoredPayload::Inline(b) => b.len(),
                StoredPayload::External(k) => k.len(),
            };
            200 + r.key.len() * 2
                + r.event_type.len()
                + payload
                + text(&r.session_id)
                + text(&r.room_key)
                + text(&r.room)
                + text(&r.tenant)
                + text(&r.account)
                + text(&r.job_message)
                + text(&r.link_error)
        }
        fn quarantine_bytes(&self, r: &QuarantineRecord) -> usize {
            let payload = match &r.payload {
                StoredPayload::Inline(b) => b.len(),
                StoredPayload::External(k) => k.len(),
            };
            200 + payload
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
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
        svc.handle("jaas", &Method::POST, headers, body, NOW).await
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
                (record.job_ids.first(), record.job_state),
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
    async fn keys_and_indexed_values_beyond_dynamodb_limits_are_stored_and_the_answer_says_how() {
        let mem = Mem::default();
        let svc = IngestService::new(&mem, &mem, &mem, &test_config(&[]));
        let long_key = "k".repeat(3000);
        let body = format!(
            r#"{{"idempotencyKey":"{long_key}","eventType":"RECORDING_UPLOADED","sessionId":"s","fqn":"a/r","data":{{"preAuthenticatedLink":"https://x.example/r"}}}}"#
        );
        let headers = signed_headers(body.as_bytes());
        assert_eq!(
            deliver(&svc, &headers, body.as_bytes()).await,
            IngestOutcome::StoredWithNotes {
                notes: vec![notes::KEY_HASHED]
            }
        );
        // The retry deduplicates on the same derived key.
        assert_eq!(
            deliver(&svc, &headers, body.as_bytes()).await,
            IngestOutcome::Duplicate
        );
        let key = format!(
            "key-sha256:{}",
            hex::encode(Sha256::digest(long_key.as_bytes()))
        );
        {
            let events = lock(&mem.events);
            assert_eq!(events.len(), 1);
            let record = &events[&key];
            assert_eq!(
                record.payload,
                StoredPayload::Inline(body.clone().into_bytes())
            );
            assert_eq!(record.notes, [notes::KEY_HASHED]);
        }
        {
            let jobs = lock(&mem.jobs);
            assert_eq!(jobs.len(), 1);
            assert_eq!(jobs[0].job_id, format!("{key}/recording"));
        }

        let long_session = "s".repeat(3000);
        let body = format!(
            r#"{{"idempotencyKey":"long-session","eventType":"ROOM_CREATED","sessionId":"{long_session}","fqn":"{}","data":{{}}}}"#,
            "f".repeat(2100)
        );
        assert_eq!(
            deliver(&svc, &signed_headers(body.as_bytes()), body.as_bytes()).await,
            IngestOutcome::StoredWithNotes {
                notes: vec![notes::SESSION_NOT_INDEXED, notes::ROOM_NOT_INDEXED]
            }
        );
        let events = lock(&mem.events);
        let record = &events["long-session"];
        assert_eq!(record.session_id, None, "not an index key");
        assert!(!record.indexes_room_session);
        assert_eq!(
            record.room_key.as_ref().map(String::len),
            Some(2100),
            "kept, unindexed"
        );
        assert_eq!(
            record.payload,
            StoredPayload::Inline(body.clone().into_bytes())
        );
    }

    #[tokio::test]
    async fn the_item_size_not_the_body_size_decides_overflow_and_what_fits_no_item_is_quarantined()
    {
        let mem = Mem::default();
        let svc = IngestService::new(&mem, &mem, &mem, &test_config(&[]));
        // A 300 KB body whose item (customerId and fqn repeated as attributes) is larger.
        let body = format!(
            r#"{{"idempotencyKey":"big","eventType":"USAGE","customerId":"{}","fqn":"a/{}","data":[],"pad":"{}"}}"#,
            "c".repeat(60_000),
            "r".repeat(60_000),
            "p".repeat(180_000)
        );
        assert!(body.len() < 350 * 1024);
        let outcome = deliver(&svc, &signed_headers(body.as_bytes()), body.as_bytes()).await;
        assert_eq!(outcome, IngestOutcome::Stored);
        let sha = hex::encode(Sha256::digest(body.as_bytes()));
        assert_eq!(
            lock(&mem.events)["big"].payload,
            StoredPayload::External(format!("raw/jaas/{sha}"))
        );
        assert_eq!(
            lock(&mem.blobs)[&format!("raw/jaas/{sha}")],
            body.as_bytes()
        );

        // Too large for an item even without its payload: kept as it came, and the answer
        // says why (a retry could never store it as an event).
        let body = format!(
            r#"{{"idempotencyKey":"huge","eventType":"{}","data":{{}}}}"#,
            "X".repeat(450_000)
        );
        let outcome = deliver(&svc, &signed_headers(body.as_bytes()), body.as_bytes()).await;
        assert_eq!(
            outcome,
            IngestOutcome::Quarantined {
                reason: "too_large_for_an_item"
            }
        );
        assert!(!lock(&mem.events).contains_key("huge"));
        let sha = hex::encode(Sha256::digest(body.as_bytes()));
        let quarantined = lock(&mem.quarantined);
        assert_eq!(quarantined.len(), 1);
        assert_eq!(
            quarantined[0].payload,
            StoredPayload::External(format!("quarantine/{sha}"))
        );
        assert_eq!(
            lock(&mem.blobs)[&format!("quarantine/{sha}")],
            body.as_bytes()
        );
    }

    #[tokio::test]
    async fn a_copy_job_too_large_for_sqs_is_not_sent_but_the_event_is_stored_and_counted() {
        let mem = Mem::default();
        let svc = IngestService::new(&mem, &mem, &mem, &test_config(&[]));
        let body = format!(
            r#"{{"idempotencyKey":"fat-job","eventType":"RECORDING_UPLOADED","fqn":"a/{}","data":{{"preAuthenticatedLink":"https://x.example/r"}}}}"#,
            "r".repeat(300_000)
        );
        metrics::record_on_this_thread();
        let outcome = deliver(&svc, &signed_headers(body.as_bytes()), body.as_bytes()).await;
        assert_eq!(
            outcome,
            IngestOutcome::StoredWithNotes {
                // A file event that names no session is indexed under its room, which here
                // is too long for an index key.
                notes: vec![notes::ROOM_NOT_INDEXED, notes::JOB_TOO_LARGE]
            }
        );
        assert!(
            metrics::take_recorded()
                .iter()
                .any(|(n, _)| n == "FileEventsWithoutLink")
        );
        assert!(lock(&mem.jobs).is_empty());
        let events = lock(&mem.events);
        let record = &events["fat-job"];
        assert_eq!(
            (record.job_state, record.job_message.as_ref()),
            (None, None)
        );
        assert!(record.link_error.is_some());
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

#[cfg(test)]
mod daily_tests {
    //! The ingest use case with a second provider, over the in-memory ports of `tests`.
    use std::collections::HashMap;

    use super::*;
    use crate::providers::daily::{self, catalogue};

    const DAILY_SECRET: &str = "ZGFpbHktdW5pdC1zZWNyZXQ=";
    const NOW: i64 = 1_708_973_000_000;

    fn config(daily: bool, jaas: bool) -> IngestConfig {
        let mut env: HashMap<String, String> = [
            ("EVENTS_TABLE", "t"),
            ("JOBS_QUEUE_URL", "q"),
            ("PAYLOAD_BUCKET", "b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if daily {
            env.insert("DAILY_WEBHOOK_SECRETS".into(), DAILY_SECRET.into());
        }
        if jaas {
            env.insert("JAAS_WEBHOOK_SECRETS".into(), "whsec_unit".into());
        }
        IngestConfig::from_env(&env).expect("config")
    }

    fn signed(body: &str) -> HeaderMap {
        let ts = (NOW / 1000).to_string();
        let mut h = HeaderMap::new();
        h.insert(
            daily::SIGNATURE_HEADER,
            daily::sign(DAILY_SECRET, &ts, body.as_bytes())
                .parse()
                .expect("h"),
        );
        h.insert(daily::TIMESTAMP_HEADER, ts.parse().expect("h"));
        h
    }

    type Svc<'a> =
        IngestService<&'a super::tests::Mem, &'a super::tests::Mem, &'a super::tests::Mem>;

    async fn post(svc: &Svc<'_>, provider: &str, headers: &HeaderMap, body: &str) -> IngestOutcome {
        svc.handle(provider, &Method::POST, headers, body.as_bytes(), NOW)
            .await
    }

    #[tokio::test]
    async fn a_signed_daily_meeting_is_stored_once_with_its_jobs_and_namespaced_keys() {
        let mem = super::tests::Mem::default();
        let svc = IngestService::new(&mem, &mem, &mem, &config(true, true));
        for (ty, body) in catalogue::examples() {
            let h = signed(&body);
            assert_eq!(
                post(&svc, "daily", &h, &body).await,
                IngestOutcome::Stored,
                "{ty}"
            );
            assert_eq!(
                post(&svc, "daily", &h, &body).await,
                IngestOutcome::Duplicate,
                "{ty}"
            );
        }
        let events = super::tests::lock(&mem.events);
        assert_eq!(events.len(), 32);
        assert!(
            events.keys().all(|k| k.starts_with("daily:ev-")),
            "namespaced"
        );
        assert!(events.values().all(|r| r.provider == "daily"));
        let jobs = super::tests::lock(&mem.jobs);
        let ids: Vec<_> = jobs.iter().map(|j| j.job_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                format!("daily:recording:{}", catalogue::RECORDING_ID),
                format!("daily:transcript:{}", catalogue::TRANSCRIPT_ID)
            ],
            "one job per file, duplicates enqueue nothing"
        );
        assert!(
            jobs.iter().all(|j| j.url().is_none()),
            "resolved at copy time"
        );
        let started = events
            .values()
            .find(|r| r.event_type == "meeting.started")
            .expect("started");
        assert!(started.indexes_room_session);
        assert_eq!(started.room_key.as_deref(), Some("daily:daily-demo-room"));
    }

    #[tokio::test]
    async fn a_reused_id_with_another_body_is_kept_and_flagged_and_the_probe_is_not_stored() {
        let mem = super::tests::Mem::default();
        let svc = IngestService::new(&mem, &mem, &mem, &config(true, false));
        let a = catalogue::body("meeting.started", "same-id", 1.0);
        let b = catalogue::body("meeting.ended", "same-id", 2.0);
        assert_eq!(
            post(&svc, "daily", &signed(&a), &a).await,
            IngestOutcome::Stored
        );
        assert_eq!(
            post(&svc, "daily", &signed(&b), &b).await,
            IngestOutcome::Conflict
        );
        let probe = r#"{"test":"test"}"#;
        assert_eq!(
            post(&svc, "daily", &signed(probe), probe).await,
            IngestOutcome::Probe
        );
        assert_eq!(super::tests::lock(&mem.events).len(), 2);
        // A correctly signed body that is no event is kept (200), never refused.
        let odd = r#"{"hello":"daily"}"#;
        assert_eq!(
            post(&svc, "daily", &signed(odd), odd).await,
            IngestOutcome::Quarantined {
                reason: "missing_event_type"
            }
        );
        assert_eq!(super::tests::lock(&mem.quarantined)[0].provider, "daily");
    }

    #[tokio::test]
    async fn forged_stale_and_unsigned_requests_and_unserved_providers_store_nothing() {
        let mem = super::tests::Mem::default();
        let svc = IngestService::new(&mem, &mem, &mem, &config(true, false));
        let body = catalogue::body("participant.joined", "p1", 1.0);
        let mut forged = signed(&body);
        forged.insert(
            daily::SIGNATURE_HEADER,
            daily::sign("Zm9yZ2Vk", "1", b"x").parse().expect("h"),
        );
        let mut stale = HeaderMap::new();
        let old = ((NOW / 1000) - 2 * 86_400).to_string();
        stale.insert(
            daily::SIGNATURE_HEADER,
            daily::sign(DAILY_SECRET, &old, body.as_bytes())
                .parse()
                .expect("h"),
        );
        stale.insert(daily::TIMESTAMP_HEADER, old.parse().expect("h"));
        for (headers, code) in [
            (forged, "signature_mismatch"),
            (stale, "signature_stale"),
            (HeaderMap::new(), "signature_missing"),
        ] {
            match post(&svc, "daily", &headers, &body).await {
                IngestOutcome::Unauthorized(r) => assert_eq!(r.code, code),
                other => panic!("{code}: {other:?}"),
            }
        }
        // JaaS is not configured here: its route is not served; nor is an unknown name.
        for name in ["jaas", "zoom", ""] {
            assert_eq!(
                post(&svc, name, &signed(&body), &body).await,
                IngestOutcome::UnknownProvider
            );
        }
        assert!(super::tests::lock(&mem.events).is_empty());
        assert!(super::tests::lock(&mem.quarantined).is_empty());
    }

    #[test]
    fn keys_are_namespaced_and_a_jaas_key_never_enters_another_namespace() {
        let mut notes = Vec::new();
        assert_eq!(storage_key("jaas", Some("abc"), "sha", &mut notes), "abc");
        assert_eq!(
            storage_key("daily", Some("abc"), "sha", &mut notes),
            "daily:abc"
        );
        assert_eq!(
            storage_key("daily", None, "f00", &mut notes),
            "daily:sha256:f00"
        );
        assert_eq!(storage_key("jaas", None, "f00", &mut notes), "sha256:f00");
        assert!(notes.is_empty());
        let k = storage_key("jaas", Some("daily:abc"), "sha", &mut notes);
        assert!(k.starts_with("key-sha256:"), "{k}");
        assert_eq!(notes, vec![notes::KEY_IN_OTHER_NAMESPACE]);
        // "jaas:" is JaaS's own: kept.
        assert_eq!(
            storage_key("jaas", Some("jaas:x"), "s", &mut Vec::new()),
            "jaas:x"
        );
    }
}
