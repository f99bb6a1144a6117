//! The local stand-in for the SQS event source mapping, against moto's SQS: records the handler
//! reports in `batchItemFailures` come back after the visibility timeout and reach the DLQ after
//! `maxReceiveCount` receives; the others are deleted once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::{emulator, unique};

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_redelivered_then_dead_lettered_and_successes_deleted() {
    let sqs = emulator().sqs();
    let (queue, dlq) = emulator().queue_with_dlq(1, 2).await;
    for body in ["good", "bad"] {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    let poller = tokio::spawn(hooksctl::stack::poller::run(
        sqs.clone(),
        queue.clone(),
        10,
        move |event: SqsEvent| {
            let log = Arc::clone(&log);
            async move {
                let mut response = SqsBatchResponse::default();
                for record in event.records {
                    let body = record.body.unwrap_or_default();
                    log.lock().expect("log").push(body.clone());
                    if body == "bad" {
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = record.message_id.unwrap_or_default();
                        response.batch_item_failures.push(failure);
                    }
                }
                response
            }
        },
    ));

    // The bad record is received twice (maxReceiveCount), then lands in the DLQ.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive dlq")
            .messages
            .unwrap_or_default();
        if !got.is_empty() {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "nothing reached the DLQ: {:?}",
            seen.lock()
        );
    };
    poller.abort();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body.as_deref(), Some("bad"));
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen.iter().filter(|b| *b == "good").count(), 1, "{seen:?}");
    assert_eq!(seen.iter().filter(|b| *b == "bad").count(), 2, "{seen:?}");
    let left = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("attrs")
        .attributes
        .unwrap_or_default();
    assert!(
        left.values().all(|v| v == "0"),
        "the good record was deleted, the bad one moved: {left:?}"
    );
}

/// The copier shortens a returned record's visibility with the receipt handle the poller hands
/// it, and reads the delivery count from `ApproximateReceiveCount`, as under the real event
/// source mapping: a record returned with a 1 s backoff comes back in seconds, not after the
/// queue's long visibility timeout.
#[tokio::test(flavor = "multi_thread")]
async fn records_carry_receipt_handles_and_receive_counts_for_the_retry_backoff() {
    let sqs = emulator().sqs();
    let queue = sqs
        .create_queue()
        .queue_name(unique("jobs"))
        .attributes(QueueAttributeName::VisibilityTimeout, "600")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    sqs.send_message()
        .queue_url(&queue)
        .message_body("job")
        .send()
        .await
        .expect("send");
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let log = Arc::clone(&seen);
    let (client, url) = (sqs.clone(), queue.clone());
    let poller = tokio::spawn(hooksctl::stack::poller::run(
        sqs.clone(),
        queue.clone(),
        10,
        move |event: SqsEvent| {
            let (log, client, url) = (Arc::clone(&log), client.clone(), url.clone());
            async move {
                let mut response = SqsBatchResponse::default();
                for record in event.records {
                    let count = record
                        .attributes
                        .get("ApproximateReceiveCount")
                        .cloned()
                        .unwrap_or_default();
                    log.lock()
                        .expect("log")
                        .push((count.clone(), Instant::now()));
                    if count == "1" {
                        client
                            .change_message_visibility()
                            .queue_url(&url)
                            .receipt_handle(record.receipt_handle.clone().expect("receipt"))
                            .visibility_timeout(1)
                            .send()
                            .await
                            .expect("change visibility");
                        let mut failure = BatchItemFailure::default();
                        failure.item_identifier = record.message_id.unwrap_or_default();
                        response.batch_item_failures.push(failure);
                    }
                }
                response
            }
        },
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().expect("log").len() < 2 {
        assert!(
            Instant::now() < deadline,
            "not redelivered: {:?}",
            seen.lock()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    poller.abort();
    let seen = seen.lock().expect("log").clone();
    assert_eq!(seen[0].0, "1");
    assert_eq!(seen[1].0, "2");
    assert!(seen[1].1 - seen[0].1 < Duration::from_secs(10));
}
