//! `hooksctl redrive`: moves copy jobs from the dead-letter queue back to the jobs queue, after
//! the cause was fixed. Each message is sent to the queue first and deleted from the DLQ only
//! then, so a crash in between duplicates a job (harmless: the copier is exactly-once per job)
//! and never loses one. `--dry-run` lists what would move and leaves the DLQ as it was.

use aws_sdk_sqs::types::QueueAttributeName;
use meeting_hooks::jobs::decode_job;

use super::target::Target;

/// What a redrive did (or would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    pub moved: usize,
    /// Job ids (or message ids when the body is not a job) seen.
    pub jobs: Vec<String>,
}

/// Redrives up to `max` messages; `progress` is called after each one with (done, estimate).
pub async fn redrive(
    target: &Target,
    dry_run: bool,
    max: usize,
    mut progress: impl FnMut(usize, usize),
) -> anyhow::Result<RedriveReport> {
    let sqs = meeting_hooks::aws::sqs(&target.sdk);
    let dlq = target.dlq_url()?;
    let queue = target.queue_url()?;
    let estimate = sqs
        .get_queue_attributes()
        .queue_url(dlq)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()
        .and_then(|r| r.attributes)
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                .cloned()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0usize)
        .min(max);
    let mut report = RedriveReport::default();
    let mut held = Vec::new();
    while report.jobs.len() < max {
        let batch = sqs
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10.min((max - report.jobs.len()) as i32))
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "receive from DLQ: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let body = m.body.clone().unwrap_or_default();
            let id = decode_job(&body).map(|j| j.job_id).unwrap_or_else(|_| {
                format!("message {}", m.message_id.clone().unwrap_or_default())
            });
            report.jobs.push(id);
            if dry_run {
                held.extend(m.receipt_handle);
            } else {
                sqs.send_message()
                    .queue_url(queue)
                    .message_body(body)
                    .set_message_attributes(m.message_attributes.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "send to jobs queue: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(&e)
                        )
                    })?;
                if let Some(r) = &m.receipt_handle {
                    sqs.delete_message()
                        .queue_url(dlq)
                        .receipt_handle(r)
                        .send()
                        .await
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "delete from DLQ: {}",
                                aws_sdk_sqs::error::DisplayErrorContext(&e)
                            )
                        })?;
                }
                report.moved += 1;
            }
            progress(report.jobs.len(), estimate.max(report.jobs.len()));
        }
    }
    // A dry run gives every message back at once.
    for receipt in held {
        let _ = sqs
            .change_message_visibility()
            .queue_url(dlq)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
    }
    Ok(report)
}
