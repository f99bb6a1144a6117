//! The jobs queue on SQS: [`JobQueue`] (ingest sends jobs) and [`Requeue`] (the copier delays
//! a returned record's next delivery and continues a job in a fresh message).

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{Message, MessageAttributeValue};

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

/// The event the SQS event source mapping hands the copier for `messages` received from the
/// queue at `queue_url` (the local stack's poller and the tests feed the handler this way).
pub fn lambda_event(messages: &[Message], queue_url: &str) -> SqsEvent {
    let arn = queue_arn(queue_url);
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.event_source = Some("aws:sqs".to_owned());
            record.event_source_arn = Some(arn.clone());
            record.aws_region = Some("us-east-1".to_owned());
            record.attributes = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
            record
        })
        .collect();
    event
}

/// `http://host/123456789012/name` → `arn:aws:sqs:us-east-1:123456789012:name`.
fn queue_arn(queue_url: &str) -> String {
    let mut parts = queue_url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or("queue");
    let account = parts.next().unwrap_or("000000000000");
    format!("arn:aws:sqs:us-east-1:{account}:{name}")
}
