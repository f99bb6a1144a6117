//! The copy of one job: claim, stream origin → S3 multipart, record progress, finish or
//! settle the failure. Generic over the ports, so the same code runs against AWS, the
//! emulator, and test wrappers.
//!
//! Memory: at most `max_parts_in_flight` parts are uploading while one more fills; nothing
//! else holds file bytes, so peak memory is `part size × (in flight + 1)` whatever the file
//! size. Each byte is hashed twice while streaming: into the part's SHA-256 (sent as
//! `ChecksumSHA256`, verified by S3) and into the whole-file SHA-256, whose hasher state is
//! checkpointed with the contiguous parts, so a resumed copy still ends with the whole-file digest.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};
use tokio::time::{Instant, timeout_at};
use tracing::{error, info, warn};

use super::layout::{self, ObjectMeta};
use super::parts::PartPlan;
use super::ports::{
    AtRiskFlags, BoxError, CopyStateStore, MultipartSink, Origin, OriginError, OriginResponse,
    SinkError, StateError,
};
use super::screenshots;
use super::state::{
    Checkpoint, Claim, CopyResult, PartRecord, UploadProgress, contiguous_after, resumable_prefix,
};
use crate::facts::{FileSource, NoObjects, SourceResolver};
use crate::jobs::{AtRisk, CopyJob, FileAbout, FileKind, RiskCause};
use crate::metrics;
use crate::respond::now_ms;

/// Copy states outlive the link by more than SQS's longest retention (14 days), so a late
/// duplicate still finds the record and is acknowledged without work.
pub const STATE_RETENTION_AFTER_LINK_SECS: i64 = 15 * 86_400;
/// A screenshot list is a small JSON document; anything larger is not one.
pub const SCREENSHOT_LIST_MAX: usize = 4 * 1024 * 1024;

/// How a failure is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Will never succeed (403/404/410, expired link, SSRF refusal, bad job): acknowledged.
    Permanent,
    /// Worth another delivery (5xx, timeouts, resets, truncated bodies, store errors).
    Retryable,
    /// Stopped cleanly before the Lambda deadline; progress kept for the next delivery.
    Interrupted,
    /// Another copier holds a live lease on the job.
    Busy,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::Retryable => "retryable",
            Self::Interrupted => "interrupted",
            Self::Busy => "busy",
        }
    }

    /// Whether the SQS message is acknowledged (not returned in `batchItemFailures`).
    pub fn acknowledged(self) -> bool {
        self == Self::Permanent
    }
}

/// Why a copy did not finish. `reason` is safe to log and store (never a link).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct CopyFailure {
    pub class: FailureClass,
    pub reason: String,
    /// The stored upload is unusable (it vanished): drop it so the next delivery restarts.
    pub restart: bool,
    /// For [`FailureClass::Busy`]: how long the other copier's lease still runs.
    pub lease_left: Option<Duration>,
    /// This attempt moved the job forward (checkpointed bytes, or copied screenshots) before
    /// it failed: an [`FailureClass::Interrupted`] copy that progressed continues in a fresh
    /// message instead of spending one of the queue's receives.
    pub progressed: bool,
    #[source]
    pub source: Option<BoxError>,
}

impl CopyFailure {
    fn new(class: FailureClass, reason: impl Into<String>) -> Self {
        Self {
            class,
            reason: reason.into(),
            restart: false,
            lease_left: None,
            progressed: false,
            source: None,
        }
    }

    fn permanent(reason: impl Into<String>) -> Self {
        Self::new(FailureClass::Permanent, reason)
    }

    fn retryable(reason: impl Into<String>) -> Self {
        Self::new(FailureClass::Retryable, reason)
    }

    fn interrupted() -> Self {
        Self::new(
            FailureClass::Interrupted,
            "stopped before the Lambda deadline; progress kept",
        )
    }

    fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl From<OriginError> for CopyFailure {
    fn from(e: OriginError) -> Self {
        let class = if e.is_permanent() {
            FailureClass::Permanent
        } else {
            FailureClass::Retryable
        };
        let reason = e.to_string();
        let mut f = Self::new(class, reason);
        // Range not satisfiable: the stored upload does not match the file any more.
        f.restart = matches!(e, OriginError::Status(416));
        f.with_source(e)
    }
}

impl From<StateError> for CopyFailure {
    fn from(e: StateError) -> Self {
        // A lost lease means someone else copies now: this attempt stops, the message
        // returns and finds the job copied (or busy) next time.
        Self::retryable(e.to_string()).with_source(e)
    }
}

impl From<SinkError> for CopyFailure {
    fn from(e: SinkError) -> Self {
        let mut f = Self::retryable(e.to_string());
        f.restart = e.no_such_upload;
        f.with_source(e)
    }
}

/// Tuning read from the function's config.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// Minimum part size in bytes (at least 5 MiB).
    pub part_size: u64,
    pub max_parts_in_flight: usize,
    pub lease: Duration,
    /// The queue's maxReceiveCount: on the last delivery a retryable failure (or a deadline
    /// stop without progress) also aborts the upload and marks the job failed (it is still
    /// returned, so SQS moves it to the DLQ). A continuation message starts counting afresh,
    /// so only deliveries that failed without progress are counted.
    pub max_attempts: Option<u32>,
    /// Retryable failures of a file copy retried within the invocation (resuming from the last
    /// checkpointed part, after [`inline_backoff`]) before the attempt ends.
    pub inline_retries: u32,
    /// A job handed back uncopied with less than this left on its link is flagged at risk
    /// ([`crate::jobs::AtRisk`]; `LINK_AT_RISK_SECONDS`).
    pub at_risk_window: Duration,
}

/// Beyond twice a declared file size, this much more is still accepted (see `byte_limit`).
pub const DECLARED_SLACK: u64 = 1024 * 1024;

/// The pause before inline retry `n` (0-based): 0.5 s, 1 s, 2 s, 4 s, then 8 s at most.
pub fn inline_backoff(n: u32) -> Duration {
    Duration::from_millis(500u64 << n.min(4))
}

/// Whether a failure may be retried within the invocation: retryable, not a restart of the
/// upload, and not a lost lease (another copier owns the job now).
fn retry_inline(f: &CopyFailure) -> bool {
    f.class == FailureClass::Retryable
        && !f.restart
        && !f
            .source
            .as_ref()
            .and_then(|s| s.downcast_ref::<StateError>())
            .is_some_and(|e| e.lease_lost)
}

/// One delivery of one job.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Lease owner: unique per invocation.
    pub owner: String,
    /// Stop reading and settle by then (the Lambda deadline minus the safety margin).
    pub stop_at: Instant,
    /// SQS ApproximateReceiveCount of the message.
    pub receive_count: u32,
}

/// How a job ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Copied(CopyResult),
    /// A previous delivery copied it: nothing done.
    AlreadyCopied,
    /// A previous delivery failed it permanently: nothing done.
    AlreadyFailed {
        reason: String,
    },
}

/// The multipart upload a failed copy leaves behind (aborted unless it can be resumed).
#[derive(Debug, Clone)]
struct LiveUpload {
    key: String,
    upload_id: String,
}

type Failed = (CopyFailure, Option<LiveUpload>);

/// Bytes and digest of one copied object.
#[derive(Debug, Clone)]
struct FileDone {
    bytes: u64,
    transferred: u64,
    sha256: String,
}

/// Where to persist progress of a resumable copy. `stored` mirrors what the store holds after
/// each successful write (the upload and its checkpoint): an inline retry resumes from it.
#[derive(Debug, Clone, Copy)]
struct Persist<'a> {
    job_id: &'a str,
    owner: &'a str,
    stored: &'a std::sync::Mutex<Option<UploadProgress>>,
}

/// The copier: state store, object sink, origin, and the resolver of provider objects.
#[derive(Debug)]
pub struct CopyService<S, K, O> {
    store: S,
    sink: K,
    origin: O,
    resolver: std::sync::Arc<dyn SourceResolver>,
    settings: CopySettings,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Buffers a copy needs at most: the parts in flight plus the one filling.
fn max_parts_buffers(settings: &CopySettings) -> usize {
    settings.max_parts_in_flight.max(1) + 1
}

/// Takes a part's buffer back once nobody else holds it (the SDK drops its clones when the
/// request is done); otherwise it is simply freed.
fn recycle(pool: &mut Vec<BytesMut>, spare: Bytes) {
    if let Ok(mut b) = spare.try_into_mut() {
        b.clear();
        pool.push(b);
    }
}

fn restore_hasher(state: &[u8]) -> Option<Sha256> {
    let array = state.try_into().ok()?;
    Sha256::deserialize(&array).ok()
}

impl<S: CopyStateStore + AtRiskFlags, K: MultipartSink, O: Origin> CopyService<S, K, O> {
    pub fn new(store: S, sink: K, origin: O, settings: CopySettings) -> Self {
        Self {
            store,
            sink,
            origin,
            resolver: std::sync::Arc::new(NoObjects),
            settings,
        }
    }

    /// Resolves provider objects (a Daily recording) with `resolver` instead of refusing them.
    pub fn with_resolver(mut self, resolver: std::sync::Arc<dyn SourceResolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The link to fetch for this attempt: the job's own, or a fresh one from the provider
    /// (asked on every attempt, never stored). A link is a credential: never logged.
    async fn link_for(&self, job: &CopyJob, stop_at: Instant) -> Result<String, CopyFailure> {
        match &job.file {
            FileSource::Url(link) => Ok(link.expose().to_owned()),
            FileSource::Object(object) => {
                let resolved =
                    match timeout_at(stop_at, self.resolver.resolve(&job.provider, object)).await {
                        Err(_) => return Err(CopyFailure::interrupted()),
                        Ok(r) => r,
                    };
                match resolved {
                    Ok(r) => {
                        metrics::count_by("LinksResolved", 1.0, &[("Provider", &job.provider)]);
                        Ok(r.link.expose().to_owned())
                    }
                    Err(e) => {
                        let class = if e.permanent {
                            FailureClass::Permanent
                        } else {
                            FailureClass::Retryable
                        };
                        Err(CopyFailure::new(class, e.to_string()).with_source(e))
                    }
                }
            }
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    fn lease_until(&self) -> i64 {
        now_ms().saturating_add(i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX))
    }

    /// How long a copy lease lasts without a checkpoint or a heartbeat.
    pub fn lease(&self) -> Duration {
        self.settings.lease
    }

    /// The heartbeat of a running copy: extends `owner`'s lease on the job by a whole lease.
    pub async fn renew_lease(&self, job_id: &str, owner: &str) -> Result<(), StateError> {
        self.store
            .renew_lease(job_id, owner, self.lease_until())
            .await
    }

    /// The most bytes a file of `job` may have: what fits in 10,000 parts of the configured
    /// size, and the size the webhook declared for it, if any. The origin's Content-Length can
    /// only be checked against this, never raise it.
    ///
    /// The declared size bounds an endless body, not the file: twice it plus 1 MiB, so a
    /// declared size that is a little off (rounded, or taken before a transformation) never
    /// costs the file.
    fn byte_limit(&self, job: &CopyJob) -> u64 {
        let parts = PartPlan::new(self.settings.part_size).max_file();
        match job.meta.file_size {
            Some(declared) if declared >= 0 && job.kind != FileKind::Screenshots => parts.min(
                (declared as u64)
                    .saturating_mul(2)
                    .saturating_add(DECLARED_SLACK),
            ),
            _ => parts,
        }
    }

    /// Records a job message that cannot be processed (e.g. an unknown version).
    pub async fn reject(&self, job_id: &str, reason: &str) -> Result<(), StateError> {
        let now = now_ms();
        self.store
            .reject(
                job_id,
                reason,
                now,
                now / 1000 + STATE_RETENTION_AFTER_LINK_SECS,
            )
            .await
    }

    /// Copies one job, at most once across deliveries.
    pub async fn process(&self, job: &CopyJob, attempt: &Attempt) -> Result<Done, CopyFailure> {
        let started = std::time::Instant::now();
        let now = now_ms();
        let claim = self
            .store
            .claim(
                &job.job_id,
                &attempt.owner,
                now,
                self.lease_until(),
                job.link_expires_at / 1000 + STATE_RETENTION_AFTER_LINK_SECS,
            )
            .await?;
        let (progress, screenshots_done) = match claim {
            Claim::AlreadyCopied => return Ok(Done::AlreadyCopied),
            Claim::AlreadyFailed { reason } => return Ok(Done::AlreadyFailed { reason }),
            Claim::Busy { lease_until_ms } => {
                let left = (lease_until_ms - now).max(0);
                let mut busy = CopyFailure::new(
                    FailureClass::Busy,
                    format!("another copier holds the lease for {left} ms more"),
                );
                busy.lease_left = Some(Duration::from_millis(left as u64));
                return Err(busy);
            }
            Claim::Claimed {
                progress,
                screenshots_done,
                ..
            } => (progress, screenshots_done),
        };
        let seconds_left = (job.link_expires_at - now) as f64 / 1000.0;
        metrics::value("LinkSecondsLeftAtStart", seconds_left, "Seconds");
        let live = progress.as_ref().map(|p| LiveUpload {
            key: p.key.clone(),
            upload_id: p.upload_id.clone(),
        });
        // What an earlier attempt finished needs no link: settled before the link's expiry
        // or a provider's answer could cost a copy that is done.
        let earlier = match progress
            .as_ref()
            .filter(|_| job.kind != FileKind::Screenshots)
        {
            Some(p) => self.finished_earlier(job, p).await,
            None => Ok(None),
        };
        let result = match earlier {
            Err(failure) => Err((failure, live)),
            Ok(Some(done)) => Ok((
                CopyResult {
                    key: layout::object_key(job),
                    bytes: done.bytes,
                    sha256: done.sha256,
                    objects: 1,
                    about: None,
                },
                done.transferred,
            )),
            Ok(None) if now >= job.link_expires_at => Err((
                CopyFailure::permanent("link expired before the copy could start"),
                live,
            )),
            Ok(None) if job.kind == FileKind::Screenshots => {
                self.copy_screenshots(job, attempt, screenshots_done).await
            }
            Ok(None) => self.copy_with_inline_retries(job, attempt, progress).await,
        };
        match result {
            Ok((mut copied, transferred)) => {
                copied.about = Some(Box::new(FileAbout::of(job)));
                metrics::value("BytesCopied", transferred as f64, "Bytes");
                self.store
                    .mark_copied(&job.job_id, &attempt.owner, &copied, now_ms())
                    .await?;
                metrics::value("CopyDuration", started.elapsed().as_secs_f64(), "Seconds");
                Ok(Done::Copied(copied))
            }
            Err((failure, live)) => Err(self.settle(job, attempt, failure, live).await),
        }
    }

    /// Copies a file job; a retryable failure is retried here (after a short growing pause,
    /// while `stop_at` leaves time) from the last checkpointed part, through the same resume
    /// path a later delivery would take (the checkpoint, then ListParts).
    async fn copy_with_inline_retries(
        &self,
        job: &CopyJob,
        attempt: &Attempt,
        progress: Option<UploadProgress>,
    ) -> Result<(CopyResult, u64), Failed> {
        let key = layout::object_key(job);
        let checkpointed = |p: &Option<UploadProgress>| {
            p.as_ref()
                .and_then(|p| p.checkpoint.as_ref())
                .map_or(0, |c| c.bytes)
        };
        let at_start = checkpointed(&progress);
        let stored = std::sync::Mutex::new(progress);
        let mut retries = 0;
        loop {
            let progress = stored.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let persist = Persist {
                job_id: &job.job_id,
                owner: &attempt.owner,
                stored: &stored,
            };
            let live = progress.as_ref().map(|p| LiveUpload {
                key: p.key.clone(),
                upload_id: p.upload_id.clone(),
            });
            let copied = match self.link_for(job, attempt.stop_at).await {
                Ok(link) => {
                    self.copy_file(job, &link, &key, progress, Some(persist), attempt.stop_at)
                        .await
                }
                Err(f) => Err((f, live)),
            };
            let failure = match copied {
                Ok(done) => {
                    return Ok((
                        CopyResult {
                            key,
                            bytes: done.bytes,
                            sha256: done.sha256,
                            objects: 1,
                            about: None,
                        },
                        done.transferred,
                    ));
                }
                Err(failed) => failed,
            };
            let pause = inline_backoff(retries);
            if retries >= self.settings.inline_retries
                || !retry_inline(&failure.0)
                || Instant::now() + pause >= attempt.stop_at
                || now_ms() >= job.link_expires_at
            {
                let mut failure = failure;
                let at_end = checkpointed(&stored.lock().unwrap_or_else(|p| p.into_inner()));
                failure.0.progressed = at_end > at_start;
                return Err(failure);
            }
            retries += 1;
            warn!(job_id = %job.job_id, retry = retries, error = %super::error_chain(&failure.0), "transient copy failure; retrying within this invocation");
            metrics::count("CopyInlineRetries", 1.0);
            tokio::time::sleep(pause).await;
        }
    }

    /// Puts the state in order after a failure: permanent (or last-attempt) failures abort the
    /// upload and mark the job failed; others release the lease so the next delivery resumes.
    async fn settle(
        &self,
        job: &CopyJob,
        attempt: &Attempt,
        mut failure: CopyFailure,
        live: Option<LiveUpload>,
    ) -> CopyFailure {
        // Only real failures spend the queue's receives: a deadline stop that made progress
        // continues in a fresh message (see `sqs`), one that made none counts as a failure.
        let counts = failure.class == FailureClass::Retryable
            || (failure.class == FailureClass::Interrupted && !failure.progressed);
        let exhausted = counts
            && self
                .settings
                .max_attempts
                .is_some_and(|max| attempt.receive_count >= max);
        if exhausted {
            failure.reason = format!(
                "retries exhausted after {} deliveries: {}",
                attempt.receive_count, failure.reason
            );
        }
        let give_up = failure.class == FailureClass::Permanent || exhausted || failure.restart;
        if failure.class == FailureClass::Busy {
            return failure;
        }
        if give_up {
            if let Some(u) = &live
                && let Err(e) = self.sink.abort(&u.key, &u.upload_id).await
            {
                error!(job_id = %job.job_id, error = %super::error_chain(&e), "abort of the multipart upload failed");
            }
            let permanent = failure.class == FailureClass::Permanent;
            if let Err(e) = self
                .store
                .mark_failed(
                    &job.job_id,
                    &attempt.owner,
                    &failure.reason,
                    permanent,
                    &FileAbout::of(job),
                    now_ms(),
                )
                .await
            {
                // Not recorded: let the message come back so the outcome is recorded then.
                warn!(job_id = %job.job_id, error = %super::error_chain(&e), "could not record the failure");
                failure.class = FailureClass::Retryable;
            }
        } else if let Err(e) = self.store.release(&job.job_id, &attempt.owner).await {
            warn!(job_id = %job.job_id, error = %super::error_chain(&e), "could not release the lease; it will run out");
        }
        if failure.class != FailureClass::Permanent {
            self.flag_if_at_risk(job, &failure.reason, exhausted).await;
        }
        failure
    }

    /// A job handed back uncopied is at risk when the copier gave up retrying it, or when its
    /// link dies within the window: flagged once, for the meeting events' `RecordingAtRisk`.
    /// A flag that cannot be written now is written by the next hand-back.
    async fn flag_if_at_risk(&self, job: &CopyJob, reason: &str, exhausted: bool) {
        let now = now_ms();
        let flag = if exhausted {
            Some(AtRisk::new(job, RiskCause::RetriesExhausted, reason, now))
        } else {
            AtRisk::link_expiring(job, reason, now, self.settings.at_risk_window)
        };
        if let Some(flag) = flag {
            // A failed write is logged; the next hand-back writes it.
            let _ = super::ports::flag_at_risk(&self.store, &flag, now).await;
        }
    }

    async fn fetch(
        &self,
        provider: &str,
        link: &str,
        from: u64,
        if_range: Option<&str>,
        stop_at: Instant,
    ) -> Result<OriginResponse, CopyFailure> {
        match timeout_at(stop_at, self.origin.fetch(provider, link, from, if_range)).await {
            Err(_) => Err(CopyFailure::interrupted()),
            Ok(r) => Ok(r?),
        }
    }

    /// SCREEN_SHARING_HISTORY: fetch the list, then copy each screenshot after the ones an
    /// earlier attempt finished. Screenshots are small, so each is copied whole.
    async fn copy_screenshots(
        &self,
        job: &CopyJob,
        attempt: &Attempt,
        done: usize,
    ) -> Result<(CopyResult, u64), Failed> {
        let list_link = self
            .link_for(job, attempt.stop_at)
            .await
            .map_err(|f| (f, None))?;
        let resp = self
            .fetch(&job.provider, &list_link, 0, None, attempt.stop_at)
            .await
            .map_err(|f| (f, None))?;
        if resp.range.is_some() {
            return Err((
                CopyFailure::retryable("origin answered 206 to a plain GET"),
                None,
            ));
        }
        let mut body = resp.body;
        let mut list = Vec::new();
        loop {
            match timeout_at(attempt.stop_at, body.next()).await {
                Err(_) => return Err((CopyFailure::interrupted(), None)),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err((e.into(), None)),
                Ok(Some(Ok(chunk))) => {
                    if list.len() + chunk.len() > SCREENSHOT_LIST_MAX {
                        return Err((
                            CopyFailure::permanent(format!(
                                "screenshot list larger than {SCREENSHOT_LIST_MAX} bytes"
                            )),
                            None,
                        ));
                    }
                    list.extend_from_slice(&chunk);
                }
            }
        }
        let links = screenshots::parse_list(&list)
            .map_err(|e| (CopyFailure::permanent(e.to_string()), None))?;
        let mut transferred = 0;
        let mut sha256 = String::new();
        for (index, link) in links.iter().enumerate().skip(done) {
            let key = layout::screenshot_key(job, index, link);
            let shot = self
                .copy_file(job, link, &key, None, None, attempt.stop_at)
                .await
                .map_err(|(mut f, live)| {
                    f.reason = format!("screenshot {index}: {}", f.reason);
                    f.progressed = index > done;
                    (f, live)
                })?;
            transferred += shot.transferred;
            sha256 = shot.sha256;
            self.store
                .record_screenshots(&job.job_id, &attempt.owner, index + 1, self.lease_until())
                .await
                .map_err(|e| (e.into(), None))?;
        }
        Ok((
            CopyResult {
                key: layout::key_dir(job),
                bytes: transferred,
                sha256,
                objects: links.len() as u32,
                about: None,
            },
            transferred,
        ))
    }

    /// Streams one link into `key`. With `persist`, progress goes to the state store and a
    /// failure leaves the upload for the next attempt; without, any failure aborts it.
    async fn copy_file(
        &self,
        job: &CopyJob,
        link: &str,
        key: &str,
        progress: Option<UploadProgress>,
        persist: Option<Persist<'_>>,
        stop_at: Instant,
    ) -> Result<FileDone, Failed> {
        let result = self
            .copy_file_inner(job, link, key, progress, persist, stop_at)
            .await;
        match result {
            Err((f, Some(live))) if persist.is_none() => {
                if let Err(e) = self.sink.abort(&live.key, &live.upload_id).await {
                    error!(job_id = %job.job_id, error = %super::error_chain(&e), "abort of the multipart upload failed");
                }
                Err((f, None))
            }
            other => other,
        }
    }

    async fn copy_file_inner(
        &self,
        job: &CopyJob,
        link: &str,
        key: &str,
        progress: Option<UploadProgress>,
        persist: Option<Persist<'_>>,
        stop_at: Instant,
    ) -> Result<FileDone, Failed> {
        let live = |p: &Option<UploadProgress>| {
            p.as_ref().map(|p| LiveUpload {
                key: p.key.clone(),
                upload_id: p.upload_id.clone(),
            })
        };
        // An upload for another key (layout changed between deploys) cannot be resumed.
        let mut progress = match progress {
            Some(p) if p.key != key => {
                self.abort_quietly(job, &p.key, &p.upload_id).await;
                None
            }
            other => other,
        };

        // Without a validator a resume cannot tell whether the origin's file is still the one
        // the stored parts came from (same length, other bytes would be spliced): start over.
        if let Some(p) = progress.take_if(|p| {
            p.validator.is_none() && p.checkpoint.as_ref().is_some_and(|cp| cp.parts > 0)
        }) {
            warn!(job_id = %job.job_id, "stored upload has no origin validator to resume with; restarting from byte 0");
            self.abort_quietly(job, &p.key, &p.upload_id).await;
        }

        // What an earlier attempt finished: the checkpointed parts, as S3 lists them.
        let mut kept = Vec::new();
        let mut from = 0;
        let mut hasher = Sha256::new();
        if let Some(p) = progress.clone()
            && let Some(cp) = p.checkpoint.as_ref().filter(|cp| cp.parts > 0)
        {
            let plan = PartPlan::new(self.settings.part_size);
            match self.sink.list_parts(&p.key, &p.upload_id).await {
                Ok(listed) => match (
                    resumable_prefix(&listed, cp, &plan),
                    restore_hasher(&cp.hash_state),
                ) {
                    (Some(parts), Some(h)) => {
                        kept = parts;
                        from = cp.bytes;
                        hasher = h;
                    }
                    _ => {
                        warn!(job_id = %job.job_id, "stored upload does not match its checkpoint; restarting from byte 0");
                        self.abort_quietly(job, &p.key, &p.upload_id).await;
                        progress = None;
                    }
                },
                Err(e) if e.no_such_upload => {
                    if let Some(done) = self
                        .already_completed(job, &p, cp)
                        .await
                        .map_err(|f| (f, None))?
                    {
                        return Ok(done);
                    }
                    progress = None;
                }
                Err(e) => return Err((e.into(), live(&progress))),
            }
        }

        // Every byte was uploaded by an earlier attempt that stopped before completing.
        if let Some(p) = &progress
            && from > 0
            && p.total == Some(from)
        {
            return self
                .finish(job, key, p, kept, from, 0, hasher)
                .await
                .map_err(|f| (f, live(&progress)));
        }

        // A resume sends `If-Range` with the validator of the file the stored parts came from:
        // the origin answers 206 only if that file is unchanged, else 200 with the new file.
        let stored_validator = progress.as_ref().and_then(|p| p.validator.clone());
        let mut resp = self
            .fetch(
                &job.provider,
                link,
                from,
                stored_validator.as_deref().filter(|_| from > 0),
                stop_at,
            )
            .await
            .map_err(|f| (f, live(&progress)))?;
        if from > 0 && resp.range.is_some() && resp.validator != stored_validator {
            // A 206 of another file (an origin that ignores If-Range): never splice it onto
            // the stored parts. Drop the upload and read the new file from byte 0.
            info!(job_id = %job.job_id, "origin's file changed since the stored parts; restarting from byte 0");
            metrics::count("CopyOriginChanged", 1.0);
            drop(resp);
            if let Some(p) = progress.take() {
                self.abort_quietly(job, &p.key, &p.upload_id).await;
            }
            kept.clear();
            from = 0;
            hasher = Sha256::new();
            resp = self
                .fetch(&job.provider, link, 0, None, stop_at)
                .await
                .map_err(|f| (f, None))?;
        }
        let total = if from > 0 {
            let expected = progress.as_ref().and_then(|p| p.total);
            match resp.range {
                Some(r) if r.start == from && (expected.is_none() || r.total == expected) => {
                    r.total
                }
                Some(_) => {
                    // The origin's file is not the one we started on: start over.
                    return Err((
                        CopyFailure {
                            restart: true,
                            ..CopyFailure::retryable(
                                "origin answered a different range or length than the stored upload",
                            )
                        },
                        live(&progress),
                    ));
                }
                None => {
                    // Range not honoured, or If-Range found the file changed: the body is the
                    // whole (current) file. Start a new upload.
                    info!(job_id = %job.job_id, "origin answered the whole file to a resume; restarting from byte 0");
                    if let Some(p) = progress.take() {
                        self.abort_quietly(job, &p.key, &p.upload_id).await;
                    }
                    kept.clear();
                    from = 0;
                    hasher = Sha256::new();
                    resp.content_length
                }
            }
        } else if resp.range.is_some() {
            return Err((
                CopyFailure::retryable("origin answered 206 to a plain GET"),
                live(&progress),
            ));
        } else {
            resp.content_length
        };
        let limit = self.byte_limit(job);
        if let Some(t) = total
            && t > limit
        {
            // Refused before any upload or buffer exists: never sized from the claim.
            return Err((
                CopyFailure::permanent(format!(
                    "origin announces {t} bytes, more than the {limit} this job accepts"
                )),
                live(&progress),
            ));
        }

        let progress = match progress {
            // Resuming (or an upload that recorded no part yet and whose total still holds).
            Some(p) if from > 0 || p.total == total => p,
            stale => {
                if let Some(p) = stale {
                    self.abort_quietly(job, &p.key, &p.upload_id).await;
                }
                let meta: ObjectMeta =
                    layout::object_meta(job, resp.content_type.as_deref(), &resp.host);
                let upload_id = self
                    .sink
                    .create(key, &meta)
                    .await
                    .map_err(|e| (CopyFailure::from(e), None))?;
                let p = UploadProgress {
                    upload_id,
                    key: key.to_owned(),
                    total,
                    validator: resp.validator.clone(),
                    checkpoint: None,
                };
                if let Some(ps) = persist
                    && let Err(e) = self
                        .store
                        .start_upload(ps.job_id, ps.owner, &p, self.lease_until())
                        .await
                {
                    return Err((e.into(), live(&Some(p))));
                }
                if let Some(ps) = persist {
                    *ps.stored.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
                }
                p
            }
        };
        let here = live(&Some(progress.clone()));
        let (parts, end, hasher) = self
            .stream_parts(
                &progress, kept, from, total, limit, hasher, resp, persist, stop_at,
            )
            .await
            .map_err(|f| (f, here.clone()))?;
        let transferred = end - from;
        self.finish(job, key, &progress, parts, end, transferred, hasher)
            .await
            .map_err(|f| (f, here))
    }

    /// A copy an earlier attempt finished, found without the link: every byte was uploaded
    /// and only the completion is missing (completed here), or the upload was completed and
    /// the record of it failed (the object is checked). `None` when bytes are still missing.
    async fn finished_earlier(
        &self,
        job: &CopyJob,
        p: &UploadProgress,
    ) -> Result<Option<FileDone>, CopyFailure> {
        let Some(cp) = p
            .checkpoint
            .as_ref()
            .filter(|cp| cp.parts > 0 && p.total == Some(cp.bytes))
        else {
            return Ok(None);
        };
        if p.key != layout::object_key(job) {
            return Ok(None);
        }
        match self.sink.list_parts(&p.key, &p.upload_id).await {
            Err(e) if e.no_such_upload => self.already_completed(job, p, cp).await,
            Err(e) => Err(e.into()),
            Ok(listed) => {
                let plan = PartPlan::new(self.settings.part_size);
                match (
                    resumable_prefix(&listed, cp, &plan),
                    restore_hasher(&cp.hash_state),
                ) {
                    (Some(parts), Some(hasher)) => self
                        .finish(job, &p.key, p, parts, cp.bytes, 0, hasher)
                        .await
                        .map(Some),
                    _ => Ok(None),
                }
            }
        }
    }

    /// The stored upload is gone: an earlier attempt may have completed it and crashed before
    /// recording that. It counts as copied only if the object has every checkpointed byte.
    async fn already_completed(
        &self,
        job: &CopyJob,
        p: &UploadProgress,
        cp: &Checkpoint,
    ) -> Result<Option<FileDone>, CopyFailure> {
        if p.total != Some(cp.bytes) {
            return Ok(None);
        }
        let Some(hasher) = restore_hasher(&cp.hash_state) else {
            return Ok(None);
        };
        let sha256 = hex::encode(hasher.finalize());
        match self.sink.existing(&p.key).await? {
            Some((size, tag)) if size == cp.bytes && tag.as_deref().is_none_or(|t| t == sha256) => {
                info!(job_id = %job.job_id, "upload was already completed by an earlier attempt");
                if tag.is_none() {
                    self.sink.tag_sha256(&p.key, &sha256).await?;
                }
                Ok(Some(FileDone {
                    bytes: size,
                    transferred: 0,
                    sha256,
                }))
            }
            _ => Ok(None),
        }
    }

    async fn abort_quietly(&self, job: &CopyJob, key: &str, upload_id: &str) {
        if let Err(e) = self.sink.abort(key, upload_id).await {
            warn!(job_id = %job.job_id, error = %super::error_chain(&e), "abort of a stale multipart upload failed");
        }
    }

    /// Moves the checkpoint over newly contiguous parts (one small write, renewing the lease).
    async fn advance(
        &self,
        parts: &BTreeMap<u32, PartRecord>,
        committed: &mut u32,
        persist: Option<Persist<'_>>,
    ) -> Result<(), CopyFailure> {
        let next = contiguous_after(*committed, parts);
        if next == *committed {
            return Ok(());
        }
        *committed = next;
        if let Some(ps) = persist
            && let Some(last) = parts.get(&next)
        {
            let cp = Checkpoint {
                parts: next,
                bytes: last.offset + last.len,
                hash_state: last.hash_state.clone(),
            };
            self.store
                .record_checkpoint(ps.job_id, ps.owner, &cp, self.lease_until())
                .await?;
            if let Some(p) = ps.stored.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                p.checkpoint = Some(cp);
            }
        }
        Ok(())
    }

    /// Reads the body into parts and uploads them, at most `max_parts_in_flight` at a time.
    /// Returns every part (kept + new), the end offset and the whole-file hasher.
    #[allow(clippy::too_many_arguments)]
    async fn stream_parts(
        &self,
        upload: &UploadProgress,
        kept: Vec<PartRecord>,
        from: u64,
        total: Option<u64>,
        limit: u64,
        mut hasher: Sha256,
        resp: OriginResponse,
        persist: Option<Persist<'_>>,
        stop_at: Instant,
    ) -> Result<(Vec<PartRecord>, u64, Sha256), CopyFailure> {
        let plan = PartPlan::new(self.settings.part_size);
        let mut committed = kept.len() as u32;
        let mut parts: BTreeMap<u32, PartRecord> =
            kept.into_iter().map(|p| (p.number, p)).collect();
        let mut number = committed + 1;
        let mut offset = from;
        let mut part_hasher = Sha256::new();
        // The announced length may only shrink the first buffer (a small file needs no whole
        // part); buffers never exceed the configured part size, whatever the origin claims.
        let first = plan
            .size_of(number)
            .min(total.map_or(u64::MAX, |t| t.saturating_sub(from)).max(1));
        let mut buf = BytesMut::with_capacity(first as usize);
        // Part buffers come back here once S3 has the part, so the same few allocations carry
        // the whole file (no allocator churn inflating the resident set).
        let mut pool: Vec<BytesMut> = Vec::with_capacity(max_parts_buffers(&self.settings));
        let mut body = resp.body;
        let mut inflight = FuturesUnordered::new();
        let max_in_flight = self.settings.max_parts_in_flight.max(1);
        let mut outcome: Result<(), CopyFailure> = Ok(());

        let upload_one =
            |number: u32, offset: u64, bytes: Bytes, part_sha: String, state: Vec<u8>| async move {
                let len = bytes.len() as u64;
                let spare = bytes.clone();
                let etag = self
                    .sink
                    .upload_part(&upload.key, &upload.upload_id, number, bytes, &part_sha)
                    .await?;
                let rec = PartRecord {
                    number,
                    etag,
                    sha256: Some(part_sha),
                    offset,
                    len,
                    hash_state: state,
                };
                Ok::<_, CopyFailure>((rec, spare))
            };

        loop {
            if inflight.len() >= max_in_flight {
                match inflight.next().await {
                    Some(Ok((rec, spare))) => {
                        let rec: PartRecord = rec;
                        recycle(&mut pool, spare);
                        parts.insert(rec.number, rec);
                        if let Err(f) = self.advance(&parts, &mut committed, persist).await {
                            outcome = Err(f);
                            break;
                        }
                    }
                    Some(Err(f)) => {
                        outcome = Err(f);
                        break;
                    }
                    None => {}
                }
                continue;
            }
            tokio::select! {
                biased;
                Some(done) = inflight.next(), if !inflight.is_empty() => match done {
                    Ok((rec, spare)) => {
                        recycle(&mut pool, spare);
                        parts.insert(rec.number, rec);
                        if let Err(f) = self.advance(&parts, &mut committed, persist).await {
                            outcome = Err(f);
                            break;
                        }
                    }
                    Err(f) => { outcome = Err(f); break; }
                },
                next = timeout_at(stop_at, body.next()) => match next {
                    Err(_) => { outcome = Err(CopyFailure::interrupted()); break; }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => { outcome = Err(e.into()); break; }
                    Ok(Some(Ok(mut chunk))) => {
                        let received = offset + buf.len() as u64 + chunk.len() as u64;
                        if received > limit {
                            outcome = Err(CopyFailure::permanent(format!("origin sent more than the {limit} bytes this job accepts")));
                            break;
                        }
                        if total.is_some_and(|t| received > t) {
                            outcome = Err(CopyFailure::retryable("origin sent more bytes than announced"));
                            break;
                        }
                        while !chunk.is_empty() {
                            let size = plan.size_of(number) as usize;
                            let take = chunk.split_to((size - buf.len()).min(chunk.len()));
                            hasher.update(&take);
                            part_hasher.update(&take);
                            buf.extend_from_slice(&take);
                            if buf.len() == size {
                                let next_size = plan.size_of(number + 1) as usize;
                                let fresh = pool.pop().filter(|b| b.capacity() >= next_size).unwrap_or_else(|| BytesMut::with_capacity(next_size));
                                let bytes = std::mem::replace(&mut buf, fresh).freeze();
                                let part_sha = b64(&part_hasher.finalize_reset());
                                let len = bytes.len() as u64;
                                inflight.push(upload_one(number, offset, bytes, part_sha, hasher.serialize().to_vec()));
                                offset += len;
                                number += 1;
                            }
                        }
                    }
                },
            }
        }
        drop(body);
        // Let started uploads finish even when stopping, and checkpoint what finished (also
        // before a stop or a retryable failure): that is what a resume keeps.
        while let Some(done) = inflight.next().await {
            match done {
                Ok((rec, _)) => {
                    parts.insert(rec.number, rec);
                }
                Err(f) => {
                    if outcome.is_ok() {
                        outcome = Err(f);
                    }
                }
            }
        }
        if let Err(f) = self.advance(&parts, &mut committed, persist).await
            && outcome.is_ok()
        {
            outcome = Err(f);
        }
        outcome?;
        let received = offset + buf.len() as u64;
        if let Some(t) = total
            && received < t
        {
            return Err(CopyFailure::retryable(format!(
                "body truncated: {received} of {t} bytes"
            )));
        }
        // The last part (may be short; S3 accepts a short last part, and one empty part for
        // an empty file).
        if !buf.is_empty() || parts.is_empty() {
            let part_sha = b64(&part_hasher.finalize_reset());
            let bytes = buf.freeze();
            let len = bytes.len() as u64;
            let (rec, _) =
                upload_one(number, offset, bytes, part_sha, hasher.serialize().to_vec()).await?;
            parts.insert(rec.number, rec);
            self.advance(&parts, &mut committed, persist).await?;
            offset += len;
        }
        Ok((parts.into_values().collect(), offset, hasher))
    }

    /// Completes the upload and stores the whole-file digest with the object.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        job: &CopyJob,
        key: &str,
        upload: &UploadProgress,
        mut parts: Vec<PartRecord>,
        end: u64,
        transferred: u64,
        hasher: Sha256,
    ) -> Result<FileDone, CopyFailure> {
        parts.sort_by_key(|p| p.number);
        parts.dedup_by_key(|p| p.number);
        let sha256 = hex::encode(hasher.finalize());
        if let Err(e) = self.sink.complete(key, &upload.upload_id, &parts).await {
            if e.no_such_upload {
                // An earlier attempt may have completed it and crashed before recording that.
                let existing = self.sink.existing(key).await?;
                if let Some((size, tag)) = existing
                    && size == end
                    && tag.as_deref().is_none_or(|t| t == sha256)
                {
                    info!(job_id = %job.job_id, "upload was already completed by an earlier attempt");
                    self.sink.tag_sha256(key, &sha256).await?;
                    return Ok(FileDone {
                        bytes: end,
                        transferred,
                        sha256,
                    });
                }
            }
            return Err(e.into());
        }
        self.sink.tag_sha256(key, &sha256).await?;
        Ok(FileDone {
            bytes: end,
            transferred,
            sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_backoff_grows_and_is_capped() {
        let ms: Vec<u128> = (0..7).map(|n| inline_backoff(n).as_millis()).collect();
        assert_eq!(ms, vec![500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }

    #[test]
    fn only_plain_retryable_failures_are_retried_inline() {
        assert!(retry_inline(&CopyFailure::retryable("reset")));
        assert!(retry_inline(&CopyFailure::from(OriginError::Status(503))));
        assert!(!retry_inline(&CopyFailure::permanent("gone")));
        assert!(!retry_inline(&CopyFailure::interrupted()));
        assert!(!retry_inline(&CopyFailure::new(FailureClass::Busy, "busy")));
        assert!(!retry_inline(&CopyFailure::from(OriginError::Status(416))));
        let lost = StateError {
            operation: "UpdateItem",
            lease_lost: true,
            source: None,
        };
        assert!(!retry_inline(&CopyFailure::from(lost)));
    }
}
