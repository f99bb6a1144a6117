//! Reconciliation: the backstop for lost webhooks. On a schedule, each provider that can list
//! its recent files (Daily's `GET /v1/recordings`) is asked for them, and every file that has
//! no copy state yet gets its copy job, so a webhook that never arrived costs minutes, not a
//! recording.
//!
//! Idempotent with the webhook path: a file's job id is the provider's own id for it
//! ([`crate::facts::FilePlan::job_id`]), the same whoever learns of it first, and the copier's
//! exactly-once state (keyed on the job id) copies it once. A file whose job is already on the
//! queue but not yet claimed may be sent twice; the second delivery finds it copied (or
//! busy) and is acknowledged without work.
//!
//! Each file it enqueues is also stored as an event (`<provider>.reconciled`, key
//! `<provider>:reconciled:<job id>`, filed under its room and time like the webhook it
//! stands for), so that the read API lists it among its meeting's files. The copy comes
//! first: that write failing is logged and counted, never a reason to hold the job back.

use std::time::Duration;

use tracing::{info, warn};

use crate::config::{self, ConfigError, Env};
use crate::copier::ports::{BoxError, StateError};
use crate::facts::{EventFacts, FilePlan};
use crate::ingest::ports::{EventRecord, EventStore, JobQueue, QueueError, StoredPayload};
use crate::jobs::{CopyJob, job_from_plan};
use crate::metrics;

/// A file a provider lists, with the facts its job needs.
#[derive(Debug, Clone)]
pub struct ListedFile {
    pub facts: EventFacts,
    pub plan: FilePlan,
    /// When the provider finished making it (Unix ms).
    pub finished_at_ms: i64,
}

/// A provider that can list its recent files.
pub trait RecentFiles: Send + Sync {
    fn provider(&self) -> &'static str;

    /// Files started at or after `since_ms`.
    fn recent_files(
        &self,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<ListedFile>, BoxError>> + Send;
}

/// Whether the copier already knows a job (copying, copied or failed).
pub trait CopyKnown: Send + Sync {
    fn known(&self, job_id: &str) -> impl Future<Output = Result<bool, StateError>> + Send;
}

/// Configuration of the reconciler, read once at cold start.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    pub copies_table: String,
    /// Where the reconciled files' events are stored.
    pub events_table: String,
    /// Those events expire with the table's TTL after this (`EVENT_RETENTION_DAYS`), if set.
    pub retention: Option<Duration>,
    pub jobs_queue_url: String,
    /// How far back each run lists.
    pub look_back: Duration,
    /// A file finished less than this long ago is left to its webhook.
    pub grace: Duration,
}

impl ReconcileConfig {
    pub const DEFAULT_LOOK_BACK_MINUTES: u64 = 24 * 60;
    pub const DEFAULT_GRACE_SECONDS: u64 = 120;

    /// Reads `COPIES_TABLE`, `EVENTS_TABLE`, `JOBS_QUEUE_URL`, `RECONCILE_LOOK_BACK_MINUTES`
    /// (default a day), `RECONCILE_GRACE_SECONDS` (default 120) and `EVENT_RETENTION_DAYS`.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let look_back: u64 = config::parsed_or(
            env,
            "RECONCILE_LOOK_BACK_MINUTES",
            Self::DEFAULT_LOOK_BACK_MINUTES,
        )?;
        if look_back == 0 {
            return Err(ConfigError::Invalid {
                var: "RECONCILE_LOOK_BACK_MINUTES",
                reason: "must be at least 1".into(),
            });
        }
        let grace: u64 =
            config::parsed_or(env, "RECONCILE_GRACE_SECONDS", Self::DEFAULT_GRACE_SECONDS)?;
        Ok(Self {
            copies_table: config::required(env, "COPIES_TABLE")?,
            events_table: config::required(env, "EVENTS_TABLE")?,
            retention: config::event_retention(env)?,
            jobs_queue_url: config::required(env, "JOBS_QUEUE_URL")?,
            look_back: Duration::from_secs(look_back.saturating_mul(60)),
            grace: Duration::from_secs(grace),
        })
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub listed: u32,
    pub already_known: u32,
    pub too_recent: u32,
    pub enqueued: u32,
    /// Enqueued, but its event could not be stored (the read API does not list it).
    pub events_unstored: u32,
}

/// Why a run stopped. What it enqueued before stays enqueued; the next run goes on.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("listing {provider}'s recent files failed")]
    List {
        provider: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("reading the copy state failed")]
    State(#[source] StateError),
    #[error("enqueueing a recovered job failed")]
    Queue(#[source] QueueError),
}

/// The reconciler over its ports.
#[derive(Debug)]
pub struct ReconcileService<L, C, Q, E> {
    lister: L,
    copies: C,
    queue: Q,
    events: E,
    look_back_ms: i64,
    grace_ms: i64,
    retention: Option<Duration>,
}

impl<L: RecentFiles, C: CopyKnown, Q: JobQueue, E: EventStore> ReconcileService<L, C, Q, E> {
    pub fn new(lister: L, copies: C, queue: Q, events: E, config: &ReconcileConfig) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            lister,
            copies,
            queue,
            events,
            look_back_ms: ms(config.look_back),
            grace_ms: ms(config.grace),
            retention: config.retention,
        }
    }

    /// One run at `now_ms`.
    pub async fn run(&self, now_ms: i64) -> Result<ReconcileReport, ReconcileError> {
        let provider = self.lister.provider();
        let files = self
            .lister
            .recent_files(now_ms.saturating_sub(self.look_back_ms))
            .await
            .map_err(|source| ReconcileError::List { provider, source })?;
        let mut report = ReconcileReport::default();
        for file in files {
            report.listed = report.listed.saturating_add(1);
            if file.finished_at_ms > now_ms.saturating_sub(self.grace_ms) {
                report.too_recent = report.too_recent.saturating_add(1);
                continue;
            }
            let job = job_from_plan(provider, &file.facts, "", now_ms, file.plan);
            if self
                .copies
                .known(&job.job_id)
                .await
                .map_err(ReconcileError::State)?
            {
                report.already_known = report.already_known.saturating_add(1);
                continue;
            }
            self.queue
                .enqueue(&job)
                .await
                .map_err(ReconcileError::Queue)?;
            warn!(job_id = %job.job_id, source = %job.file, "file without a copy (its webhook never came?): enqueued by reconciliation");
            report.enqueued = report.enqueued.saturating_add(1);
            let record =
                reconciled_event(provider, &job, file.finished_at_ms, now_ms, self.retention);
            // `Exists`: an earlier run stored it (and its enqueue was lost). Fine.
            if let Err(e) = self.events.put_if_absent(&record).await {
                warn!(job_id = %job.job_id, error = %crate::telemetry::chain(&e), "reconciled file enqueued, its event not stored");
                report.events_unstored = report.events_unstored.saturating_add(1);
            }
        }
        metrics::count_by(
            "FilesReconciled",
            f64::from(report.enqueued),
            &[("Provider", provider)],
        );
        info!(?report, provider, "reconciliation run");
        Ok(report)
    }
}

/// The event a reconciled file is stored as: filed under its room and time (as the webhook
/// it stands for would be), carrying its job. The payload says where it came from; it holds
/// no link (a reconciled file is a provider object, resolved at copy time).
pub fn reconciled_event(
    provider: &'static str,
    job: &CopyJob,
    finished_at_ms: i64,
    now_ms: i64,
    retention: Option<Duration>,
) -> EventRecord {
    let payload = serde_json::json!({
        "source": "reconciliation",
        "provider": provider,
        "jobId": job.job_id,
        "kind": job.kind.as_str(),
        "room": job.room,
        "startedAt": job.source.timestamp,
        "finishedAt": finished_at_ms,
    })
    .to_string()
    .into_bytes();
    EventRecord {
        key: format!("{provider}:reconciled:{}", job.job_id),
        provider,
        event_type: format!("{provider}.reconciled"),
        session_id: job.session_id.clone(),
        room_key: job.fqn.clone(),
        room: job.room.clone(),
        tenant: job.app_id.clone(),
        account: job.customer_id.clone(),
        timestamp_ms: job.source.timestamp,
        received_at_ms: now_ms,
        payload_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&payload)),
        payload: StoredPayload::Inline(payload),
        // Named no meeting: the read API finds its meeting under the room by time.
        indexes_room_session: true,
        job_ids: vec![job.job_id.clone()],
        job_kinds: vec![job.kind],
        link_expires_at_ms: Some(job.link_expires_at),
        expires_at_secs: config::expires_at_secs(now_ms, retention),
        attempt: format!("reconcile-{now_ms}"),
        ..EventRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::facts::{FileSource, ProviderObject};
    use crate::jobs::{CopyJob, FileKind, FileMeta};

    struct Listed(Vec<ListedFile>);
    impl RecentFiles for Listed {
        fn provider(&self) -> &'static str {
            "daily"
        }
        async fn recent_files(&self, _: i64) -> Result<Vec<ListedFile>, BoxError> {
            Ok(self.0.clone())
        }
    }
    #[derive(Default)]
    struct Known(Mutex<Vec<String>>);
    impl CopyKnown for &Known {
        async fn known(&self, job_id: &str) -> Result<bool, StateError> {
            Ok(self.0.lock().expect("lock").iter().any(|j| j == job_id))
        }
    }
    #[derive(Default)]
    struct Sent(Mutex<Vec<CopyJob>>);
    impl JobQueue for &Sent {
        async fn enqueue(&self, job: &CopyJob) -> Result<(), QueueError> {
            self.0.lock().expect("lock").push(job.clone());
            Ok(())
        }
    }

    /// The events table: keeps what is put, or refuses everything while `down`.
    #[derive(Default)]
    struct Events {
        stored: Mutex<Vec<EventRecord>>,
        down: std::sync::atomic::AtomicBool,
    }
    fn refused() -> crate::ingest::ports::StoreError {
        crate::ingest::ports::StoreError {
            operation: "PutItem",
            source: "down".into(),
        }
    }
    impl EventStore for &Events {
        async fn put_if_absent(
            &self,
            record: &EventRecord,
        ) -> Result<crate::ingest::ports::PutOutcome, crate::ingest::ports::StoreError> {
            if self.down.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(refused());
            }
            self.stored.lock().expect("lock").push(record.clone());
            Ok(crate::ingest::ports::PutOutcome::Created)
        }
        async fn claim_enqueue(
            &self,
            _: &str,
            _: &str,
            _: i64,
            _: i64,
        ) -> Result<bool, crate::ingest::ports::StoreError> {
            Err(refused())
        }
        async fn mark_queued(&self, _: &str) -> Result<(), crate::ingest::ports::StoreError> {
            Err(refused())
        }
        async fn release_enqueue(&self, _: &str) -> Result<(), crate::ingest::ports::StoreError> {
            Err(refused())
        }
        async fn put_quarantine(
            &self,
            _: &crate::ingest::ports::QuarantineRecord,
        ) -> Result<(), crate::ingest::ports::StoreError> {
            Err(refused())
        }
    }

    fn config() -> ReconcileConfig {
        ReconcileConfig {
            copies_table: "c".into(),
            events_table: "e".into(),
            retention: Some(Duration::from_secs(86_400)),
            jobs_queue_url: "q".into(),
            look_back: Duration::from_secs(3600),
            grace: Duration::from_secs(60),
        }
    }

    fn file(id: &str, finished_at_ms: i64) -> ListedFile {
        ListedFile {
            facts: EventFacts {
                event_type: "recording.reconciled".into(),
                room: Some("r".into()),
                ..EventFacts::default()
            },
            plan: FilePlan {
                kind: FileKind::Recording,
                source: FileSource::Object(ProviderObject {
                    object: "recording".into(),
                    id: id.into(),
                    part: None,
                }),
                expires_at_ms: finished_at_ms + 1_000_000,
                meta: FileMeta::default(),
                job_id: Some(format!("daily:recording:{id}")),
            },
            finished_at_ms,
        }
    }

    #[tokio::test]
    async fn only_files_without_a_copy_and_past_the_grace_are_enqueued_once() {
        let config = config();
        let now = 10_000_000;
        let known = Known::default();
        known
            .0
            .lock()
            .expect("lock")
            .push("daily:recording:copied".into());
        let sent = Sent::default();
        let events = Events::default();
        let svc = ReconcileService::new(
            Listed(vec![
                file("lost", now - 120_000),
                file("copied", now - 120_000),
                file("just-finished", now - 10_000),
            ]),
            &known,
            &sent,
            &events,
            &config,
        );
        let report = svc.run(now).await.expect("run");
        assert_eq!(
            report,
            ReconcileReport {
                listed: 3,
                already_known: 1,
                too_recent: 1,
                enqueued: 1,
                events_unstored: 0,
            }
        );
        let jobs = sent.0.lock().expect("lock").clone();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].job_id, "daily:recording:lost");
        assert_eq!(jobs[0].provider, "daily");
        // Once the copier has it, the next run leaves it alone.
        known
            .0
            .lock()
            .expect("lock")
            .push("daily:recording:lost".into());
        let report = svc.run(now + 300_000).await.expect("run");
        assert_eq!(report.enqueued, 1, "only just-finished, now past its grace");
        // Each enqueued file is an event the read API files under its room, by time.
        let stored = events.stored.lock().expect("lock").clone();
        let keys: Vec<&str> = stored.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "daily:reconciled:daily:recording:lost",
                "daily:reconciled:daily:recording:just-finished"
            ]
        );
        let e = &stored[0];
        assert_eq!(e.event_type, "daily.reconciled");
        assert_eq!(e.job_ids, ["daily:recording:lost"]);
        assert!(e.indexes_room_session && e.session_id.is_none());
        assert_eq!(e.room.as_deref(), Some("r"));
        assert_eq!(e.expires_at_secs, Some(now / 1000 + 86_400));
    }

    #[tokio::test]
    async fn an_event_that_cannot_be_stored_never_holds_the_copy_back() {
        let now = 10_000_000;
        let known = Known::default();
        let sent = Sent::default();
        let events = Events::default();
        events
            .down
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let svc = ReconcileService::new(
            Listed(vec![file("lost", now - 120_000)]),
            &known,
            &sent,
            &events,
            &config(),
        );
        let report = svc.run(now).await.expect("run");
        assert_eq!((report.enqueued, report.events_unstored), (1, 1));
        assert_eq!(sent.0.lock().expect("lock").len(), 1, "the copy went ahead");
    }
}
