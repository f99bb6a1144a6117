//! `hooksctl tail-events` (what a subscriber of the bus receives, from the local stack's
//! subscriber queue or any queue a rule targets) and `hooksctl redrive-events` (publish the
//! events parked in the dead-letter queue again, with their ids).

use std::io::Write;

use anyhow::Context;
use meeting_hooks::aws::meeting_events::{EventBridgeBus, parked_event};
use meeting_hooks::meeting_events::EventBus;

/// Prints each event a subscriber of `queue_url` receives, one JSON object per line, and
/// deletes it (as a subscriber does) unless `keep`. Stops when the queue is empty, unless
/// `follow`.
pub async fn tail(
    sdk: &aws_config::SdkConfig,
    queue_url: &str,
    follow: bool,
    keep: bool,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let sqs = meeting_hooks::aws::sqs(sdk);
    let mut printed = 0;
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(if follow { 10 } else { 1 })
            .send()
            .await
            .context("receive from the subscriber queue")?;
        let messages = got.messages();
        if messages.is_empty() && !follow {
            return Ok(printed);
        }
        for m in messages {
            let body = m.body().unwrap_or_default();
            let line = serde_json::from_str::<serde_json::Value>(body)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| body.to_owned());
            writeln!(out, "{line}")?;
            printed += 1;
            if !keep && let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .context("delete a received event")?;
            }
        }
    }
}

/// What a redrive did.
#[derive(Debug, Default)]
pub struct Redriven {
    pub published: usize,
    pub refused: usize,
    /// Messages that are no parked event (the stream mapping's failure records): left in place.
    pub other: usize,
}

/// Publishes the parked events of `dlq_url` on `bus` again; each one the bus takes is deleted.
pub async fn redrive(
    sdk: &aws_config::SdkConfig,
    dlq_url: &str,
    bus: &str,
) -> anyhow::Result<Redriven> {
    let sqs = meeting_hooks::aws::sqs(sdk);
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(sdk), bus);
    let mut done = Redriven::default();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await
            .context("receive from the meeting events' dead-letter queue")?;
        if got.messages().is_empty() {
            return Ok(done);
        }
        for m in got.messages() {
            let Some(event) = parked_event(m.body().unwrap_or_default()) else {
                done.other += 1;
                continue;
            };
            let taken = bus
                .put(std::slice::from_ref(&event))
                .await
                .context("PutEvents")?;
            if taken.first().is_some_and(Option::is_none) {
                done.published += 1;
                if let Some(handle) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(dlq_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .context("delete a redriven event")?;
                }
            } else {
                done.refused += 1;
            }
        }
        if done.published == 0 && done.refused + done.other > 0 {
            // Nothing moves: the rest stays parked (visible again in a minute).
            return Ok(done);
        }
    }
}
