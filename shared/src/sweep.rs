//! The event sweeper: enqueues the copy job of every stored file event whose job was never
//! queued once its enqueue lease has run out, so that no file depends on JaaS retrying a
//! delivery (ingest stores the event, then the send fails or the function dies; JaaS may have
//! had its 2xx already, or may give up).
//!
//! It reads the sparse pending-job index (only items still `sending` are in it; no table
//! scan), oldest lease first, a bounded number per run. Each job is claimed with the same
//! conditional lease takeover a retried delivery uses, so the sweeper and a concurrent retry
//! never both send; were both to send anyway (a lease that ran out under a slow writer), the
//! copier deduplicates by job id.
//!
//! **The link watch.** Every file event is also on a second sparse index (`byLinkWatch`, by
//! its earliest link expiry) from the moment it is stored. Each run looks at the ones whose
//! links die within the warning window ([`crate::jobs::at_risk_window`]), reads their copy
//! states, and flags at risk (for the meeting events' `RecordingAtRisk`) every file that is
//! not copied, not being copied and not failed for good: never claimed (the queue or the
//! copier down), handed back, or given up. Then it takes the event off the watch: each is
//! looked at once. This holds whatever failed upstream, also a job that never left the
//! events table.

use std::time::Duration;

use serde::Serialize;
use tracing::{error, info, instrument, warn};

use crate::config::{self, ConfigError, Env};
use crate::copier::ports::{AtRiskFlags, flag_at_risk};
use crate::ingest::ports::{
    EventStore, JobQueue, LinkWatch, PendingJob, PendingJobs, QueueError, StoreError, WatchedFile,
};
use crate::jobs::{AtRisk, FileAbout, RiskCause, decode_jobs};
use crate::metrics;
use crate::read::ports::{CopyStates, ReadError};

/// Jobs asked for per index query.
const PAGE_SIZE: u32 = 50;

/// A file event younger than this is left to the copier before the watch looks at it (a link
/// that lives less than the warning window is due at once).
const WATCH_GRACE_MS: i64 = 5 * 60_000;

/// Configuration of the event-sweeper function, read once at cold start.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub events_table: String,
    /// Where copy states are read and files flagged at risk (the copier's copies table).
    pub copies_table: String,
    pub jobs_queue_url: String,
    /// The lease the sweeper takes on a job before sending it (as ingest does).
    pub enqueue_lease: Duration,
    /// At most this many pending jobs, and this many watched file events, are looked at per
    /// run (the rest wait for the next).
    pub max_jobs: u32,
    /// Watched file events whose earliest link dies within this are looked at.
    pub at_risk_window: Duration,
}

impl SweepConfig {
    pub const DEFAULT_MAX_JOBS: u32 = 200;

    /// Reads `EVENTS_TABLE`, `COPIES_TABLE`, `JOBS_QUEUE_URL`, `ENQUEUE_LEASE_SECONDS`
    /// (default 30), `SWEEP_MAX_JOBS` (default 200, at least 1) and `LINK_AT_RISK_SECONDS`.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let lease: u64 = config::parsed_or(
            env,
            "ENQUEUE_LEASE_SECONDS",
            crate::ingest::IngestConfig::DEFAULT_LEASE_SECS,
        )?;
        let max_jobs: u32 = config::parsed_or(env, "SWEEP_MAX_JOBS", Self::DEFAULT_MAX_JOBS)?;
        if max_jobs == 0 {
            return Err(ConfigError::Invalid {
                var: "SWEEP_MAX_JOBS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            events_table: config::required(env, "EVENTS_TABLE")?,
            copies_table: config::required(env, "COPIES_TABLE")?,
            jobs_queue_url: config::required(env, "JOBS_QUEUE_URL")?,
            enqueue_lease: Duration::from_secs(lease),
            max_jobs,
            at_risk_window: crate::jobs::at_risk_window(env)?,
        })
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Pending jobs whose lease had run out.
    pub examined: u32,
    /// Sent to the queue and marked queued.
    pub enqueued: u32,
    /// Taken over by someone else (a retried delivery) between the listing and the claim.
    pub skipped: u32,
    /// Claimed but their stored job message could not be read; they come back after the lease.
    pub unreadable: u32,
    /// Watched file events looked at (their links die within the window) and taken off the
    /// watch.
    pub watched: u32,
    /// Files flagged at risk by this run.
    pub at_risk: u32,
}

/// Why a run stopped early. What was enqueued before stays enqueued.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("listing pending jobs failed ({enqueued} enqueued before)")]
    List {
        enqueued: u32,
        #[source]
        source: StoreError,
    },
    #[error("claiming a pending job failed ({enqueued} enqueued before)")]
    Claim {
        enqueued: u32,
        #[source]
        source: StoreError,
    },
    #[error("sending a swept job failed ({enqueued} enqueued before)")]
    Queue {
        enqueued: u32,
        #[source]
        source: QueueError,
    },
    #[error("listing the link watch failed")]
    Watch(#[source] StoreError),
    #[error("reading copy states for the link watch failed")]
    CopyStates(#[source] ReadError),
}

/// The sweep use case over the event store (its pending-job index and link watch), the
/// queue, and the copies (states read, files flagged at risk).
#[derive(Debug)]
pub struct SweepService<S, Q, C> {
    store: S,
    queue: Q,
    copies: C,
    lease_ms: i64,
    max_jobs: u32,
    at_risk_ms: i64,
}

impl<S, Q, C> SweepService<S, Q, C>
where
    S: EventStore + PendingJobs + LinkWatch,
    Q: JobQueue,
    C: AtRiskFlags + CopyStates,
{
    pub fn new(store: S, queue: Q, copies: C, config: &SweepConfig) -> Self {
        Self {
            store,
            queue,
            copies,
            lease_ms: i64::try_from(config.enqueue_lease.as_millis()).unwrap_or(i64::MAX),
            max_jobs: config.max_jobs.max(1),
            at_risk_ms: i64::try_from(config.at_risk_window.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// One run at `now_ms` (Unix ms): the pending jobs, then the link watch, each stopping at
    /// its first storage or queue failure (the rest stays indexed for the next run) without
    /// stopping the other.
    #[instrument(name = "sweep", skip_all)]
    pub async fn sweep(&self, now_ms: i64) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport::default();
        // Boxed: the two passes nest the SDK's futures deeply enough to overflow the
        // compiler's layout depth in the Lambda main otherwise.
        let pending = Box::pin(self.sweep_pages(now_ms, &mut report)).await;
        let watch = Box::pin(self.watch_links(now_ms, &mut report)).await;
        let result = pending.and(watch);
        metrics::count("JobsSwept", f64::from(report.enqueued));
        match &result {
            Ok(()) => info!(
                examined = report.examined,
                enqueued = report.enqueued,
                skipped = report.skipped,
                unreadable = report.unreadable,
                watched = report.watched,
                at_risk = report.at_risk,
                "sweep done"
            ),
            Err(e) => {
                error!(error = %crate::telemetry::chain(e), enqueued = report.enqueued, at_risk = report.at_risk, "sweep stopped")
            }
        }
        result.map(|()| report)
    }

    async fn sweep_pages(&self, now_ms: i64, report: &mut SweepReport) -> Result<(), SweepError> {
        let mut cursor = None;
        loop {
            let budget = self.max_jobs.saturating_sub(report.examined);
            if budget == 0 {
                info!(
                    max_jobs = self.max_jobs,
                    "run bounded: the rest waits for the next run"
                );
                return Ok(());
            }
            let page = self
                .store
                .expired(now_ms, budget.min(PAGE_SIZE), cursor.as_ref())
                .await
                .map_err(|source| SweepError::List {
                    enqueued: report.enqueued,
                    source,
                })?;
            for pending in page.jobs.into_iter().take(budget as usize) {
                report.examined = report.examined.saturating_add(1);
                self.sweep_one(pending, now_ms, report).await?;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// The link watch: file events whose earliest link dies within the window, each looked
    /// at once (see the module's documentation).
    async fn watch_links(&self, now_ms: i64, report: &mut SweepReport) -> Result<(), SweepError> {
        let mut cursor = None;
        let mut looked = 0u32;
        loop {
            let budget = self.max_jobs.saturating_sub(looked);
            if budget == 0 {
                return Ok(());
            }
            let page = self
                .store
                .due(
                    now_ms.saturating_add(self.at_risk_ms),
                    budget.min(PAGE_SIZE),
                    cursor.as_ref(),
                )
                .await
                .map_err(SweepError::Watch)?;
            for file in page.files.into_iter().take(budget as usize) {
                looked = looked.saturating_add(1);
                // The copier's turn first: it copies most files within seconds.
                if file.event.received_at_ms > now_ms.saturating_sub(WATCH_GRACE_MS) {
                    continue;
                }
                self.watch_one(&file, now_ms, report).await?;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    #[instrument(skip_all, fields(idempotency_key = %file.event.key))]
    async fn watch_one(
        &self,
        file: &WatchedFile,
        now_ms: i64,
        report: &mut SweepReport,
    ) -> Result<(), SweepError> {
        let e = &file.event;
        let ids: Vec<String> = e.jobs.iter().map(|j| j.id.clone()).collect();
        let states = self
            .copies
            .copy_states(&ids)
            .await
            .map_err(SweepError::CopyStates)?;
        let mut flagged_all = true;
        for job in &e.jobs {
            let reason = match states.get(&job.id) {
                // Safe, being copied, or failed for good (its own `copy_failed` event).
                Some(c) if matches!(c.state.as_str(), "copied" | "copying") => continue,
                Some(c) if c.state == "failed" && c.permanent => continue,
                None => "not claimed by a copier yet",
                Some(c) if c.state == "failed" => "given up by the copier after its retries",
                Some(_) => "handed back by the copier, not copied yet",
            };
            let flag = AtRisk {
                job_id: job.id.clone(),
                cause: RiskCause::LinkExpiring,
                reason: reason.to_owned(),
                link_expires_at_ms: file.link_expires_at_ms,
                about: FileAbout {
                    provider: e.provider.clone(),
                    kind: job.kind.clone().unwrap_or_default(),
                    session_id: e.session_id.clone(),
                    room_key: e.room_key.clone(),
                    room: e.room.clone(),
                    tenant: e.tenant.clone(),
                    event_key: Some(e.key.clone()),
                },
                at_ms: now_ms,
            };
            match flag_at_risk(&self.copies, &flag, now_ms).await {
                Ok(true) => report.at_risk = report.at_risk.saturating_add(1),
                Ok(false) => {}
                // Stays on the watch: the next run writes it.
                Err(_) => flagged_all = false,
            }
        }
        if flagged_all {
            match self.store.unwatch(&e.key).await {
                Ok(()) => report.watched = report.watched.saturating_add(1),
                // Looked at again next run; the flags are written once whatever happens.
                Err(err) => {
                    warn!(error = %crate::telemetry::chain(&err), "could not take the event off the link watch")
                }
            }
        }
        Ok(())
    }

    #[instrument(skip_all, fields(idempotency_key = %pending.key))]
    async fn sweep_one(
        &self,
        pending: PendingJob,
        now_ms: i64,
        report: &mut SweepReport,
    ) -> Result<(), SweepError> {
        let claimed = self
            .store
            .claim_enqueue(
                &pending.key,
                &pending.payload_sha256,
                now_ms,
                now_ms.saturating_add(self.lease_ms),
            )
            .await
            .map_err(|source| SweepError::Claim {
                enqueued: report.enqueued,
                source,
            })?;
        if !claimed {
            info!("taken over by another delivery meanwhile");
            report.skipped = report.skipped.saturating_add(1);
            return Ok(());
        }
        let jobs = match pending.job_message.as_deref().map(decode_jobs) {
            Some(Ok(jobs)) => jobs,
            Some(Err(e)) => {
                // Claimed, so it leaves the front of the index for one lease: it never blocks
                // the others, and comes back for whoever can read it.
                error!(error = %e, "stored job message unreadable; not sent");
                report.unreadable = report.unreadable.saturating_add(1);
                metrics::count("SweptJobsUnreadable", 1.0);
                return Ok(());
            }
            None => {
                error!("pending item carries no job message; not sent");
                report.unreadable = report.unreadable.saturating_add(1);
                metrics::count("SweptJobsUnreadable", 1.0);
                return Ok(());
            }
        };
        for job in &jobs {
            if let Err(source) = self.queue.enqueue(job).await {
                if let Err(e) = self.store.release_enqueue(&pending.key).await {
                    warn!(error = %e, "could not release the enqueue lease; it runs out instead");
                }
                return Err(SweepError::Queue {
                    enqueued: report.enqueued,
                    source,
                });
            }
            warn!(job_id = %job.job_id, kind = job.kind.as_str(), "job never queued by ingest: enqueued by the sweeper");
        }
        if let Err(e) = self.store.mark_queued(&pending.key).await {
            // On the queue already; at worst the next run sends them again after the lease
            // and the copier's exactly-once state absorbs the duplicates.
            warn!(error = %e, "jobs enqueued but not marked queued");
        }
        report.enqueued = report.enqueued.saturating_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::copier::memory::MemStore as Flags;
    use crate::ingest::ports::{
        EventRecord, JobState, PendingCursor, PendingPage, PutOutcome, QuarantineRecord,
    };
    use crate::jaas::JaasEvent;
    use crate::jaas::plan_job;
    use crate::jobs::CopyJob;

    #[derive(Debug, Clone)]
    struct Item {
        sha: String,
        state: JobState,
        job: Option<String>,
    }

    /// The event store and its pending-job index in memory. Pages hold at most `page_cap`
    /// items (as DynamoDB stops a page at 1 MB), so paging is exercised.
    #[derive(Default)]
    struct MemStore {
        items: Mutex<BTreeMap<String, Item>>,
        /// Keys a concurrent delivery takes over just before the sweeper's claim.
        taken_elsewhere: HashSet<String>,
        page_cap: usize,
        /// The link watch, by key.
        watch: Mutex<BTreeMap<String, WatchedFile>>,
    }

    impl MemStore {
        fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Item>> {
            self.items.lock().unwrap_or_else(|p| p.into_inner())
        }

        fn add(&self, key: &str, state: JobState, job: Option<String>) {
            self.lock().insert(
                key.to_owned(),
                Item {
                    sha: format!("sha-{key}"),
                    state,
                    job,
                },
            );
        }

        fn state(&self, key: &str) -> JobState {
            self.lock()[key].state
        }
    }

    fn fail() -> StoreError {
        StoreError {
            operation: "test",
            source: "unused".into(),
        }
    }

    impl EventStore for MemStore {
        async fn put_if_absent(&self, _: &EventRecord) -> Result<PutOutcome, StoreError> {
            Err(fail())
        }
        async fn claim_enqueue(
            &self,
            key: &str,
            sha256: &str,
            now_ms: i64,
            lease_until_ms: i64,
        ) -> Result<bool, StoreError> {
            let mut items = self.lock();
            let Some(item) = items.get_mut(key) else {
                return Ok(false);
            };
            if self.taken_elsewhere.contains(key) {
                item.state = JobState::Sending {
                    lease_until_ms: now_ms + 30_000,
                };
                return Ok(false);
            }
            match item.state {
                JobState::Sending { lease_until_ms: l } if l < now_ms && item.sha == sha256 => {
                    item.state = JobState::Sending { lease_until_ms };
                    Ok(true)
                }
                _ => Ok(false),
            }
        }
        async fn mark_queued(&self, key: &str) -> Result<(), StoreError> {
            if let Some(item) = self.lock().get_mut(key) {
                item.state = JobState::Queued;
            }
            Ok(())
        }
        async fn release_enqueue(&self, key: &str) -> Result<(), StoreError> {
            if let Some(item) = self.lock().get_mut(key)
                && matches!(item.state, JobState::Sending { .. })
            {
                item.state = JobState::Sending { lease_until_ms: 0 };
            }
            Ok(())
        }
        async fn put_quarantine(&self, _: &QuarantineRecord) -> Result<(), StoreError> {
            Err(fail())
        }
    }

    impl PendingJobs for MemStore {
        async fn expired(
            &self,
            now_ms: i64,
            limit: u32,
            after: Option<&PendingCursor>,
        ) -> Result<PendingPage, StoreError> {
            let mut pending: Vec<PendingJob> = self
                .lock()
                .iter()
                .filter_map(|(key, item)| match item.state {
                    JobState::Sending { lease_until_ms } if lease_until_ms < now_ms => {
                        Some(PendingJob {
                            key: key.clone(),
                            payload_sha256: item.sha.clone(),
                            job_message: item.job.clone(),
                            lease_until_ms,
                        })
                    }
                    _ => None,
                })
                .collect();
            pending.sort_by(|a, b| (a.lease_until_ms, &a.key).cmp(&(b.lease_until_ms, &b.key)));
            if let Some(PendingCursor(c)) = after {
                let lease: i64 = c[0].1.parse().expect("cursor");
                let key = c[1].1.clone();
                pending.retain(|p| (p.lease_until_ms, &p.key) > (lease, &key));
            }
            let cap = (limit as usize).min(self.page_cap.max(1));
            let more = pending.len() > cap;
            pending.truncate(cap);
            let next = more.then(|| {
                let last = pending.last().expect("a full page");
                PendingCursor(vec![
                    ("lease".into(), last.lease_until_ms.to_string()),
                    ("key".into(), last.key.clone()),
                ])
            });
            Ok(PendingPage {
                jobs: pending,
                next,
            })
        }
    }

    #[derive(Default)]
    struct MemQueue {
        sent: Mutex<Vec<CopyJob>>,
        failing: AtomicBool,
    }

    impl MemQueue {
        fn sent(&self) -> Vec<String> {
            self.sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|j| j.source.stored_key.clone())
                .collect()
        }
    }

    impl JobQueue for MemQueue {
        async fn enqueue(&self, job: &CopyJob) -> Result<(), QueueError> {
            if self.failing.load(Ordering::Relaxed) {
                return Err(QueueError {
                    source: "queue down".into(),
                });
            }
            self.sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(job.clone());
            Ok(())
        }
    }

    impl JobQueue for &MemQueue {
        async fn enqueue(&self, job: &CopyJob) -> Result<(), QueueError> {
            (**self).enqueue(job).await
        }
    }

    impl EventStore for &MemStore {
        async fn put_if_absent(&self, r: &EventRecord) -> Result<PutOutcome, StoreError> {
            (**self).put_if_absent(r).await
        }
        async fn claim_enqueue(
            &self,
            key: &str,
            sha: &str,
            now: i64,
            until: i64,
        ) -> Result<bool, StoreError> {
            (**self).claim_enqueue(key, sha, now, until).await
        }
        async fn mark_queued(&self, key: &str) -> Result<(), StoreError> {
            (**self).mark_queued(key).await
        }
        async fn release_enqueue(&self, key: &str) -> Result<(), StoreError> {
            (**self).release_enqueue(key).await
        }
        async fn put_quarantine(&self, r: &QuarantineRecord) -> Result<(), StoreError> {
            (**self).put_quarantine(r).await
        }
    }

    impl LinkWatch for MemStore {
        async fn due(
            &self,
            before_ms: i64,
            limit: u32,
            after: Option<&PendingCursor>,
        ) -> Result<crate::ingest::ports::WatchPage, StoreError> {
            let mut files: Vec<WatchedFile> = self
                .watch
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .filter(|f| f.link_expires_at_ms < before_ms)
                .cloned()
                .collect();
            let order = |f: &WatchedFile| (f.link_expires_at_ms, f.event.key.clone());
            files.sort_by_key(order);
            if let Some(PendingCursor(c)) = after {
                let at: i64 = c[0].1.parse().expect("cursor");
                files.retain(|f| order(f) > (at, c[1].1.clone()));
            }
            let cap = (limit as usize).min(self.page_cap.max(1));
            let more = files.len() > cap;
            files.truncate(cap);
            let next = more.then(|| {
                let last = files.last().expect("a full page");
                PendingCursor(vec![
                    ("at".into(), last.link_expires_at_ms.to_string()),
                    ("key".into(), last.event.key.clone()),
                ])
            });
            Ok(crate::ingest::ports::WatchPage { files, next })
        }
        async fn unwatch(&self, key: &str) -> Result<(), StoreError> {
            self.watch
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(key);
            Ok(())
        }
    }

    impl LinkWatch for &MemStore {
        async fn due(
            &self,
            before_ms: i64,
            limit: u32,
            after: Option<&PendingCursor>,
        ) -> Result<crate::ingest::ports::WatchPage, StoreError> {
            (**self).due(before_ms, limit, after).await
        }
        async fn unwatch(&self, key: &str) -> Result<(), StoreError> {
            (**self).unwatch(key).await
        }
    }

    impl PendingJobs for &MemStore {
        async fn expired(
            &self,
            now_ms: i64,
            limit: u32,
            after: Option<&PendingCursor>,
        ) -> Result<PendingPage, StoreError> {
            (**self).expired(now_ms, limit, after).await
        }
    }

    fn job(key: &str) -> Option<String> {
        let body = format!(
            r#"{{"idempotencyKey":"{key}","eventType":"RECORDING_UPLOADED","timestamp":1,"data":{{"preAuthenticatedLink":"https://8x8.vc/r.mp4?sig=s"}}}}"#
        );
        let ev = JaasEvent::parse(body.as_bytes()).expect("event");
        plan_job(&ev, key, 1)
            .expect("plannable")
            .map(|j| j.to_json())
    }

    fn config(max_jobs: u32) -> SweepConfig {
        SweepConfig {
            events_table: "t".into(),
            copies_table: "c".into(),
            jobs_queue_url: "q".into(),
            enqueue_lease: Duration::from_secs(30),
            max_jobs,
            at_risk_window: Duration::from_secs(crate::jobs::DEFAULT_AT_RISK_SECS),
        }
    }

    const NOW: i64 = 1_000_000;

    fn expired() -> JobState {
        JobState::Sending {
            lease_until_ms: NOW - 1,
        }
    }

    #[tokio::test]
    async fn jobs_whose_lease_ran_out_are_sent_once_and_leave_the_index() {
        let store = MemStore {
            page_cap: 50,
            ..MemStore::default()
        };
        store.add("stuck", expired(), job("stuck"));
        store.add(
            "live",
            JobState::Sending {
                lease_until_ms: NOW + 1,
            },
            job("live"),
        );
        store.add("done", JobState::Queued, job("done"));
        let queue = MemQueue::default();
        let flags = Flags::default();
        let svc = SweepService::new(&store, &queue, &flags, &config(200));
        let report = svc.sweep(NOW).await.expect("sweep");
        assert_eq!((report.examined, report.enqueued), (1, 1));
        assert_eq!(queue.sent(), ["stuck"]);
        assert_eq!(store.state("stuck"), JobState::Queued);
        assert!(matches!(store.state("live"), JobState::Sending { .. }));
        // Nothing left: the next run sends nothing again.
        assert_eq!(svc.sweep(NOW + 1).await.expect("sweep").enqueued, 0);
        assert_eq!(queue.sent().len(), 1);
    }

    #[tokio::test]
    async fn a_run_is_bounded_and_pages_through_the_index_oldest_lease_first() {
        let store = MemStore {
            page_cap: 2,
            ..MemStore::default()
        };
        for i in 0..12 {
            let key = format!("k{i:02}");
            store.add(
                &key,
                JobState::Sending {
                    lease_until_ms: NOW - 100 + i,
                },
                job(&key),
            );
        }
        let queue = MemQueue::default();
        let flags = Flags::default();
        let svc = SweepService::new(&store, &queue, &flags, &config(5));
        assert_eq!(svc.sweep(NOW).await.expect("sweep").enqueued, 5);
        assert_eq!(queue.sent(), ["k00", "k01", "k02", "k03", "k04"]);
        assert_eq!(svc.sweep(NOW).await.expect("sweep").enqueued, 5);
        let last = svc.sweep(NOW).await.expect("sweep");
        assert_eq!((last.examined, last.enqueued), (2, 2));
        let sent = queue.sent();
        assert_eq!(sent.len(), 12);
        assert_eq!(sent.iter().collect::<HashSet<_>>().len(), 12, "each once");
    }

    #[tokio::test]
    async fn a_job_a_retried_delivery_took_over_is_not_sent_by_the_sweeper() {
        let store = MemStore {
            page_cap: 50,
            taken_elsewhere: HashSet::from(["raced".to_owned()]),
            ..MemStore::default()
        };
        store.add("raced", expired(), job("raced"));
        store.add("mine", expired(), job("mine"));
        let queue = MemQueue::default();
        let report = SweepService::new(&store, &queue, &Flags::default(), &config(200))
            .sweep(NOW)
            .await
            .expect("sweep");
        assert_eq!((report.enqueued, report.skipped), (1, 1));
        assert_eq!(queue.sent(), ["mine"]);
    }

    #[tokio::test]
    async fn a_queue_failure_stops_the_run_and_the_next_run_sends_the_job() {
        let store = MemStore {
            page_cap: 50,
            ..MemStore::default()
        };
        store.add("a", expired(), job("a"));
        store.add("b", expired(), job("b"));
        let queue = MemQueue::default();
        queue.failing.store(true, Ordering::Relaxed);
        let flags = Flags::default();
        let svc = SweepService::new(&store, &queue, &flags, &config(200));
        let err = svc.sweep(NOW).await.expect_err("queue down");
        assert!(
            matches!(err, SweepError::Queue { enqueued: 0, .. }),
            "{err}"
        );
        assert!(std::error::Error::source(&err).is_some(), "keeps its cause");
        // The lease was given back: nothing waits for it to run out.
        assert!(matches!(
            store.state("a"),
            JobState::Sending { lease_until_ms: 0 }
        ));
        queue.failing.store(false, Ordering::Relaxed);
        assert_eq!(svc.sweep(NOW + 1).await.expect("sweep").enqueued, 2);
        assert_eq!(queue.sent(), ["a", "b"]);
    }

    #[tokio::test]
    async fn an_unreadable_job_message_is_counted_and_never_blocks_the_others() {
        let store = MemStore {
            page_cap: 50,
            ..MemStore::default()
        };
        store.add(
            "old",
            JobState::Sending {
                lease_until_ms: NOW - 10,
            },
            Some(r#"{"v":99}"#.into()),
        );
        store.add(
            "none",
            JobState::Sending {
                lease_until_ms: NOW - 5,
            },
            None,
        );
        store.add("good", expired(), job("good"));
        let queue = MemQueue::default();
        let flags = Flags::default();
        let svc = SweepService::new(&store, &queue, &flags, &config(2));
        let first = svc.sweep(NOW).await.expect("sweep");
        assert_eq!((first.unreadable, first.enqueued), (2, 0));
        // Claimed for a lease, the unreadable ones no longer stand in front of the good one.
        let second = svc.sweep(NOW).await.expect("sweep");
        assert_eq!((second.unreadable, second.enqueued), (0, 1));
        assert_eq!(queue.sent(), ["good"]);
    }

    const HOUR: i64 = 3_600_000;

    /// A file event on the watch: its one recording's link dies at `expires`.
    fn watched(store: &MemStore, key: &str, received: i64, expires: i64) {
        let event = crate::read::model::StoredEvent {
            key: key.into(),
            provider: "jaas".into(),
            event_type: "RECORDING_UPLOADED".into(),
            at_ms: received,
            received_at_ms: received,
            session_id: Some("s1".into()),
            room_key: Some("app/room".into()),
            room: Some("room".into()),
            tenant: Some("app".into()),
            jobs: vec![crate::read::model::JobRef {
                id: format!("{key}/recording"),
                kind: Some("recording".into()),
            }],
            ..crate::read::model::StoredEvent::default()
        };
        store.watch.lock().unwrap().insert(
            key.into(),
            WatchedFile {
                event,
                link_expires_at_ms: expires,
            },
        );
    }

    #[tokio::test]
    async fn the_link_watch_flags_every_file_no_copier_has_made_safe_once() {
        use crate::copier::state::CopyStatus;
        let now = 100 * HOUR;
        let long_ago = now - 10 * HOUR;
        let store = MemStore {
            page_cap: 2,
            ..MemStore::default()
        };
        for key in ["never", "copied", "copying", "handed", "given-up", "failed"] {
            watched(&store, key, long_ago, now + HOUR);
        }
        watched(&store, "young", now - 60_000, now + HOUR);
        watched(&store, "far", long_ago, now + 12 * HOUR);
        let copies = Flags::default();
        copies.set_status("copied/recording", CopyStatus::Copied);
        copies.set_status(
            "copying/recording",
            CopyStatus::Copying {
                owner: "c".into(),
                lease_until_ms: now + 60_000,
            },
        );
        copies.set_status("handed/recording", CopyStatus::Pending);
        let failed = |permanent| CopyStatus::Failed {
            permanent,
            reason: "x".into(),
        };
        copies.set_status("given-up/recording", failed(false));
        copies.set_status("failed/recording", failed(true));
        // The first flag write (in index order: `given-up`) fails, a store outage: that event
        // stays on the watch.
        copies.fail("flag_at_risk", 1);
        let queue = MemQueue::default();
        let svc = SweepService::new(&store, &queue, &copies, &config(200));
        let first = svc.sweep(now).await.expect("sweep");
        let flagged = |id: &str| copies.at_risk(&format!("{id}/recording"));
        assert!(flagged("given-up").is_none(), "its write failed");
        for id in ["handed", "never"] {
            let flag = flagged(id).expect(id);
            assert_eq!(flag.cause, crate::jobs::RiskCause::LinkExpiring);
            assert_eq!(flag.link_expires_at_ms, now + HOUR);
            assert_eq!(flag.about.event_key.as_deref(), Some(id));
            assert_eq!(flag.about.kind, "recording");
            assert_eq!(flag.about.session_id.as_deref(), Some("s1"));
        }
        for id in ["copied", "copying", "failed", "young", "far"] {
            assert!(flagged(id).is_none(), "{id}");
        }
        assert_eq!((first.watched, first.at_risk), (5, 2));
        let still: Vec<String> = store.watch.lock().unwrap().keys().cloned().collect();
        assert_eq!(still, ["far", "given-up", "young"]);

        // The next run writes the failed flag; later, the young one's grace is over.
        let second = svc.sweep(now + 60_000).await.expect("sweep");
        assert_eq!((second.watched, second.at_risk), (1, 1));
        assert!(
            flagged("given-up")
                .expect("given-up")
                .reason
                .contains("given up")
        );
        assert!(
            flagged("never")
                .expect("never")
                .reason
                .contains("not claimed")
        );
        let third = svc.sweep(now + 6 * 60_000).await.expect("sweep");
        assert_eq!((third.watched, third.at_risk), (1, 1));
        // The far one when its link comes within the window; nothing twice.
        let later = svc.sweep(now + 7 * HOUR).await.expect("sweep");
        assert_eq!((later.watched, later.at_risk), (1, 1));
        assert!(store.watch.lock().unwrap().is_empty());
        assert_eq!(svc.sweep(now + 8 * HOUR).await.expect("sweep").at_risk, 0);
    }

    #[test]
    fn config_reads_its_variables_and_refuses_zero_jobs() {
        let env = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let base = [
            ("EVENTS_TABLE", "t"),
            ("COPIES_TABLE", "c"),
            ("JOBS_QUEUE_URL", "q"),
        ];
        let c = SweepConfig::from_env(&env(&base)).expect("defaults");
        assert_eq!(c.max_jobs, SweepConfig::DEFAULT_MAX_JOBS);
        assert_eq!(c.enqueue_lease, Duration::from_secs(30));
        let mut zero = base.to_vec();
        zero.push(("SWEEP_MAX_JOBS", "0"));
        assert!(SweepConfig::from_env(&env(&zero)).is_err());
        assert_eq!(c.at_risk_window, Duration::from_secs(6 * 3600));
        assert!(matches!(
            SweepConfig::from_env(&env(&base[..1])),
            Err(ConfigError::Missing("COPIES_TABLE"))
        ));
        assert!(matches!(
            SweepConfig::from_env(&env(&base[..2])),
            Err(ConfigError::Missing("JOBS_QUEUE_URL"))
        ));
    }
}
