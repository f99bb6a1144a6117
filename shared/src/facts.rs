//! The provider-neutral facts of one webhook event, and the files it asks us to keep.
//!
//! Every provider module interprets its own payloads into these types; ingest, the events
//! table, the copy jobs, metrics and `hooksctl` work on them only. The one port a provider
//! implements for the copier ([`SourceResolver`]: turning a provider object into a download
//! link at copy time) is declared here, below both, so neither imports the other.

use serde::{Deserialize, Serialize};

use crate::jobs::{FileKind, FileMeta, Link, MissingLink};

/// What one event says, in words every provider shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFacts {
    /// The provider's own id of this event (JaaS `idempotencyKey`, Daily `id`), if it sends
    /// one. Ingest namespaces it per provider; without one the body's SHA-256 is the key.
    pub event_id: Option<String>,
    /// As sent.
    pub event_type: String,
    /// The meeting session the event belongs to.
    pub session_id: Option<String>,
    /// The room's name as the provider shows it.
    pub room: Option<String>,
    /// The room's identity across tenants (JaaS `fqn`), the key of the room index.
    pub room_key: Option<String>,
    /// The provider account the room belongs to (JaaS app id).
    pub tenant: Option<String>,
    /// The customer of the provider account, where the provider says (JaaS `customerId`).
    pub account: Option<String>,
    /// Event time, Unix ms, when the event says.
    pub occurred_at_ms: Option<i64>,
    /// What the event says about who is present: the session's start and end, a
    /// participant's join, leave, move between rooms, and lobby (waiting-room) entry and exit.
    /// Attendance is computed from these alone, never from a provider's fields.
    pub presence: Option<Presence>,
    pub participant: Option<ParticipantFacts>,
    /// Set when a known type's payload did not fit its documented shape (stored as sent).
    pub data_error: Option<String>,
    /// The provider reports that a file it was making failed (Daily `recording.error`):
    /// counted and alarmed, as a file will be missing.
    pub file_failure: bool,
}

impl EventFacts {
    /// The event opens or closes a session: it lists the session under its room.
    pub fn is_session_boundary(&self) -> bool {
        matches!(
            self.presence,
            Some(Presence::SessionStarted | Presence::SessionEnded)
        )
    }
}

/// Presence, in words every provider shares (stored as the event's `presence` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Presence {
    SessionStarted,
    /// A participant came in (a join into a breakout room included).
    Joined,
    /// A participant went from one room of the meeting to another (JaaS `switch_room`): they
    /// stay present.
    Moved,
    Left,
    /// A participant entered the lobby (waiting room).
    LobbyJoined,
    LobbyLeft,
    SessionEnded,
}

impl Presence {
    pub const ALL: [Presence; 7] = [
        Self::SessionStarted,
        Self::Joined,
        Self::Moved,
        Self::Left,
        Self::LobbyJoined,
        Self::LobbyLeft,
        Self::SessionEnded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionStarted => "session-started",
            Self::Joined => "joined",
            Self::Moved => "moved",
            Self::Left => "left",
            Self::LobbyJoined => "lobby-joined",
            Self::LobbyLeft => "lobby-left",
            Self::SessionEnded => "session-ended",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// Who an event is about, where it is about a participant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParticipantFacts {
    /// The provider's id of this participant's presence in the meeting.
    pub participant_id: Option<String>,
    /// The provider's stable user id, when the provider has one.
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub moderator: Option<bool>,
    /// A machine taking part (`recorder`, `transcriber`): kept, but marked, so attendance can
    /// leave it out.
    pub role: Option<String>,
}

/// A provider object whose download link is fetched at copy time ([`SourceResolver`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderObject {
    /// What the provider calls it (`recording`, `transcript`).
    pub object: String,
    pub id: String,
    /// One part of a multi-file object (a raw-tracks recording's track).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

/// Where a file's bytes come from.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FileSource {
    /// A pre-authenticated link carried by the webhook (JaaS, VideoSDK).
    Url(Link),
    /// An object of the provider's API, resolved into a fresh link on every attempt (Daily).
    Object(ProviderObject),
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(link) => write!(f, "Url({})", link.redacted()),
            Self::Object(o) => write!(f, "Object({} {})", o.object, o.id),
        }
    }
}

impl std::fmt::Display for FileSource {
    /// Safe to log: a link shows scheme and host only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(link) => write!(f, "{link}"),
            Self::Object(o) => match &o.part {
                Some(part) => write!(f, "{} {} part {part}", o.object, o.id),
                None => write!(f, "{} {}", o.object, o.id),
            },
        }
    }
}

/// One file an event asks us to copy before its link dies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub kind: FileKind,
    pub source: FileSource,
    /// When the file stops being downloadable, Unix ms.
    pub expires_at_ms: i64,
    pub meta: FileMeta,
    /// The job id, when the provider names the file itself (a Daily recording id), so that
    /// every path that learns of the file (webhook, reconciliation) makes the same job.
    /// `None`: `<stored event key>/<kind>`.
    pub job_id: Option<String>,
}

/// An interpreted event: its facts and the files it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreted {
    pub facts: EventFacts,
    /// The files to copy; `Err` for a file event without a usable link (stored, counted,
    /// alarmed, nothing to copy).
    pub files: Result<Vec<FilePlan>, MissingLink>,
}

/// A fresh download link for a [`ProviderObject`]. The link is a credential: never stored,
/// never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLink {
    pub link: Link,
    /// Unix ms, when the provider says.
    pub expires_at_ms: Option<i64>,
}

/// Why an object could not be resolved. Never quotes a link or a key.
#[derive(Debug, thiserror::Error)]
#[error("{provider} could not resolve {object}: {reason}")]
pub struct ResolveError {
    pub provider: String,
    pub object: String,
    pub reason: String,
    /// Never worth retrying (the object does not exist, the provider is not configured).
    pub permanent: bool,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Turns a provider object into a download link, asked once per copy attempt. Object-safe
/// (the copier holds one behind an `Arc`, whatever provider serves it).
pub trait SourceResolver: Send + Sync + std::fmt::Debug {
    fn resolve<'a>(
        &'a self,
        provider: &'a str,
        object: &'a ProviderObject,
    ) -> futures::future::BoxFuture<'a, Result<ResolvedLink, ResolveError>>;
}

/// The resolver of a deployment where no provider API is configured: every object fails,
/// *retryably*. A job is only made for a provider that is served, so this is a
/// misconfiguration (say Daily's section without its `apiKey`); once it is fixed the retries
/// copy the file, and until then the job goes the way of every failing job (backoff, then the
/// dead-letter queue and its alarm), never acknowledged as failed for good.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObjects;

impl SourceResolver for NoObjects {
    fn resolve<'a>(
        &'a self,
        provider: &'a str,
        object: &'a ProviderObject,
    ) -> futures::future::BoxFuture<'a, Result<ResolvedLink, ResolveError>> {
        Box::pin(async move {
            Err(ResolveError {
                provider: provider.to_owned(),
                object: object.object.clone(),
                reason: "no API is configured for this provider (its secret section has no apiKey)"
                    .into(),
                permanent: false,
                source: None,
            })
        })
    }
}
