//! Meeting events for the host application's other systems, on an EventBridge bus:
//! `ParticipantJoined`, `ParticipantLeft`, `MeetingEnded` (from events stored by ingest) and
//! `RecordingCopied`, `RecordingAtRisk` (from copy states the copier and the Jibri uploads
//! record). Provider-neutral: they are built from the neutral facts, never a payload.
//!
//! **Why an outbox from the tables' streams.** Every fact is first made durable in DynamoDB
//! (that write is what the webhook's answer waits for); the table's stream then carries it to
//! the publisher, so publishing adds nothing to the webhook's answer time, and a publisher
//! that crashes, or a bus that refuses or throttles, leaves the records in the stream to be
//! read again. Nothing is published that was not stored, and nothing stored is skipped.
//!
//! **Delivery:** at least once. Each event carries a stable `detail.id` (the same fact always
//! gets the same id, whichever attempt publishes it): consumers deduplicate on it. Entries
//! the bus refuses for a while are retried in the call, then the stream delivers the batch
//! again from the first unpublished record. Entries refused for good (or still refused when
//! their record is older than [`PublishConfig::park_after_ms`]) are parked whole in a
//! dead-letter queue an operator redrives (`hooksctl redrive-events`), with the same ids.

pub mod publish;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::facts::Presence;
use crate::jobs::{FileAbout, RiskCause};
use crate::read::model::{CopyView, StoredEvent};
use crate::time::iso;

#[cfg(test)]
mod tests;

pub use publish::{
    BusError, DeadLetters, EventBus, Outcome, PublishConfig, Publisher, PutFailure, StreamRecord,
};

/// The `source` of every event.
pub const SOURCE: &str = "meeting-hooks";

/// The `detail-type`s, one JSON Schema each in `schemas/events/<type>.json`.
pub const PARTICIPANT_JOINED: &str = "ParticipantJoined";
pub const PARTICIPANT_LEFT: &str = "ParticipantLeft";
pub const MEETING_ENDED: &str = "MeetingEnded";
pub const RECORDING_COPIED: &str = "RecordingCopied";
pub const RECORDING_AT_RISK: &str = "RecordingAtRisk";
pub const DETAIL_TYPES: [&str; 5] = [
    PARTICIPANT_JOINED,
    PARTICIPANT_LEFT,
    MEETING_ENDED,
    RECORDING_COPIED,
    RECORDING_AT_RISK,
];

/// One event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingEvent {
    /// Stable: the same fact always has the same id (also `detail.id`).
    pub id: String,
    pub detail_type: &'static str,
    /// When it happened, Unix ms (the entry's `Time`).
    pub time_ms: i64,
    pub detail: Value,
}

/// A copy state as a stream record shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyChange {
    pub job_id: String,
    /// The state before the change (`None` for a new item).
    pub old_state: Option<String>,
    /// The state after it (the read API's view of a copy state).
    pub copy: CopyView,
    /// When the copy finished or failed, Unix ms.
    pub at_ms: i64,
    pub about: Option<FileAbout>,
    /// The at-risk flag the new image carries ([`crate::jobs::AtRisk`]), if any.
    pub at_risk: Option<RiskFlag>,
    /// Whether the old image carried one already (then it is not news).
    pub was_at_risk: bool,
}

/// A copy's at-risk flag as its item shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskFlag {
    pub cause: RiskCause,
    pub reason: Option<String>,
    /// When it was flagged, Unix ms.
    pub at_ms: i64,
    pub link_expires_at_ms: Option<i64>,
}

/// A change of one of the tables, as its stream carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An event stored for the first time (an insert into the events table).
    EventStored(Box<StoredEvent>),
    /// A copy state written (the copies table).
    CopyChanged(Box<CopyChange>),
    /// Anything else (an update of an event item, a removal by TTL): nothing to publish.
    Other,
}

/// A stable id for `detail_type` of the thing named `key` (a stored event's key, a job id).
pub fn stable_id(detail_type: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{detail_type}\n{key}").as_bytes());
    hex::encode(&digest[..16])
}

/// The events `change` means. `bucket` is where the copies are.
pub fn events_of(change: &Change, bucket: &str) -> Vec<MeetingEvent> {
    match change {
        Change::EventStored(event) => from_event(event).into_iter().collect(),
        Change::CopyChanged(copy) => from_copy(copy, bucket),
        Change::Other => Vec::new(),
    }
}

fn meeting_fields(
    id: &str,
    provider: &str,
    tenant: Option<&str>,
    room: Option<&str>,
    room_key: Option<&str>,
    session: Option<&str>,
    at_ms: i64,
) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), json!(id));
    m.insert("provider".into(), json!(provider));
    m.insert("tenant".into(), json!(tenant));
    m.insert("room".into(), json!(room));
    m.insert("roomKey".into(), json!(room_key));
    m.insert("sessionId".into(), json!(session));
    m.insert("occurredAt".into(), json!(iso(at_ms)));
    m
}

/// What names a stored event's fact: the session and the read API's fingerprint (type, time,
/// presence, who), so the same fact stored under two keys (a provider resending it with a new
/// id) gets one id, as the timeline marks it `duplicateOf`. Only where the fingerprint is
/// sure to tell facts apart: a presence event names its participant, or the meeting's end.
/// Otherwise (two anonymous participants joining in the same millisecond must stay two) the
/// stored key.
fn fact_key(e: &StoredEvent, detail_type: &str) -> String {
    let named = e.participant.as_ref().is_some_and(|p| {
        [&p.participant_id, &p.user_id]
            .into_iter()
            .any(|id| id.as_deref().is_some_and(|id| !id.is_empty()))
    });
    match &e.session_id {
        Some(session) if named || detail_type == MEETING_ENDED => {
            format!("{session}\u{1f}{}", crate::read::timeline::fingerprint(e))
        }
        _ => e.key.clone(),
    }
}

fn from_event(e: &StoredEvent) -> Option<MeetingEvent> {
    // A stored conflict (a key that came back with other content) repeats a published fact.
    if e.conflict_of.is_some() {
        return None;
    }
    let detail_type = match e.presence? {
        Presence::Joined => PARTICIPANT_JOINED,
        Presence::Left => PARTICIPANT_LEFT,
        Presence::SessionEnded => MEETING_ENDED,
        _ => return None,
    };
    let id = stable_id(detail_type, &fact_key(e, detail_type));
    let mut detail = meeting_fields(
        &id,
        &e.provider,
        e.tenant.as_deref(),
        e.room.as_deref(),
        e.room_key.as_deref(),
        e.session_id.as_deref(),
        e.at_ms,
    );
    detail.insert("eventKey".into(), json!(e.key));
    if detail_type != MEETING_ENDED {
        let p = e.participant.clone().unwrap_or_default();
        detail.insert(
            "participant".into(),
            json!({
                "participantId": p.participant_id,
                "userId": p.user_id,
                "name": p.name,
                "moderator": p.moderator,
                "role": p.role,
            }),
        );
    }
    Some(MeetingEvent {
        id,
        detail_type,
        time_ms: e.at_ms,
        detail: Value::Object(detail),
    })
}

/// What a copy state's change means: a new state (`copied`, failed for good), and a new
/// at-risk flag. One write never makes both, but nothing depends on that.
fn from_copy(c: &CopyChange, bucket: &str) -> Vec<MeetingEvent> {
    let mut out = Vec::new();
    if c.old_state.as_deref() != Some(c.copy.state.as_str()) {
        match c.copy.state.as_str() {
            "copied" => out.push(copied(c, bucket)),
            "failed" if c.copy.permanent => out.push(at_risk(
                c,
                stable_id(RECORDING_AT_RISK, &c.job_id),
                c.at_ms,
                "copy_failed",
                c.copy.reason.as_deref(),
                None,
            )),
            _ => {}
        }
    }
    if let Some(flag) = c.at_risk.as_ref().filter(|_| !c.was_at_risk) {
        // Its own id: the same job may also fail for good later, which is another fact.
        out.push(at_risk(
            c,
            stable_id(RECORDING_AT_RISK, &format!("{}\nflagged", c.job_id)),
            flag.at_ms,
            flag.cause.as_str(),
            flag.reason.as_deref(),
            flag.link_expires_at_ms,
        ));
    }
    out
}

/// The fields every copy event has.
fn copy_event(
    c: &CopyChange,
    id: String,
    detail_type: &'static str,
    at_ms: i64,
    more: Value,
) -> MeetingEvent {
    let about = c.about.clone().unwrap_or_default();
    let mut detail = meeting_fields(
        &id,
        &about.provider,
        about.tenant.as_deref(),
        about.room.as_deref(),
        about.room_key.as_deref(),
        about.session_id.as_deref(),
        at_ms,
    );
    detail.insert("jobId".into(), json!(c.job_id));
    detail.insert("kind".into(), json!(about.kind));
    detail.insert("eventKey".into(), json!(about.event_key));
    if let Value::Object(more) = more {
        detail.extend(more);
    }
    MeetingEvent {
        id,
        detail_type,
        time_ms: at_ms,
        detail: Value::Object(detail),
    }
}

fn copied(c: &CopyChange, bucket: &str) -> MeetingEvent {
    copy_event(
        c,
        stable_id(RECORDING_COPIED, &c.job_id),
        RECORDING_COPIED,
        c.at_ms,
        json!({
            "s3": {"bucket": bucket, "key": c.copy.object_key.clone().unwrap_or_default()},
            "bytes": c.copy.bytes.unwrap_or(0),
            "sha256": c.copy.sha256.clone().unwrap_or_default(),
            "objects": c.copy.objects.unwrap_or(1),
        }),
    )
}

fn at_risk(
    c: &CopyChange,
    id: String,
    at_ms: i64,
    cause: &str,
    reason: Option<&str>,
    link_expires_at_ms: Option<i64>,
) -> MeetingEvent {
    copy_event(
        c,
        id,
        RECORDING_AT_RISK,
        at_ms,
        json!({
            "cause": cause,
            "reason": reason,
            "linkExpiresAt": link_expires_at_ms.map(iso),
        }),
    )
}
