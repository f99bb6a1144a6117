//! The SQS event source mapping stand-in: long-polls the jobs queue, hands batches to the
//! copier's handler as an `SqsEvent`, deletes exactly the records the handler did not report in
//! `batchItemFailures`, and leaves the others to reappear after the visibility timeout, so the
//! queue's redrive policy moves a job that keeps failing to the DLQ, as in AWS.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};

/// Pulls batches forever; `handler` gets each batch.
pub async fn run<F, Fut>(sqs: aws_sdk_sqs::Client, queue_url: String, batch_size: i32, handler: F)
where
    F: Fn(SqsEvent) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(batch_size)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(r) => r.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let receipts: HashMap<String, String> = messages
            .iter()
            .filter_map(|m| Some((m.message_id.clone()?, m.receipt_handle.clone()?)))
            .collect();
        let event = meeting_hooks::aws::queue::lambda_event(&messages, &queue_url);
        let response = handler(event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        let entries: Vec<_> = receipts
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .filter_map(|(id, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(id)
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            })
            .collect();
        if !entries.is_empty()
            && let Err(e) = sqs
                .delete_message_batch()
                .queue_url(&queue_url)
                .set_entries(Some(entries))
                .send()
                .await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "delete failed; messages will be redelivered");
        }
    }
}
