//! Meeting events' adapters: the EventBridge bus, the SQS dead-letter queue, the tables'
//! stream records as Lambda delivers them (DynamoDB JSON), and, for the local stack, a reader
//! of the streams that hands the publisher the same records in the same shape as Lambda's
//! event source mapping does in AWS (so the one handler serves both).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;
use serde_json::{Value, json};

use super::read::{number, text};
use crate::config::{self, ConfigError, Env};
use crate::jobs::{FileAbout, RiskCause};
use crate::meeting_events::{
    BusError, Change, CopyChange, DeadLetters, EventBus, MeetingEvent, Outcome, PublishConfig,
    Publisher, PutFailure, RiskFlag, SOURCE, StreamRecord,
};
use crate::schema::copy_attr as c;

type Item = HashMap<String, AttributeValue>;

/// The publisher's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct MeetingEventsConfig {
    pub events_table: String,
    pub copies_table: String,
    pub bus_name: String,
    pub dead_letter_queue_url: String,
    pub publish: PublishConfig,
}

impl MeetingEventsConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let mut publish = PublishConfig::new(&config::required(env, "RECORDINGS_BUCKET")?);
        publish.park_after_ms =
            config::parsed_or::<i64>(env, "MEETING_EVENTS_PARK_AFTER_SECONDS", 3600)?
                .saturating_mul(1000);
        Ok(Self {
            events_table: config::required(env, "EVENTS_TABLE")?,
            copies_table: config::required(env, "COPIES_TABLE")?,
            bus_name: config::required(env, "EVENT_BUS_NAME")?,
            dead_letter_queue_url: config::required(env, "MEETING_EVENTS_DLQ_URL")?,
            publish,
        })
    }
}

/// PutEvents on one bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: &str) -> Self {
        Self {
            client,
            bus_name: bus_name.to_owned(),
        }
    }
}

/// Entry errors that a later call can get past.
fn retryable(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "InternalFailure" | "InternalException" | "ServiceUnavailable"
    )
}

impl EventBus for EventBridgeBus {
    async fn put(&self, events: &[MeetingEvent]) -> Result<Vec<Option<PutFailure>>, BusError> {
        let entries = events
            .iter()
            .map(|e| {
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(SOURCE)
                    .detail_type(e.detail_type)
                    .detail(e.detail.to_string())
                    .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                        e.time_ms,
                    ))
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| BusError {
                operation: "PutEvents",
                source: Box::new(e),
            })?;
        let results = out.entries();
        Ok((0..events.len())
            .map(|i| {
                let code = results
                    .get(i)
                    .and_then(|r| r.error_code())
                    .map(str::to_owned);
                // An answer with fewer results than entries took none of the missing ones.
                match (results.get(i), code) {
                    (None, _) => Some(PutFailure {
                        code: "NoResult".into(),
                        retryable: true,
                    }),
                    (Some(_), None) => None,
                    (Some(_), Some(code)) => Some(PutFailure {
                        retryable: retryable(&code),
                        code,
                    }),
                }
            })
            .collect())
    }
}

/// The dead-letter queue: each parked event whole, as JSON, with why it was parked.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: &str) -> Self {
        Self {
            client,
            queue_url: queue_url.to_owned(),
        }
    }
}

/// A parked event's message body.
pub fn parked_body(event: &MeetingEvent, why: &str) -> String {
    json!({
        "id": event.id,
        "detailType": event.detail_type,
        "timeMs": event.time_ms,
        "detail": event.detail,
        "why": why,
    })
    .to_string()
}

/// A parked event read back (for the redrive); `None` if the body is not one.
pub fn parked_event(body: &str) -> Option<MeetingEvent> {
    let v: Value = serde_json::from_str(body).ok()?;
    let detail_type = crate::meeting_events::DETAIL_TYPES
        .into_iter()
        .find(|t| v["detailType"] == *t)?;
    Some(MeetingEvent {
        id: v["id"].as_str()?.to_owned(),
        detail_type,
        time_ms: v["timeMs"].as_i64()?,
        detail: v["detail"].clone(),
    })
}

impl DeadLetters for SqsDeadLetters {
    async fn park(&self, event: &MeetingEvent, why: &str) -> Result<(), BusError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(parked_body(event, why))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BusError {
                operation: "SendMessage(meeting events DLQ)",
                source: Box::new(e),
            })
    }
}

/// The publisher as the Lambda and the local stack run it.
pub type MeetingEventsPublisher = Publisher<EventBridgeBus, SqsDeadLetters>;

/// One DynamoDB-JSON value (`{"S": "…"}`, `{"N": "…"}`, `{"M": {…}}`, …) as the SDK's.
pub fn attribute_of(v: &Value) -> Option<AttributeValue> {
    let (tag, inner) = v.as_object()?.iter().next()?;
    Some(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "L" => AttributeValue::L(inner.as_array()?.iter().filter_map(attribute_of).collect()),
        "M" => AttributeValue::M(item_of(inner)),
        // Binary values are not read by the publisher.
        _ => return None,
    })
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// A DynamoDB-JSON image as an SDK item (attributes it cannot read are left out).
pub fn item_of(image: &Value) -> Item {
    image
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), attribute_of(v)?)))
        .collect()
}

/// A copies-table image's change.
fn copy_change(new: &Item, old: Option<&Item>) -> CopyChange {
    CopyChange {
        job_id: text(new, c::JOB_ID).unwrap_or_default(),
        old_state: old.and_then(|o| text(o, c::STATE)),
        copy: super::read::copy_view(new),
        at_ms: number(new, c::COMPLETED_AT)
            .or_else(|| number(new, c::UPDATED_AT))
            .unwrap_or(0),
        // A value of the wrong shape costs the event's context, never the event.
        about: text(new, c::ABOUT).and_then(|a| serde_json::from_str::<FileAbout>(&a).ok()),
        at_risk: risk_flag(new),
        was_at_risk: old.is_some_and(|o| risk_flag(o).is_some()),
    }
}

/// The at-risk flag of a copies-table image (`aws::copies` writes it once per job).
fn risk_flag(item: &Item) -> Option<RiskFlag> {
    Some(RiskFlag {
        at_ms: number(item, c::AT_RISK_AT)?,
        // An unknown cause (a newer writer) still says the copy is at risk.
        cause: text(item, c::AT_RISK_CAUSE)
            .and_then(|t| RiskCause::parse(&t))
            .unwrap_or(RiskCause::LinkExpiring),
        reason: text(item, c::AT_RISK_REASON),
        link_expires_at_ms: number(item, c::LINK_EXPIRES_AT),
    })
}

/// Which table a stream record comes from, by its `eventSourceARN`
/// (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`).
fn table_of(arn: &str) -> Option<&str> {
    arn.split_once(":table/")?.1.split('/').next()
}

/// One record of Lambda's DynamoDB stream event, in the publisher's words.
pub fn stream_record(record: &Value, config: &MeetingEventsConfig) -> StreamRecord {
    let d = &record["dynamodb"];
    let id = d["SequenceNumber"]
        .as_str()
        .or_else(|| record["eventID"].as_str())
        .unwrap_or_default()
        .to_owned();
    let written_at_ms = d["ApproximateCreationDateTime"]
        .as_f64()
        .map_or(0, |s| (s * 1000.0) as i64);
    let name = record["eventName"].as_str().unwrap_or_default();
    let table = record["eventSourceARN"]
        .as_str()
        .and_then(table_of)
        .unwrap_or_default();
    let new = item_of(&d["NewImage"]);
    let change = if table == config.events_table && name == "INSERT" {
        Change::EventStored(Box::new(super::read::stored_event(&new, "")))
    } else if table == config.copies_table && matches!(name, "INSERT" | "MODIFY") {
        let old = d.get("OldImage").map(item_of);
        Change::CopyChanged(Box::new(copy_change(&new, old.as_ref())))
    } else {
        Change::Other
    };
    StreamRecord {
        id,
        written_at_ms,
        change,
    }
}

/// Handles Lambda's DynamoDB stream event: the answer is the partial batch response
/// (`batchItemFailures`: deliver again from that record).
pub async fn handle<B: EventBus, D: DeadLetters>(
    publisher: &Publisher<B, D>,
    config: &MeetingEventsConfig,
    event: &Value,
    now_ms: i64,
) -> Value {
    let records: Vec<StreamRecord> = event["Records"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| stream_record(r, config))
        .collect();
    let outcome: Outcome = publisher.publish(&records, now_ms).await;
    let failures: Vec<Value> = outcome
        .retry_from
        .iter()
        .map(|id| json!({"itemIdentifier": id}))
        .collect();
    json!({"batchItemFailures": failures})
}

/// A stream value as DynamoDB JSON.
fn stream_json(v: &StreamValue) -> Value {
    match v {
        StreamValue::S(s) => json!({"S": s}),
        StreamValue::N(n) => json!({"N": n}),
        StreamValue::Bool(b) => json!({"BOOL": b}),
        StreamValue::Null(_) => json!({"NULL": true}),
        StreamValue::Ss(s) => json!({"SS": s}),
        StreamValue::Ns(s) => json!({"NS": s}),
        StreamValue::L(l) => json!({"L": l.iter().map(stream_json).collect::<Vec<_>>()}),
        StreamValue::M(m) => json!({"M": image_json(m)}),
        _ => Value::Null,
    }
}

fn image_json(m: &HashMap<String, StreamValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), stream_json(v))).collect())
}

/// A record read from DynamoDB Streams in the shape Lambda delivers it.
pub fn lambda_record(r: &aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> Value {
    let d = r.dynamodb();
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventSourceARN": stream_arn,
        "dynamodb": {
            "SequenceNumber": d.and_then(|d| d.sequence_number()),
            "ApproximateCreationDateTime": d
                .and_then(|d| d.approximate_creation_date_time())
                .map(|t| t.as_secs_f64()),
            "NewImage": d.and_then(|d| d.new_image()).map(image_json),
            "OldImage": d.and_then(|d| d.old_image()).map(image_json),
        },
    })
}

/// The local stack's stand-in for Lambda's event source mappings: reads every shard of the
/// tables' streams from the start (a restart publishes again; ids make that harmless) and
/// hands each batch to [`handle`]; a batch answered with a failure is read again from that
/// record after `retry_pause`, as Lambda does.
pub async fn follow_streams<B: EventBus, D: DeadLetters>(
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arns: Vec<String>,
    publisher: &Publisher<B, D>,
    config: &MeetingEventsConfig,
    retry_pause: Duration,
) {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    // (stream, shard) → next iterator; shards are looked up again each round.
    let mut iterators: HashMap<(String, String), Option<String>> = HashMap::new();
    loop {
        for arn in &stream_arns {
            let Ok(described) = streams.describe_stream().stream_arn(arn).send().await else {
                continue;
            };
            let shards = described
                .stream_description()
                .map(|d| d.shards().to_vec())
                .unwrap_or_default();
            for shard in shards {
                let Some(shard_id) = shard.shard_id() else {
                    continue;
                };
                let slot = (arn.clone(), shard_id.to_owned());
                let iterator = match iterators.get(&slot) {
                    Some(Some(it)) => it.clone(),
                    Some(None) => continue, // closed shard, read to its end
                    None => match streams
                        .get_shard_iterator()
                        .stream_arn(arn)
                        .shard_id(shard_id)
                        .shard_iterator_type(ShardIteratorType::TrimHorizon)
                        .send()
                        .await
                    {
                        Ok(out) => match out.shard_iterator() {
                            Some(it) => it.to_owned(),
                            None => continue,
                        },
                        Err(_) => continue,
                    },
                };
                let Ok(page) = streams.get_records().shard_iterator(&iterator).send().await else {
                    // Iterators expire: start the shard again (ids make repeats harmless).
                    iterators.remove(&slot);
                    continue;
                };
                let records = page.records();
                if records.is_empty() {
                    iterators.insert(slot, page.next_shard_iterator().map(str::to_owned));
                    continue;
                }
                let event = json!({
                    "Records": records.iter().map(|r| lambda_record(r, arn)).collect::<Vec<_>>()
                });
                let answer = handle(publisher, config, &event, crate::respond::now_ms()).await;
                match answer["batchItemFailures"][0]["itemIdentifier"].as_str() {
                    None => {
                        iterators.insert(slot, page.next_shard_iterator().map(str::to_owned));
                    }
                    Some(from) => {
                        // Read again from the first unpublished record.
                        let again = streams
                            .get_shard_iterator()
                            .stream_arn(arn)
                            .shard_id(shard_id)
                            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                            .sequence_number(from)
                            .send()
                            .await
                            .ok()
                            .and_then(|o| o.shard_iterator().map(str::to_owned));
                        iterators.insert(slot, again.or(Some(iterator)));
                        tokio::time::sleep(retry_pause).await;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
