//! Publishing a batch of stream records: the events they mean go to the bus in entries of at
//! most [`MAX_ENTRIES`]; entries the bus refuses for a while are retried in the call; what
//! is still refused decides the batch's answer to the stream (redeliver from the first record
//! not fully published) or goes to the dead-letter queue (refused for good, or too old to wait).

use std::future::Future;
use std::time::Duration;

use tracing::{error, info, warn};

use super::{Change, MeetingEvent, events_of};
use crate::metrics;

/// PutEvents takes at most 10 entries.
pub const MAX_ENTRIES: usize = 10;

/// Why the bus could not be called at all (every entry of the call failed the same way).
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct BusError {
    pub operation: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Why the bus refused one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutFailure {
    /// The bus's error code (`ThrottlingException`, `InternalFailure`, …).
    pub code: String,
    /// Whether trying again can help (throttling, an internal failure).
    pub retryable: bool,
}

/// The event bus.
pub trait EventBus: Send + Sync {
    /// Puts up to [`MAX_ENTRIES`] events; per entry `None` (accepted) or why it was refused.
    fn put(
        &self,
        events: &[MeetingEvent],
    ) -> impl Future<Output = Result<Vec<Option<PutFailure>>, BusError>> + Send;
}

/// Where entries the bus will not take are kept for an operator's redrive.
pub trait DeadLetters: Send + Sync {
    fn park(
        &self,
        event: &MeetingEvent,
        why: &str,
    ) -> impl Future<Output = Result<(), BusError>> + Send;
}

/// One record of a table's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// The record's id in the batch (its sequence number): what the stream is told to
    /// redeliver from.
    pub id: String,
    /// When the change was written, Unix ms.
    pub written_at_ms: i64,
    pub change: Change,
}

/// How hard to try before handing a batch back to the stream.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// Where the copies are (`RecordingCopied.s3.bucket`).
    pub bucket: String,
    /// Calls per entry within one batch (the first and the retries).
    pub attempts: u32,
    /// Pause before the first retry; doubles after each.
    pub backoff: Duration,
    /// A record older than this whose events the bus still refuses is parked rather than
    /// handed back (the stream keeps records 24 hours; parking keeps them 14 days).
    pub park_after_ms: i64,
}

impl PublishConfig {
    pub fn new(bucket: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            attempts: 4,
            backoff: Duration::from_millis(100),
            park_after_ms: 3_600_000,
        }
    }
}

/// What a batch came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub published: usize,
    pub parked: usize,
    /// The first record not fully published: the stream delivers again from it (Lambda's
    /// `batchItemFailures`). `None`: the whole batch is done.
    pub retry_from: Option<String>,
}

/// Publishes stream records' events.
#[derive(Debug)]
pub struct Publisher<B, D> {
    bus: B,
    dead: D,
    config: PublishConfig,
}

impl<B: EventBus, D: DeadLetters> Publisher<B, D> {
    pub fn new(bus: B, dead: D, config: PublishConfig) -> Self {
        Self { bus, dead, config }
    }

    pub fn bus(&self) -> &B {
        &self.bus
    }

    /// The same publisher on a bus wrapped by `wrap` (the local stack's fault injection).
    pub fn map_bus<B2: EventBus>(self, wrap: impl FnOnce(B) -> B2) -> Publisher<B2, D> {
        Publisher {
            bus: wrap(self.bus),
            dead: self.dead,
            config: self.config,
        }
    }

    pub fn dead(&self) -> &D {
        &self.dead
    }

    /// Publishes the events of `records` (in stream order) at `now_ms`.
    pub async fn publish(&self, records: &[StreamRecord], now_ms: i64) -> Outcome {
        // (record index, event) for every event of the batch.
        let mut pending: Vec<(usize, MeetingEvent)> = records
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                events_of(&r.change, &self.config.bucket)
                    .into_iter()
                    .map(move |e| (i, e))
            })
            .collect();
        let mut outcome = Outcome::default();
        let mut unpublished: Vec<(usize, MeetingEvent, String)> = Vec::new();
        let mut pause = self.config.backoff;
        for attempt in 1..=self.config.attempts.max(1) {
            if pending.is_empty() {
                break;
            }
            if attempt > 1 {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
            let mut again = Vec::new();
            for chunk in pending.chunks(MAX_ENTRIES) {
                let events: Vec<MeetingEvent> = chunk.iter().map(|(_, e)| e.clone()).collect();
                match self.bus.put(&events).await {
                    Ok(results) => {
                        for ((i, event), failure) in chunk.iter().zip(results) {
                            match failure {
                                None => outcome.published += 1,
                                Some(f) if f.retryable => {
                                    again.push((*i, event.clone(), f.code));
                                }
                                Some(f) => unpublished.push((*i, event.clone(), f.code)),
                            }
                        }
                    }
                    Err(e) => {
                        warn!(error = %crate::telemetry::chain(&e), attempt, "PutEvents failed");
                        let why = e.operation.to_owned();
                        again.extend(chunk.iter().map(|(i, ev)| (*i, ev.clone(), why.clone())));
                    }
                }
            }
            if attempt == self.config.attempts.max(1) {
                // Out of attempts: still retryable, decided below with the record's age.
                for (i, event, code) in again {
                    unpublished.push((i, event, format!("retryable:{code}")));
                }
                pending = Vec::new();
            } else {
                pending = again.into_iter().map(|(i, e, _)| (i, e)).collect();
            }
        }
        let mut first_unpublished: Option<usize> = None;
        for (i, event, code) in unpublished {
            let retryable = code.starts_with("retryable:");
            let old = now_ms.saturating_sub(records[i].written_at_ms) >= self.config.park_after_ms;
            if retryable && !old {
                first_unpublished = Some(first_unpublished.map_or(i, |f| f.min(i)));
                continue;
            }
            match self.dead.park(&event, &code).await {
                Ok(()) => {
                    outcome.parked += 1;
                    error!(
                        id = %event.id,
                        detail_type = event.detail_type,
                        code = %code,
                        "meeting event parked in the dead-letter queue (hooksctl redrive-events)"
                    );
                }
                Err(e) => {
                    error!(error = %crate::telemetry::chain(&e), id = %event.id, "could not park the event; the stream will deliver it again");
                    first_unpublished = Some(first_unpublished.map_or(i, |f| f.min(i)));
                }
            }
        }
        outcome.retry_from = first_unpublished.map(|i| records[i].id.clone());
        metrics::count("MeetingEventsPublished", outcome.published as f64);
        if outcome.parked > 0 {
            metrics::count("MeetingEventsParked", outcome.parked as f64);
        }
        if let Some(from) = &outcome.retry_from {
            warn!(retry_from = %from, published = outcome.published, "the bus refused events; the stream delivers the batch again");
        } else if outcome.published > 0 {
            info!(published = outcome.published, "meeting events published");
        }
        outcome
    }

    /// Publishes parked events again (an operator's redrive): per event, whether the bus took it.
    pub async fn redrive(&self, events: &[MeetingEvent]) -> Result<Vec<bool>, BusError> {
        let mut taken = Vec::with_capacity(events.len());
        for chunk in events.chunks(MAX_ENTRIES) {
            let results = self.bus.put(chunk).await?;
            taken.extend(results.into_iter().map(|f| f.is_none()));
        }
        Ok(taken)
    }
}
