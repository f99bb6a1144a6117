//! The capabilities the ingest logic needs, one small trait each. The AWS implementations
//! live in [`crate::aws`]; tests may wrap them (e.g. to inject a failure) but the logic never
//! knows which it has.

use crate::facts::ParticipantFacts;
use crate::jobs::CopyJob;

/// Where an accepted body is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredPayload {
    /// In the item itself (DynamoDB items are limited to 400 KB).
    Inline(Vec<u8>),
    /// In the blob store under this key (written before the item).
    External(String),
}

/// Job bookkeeping on an event item. Absent for events without a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// A writer holds the right to enqueue until this time (Unix ms). A lease that ran out
    /// means the writer crashed or failed: whoever sees it next takes over.
    Sending { lease_until_ms: i64 },
    /// The job message is on the queue.
    Queued,
}

impl Default for StoredPayload {
    fn default() -> Self {
        Self::Inline(Vec::new())
    }
}

/// One accepted webhook, ready to be written once. (`Default` is for the events this product
/// writes itself, a Jibri upload or a reconciled recording: what they do not say stays empty.)
#[derive(Debug, Clone, Default)]
pub struct EventRecord {
    /// The storage key: the idempotencyKey as sent, a derived key when absent, or a
    /// conflict key when the sent key was already used by a different payload.
    pub key: String,
    /// The provider that sent it (route name).
    pub provider: &'static str,
    pub event_type: String,
    pub session_id: Option<String>,
    /// The room's identity across tenants (stored as `fqn`: JaaS's name for it).
    pub room_key: Option<String>,
    pub room: Option<String>,
    /// Stored as `appId`.
    pub tenant: Option<String>,
    /// Stored as `customerId`.
    pub account: Option<String>,
    pub participant: Option<ParticipantFacts>,
    /// What the event says about presence (stored as `presence`).
    pub presence: Option<crate::facts::Presence>,
    /// Event time (Unix ms) or, when the event has none, the receive time.
    pub timestamp_ms: i64,
    pub received_at_ms: i64,
    pub payload: StoredPayload,
    pub payload_sha256: String,
    /// Set on session boundaries (JaaS ROOM_CREATED / ROOM_DESTROYED, Daily
    /// meeting.started / ended) so the room index lists sessions, and on file events that
    /// name no session (Daily's recordings, Jibri's uploads) so the read API finds their
    /// session by time.
    pub indexes_room_session: bool,
    pub data_error: Option<String>,
    /// A file event whose link is missing or unusable: why (never the link itself).
    pub link_error: Option<String>,
    /// How the event was stored differently from how it came (see `ingest::notes`).
    pub notes: Vec<&'static str>,
    pub conflict_of: Option<String>,
    /// The ids of the event's copy jobs (most events carry one file at most).
    pub job_ids: Vec<String>,
    /// The kind of each job, in the order of `job_ids` (stored as `jobKinds`).
    pub job_kinds: Vec<crate::jobs::FileKind>,
    /// The earliest expiry of those jobs' links (Unix ms): the event is watched until the
    /// sweeper has checked its copies before then (`byLinkWatch`). `None`: nothing to watch.
    pub link_expires_at_ms: Option<i64>,
    pub job_state: Option<JobState>,
    /// The planned jobs as [`crate::jobs::encode_jobs`] writes them, kept with the item until
    /// they are queued so that the sweeper can send them.
    pub job_message: Option<String>,
    /// TTL, Unix seconds, when a retention is configured.
    pub expires_at_secs: Option<i64>,
    /// Random token of this delivery, stored with the item.
    pub attempt: String,
}

/// What the store already held under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingEvent {
    pub payload_sha256: Option<String>,
    pub job_state: Option<JobState>,
    /// The attempt token of the delivery that wrote it.
    pub attempt: Option<String>,
}

/// Result of the single conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    Exists(ExistingEvent),
}

/// A verified body that is not an event of its provider, kept as it came.
#[derive(Debug, Clone)]
pub struct QuarantineRecord {
    pub key: String,
    pub provider: &'static str,
    pub reason: String,
    pub received_at_ms: i64,
    pub payload: StoredPayload,
    pub payload_sha256: String,
    /// Request headers, with credentials redacted.
    pub headers: Vec<(String, String)>,
    pub expires_at_secs: Option<i64>,
}

/// A storage failure. The message names the operation; the source keeps the SDK error.
#[derive(Debug, thiserror::Error)]
#[error("event store {operation} failed")]
pub struct StoreError {
    pub operation: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
#[error("job queue send failed")]
pub struct QueueError {
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A blob store failure.
#[derive(Debug, thiserror::Error)]
#[error("blob store put failed")]
pub struct BlobError {
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Durable event storage with conditional writes.
pub trait EventStore: Send + Sync {
    /// Writes the record unless its key exists; on a clash returns what was there
    /// (from the same call: no read before the write).
    fn put_if_absent(
        &self,
        record: &EventRecord,
    ) -> impl Future<Output = Result<PutOutcome, StoreError>> + Send;

    /// Takes over the enqueue lease of `key` if it ran out (or was released) before `now_ms`
    /// and the stored payload hash is `sha256`. Returns false if someone else holds it.
    fn claim_enqueue(
        &self,
        key: &str,
        sha256: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that the job message is on the queue.
    fn mark_queued(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the lease up after a failed send so the next delivery can enqueue at once.
    fn release_enqueue(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Keeps a body we could not understand.
    fn put_quarantine(
        &self,
        record: &QuarantineRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A file event whose job was never marked queued, as the pending-job index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingJob {
    pub key: String,
    pub payload_sha256: String,
    /// The job message as stored (JSON; carries the link: never log it).
    pub job_message: Option<String>,
    pub lease_until_ms: i64,
}

/// Where a listing stopped, as the store reported it; opaque to the logic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCursor(pub Vec<(String, String)>);

/// One page of [`PendingJobs::expired`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingPage {
    pub jobs: Vec<PendingJob>,
    /// Present when more may follow.
    pub next: Option<PendingCursor>,
}

/// A file event on the link watch: what its `RecordingAtRisk` would say, and when its
/// earliest link dies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedFile {
    pub event: crate::read::model::StoredEvent,
    pub link_expires_at_ms: i64,
}

/// One page of [`LinkWatch::due`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchPage {
    pub files: Vec<WatchedFile>,
    pub next: Option<PendingCursor>,
}

/// The file events whose links near expiry (a sparse index: no table scan), each looked at
/// once: the sweeper checks their copies, then takes them off the watch.
pub trait LinkWatch: Send + Sync {
    /// Up to `limit` watched events whose earliest link dies before `before_ms`, soonest
    /// first, continuing after `after`.
    fn due(
        &self,
        before_ms: i64,
        limit: u32,
        after: Option<&PendingCursor>,
    ) -> impl Future<Output = Result<WatchPage, StoreError>> + Send;

    /// Takes `key` off the watch.
    fn unwatch(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The index of events whose job is not yet queued (a sparse index: no table scan).
pub trait PendingJobs: Send + Sync {
    /// Up to `limit` pending jobs whose enqueue lease ended before `now_ms`, oldest lease
    /// first, continuing after `after`.
    fn expired(
        &self,
        now_ms: i64,
        limit: u32,
        after: Option<&PendingCursor>,
    ) -> impl Future<Output = Result<PendingPage, StoreError>> + Send;
}

/// The size of a record in the store's own encoding, to decide before the write whether it
/// fits an item (DynamoDB: 400 KB, attribute names plus values) or its payload must go to
/// the blob store. Pure: no I/O.
pub trait ItemSize {
    fn event_bytes(&self, record: &EventRecord) -> usize;
    fn quarantine_bytes(&self, record: &QuarantineRecord) -> usize;
}

/// The copy job queue.
pub trait JobQueue: Send + Sync {
    fn enqueue(&self, job: &CopyJob) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// Storage for payloads too large to keep inline.
pub trait BlobStore: Send + Sync {
    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = Result<(), BlobError>> + Send;
}
