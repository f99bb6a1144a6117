//! [`JobQueue`] on SQS.

use crate::ingest::ports::{JobQueue, QueueError};
use crate::jobs::CopyJob;

/// Sends copy jobs to one SQS queue.
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
}

impl JobQueue for SqsJobQueue {
    async fn enqueue(&self, job: &CopyJob) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(job.to_json())
            .message_attributes(
                "jobId",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(&job.job_id)
                    .build()
                    .map_err(|e| QueueError {
                        source: super::boxed(e),
                    })?,
            )
            .send()
            .await
            .map_err(|e| QueueError {
                source: super::boxed(e),
            })?;
        Ok(())
    }
}
