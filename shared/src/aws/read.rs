//! The read API's ports on DynamoDB and S3: the events table's `bySession` and `byRoom`
//! indexes ([`DynamoReadIndex`]), the copies table ([`DynamoCopyReader`], one
//! `BatchGetItem` per 100 jobs) and presigned GETs of our copies ([`S3Presigner`], computed
//! locally: no call).
//!
//! Reads ask only for the attributes the answers use (never the payload), so a page moves
//! fewer bytes than the items hold.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_s3::presigning::PresigningConfig;

use super::events::job_ids_of;
use crate::facts::{ParticipantFacts, Presence};
use crate::read::model::{CopyView, JobRef, Order, Page, Position, StoredEvent, TimeRange};
use crate::read::ports::{CopyStates, Presigner, ReadError, RoomIndex, SessionIndex};
use crate::schema::{EVENTS_BY_ROOM, EVENTS_BY_SESSION, copy_attr as c, event_attr as a};

type Item = HashMap<String, AttributeValue>;

fn failed<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(aws_sdk_dynamodb::error::SdkError<E>) -> ReadError {
    move |e| ReadError {
        operation,
        source: aws_sdk_dynamodb::error::DisplayErrorContext(e)
            .to_string()
            .into(),
    }
}

/// The events table's indexes.
#[derive(Debug, Clone)]
pub struct DynamoReadIndex {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoReadIndex {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// The attributes a read asks for (its projection; the read benchmark's projected floor asks
/// for the same).
pub const EVENT_FIELDS: [&str; 19] = [
    a::KEY,
    a::PROVIDER,
    a::EVENT_TYPE,
    a::TIMESTAMP,
    a::RECEIVED_AT,
    a::SESSION_ID,
    a::SESSION_SORT,
    a::ROOM_SORT,
    a::FQN,
    a::ROOM,
    a::APP_ID,
    a::PRESENCE,
    a::PARTICIPANT,
    a::JOB_ID,
    a::JOB_IDS,
    a::JOB_KINDS,
    a::CONFLICT_OF,
    a::DATA_ERROR,
    a::LINK_ERROR,
];

pub(crate) fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(crate) fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn participant_of(item: &Item) -> Option<ParticipantFacts> {
    let m = item.get(a::PARTICIPANT)?.as_m().ok()?;
    let t = |k: &str| m.get(k).and_then(|v| v.as_s().ok()).cloned();
    Some(ParticipantFacts {
        participant_id: t("participantId"),
        user_id: t("userId"),
        name: t("name"),
        moderator: m.get("moderator").and_then(|v| v.as_bool().ok()).copied(),
        role: t("role"),
    })
}

/// An events-table item in the read API's words; `sort` is the named index's sort key.
pub fn stored_event(item: &Item, sort_attr: &str) -> StoredEvent {
    let kinds: Vec<String> = item
        .get(a::JOB_KINDS)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default();
    let jobs = job_ids_of(item)
        .into_iter()
        .enumerate()
        .map(|(i, id)| JobRef {
            id,
            kind: kinds.get(i).cloned(),
        })
        .collect();
    let at_ms = number(item, a::TIMESTAMP).unwrap_or(0);
    StoredEvent {
        key: text(item, a::KEY).unwrap_or_default(),
        // Items stored before the provider seam are JaaS's.
        provider: text(item, a::PROVIDER).unwrap_or_else(|| "jaas".to_owned()),
        event_type: text(item, a::EVENT_TYPE).unwrap_or_default(),
        at_ms,
        received_at_ms: number(item, a::RECEIVED_AT).unwrap_or(at_ms),
        session_id: text(item, a::SESSION_ID),
        room_key: text(item, a::FQN),
        room: text(item, a::ROOM),
        tenant: text(item, a::APP_ID),
        presence: text(item, a::PRESENCE).and_then(|p| Presence::parse(&p)),
        participant: participant_of(item),
        jobs,
        conflict_of: text(item, a::CONFLICT_OF),
        data_error: text(item, a::DATA_ERROR),
        link_error: text(item, a::LINK_ERROR),
        sort: text(item, sort_attr).unwrap_or_default(),
    }
}

fn projection(
    q: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
    let mut names = Vec::new();
    let mut q = q;
    for (i, field) in EVENT_FIELDS.iter().enumerate() {
        let alias = format!("#f{i}");
        q = q.expression_attribute_names(&alias, *field);
        names.push(alias);
    }
    q.projection_expression(names.join(", "))
}

fn page_of(items: Vec<Item>, last: Option<Item>, sort_attr: &str) -> Page {
    Page {
        items: items.iter().map(|i| stored_event(i, sort_attr)).collect(),
        next: last.and_then(|k| {
            Some(Position {
                key: text(&k, a::KEY)?,
                sort: text(&k, sort_attr)?,
            })
        }),
    }
}

/// The index's start key of a position (table key, index keys).
fn start_key(hash_attr: &str, hash: &str, sort_attr: &str, p: &Position) -> Item {
    HashMap::from([
        (a::KEY.to_owned(), AttributeValue::S(p.key.clone())),
        (hash_attr.to_owned(), AttributeValue::S(hash.to_owned())),
        (sort_attr.to_owned(), AttributeValue::S(p.sort.clone())),
    ])
}

impl SessionIndex for DynamoReadIndex {
    async fn session_page(
        &self,
        session_id: &str,
        from_ms: Option<i64>,
        after: Option<&Position>,
    ) -> Result<Page, ReadError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EVENTS_BY_SESSION)
            .expression_attribute_names("#s", a::SESSION_ID)
            .expression_attribute_values(":s", AttributeValue::S(session_id.to_owned()))
            .set_exclusive_start_key(
                after.map(|p| start_key(a::SESSION_ID, session_id, a::SESSION_SORT, p)),
            );
        q = match from_ms {
            None => q.key_condition_expression("#s = :s"),
            Some(from) => q
                .key_condition_expression("#s = :s AND #t >= :from")
                .expression_attribute_names("#t", a::SESSION_SORT)
                .expression_attribute_values(
                    ":from",
                    AttributeValue::S(format!("{:013}", from.clamp(0, crate::jobs::MAX_TIME_MS))),
                ),
        };
        let out = projection(q)
            .send()
            .await
            .map_err(failed("Query(bySession)"))?;
        Ok(page_of(
            out.items.unwrap_or_default(),
            out.last_evaluated_key,
            a::SESSION_SORT,
        ))
    }
}

impl RoomIndex for DynamoReadIndex {
    async fn room_page(
        &self,
        room_key: &str,
        range: TimeRange,
        order: Order,
        after: Option<&Position>,
        limit: Option<u32>,
    ) -> Result<Page, ReadError> {
        let bound =
            |ms: i64| AttributeValue::S(format!("{:013}", ms.clamp(0, crate::jobs::MAX_TIME_MS)));
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EVENTS_BY_ROOM)
            .scan_index_forward(order == Order::OldestFirst)
            .expression_attribute_names("#r", a::ROOM_FQN)
            .expression_attribute_values(":r", AttributeValue::S(room_key.to_owned()))
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .set_exclusive_start_key(
                after.map(|p| start_key(a::ROOM_FQN, room_key, a::ROOM_SORT, p)),
            );
        // Sort keys are `<13-digit ms>#…`: `>= from` takes `from`'s millisecond, `< to`
        // leaves `to`'s out.
        let condition = match (range.from_ms, range.to_ms) {
            (None, None) => "#r = :r",
            (Some(from), None) => {
                q = q.expression_attribute_values(":from", bound(from));
                "#r = :r AND #t >= :from"
            }
            (None, Some(to)) => {
                q = q.expression_attribute_values(":to", bound(to));
                "#r = :r AND #t < :to"
            }
            (Some(from), Some(to)) => {
                // BETWEEN is inclusive: the last millisecond before `to` closes it.
                q = q
                    .expression_attribute_values(":from", bound(from))
                    .expression_attribute_values(
                        ":to",
                        AttributeValue::S(format!(
                            "{:013}#\u{10ffff}",
                            to.saturating_sub(1).clamp(0, crate::jobs::MAX_TIME_MS)
                        )),
                    );
                "#r = :r AND #t BETWEEN :from AND :to"
            }
        };
        if condition.contains("#t") {
            q = q.expression_attribute_names("#t", a::ROOM_SORT);
        }
        let out = projection(q.key_condition_expression(condition))
            .send()
            .await
            .map_err(failed("Query(byRoom)"))?;
        Ok(page_of(
            out.items.unwrap_or_default(),
            out.last_evaluated_key,
            a::ROOM_SORT,
        ))
    }
}

/// The copies table, read in batches.
#[derive(Debug, Clone)]
pub struct DynamoCopyReader {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoCopyReader {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// `BatchGetItem` takes at most 100 keys.
const BATCH: usize = 100;
/// Rounds of unprocessed keys before the read gives up (the caller retries).
const UNPROCESSED_ROUNDS: u32 = 5;

pub(crate) fn copy_view(item: &Item) -> CopyView {
    let t = |k: &str| text(item, k);
    let num = |k: &str| number(item, k);
    CopyView {
        state: t(c::STATE).unwrap_or_default(),
        permanent: item
            .get(c::PERMANENT)
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        reason: t(c::REASON),
        object_key: t(c::OBJECT_KEY),
        bytes: num(c::BYTES).and_then(|b| u64::try_from(b).ok()),
        sha256: t(c::SHA256),
        objects: num(c::OBJECTS).and_then(|o| u32::try_from(o).ok()),
        attempts: num(c::ATTEMPTS).and_then(|o| u32::try_from(o).ok()),
        completed_at_ms: num(c::COMPLETED_AT),
    }
}

impl CopyStates for DynamoCopyReader {
    async fn copy_states(
        &self,
        job_ids: &[String],
    ) -> Result<HashMap<String, CopyView>, ReadError> {
        let mut unique: Vec<&String> = job_ids.iter().collect();
        unique.sort();
        unique.dedup();
        let fields = [
            c::JOB_ID,
            c::STATE,
            c::PERMANENT,
            c::REASON,
            c::OBJECT_KEY,
            c::BYTES,
            c::SHA256,
            c::OBJECTS,
            c::ATTEMPTS,
            c::COMPLETED_AT,
        ];
        let mut out = HashMap::new();
        for chunk in unique.chunks(BATCH) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|id| HashMap::from([(c::JOB_ID.to_owned(), AttributeValue::S((*id).clone()))]))
                .collect();
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .projection_expression(
                    (0..fields.len())
                        .map(|i| format!("#c{i}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            for (i, f) in fields.iter().enumerate() {
                request = request.expression_attribute_names(format!("#c{i}"), *f);
            }
            let mut pending = Some(request.build().map_err(|e| ReadError {
                operation: "BatchGetItem(copies)",
                source: Box::new(e),
            })?);
            let mut rounds = 0;
            while let Some(request) = pending.take() {
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(failed("BatchGetItem(copies)"))?;
                for item in answer
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(id) = text(&item, c::JOB_ID) {
                        out.insert(id, copy_view(&item));
                    }
                }
                pending = answer
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty());
                rounds += 1;
                if pending.is_some() {
                    if rounds >= UNPROCESSED_ROUNDS {
                        return Err(ReadError {
                            operation: "BatchGetItem(copies)",
                            source: "keys left unprocessed (throttled)".into(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50 << rounds)).await;
                }
            }
        }
        Ok(out)
    }
}

/// Presigned GETs of the recordings bucket.
#[derive(Debug, Clone)]
pub struct S3Presigner {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Presigner {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl Presigner for S3Presigner {
    async fn presign_get(&self, key: &str, ttl_secs: u64) -> Result<String, ReadError> {
        let config =
            PresigningConfig::expires_in(Duration::from_secs(ttl_secs)).map_err(|e| ReadError {
                operation: "PresignGetObject",
                source: Box::new(e),
            })?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| ReadError {
                operation: "PresignGetObject",
                source: aws_sdk_s3::error::DisplayErrorContext(e).to_string().into(),
            })?;
        Ok(presigned.uri().to_owned())
    }
}
