//! [`EventStore`] on DynamoDB (schema in [`crate::schema`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use sha2::{Digest, Sha256};

use crate::ingest::ports::{
    EventRecord, EventStore, ExistingEvent, ItemSize, JobState, LinkWatch, PendingCursor,
    PendingJob, PendingJobs, PendingPage, PutOutcome, QuarantineRecord, StoreError, StoredPayload,
    WatchPage, WatchedFile,
};
use crate::jobs::MAX_TIME_MS;
use crate::schema::{
    EVENTS_LINK_WATCH, EVENTS_PENDING_JOBS, JOB_PENDING_VALUE, LINK_WATCH_VALUE, event_attr as a,
    limits,
};

const SENDING: &str = "sending";
const QUEUED: &str = "queued";

/// The events table.
#[derive(Debug, Clone)]
pub struct DynamoEventStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoEventStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn err(
    operation: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> StoreError {
    move |source| StoreError { operation, source }
}

/// Sort key text that orders lexicographically by time: 13-digit zero-padded milliseconds.
/// Payload times outside 0..=[`MAX_TIME_MS`] are clamped so every key keeps 13 digits. A
/// tail that would push the key past DynamoDB's 1024-byte sort key limit is replaced by
/// `sha256:<hex>` of it: the order by time stays, and the full value is in its own attribute.
pub fn time_sort(ts_ms: i64, tail: &str) -> String {
    let ts = ts_ms.clamp(0, MAX_TIME_MS);
    if 14 + tail.len() <= limits::SORT_KEY_BYTES {
        format!("{ts:013}#{tail}")
    } else {
        format!(
            "{ts:013}#sha256:{}",
            hex::encode(Sha256::digest(tail.as_bytes()))
        )
    }
}

/// An item's size as DynamoDB counts it: attribute names plus values (strings as UTF-8,
/// binary as is, numbers as at most their decimal length + 1, maps and lists 3 bytes plus
/// 1 per element). Errs on the large side.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, v)| name.len().saturating_add(value_size(v)))
        .fold(0, usize::saturating_add)
}

fn value_size(v: &AttributeValue) -> usize {
    let sum = |sizes: &mut dyn Iterator<Item = usize>| sizes.fold(0, usize::saturating_add);
    match v {
        AttributeValue::S(t) => t.len(),
        AttributeValue::N(t) => t.len() + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => 3 + sum(&mut m.iter().map(|(k, v)| k.len() + value_size(v) + 1)),
        AttributeValue::L(l) => 3 + sum(&mut l.iter().map(|v| value_size(v) + 1)),
        AttributeValue::Ss(ss) => sum(&mut ss.iter().map(String::len)),
        AttributeValue::Ns(ns) => sum(&mut ns.iter().map(|n| n.len() + 1)),
        AttributeValue::Bs(bs) => sum(&mut bs.iter().map(|b| b.as_ref().len())),
        // Unknown future types: counted as the largest a value can be, never as fitting.
        _ => limits::ITEM_BYTES,
    }
}

/// The pending-job index's sort key: the lease end as 13-digit text, so that string order is
/// time order (index keys are strings in this schema).
pub fn lease_sort(lease_until_ms: i64) -> String {
    format!("{:013}", lease_until_ms.clamp(0, MAX_TIME_MS))
}

fn payload_attrs(item: &mut HashMap<String, AttributeValue>, payload: &StoredPayload, text: bool) {
    match payload {
        StoredPayload::Inline(bytes) => {
            let v = match (text, std::str::from_utf8(bytes)) {
                (true, Ok(t)) => s(t),
                _ => AttributeValue::B(bytes.clone().into()),
            };
            item.insert(a::PAYLOAD.into(), v);
        }
        StoredPayload::External(key) => {
            item.insert(a::PAYLOAD_REF.into(), s(key));
        }
    }
}

fn record_item(r: &EventRecord) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::new();
    item.insert(a::KEY.into(), s(&r.key));
    item.insert(a::KIND.into(), s("event"));
    item.insert(a::PROVIDER.into(), s(r.provider));
    item.insert(a::EVENT_TYPE.into(), s(&r.event_type));
    item.insert(a::TIMESTAMP.into(), n(r.timestamp_ms));
    item.insert(a::RECEIVED_AT.into(), n(r.received_at_ms));
    item.insert(a::PAYLOAD_SHA256.into(), s(&r.payload_sha256));
    item.insert(a::ATTEMPT.into(), s(&r.attempt));
    payload_attrs(&mut item, &r.payload, true);
    if let Some(session) = &r.session_id {
        item.insert(a::SESSION_ID.into(), s(session));
        item.insert(a::SESSION_SORT.into(), s(time_sort(r.timestamp_ms, &r.key)));
    }
    if let Some(fqn) = &r.room_key {
        item.insert(a::FQN.into(), s(fqn));
        if r.indexes_room_session {
            item.insert(a::ROOM_FQN.into(), s(fqn));
            item.insert(
                a::ROOM_SORT.into(),
                s(time_sort(
                    r.timestamp_ms,
                    r.session_id.as_deref().unwrap_or("-"),
                )),
            );
        }
    }
    if let Some(presence) = r.presence {
        item.insert(a::PRESENCE.into(), s(presence.as_str()));
    }
    if let Some(p) = &r.participant {
        let mut m = HashMap::new();
        for (name, value) in [
            ("participantId", &p.participant_id),
            ("userId", &p.user_id),
            ("name", &p.name),
            ("role", &p.role),
        ] {
            if let Some(v) = value {
                m.insert(name.to_owned(), s(v));
            }
        }
        if let Some(moderator) = p.moderator {
            m.insert("moderator".to_owned(), AttributeValue::Bool(moderator));
        }
        item.insert(a::PARTICIPANT.into(), AttributeValue::M(m));
    }
    if !r.job_kinds.is_empty() {
        item.insert(
            a::JOB_KINDS.into(),
            AttributeValue::L(r.job_kinds.iter().map(|k| s(k.as_str())).collect()),
        );
    }
    if let (Some(expiry), false) = (r.link_expires_at_ms, r.job_ids.is_empty()) {
        item.insert(a::LINK_WATCH.into(), s(LINK_WATCH_VALUE));
        item.insert(a::LINK_WATCH_SORT.into(), s(lease_sort(expiry)));
    }
    // One job: `jobId` (a string, as before); several (Daily's raw tracks): `jobIds`, a list.
    // Never joined into one string: a JaaS key may hold any character.
    let job_id = match r.job_ids.as_slice() {
        [one] => Some(one.clone()),
        [] => None,
        several => {
            item.insert(
                a::JOB_IDS.into(),
                AttributeValue::L(several.iter().map(|id| s(id.as_str())).collect()),
            );
            None
        }
    };
    for (name, value) in [
        (a::ROOM, &r.room),
        (a::APP_ID, &r.tenant),
        (a::CUSTOMER_ID, &r.account),
        (a::DATA_ERROR, &r.data_error),
        (a::LINK_ERROR, &r.link_error),
        (
            a::STORAGE_NOTES,
            &(!r.notes.is_empty()).then(|| r.notes.join(",")),
        ),
        (a::CONFLICT_OF, &r.conflict_of),
        (a::JOB_ID, &job_id),
    ] {
        if let Some(v) = value {
            item.insert(name.into(), s(v));
        }
    }
    match r.job_state {
        Some(JobState::Sending { lease_until_ms }) => {
            item.insert(a::JOB_STATE.into(), s(SENDING));
            item.insert(a::JOB_LEASE_UNTIL.into(), n(lease_until_ms));
            // In the pending-job index until marked queued.
            item.insert(a::JOB_PENDING.into(), s(JOB_PENDING_VALUE));
            item.insert(a::JOB_PENDING_SORT.into(), s(lease_sort(lease_until_ms)));
            if let Some(job) = &r.job_message {
                item.insert(a::JOB_MESSAGE.into(), s(job));
            }
        }
        Some(JobState::Queued) => {
            item.insert(a::JOB_STATE.into(), s(QUEUED));
        }
        None => {}
    }
    if let Some(exp) = r.expires_at_secs {
        item.insert(a::EXPIRES_AT.into(), n(exp));
    }
    item
}

/// Reads the job state of an item as stored.
/// The copy jobs a stored event made (`jobId`, or the `jobIds` list of one with several).
pub fn job_ids_of(item: &HashMap<String, AttributeValue>) -> Vec<String> {
    if let Some(id) = item.get(a::JOB_ID).and_then(|v| v.as_s().ok()) {
        return vec![id.clone()];
    }
    item.get(a::JOB_IDS)
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
        .unwrap_or_default()
}

pub fn job_state_of(item: &HashMap<String, AttributeValue>) -> Option<JobState> {
    match item
        .get(a::JOB_STATE)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
    {
        Some(QUEUED) => Some(JobState::Queued),
        Some(SENDING) => Some(JobState::Sending {
            lease_until_ms: item
                .get(a::JOB_LEASE_UNTIL)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }),
        _ => None,
    }
}

impl EventStore for DynamoEventStore {
    async fn put_if_absent(&self, record: &EventRecord) -> Result<PutOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(record)))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", a::KEY)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    let old = c.item().cloned().unwrap_or_default();
                    Ok(PutOutcome::Exists(ExistingEvent {
                        payload_sha256: old
                            .get(a::PAYLOAD_SHA256)
                            .and_then(|v| v.as_s().ok())
                            .cloned(),
                        job_state: job_state_of(&old),
                        attempt: old.get(a::ATTEMPT).and_then(|v| v.as_s().ok()).cloned(),
                    }))
                }
                _ => Err(err("PutItem")(super::boxed(e))),
            },
        }
    }

    async fn claim_enqueue(
        &self,
        key: &str,
        sha256: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(a::KEY, s(key))
            .update_expression("SET #lease = :until, #psort = :usort")
            .condition_expression("#state = :sending AND #lease < :now AND #sha = :sha")
            .expression_attribute_names("#lease", a::JOB_LEASE_UNTIL)
            .expression_attribute_names("#psort", a::JOB_PENDING_SORT)
            .expression_attribute_values(":usort", s(lease_sort(lease_until_ms)))
            .expression_attribute_names("#state", a::JOB_STATE)
            .expression_attribute_names("#sha", a::PAYLOAD_SHA256)
            .expression_attribute_values(":until", n(lease_until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":sending", s(SENDING))
            .expression_attribute_values(":sha", s(sha256))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(err("UpdateItem(claim)")(super::boxed(e))),
        }
    }

    async fn mark_queued(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(a::KEY, s(key))
            // Leaves the pending-job index; the job message is on the queue now.
            .update_expression("SET #state = :queued REMOVE #lease, #pending, #psort, #job")
            .expression_attribute_names("#state", a::JOB_STATE)
            .expression_attribute_names("#lease", a::JOB_LEASE_UNTIL)
            .expression_attribute_names("#pending", a::JOB_PENDING)
            .expression_attribute_names("#psort", a::JOB_PENDING_SORT)
            .expression_attribute_names("#job", a::JOB_MESSAGE)
            .expression_attribute_values(":queued", s(QUEUED))
            .send()
            .await
            .map_err(|e| err("UpdateItem(queued)")(super::boxed(e)))?;
        Ok(())
    }

    async fn release_enqueue(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(a::KEY, s(key))
            .update_expression("SET #lease = :zero, #psort = :zsort")
            .condition_expression("#state = :sending")
            .expression_attribute_names("#lease", a::JOB_LEASE_UNTIL)
            .expression_attribute_names("#psort", a::JOB_PENDING_SORT)
            .expression_attribute_names("#state", a::JOB_STATE)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":zsort", s(lease_sort(0)))
            .expression_attribute_values(":sending", s(SENDING))
            .send()
            .await
            .map_err(|e| err("UpdateItem(release)")(super::boxed(e)))?;
        Ok(())
    }

    async fn put_quarantine(&self, r: &QuarantineRecord) -> Result<(), StoreError> {
        let item = quarantine_item(r);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", a::KEY)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // The same bytes were quarantined before: already kept.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(err("PutItem(quarantine)")(super::boxed(e))),
        }
    }
}

fn quarantine_item(r: &QuarantineRecord) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::new();
    item.insert(a::KEY.into(), s(&r.key));
    item.insert(a::KIND.into(), s("quarantine"));
    item.insert(a::REASON.into(), s(&r.reason));
    item.insert(a::PROVIDER.into(), s(r.provider));
    item.insert(a::RECEIVED_AT.into(), n(r.received_at_ms));
    item.insert(a::PAYLOAD_SHA256.into(), s(&r.payload_sha256));
    payload_attrs(&mut item, &r.payload, false);
    item.insert(
        a::HEADERS.into(),
        AttributeValue::M(r.headers.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
    );
    if let Some(exp) = r.expires_at_secs {
        item.insert(a::EXPIRES_AT.into(), n(exp));
    }
    item
}

impl ItemSize for DynamoEventStore {
    fn event_bytes(&self, record: &EventRecord) -> usize {
        item_size(&record_item(record))
    }

    fn quarantine_bytes(&self, record: &QuarantineRecord) -> usize {
        item_size(&quarantine_item(record))
    }
}

impl DynamoEventStore {
    /// One page of a sparse index whose partition is `value` (of `hash`), items whose `sort`
    /// is below `before`, continuing after `after`. Every key of this table and its indexes is
    /// a string, so the cursor is text.
    #[allow(clippy::too_many_arguments)]
    async fn sparse_page(
        &self,
        operation: &'static str,
        index: &str,
        (hash, value): (&str, &str),
        sort: &str,
        before: String,
        limit: u32,
        after: Option<&PendingCursor>,
    ) -> Result<(Vec<HashMap<String, AttributeValue>>, Option<PendingCursor>), StoreError> {
        let start = after.map(|c| {
            c.0.iter()
                .map(|(k, v)| (k.clone(), s(v)))
                .collect::<HashMap<_, _>>()
        });
        let resp = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#p = :p AND #ps < :before")
            .expression_attribute_names("#p", hash)
            .expression_attribute_names("#ps", sort)
            .expression_attribute_values(":p", s(value))
            .expression_attribute_values(":before", s(before))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| err(operation)(super::boxed(e)))?;
        let next = resp.last_evaluated_key().map(|k| {
            PendingCursor(
                k.iter()
                    .filter_map(|(name, v)| Some((name.clone(), v.as_s().ok()?.clone())))
                    .collect(),
            )
        });
        Ok((resp.items.unwrap_or_default(), next))
    }
}

impl PendingJobs for DynamoEventStore {
    async fn expired(
        &self,
        now_ms: i64,
        limit: u32,
        after: Option<&PendingCursor>,
    ) -> Result<PendingPage, StoreError> {
        let (items, next) = self
            .sparse_page(
                "Query(pending jobs)",
                EVENTS_PENDING_JOBS,
                (a::JOB_PENDING, JOB_PENDING_VALUE),
                a::JOB_PENDING_SORT,
                lease_sort(now_ms),
                limit,
                after,
            )
            .await?;
        let text = |item: &HashMap<String, AttributeValue>, name: &str| {
            item.get(name).and_then(|v| v.as_s().ok()).cloned()
        };
        let jobs = items
            .iter()
            .filter_map(|item| {
                Some(PendingJob {
                    key: text(item, a::KEY)?,
                    payload_sha256: text(item, a::PAYLOAD_SHA256).unwrap_or_default(),
                    job_message: text(item, a::JOB_MESSAGE),
                    lease_until_ms: text(item, a::JOB_PENDING_SORT)
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0),
                })
            })
            .collect();
        Ok(PendingPage { jobs, next })
    }
}

impl LinkWatch for DynamoEventStore {
    async fn due(
        &self,
        before_ms: i64,
        limit: u32,
        after: Option<&PendingCursor>,
    ) -> Result<WatchPage, StoreError> {
        let (items, next) = self
            .sparse_page(
                "Query(link watch)",
                EVENTS_LINK_WATCH,
                (a::LINK_WATCH, LINK_WATCH_VALUE),
                a::LINK_WATCH_SORT,
                lease_sort(before_ms),
                limit,
                after,
            )
            .await?;
        let files = items
            .iter()
            .filter(|item| item.contains_key(a::KEY))
            .map(|item| WatchedFile {
                event: super::read::stored_event(item, a::LINK_WATCH_SORT),
                link_expires_at_ms: item
                    .get(a::LINK_WATCH_SORT)
                    .and_then(|v| v.as_s().ok())
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0),
            })
            .collect();
        Ok(WatchPage { files, next })
    }

    async fn unwatch(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(a::KEY, s(key))
            .update_expression("REMOVE #w, #ws")
            // Never recreate an item that expired meanwhile.
            .condition_expression("attribute_exists(#k)")
            .expression_attribute_names("#k", a::KEY)
            .expression_attribute_names("#w", a::LINK_WATCH)
            .expression_attribute_names("#ws", a::LINK_WATCH_SORT)
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
                {
                    Ok(())
                } else {
                    Err(err("UpdateItem(unwatch)")(super::boxed(e)))
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_sort_keys_keep_thirteen_digits_at_the_extremes() {
        assert_eq!(time_sort(i64::MIN, "k"), "0000000000000#k");
        assert_eq!(time_sort(-1, "k"), "0000000000000#k");
        assert_eq!(time_sort(i64::MAX, "k"), "9999999999999#k");
        assert_eq!(time_sort(1_600_000_000_000, "k"), "1600000000000#k");
        assert!(time_sort(1, "k") < time_sort(i64::MAX, "k"));
    }

    #[test]
    fn a_tail_too_long_for_a_sort_key_is_replaced_by_its_hash() {
        let fits = "k".repeat(1024 - 14);
        assert_eq!(time_sort(5, &fits).len(), 1024);
        assert!(time_sort(5, &fits).ends_with(&fits));
        let long = "k".repeat(1024 - 13);
        let key = time_sort(5, &long);
        assert!(key.len() <= limits::SORT_KEY_BYTES);
        assert!(key.starts_with("0000000000005#sha256:"), "{key}");
        assert_eq!(key, time_sort(5, &long), "stable");
        assert!(time_sort(4, &long) < time_sort(5, "a"), "time order kept");
    }

    #[test]
    fn item_size_counts_names_and_values_as_dynamodb_does() {
        let item = HashMap::from([
            ("ab".to_owned(), s("héllo")),
            ("n".to_owned(), n(12345)),
            ("b".to_owned(), AttributeValue::B(vec![0u8; 10].into())),
            (
                "m".to_owned(),
                AttributeValue::M(HashMap::from([("x".to_owned(), s("yz"))])),
            ),
        ]);
        // 2 + 6 | 1 + 6 | 1 + 10 | 1 + 3 + (1 + 2 + 1)
        assert_eq!(item_size(&item), 8 + 7 + 11 + 8);
    }
}
