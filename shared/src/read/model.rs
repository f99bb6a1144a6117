//! What the read API works on: stored events and copy states in our own words (no SDK
//! types), as the index adapters hand them over.

use crate::facts::{ParticipantFacts, Presence};

/// A copy job an event made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub id: String,
    /// `recording`, `transcription`, `chat`, … (`None` for items stored before kinds were).
    pub kind: Option<String>,
}

/// One stored event, as the read API needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredEvent {
    /// The stored key (`idempotencyKey`).
    pub key: String,
    pub provider: String,
    pub event_type: String,
    /// Event time, Unix ms (the receive time when the event has none).
    pub at_ms: i64,
    pub received_at_ms: i64,
    pub session_id: Option<String>,
    pub room_key: Option<String>,
    pub room: Option<String>,
    pub tenant: Option<String>,
    /// `None` for events that say nothing about presence (and for items stored before
    /// presence was recorded).
    pub presence: Option<Presence>,
    pub participant: Option<ParticipantFacts>,
    pub jobs: Vec<JobRef>,
    /// Set on a conflict copy: the key whose first delivery had other content.
    pub conflict_of: Option<String>,
    pub data_error: Option<String>,
    pub link_error: Option<String>,
    /// The index's sort key of the item (where a page may resume).
    pub sort: String,
}

/// Where a read resumes: just after this item of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub key: String,
    pub sort: String,
}

/// One page of an index, in the order asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<StoredEvent>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<Position>,
}

/// Event-time bounds of a room read, Unix ms: `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

/// Order of a room read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// The copy state of one job (copies table), without the copier's working fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyView {
    /// `pending` | `copying` | `copied` | `failed`.
    pub state: String,
    /// A failure that is never retried.
    pub permanent: bool,
    /// Why the last attempt failed (never a link or a secret: the copier writes it so).
    pub reason: Option<String>,
    pub object_key: Option<String>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    /// Objects the job wrote (screenshot sets write several).
    pub objects: Option<u32>,
    pub attempts: Option<u32>,
    pub completed_at_ms: Option<i64>,
}
