//! One SQS batch: each record is one copy job; failures are reported per record
//! (`batchItemFailures`, the event source mapping needs `ReportBatchItemFailures`), so one
//! failing job never fails its neighbours. Records run one after another: copies already
//! use parallel part uploads, and one at a time keeps memory flat.
//!
//! Every failure is logged at error level with the message id and job id (never the link).
//! An unreadable message (not JSON, missing fields) is returned so it reaches the DLQ intact;
//! a message of an unsupported job version is recorded as failed and acknowledged.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use tokio::time::Instant;
use tracing::{error, info};

use super::error_chain;
use super::ports::{CopyStateStore, MultipartSink, Origin};
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

/// Processes a batch and reports the records to retry.
pub async fn handle_batch<S, K, O>(
    service: &CopyService<S, K, O>,
    event: SqsEvent,
    invocation: &Invocation,
) -> SqsBatchResponse
where
    S: CopyStateStore,
    K: MultipartSink,
    O: Origin,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        if let Some(message_id) = handle_record(service, &record, invocation).await {
            response.batch_item_failures.push(failure(&message_id));
        }
    }
    response
}

/// Returns the message id when the record must be retried.
async fn handle_record<S, K, O>(
    service: &CopyService<S, K, O>,
    record: &SqsMessage,
    invocation: &Invocation,
) -> Option<String>
where
    S: CopyStateStore,
    K: MultipartSink,
    O: Origin,
{
    let message_id = record.message_id.clone().unwrap_or_default();
    let body = record.body.as_deref().unwrap_or("");
    if Instant::now() >= invocation.stop_at {
        error!(message_id = %message_id, "not started: Lambda deadline too near; returned for retry");
        return Some(message_id);
    }
    let job = match decode_job(body) {
        Ok(job) => job,
        Err(e @ JobDecodeError::UnsupportedVersion(_)) => {
            let job_id = job_id_of(body);
            error!(message_id = %message_id, job_id = job_id.as_deref().unwrap_or("-"), class = "permanent", error = %e, "job refused");
            metrics::count_by("CopyFailures", 1.0, "Class", "permanent");
            if let Some(job_id) = job_id
                && let Err(se) = service.reject(&job_id, &e.to_string()).await
            {
                error!(message_id = %message_id, job_id = %job_id, error = %error_chain(&se), "could not record the refusal; returned for retry");
                return Some(message_id);
            }
            return None;
        }
        Err(e) => {
            // Kept: the DLQ preserves what we could not read for an operator to inspect.
            error!(message_id = %message_id, job_id = job_id_of(body).as_deref().unwrap_or("-"), class = "retryable", error = %e, "unreadable job message; returned so it reaches the DLQ");
            metrics::count_by("CopyFailures", 1.0, "Class", "retryable");
            return Some(message_id);
        }
    };
    let attempt = Attempt {
        owner: invocation.request_id.clone(),
        stop_at: invocation.stop_at,
        receive_count: record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1),
    };
    match service.process(&job, &attempt).await {
        Ok(Done::Copied(result)) => {
            info!(message_id = %message_id, job_id = %job.job_id, key = %result.key, bytes = result.bytes, objects = result.objects, "copied");
            None
        }
        Ok(Done::AlreadyCopied) => {
            info!(message_id = %message_id, job_id = %job.job_id, "already copied; acknowledged");
            metrics::count("CopyDuplicates", 1.0);
            None
        }
        Ok(Done::AlreadyFailed { reason }) => {
            info!(message_id = %message_id, job_id = %job.job_id, reason = %reason, "failed permanently before; acknowledged");
            None
        }
        Err(f) => {
            error!(
                message_id = %message_id,
                job_id = %job.job_id,
                kind = job.kind.as_str(),
                source_host = %job.link.redacted(),
                class = f.class.as_str(),
                error = %error_chain(&f),
                "copy failed"
            );
            match f.class {
                FailureClass::Permanent | FailureClass::Retryable => {
                    metrics::count_by("CopyFailures", 1.0, "Class", f.class.as_str());
                }
                FailureClass::Interrupted => metrics::count("CopyInterrupted", 1.0),
                FailureClass::Busy => metrics::count("CopyBusy", 1.0),
            }
            (!f.class.acknowledged()).then_some(message_id)
        }
    }
}
