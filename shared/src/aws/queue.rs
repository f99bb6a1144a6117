//! The jobs queue on SQS: [`JobQueue`] (ingest sends jobs) and [`Requeue`] (the copier delays
//! a returned record's next delivery and continues a job in a fresh message).

use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::copier::ports::{Requeue, RequeueError};
use crate::ingest::ports::{JobQueue, QueueError};
use crate::jobs::CopyJob;

/// SQS accepts visibility timeouts up to 12 hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 3600;
/// SQS accepts message delays up to 15 minutes.
const MAX_DELAY_SECS: u64 = 15 * 60;

/// One SQS queue.
#[derive(Debug, Clone)]
pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Sends `body` with the `jobId` attribute (for operators browsing the queue or the DLQ).
    async fn send(
        &self,
        job_id: &str,
        body: String,
        delay: Duration,
    ) -> Result<(), crate::copier::ports::BoxError> {
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(job_id)
            .build()
            .map_err(super::boxed)?;
        let mut req = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("jobId", attribute);
        if !delay.is_zero() {
            req = req.delay_seconds(delay.as_secs().min(MAX_DELAY_SECS) as i32);
        }
        req.send().await.map_err(super::boxed)?;
        Ok(())
    }
}

impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, job: &CopyJob) -> Result<(), QueueError> {
        self.send(&job.job_id, job.to_json(), Duration::ZERO)
            .await
            .map_err(|source| QueueError { source })
    }
}

impl Requeue for SqsJobQueue {
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), RequeueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(delay.as_secs().min(MAX_VISIBILITY_SECS) as i32)
            .send()
            .await
            .map_err(|e| RequeueError {
                operation: "ChangeMessageVisibility",
                source: super::boxed(e),
            })?;
        Ok(())
    }

    async fn hold(&self, receipt_handle: &str, hold: Duration) -> Result<(), RequeueError> {
        self.retry_after(receipt_handle, hold).await
    }

    async fn continue_job(
        &self,
        job_id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), RequeueError> {
        self.send(job_id, body.to_owned(), delay)
            .await
            .map_err(|source| RequeueError {
                operation: "SendMessage",
                source,
            })
    }
}
