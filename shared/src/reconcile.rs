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

use std::time::Duration;

use tracing::{info, warn};

use crate::config::{self, ConfigError, Env};
use crate::copier::ports::{BoxError, StateError};
use crate::facts::{EventFacts, FilePlan};
use crate::ingest::ports::{JobQueue, QueueError};
use crate::jobs::job_from_plan;
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
    pub jobs_queue_url: String,
    /// How far back each run lists.
    pub look_back: Duration,
    /// A file finished less than this long ago is left to its webhook.
    pub grace: Duration,
}

impl ReconcileConfig {
    pub const DEFAULT_LOOK_BACK_MINUTES: u64 = 24 * 60;
    pub const DEFAULT_GRACE_SECONDS: u64 = 120;

    /// Reads `COPIES_TABLE`, `JOBS_QUEUE_URL`, `RECONCILE_LOOK_BACK_MINUTES` (default a day)
    /// and `RECONCILE_GRACE_SECONDS` (default 120).
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
pub struct ReconcileService<L, C, Q> {
    lister: L,
    copies: C,
    queue: Q,
    look_back_ms: i64,
    grace_ms: i64,
}

impl<L: RecentFiles, C: CopyKnown, Q: JobQueue> ReconcileService<L, C, Q> {
    pub fn new(lister: L, copies: C, queue: Q, config: &ReconcileConfig) -> Self {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self {
            lister,
            copies,
            queue,
            look_back_ms: ms(config.look_back),
            grace_ms: ms(config.grace),
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
        let config = ReconcileConfig {
            copies_table: "c".into(),
            jobs_queue_url: "q".into(),
            look_back: Duration::from_secs(3600),
            grace: Duration::from_secs(60),
        };
        let now = 10_000_000;
        let known = Known::default();
        known
            .0
            .lock()
            .expect("lock")
            .push("daily:recording:copied".into());
        let sent = Sent::default();
        let svc = ReconcileService::new(
            Listed(vec![
                file("lost", now - 120_000),
                file("copied", now - 120_000),
                file("just-finished", now - 10_000),
            ]),
            &known,
            &sent,
            &config,
        );
        let report = svc.run(now).await.expect("run");
        assert_eq!(
            report,
            ReconcileReport {
                listed: 3,
                already_known: 1,
                too_recent: 1,
                enqueued: 1
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
    }
}
