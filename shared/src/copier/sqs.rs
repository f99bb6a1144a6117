//! One SQS batch: each record is one copy job; failures are reported per record
//! (`batchItemFailures`, the event source mapping needs `ReportBatchItemFailures`), so one
//! failing job never fails its neighbours. Records run one after another: copies already
//! use parallel part uploads, and one at a time keeps memory flat.
//!
//! Every failure is logged at error level with the message id and job id (never the link).
//! An unreadable message (not JSON, missing fields) is returned so it reaches the DLQ intact;
//! a message of an unsupported job version is recorded as failed and acknowledged.
//!
//! A returned record does not wait the queue's whole visibility timeout (5400 s, sized for the
//! longest invocation): transient faults are first retried inside the invocation, then the
//! record's visibility is shortened to a growing [`RetryBackoff`] before it is reported in
//! `batchItemFailures` (Lambda's event source mapping leaves a failed record's visibility as
//! the function set it). If that call fails, the record is still returned: it then waits the
//! full timeout, late but never lost.
//!
//! A copy stopped only by the Lambda deadline after checkpointing progress does not spend a
//! receive: the same job body is sent again as a fresh message (its receive count starts at 1)
//! and the current record is acknowledged; if that send fails the record is returned as any
//! failure (no loss). A deadline stop without progress counts as a failure, so a hopeless link
//! still reaches the DLQ; the chain of continuations ends with the link's expiry (a claim past
//! it is a permanent failure) and needs progress at every step. A continuation delivered twice
//! (e.g. the acknowledgement of its predecessor was lost) is harmless: the copy-state lease
//! makes the second one wait (busy) and it is then acknowledged as already copied.

use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::error_chain;
use super::ports::{AtRiskFlags, CopyStateStore, MultipartSink, Origin, Requeue};
use super::service::{Attempt, CopyService, Done, FailureClass};
use crate::jobs::{JobDecodeError, decode_job};
use crate::metrics;

/// The invocation a batch runs in.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Lambda request id: the lease owner of every job of this batch.
    pub request_id: String,
    /// When to stop (the Lambda deadline minus the safety margin).
    pub stop_at: Instant,
}

impl Invocation {
    /// An invocation with `left` until the Lambda deadline, stopping `margin` before it. A
    /// budget of zero (local emulators such as `cargo lambda watch` report a deadline already
    /// past; never the case on AWS) is taken as the function's configured timeout rather than
    /// refusing all work.
    pub fn with_budget(
        request_id: String,
        left: std::time::Duration,
        margin: std::time::Duration,
    ) -> Self {
        let left = if left.is_zero() {
            tracing::warn!(
                "the runtime reported a deadline already past; assuming the template's timeout"
            );
            std::time::Duration::from_secs(u64::from(crate::schema::COPIER_TIMEOUT_SECS))
        } else {
            left
        };
        tracing::debug!(seconds_left = left.as_secs(), "invocation time budget");
        Self {
            request_id,
            stop_at: Instant::now() + left.saturating_sub(margin),
        }
    }
}

/// When a returned record is delivered again: `base × 3^(n-1)` after the `n`-th delivery
/// failed, at most `max` (defaults 10 s, 30 s, 90 s, 270 s, then 300 s). With the queue's
/// maxReceiveCount of 4, a job that keeps failing reaches the DLQ about 7 minutes after its
/// first try instead of 6 hours, and a transient outage still gets minutes to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    pub base: Duration,
    pub max: Duration,
}

impl RetryBackoff {
    pub const DEFAULT_BASE_SECS: u64 = 10;
    pub const DEFAULT_MAX_SECS: u64 = 300;
    /// A busy job waits for the other copier's lease at most this long (the template's lease
    /// is 120 s, renewed while the copy runs; SQS allows 12 h).
    pub const BUSY_MAX: Duration = Duration::from_secs(3600);

    /// The delay after delivery number `receive_count` (1-based) failed.
    pub fn after(&self, receive_count: u32) -> Duration {
        let factor = 3u32.saturating_pow(receive_count.saturating_sub(1).min(20));
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay for a job another copier holds: until its lease runs out (plus a second),
    /// never shorter than `base`, at most [`Self::BUSY_MAX`].
    pub fn busy(&self, lease_left: Duration) -> Duration {
        (lease_left + Duration::from_secs(1))
            .max(self.base)
            .min(Self::BUSY_MAX)
    }
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(Self::DEFAULT_BASE_SECS),
            max: Duration::from_secs(Self::DEFAULT_MAX_SECS),
        }
    }
}

/// What happens to one record once it has been handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Done (copied, failed for good, or refused): deleted by the event source mapping.
    Ack,
    /// Returned in `batchItemFailures`, delivered again after `delay`.
    Retry { delay: Duration },
    /// Stopped by the deadline after progress: continue in a fresh message, then acknowledge.
    Continue,
}

/// A continuation is delivered at once: the copy released its lease when it stopped.
pub const CONTINUATION_DELAY: Duration = Duration::ZERO;

/// The copy service and the queue its jobs come from: what one invocation needs.
#[derive(Debug)]
pub struct JobHandler<S, K, O, Q> {
    service: CopyService<S, K, O>,
    queue: Q,
    backoff: RetryBackoff,
}

impl<S, K, O, Q> JobHandler<S, K, O, Q> {
    pub fn new(service: CopyService<S, K, O>, queue: Q, backoff: RetryBackoff) -> Self {
        Self {
            service,
            queue,
            backoff,
        }
    }

    pub fn service(&self) -> &CopyService<S, K, O> {
        &self.service
    }

    pub fn queue(&self) -> &Q {
        &self.queue
    }
}

fn failure(message_id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = message_id.to_owned();
    f
}

/// The job id of a message whose job could not be decoded, if it names one.
fn job_id_of(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("jobId")?
        .as_str()
        .map(str::to_owned)
}

/// Processes a batch and reports the records to retry (each after its backoff).
pub async fn handle_batch<S, K, O, Q>(
    handler: &JobHandler<S, K, O, Q>,
    event: SqsEvent,
    invocation: &Invocation,
) -> SqsBatchResponse
where
    S: CopyStateStore + AtRiskFlags,
    K: MultipartSink,
    O: Origin,
    Q: Requeue,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        match handle_record(handler, &record, invocation).await {
            Disposition::Ack => {}
            Disposition::Retry { delay } => {
                back_off(handler, &record, delay).await;
                response.batch_item_failures.push(failure(&message_id));
            }
            Disposition::Continue => {
                if let Err(delay) = continue_job(handler, &record, receive_count(&record)).await {
                    back_off(handler, &record, delay).await;
                    response.batch_item_failures.push(failure(&message_id));
                }
            }
        }
    }
    response
}

/// Shortens a returned record's invisibility to `delay`. A failure only delays the retry to
/// the queue's visibility timeout, so it is logged and the record is returned anyway.
async fn back_off<S, K, O, Q: Requeue>(
    handler: &JobHandler<S, K, O, Q>,
    record: &SqsMessage,
    delay: Duration,
) {
    let message_id = record.message_id.as_deref().unwrap_or("");
    let Some(receipt) = record.receipt_handle.as_deref() else {
        warn!(message_id = %message_id, "record without a receipt handle; it waits the queue's visibility timeout");
        return;
    };
    match handler.queue.retry_after(receipt, delay).await {
        Ok(()) => {
            info!(message_id = %message_id, retry_in_s = delay.as_secs(), "returned for retry");
        }
        Err(e) => {
            warn!(message_id = %message_id, error = %error_chain(&e), "could not shorten the record's visibility; it waits the queue's visibility timeout");
            crate::metrics::count("CopyBackoffFailures", 1.0);
        }
    }
}

/// Sends the record's job again as a fresh message. On failure, returns the backoff with which
/// the record itself must be returned instead.
async fn continue_job<S, K, O, Q: Requeue>(
    handler: &JobHandler<S, K, O, Q>,
    record: &SqsMessage,
    receives: u32,
) -> Result<(), Duration> {
    let message_id = record.message_id.as_deref().unwrap_or("");
    let body = record.body.as_deref().unwrap_or("");
    let job_id = job_id_of(body).unwrap_or_default();
    match handler
        .queue
        .continue_job(&job_id, body, CONTINUATION_DELAY)
        .await
    {
        Ok(()) => {
            info!(message_id = %message_id, job_id = %job_id, "stopped at the deadline after progress; continues in a fresh message");
            metrics::count("CopyContinuations", 1.0);
            Ok(())
        }
        Err(e) => {
            error!(message_id = %message_id, job_id = %job_id, error = %error_chain(&e), "could not send the continuation; returned for retry");
            Err(handler.backoff.after(receives))
        }
    }
}

fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

/// Runs `work` (one job's copy) with a heartbeat beside it, every third of the copy lease:
/// the job's lease is renewed (so a slow part never lets another copier take over a live copy)
/// and the record's visibility is set to one lease and a bit from now. A copier that dies (a
/// killed process, an out-of-memory end, a timeout past the margin) stops beating: its lease
/// runs out and the record is visible again within one lease, not the queue's 5400 s, and the
/// next delivery takes the job over and resumes it.
async fn with_heartbeat<S, K, O, Q, T>(
    handler: &JobHandler<S, K, O, Q>,
    record: &SqsMessage,
    job_id: &str,
    owner: &str,
    work: impl Future<Output = T>,
) -> T
where
    S: CopyStateStore + AtRiskFlags,
    K: MultipartSink,
    O: Origin,
    Q: Requeue,
{
    let lease = handler.service.lease();
    let period = (lease / 3).max(Duration::from_millis(200));
    let hold = lease + HEARTBEAT_SLACK;
    let receipt = record.receipt_handle.as_deref();
    let beat = async {
        let mut first = true;
        loop {
            if !first {
                // Before the claim (first beat) the lease is not ours yet: nothing to renew.
                if let Err(e) = handler.service.renew_lease(job_id, owner).await
                    && !e.lease_lost
                {
                    warn!(job_id = %job_id, error = %error_chain(&e), "could not renew the copy lease");
                }
            }
            first = false;
            if let Some(receipt) = receipt
                && let Err(e) = handler.queue.hold(receipt, hold).await
            {
                warn!(job_id = %job_id, error = %error_chain(&e), "could not extend the record's visibility");
            }
            tokio::time::sleep(period).await;
        }
    };
    tokio::select! {
        out = work => out,
        never = beat => never,
    }
}

/// How much longer than the lease a running job's record stays invisible: a redelivery
/// arrives only after the lease of a copier that stopped beating has run out.
pub const HEARTBEAT_SLACK: Duration = Duration::from_secs(5);

/// Handles one record and says what becomes of it.
async fn handle_record<S, K, O, Q>(
    handler: &JobHandler<S, K, O, Q>,
    record: &SqsMessage,
    invocation: &Invocation,
) -> Disposition
where
    S: CopyStateStore + AtRiskFlags,
    K: MultipartSink,
    O: Origin,
    Q: Requeue,
{
    let service = &handler.service;
    let message_id = record.message_id.clone().unwrap_or_default();
    let body = record.body.as_deref().unwrap_or("");
    let receives = receive_count(record);
    let retry = Disposition::Retry {
        delay: handler.backoff.after(receives),
    };
    if Instant::now() >= invocation.stop_at {
        error!(message_id = %message_id, "not started: Lambda deadline too near; returned for retry");
        return retry;
    }
    let job = match decode_job(body) {
        Ok(job) => job,
        Err(e @ JobDecodeError::UnsupportedVersion(_)) => {
            let job_id = job_id_of(body);
            error!(message_id = %message_id, job_id = job_id.as_deref().unwrap_or("-"), class = "permanent", error = %e, "job refused");
            metrics::count_by("CopyFailures", 1.0, &[("Class", "permanent")]);
            if let Some(job_id) = job_id
                && let Err(se) = service.reject(&job_id, &e.to_string()).await
            {
                error!(message_id = %message_id, job_id = %job_id, error = %error_chain(&se), "could not record the refusal; returned for retry");
                return retry;
            }
            return Disposition::Ack;
        }
        Err(e) => {
            // Kept: the DLQ preserves what we could not read for an operator to inspect.
            error!(message_id = %message_id, job_id = job_id_of(body).as_deref().unwrap_or("-"), class = "retryable", error = %e, "unreadable job message; returned so it reaches the DLQ");
            metrics::count_by("CopyFailures", 1.0, &[("Class", "retryable")]);
            return retry;
        }
    };
    let attempt = Attempt {
        owner: invocation.request_id.clone(),
        stop_at: invocation.stop_at,
        receive_count: receives,
    };
    let outcome = with_heartbeat(handler, record, &job.job_id, &attempt.owner, async {
        service.process(&job, &attempt).await
    })
    .await;
    match outcome {
        Ok(Done::Copied(result)) => {
            info!(message_id = %message_id, job_id = %job.job_id, key = %result.key, bytes = result.bytes, objects = result.objects, "copied");
            Disposition::Ack
        }
        Ok(Done::AlreadyCopied) => {
            info!(message_id = %message_id, job_id = %job.job_id, "already copied; acknowledged");
            metrics::count("CopyDuplicates", 1.0);
            Disposition::Ack
        }
        Ok(Done::AlreadyFailed { reason }) => {
            info!(message_id = %message_id, job_id = %job.job_id, reason = %reason, "failed permanently before; acknowledged");
            Disposition::Ack
        }
        Err(f) => {
            error!(
                message_id = %message_id,
                job_id = %job.job_id,
                kind = job.kind.as_str(),
                source = %job.file,
                class = f.class.as_str(),
                error = %error_chain(&f),
                "copy failed"
            );
            match f.class {
                FailureClass::Permanent | FailureClass::Retryable => {
                    metrics::count_by("CopyFailures", 1.0, &[("Class", f.class.as_str())]);
                }
                FailureClass::Interrupted => metrics::count("CopyInterrupted", 1.0),
                FailureClass::Busy => metrics::count("CopyBusy", 1.0),
            }
            match f.class {
                _ if f.class.acknowledged() => Disposition::Ack,
                FailureClass::Interrupted if f.progressed => Disposition::Continue,
                FailureClass::Busy => Disposition::Retry {
                    delay: handler
                        .backoff
                        .busy(f.lease_left.unwrap_or(handler.backoff.base)),
                },
                _ => retry,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_backoff_grows_from_seconds_to_minutes_and_is_capped() {
        let b = RetryBackoff::default();
        let secs: Vec<u64> = (1..=6).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(secs, vec![10, 30, 90, 270, 300, 300]);
        assert_eq!(
            b.after(0).as_secs(),
            10,
            "a missing count is the first delivery"
        );
        assert_eq!(b.after(u32::MAX).as_secs(), 300);
        // Never the queue's visibility timeout (5400 s).
        assert!((1..=100).all(|n| b.after(n)
            < Duration::from_secs(u64::from(crate::schema::JOBS_QUEUE.visibility_timeout_secs))));
    }

    #[test]
    fn a_busy_job_waits_for_the_other_lease_within_bounds() {
        let b = RetryBackoff::default();
        assert_eq!(b.busy(Duration::from_secs(100)), Duration::from_secs(101));
        assert_eq!(b.busy(Duration::ZERO), Duration::from_secs(10));
        assert_eq!(b.busy(Duration::from_secs(86_400)), RetryBackoff::BUSY_MAX);
    }
}
