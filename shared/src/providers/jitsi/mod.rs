//! Self-hosted Jitsi: Prosody's room and occupant events (`mod_event_sync_component`) and the
//! Jibri recording uploads, both authenticated with a static bearer token.
//!
//! Facts (`PROVIDERS.md`, self-hosted Jitsi): the module POSTs JSON to
//! `<api_prefix>/events/room/created`, `…/room/destroyed`, `…/occupant/joined`,
//! `…/occupant/left` with static `api_headers` (here `Authorization: Bearer <token>`). No
//! signature, no event id, no timestamp header. It retries on connection failures and 5xx
//! (3 times, 1 s apart) and drops a request after its 20 s timeout: answer fast, and never 4xx
//! a well-authenticated request.

use crate::auth;

/// The route name and `provider` attribute (`/webhooks/jitsi/events/…`, `/uploads/jitsi`).
pub const NAME: &str = "jitsi";

/// How this provider's events read back (the read API).
pub const READING: super::Reading = super::Reading {
    // Prosody's events name the room (its JID), never a meeting.
    reuses_session_ids: true,
    // Jibri's recordings name the room, not the meeting.
    files_without_session: true,
};

/// The secret's `jitsi` section: `tokens`, the bearer tokens Prosody and the Jibri hosts
/// send (several during a rotation).
pub const SECRET_SECTION: &[super::SectionKey] = &[("tokens", "JITSI_TOKENS", true)];

/// The variable holding the tokens.
pub const TOKENS_VAR: &str = "JITSI_TOKENS";

pub mod catalogue;

use http::HeaderMap;
use serde_json::{Map, Value};

use super::{Interpretation, NotAnEvent, Provider, Refused};
use crate::config::{ConfigError, Env};
use crate::facts::{EventFacts, Interpreted, ParticipantFacts, Presence};
use crate::jobs::{LinkPolicy, MAX_TIME_MS};
use crate::lenient;

/// The four events `mod_event_sync_component` sends, by their `event_name`.
pub const TYPES: [&str; 4] = [
    "muc-room-created",
    "muc-room-destroyed",
    "muc-occupant-joined",
    "muc-occupant-left",
];

/// Prosody's events behind the provider interface.
#[derive(Debug, Clone)]
pub struct JitsiProvider {
    tokens: auth::BearerTokens,
}

impl JitsiProvider {
    pub fn new(tokens: auth::BearerTokens) -> Self {
        Self { tokens }
    }

    /// Served when `JITSI_TOKENS` holds a token.
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        Ok(auth::BearerTokens::from_env(env, TOKENS_VAR)?.map(Self::new))
    }
}

impl Provider for JitsiProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The bearer token: the only credential the module can send (no signature exists).
    fn verify(
        &self,
        headers: &HeaderMap,
        _body: &[u8],
        _now_unix_secs: i64,
    ) -> Result<(), Refused> {
        self.tokens.check(headers)
    }

    /// Nothing signed, no timestamp: nothing to be stale against.
    fn tolerance_secs(&self) -> u64 {
        0
    }

    fn interpret(
        &self,
        body: &[u8],
        received_at_ms: i64,
        _links: LinkPolicy,
    ) -> Result<Interpretation, NotAnEvent> {
        interpret(body, received_at_ms)
    }
}

fn text(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.get(name)
        .and_then(lenient::string_of)
        .filter(|s| !s.trim().is_empty())
}

/// Unix seconds (integer, float or numeric string) as milliseconds, saturating.
fn secs_ms(map: &Map<String, Value>, name: &str) -> Option<i64> {
    let secs = match map.get(name)? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    secs.is_finite()
        .then(|| ((secs * 1000.0) as i64).clamp(0, MAX_TIME_MS))
}

/// The room's identity in the room index: the MUC JID (unique per deployment), else its name.
pub fn room_key(room: &str) -> String {
    format!("{NAME}:{room}")
}

/// Whether an occupant is a machine: Jibri's recorder or a transcriber (Jigasi). Prosody
/// filters only `focus`; these arrive like people. Read from the JID's user or domain label
/// (`recorder@recorder.meet.example.com`, `transcriber@recorder.…`) or the display name.
pub fn bot_role(jid: Option<&str>, name: Option<&str>) -> Option<&'static str> {
    let bare = jid.map(|j| j.split('/').next().unwrap_or(j).to_ascii_lowercase());
    let (user, domain) = match bare.as_deref().and_then(|b| b.split_once('@')) {
        Some((u, d)) => (u.to_owned(), d.to_owned()),
        None => (bare.clone().unwrap_or_default(), String::new()),
    };
    let name = name.map(str::to_ascii_lowercase).unwrap_or_default();
    for role in ["transcriber", "recorder"] {
        if user == role || name == role {
            return Some(role);
        }
    }
    (domain.split('.').next() == Some("recorder")).then_some("recorder")
}

/// Reads a Prosody event by path, leniently: keys may be absent, an empty list may arrive as
/// `{}`, a field of another type is absent. A body without `event_name` is stored with the
/// type `unknown`, with the reason noted.
pub fn interpret(body: &[u8], received_at_ms: i64) -> Result<Interpretation, NotAnEvent> {
    let value: Value = serde_json::from_slice(body).map_err(|_| NotAnEvent("not_json"))?;
    let Value::Object(event) = value else {
        return Err(NotAnEvent("not_an_object"));
    };
    let (event_type, data_error) = match text(&event, "event_name") {
        Some(t) => (t, None),
        None => (
            "unknown".to_owned(),
            Some("event_name is absent".to_owned()),
        ),
    };
    let empty = Map::new();
    let occupant = match event.get("occupant") {
        Some(Value::Object(o)) => Some(o),
        _ => None,
    };
    let o = occupant.unwrap_or(&empty);
    let own_time = match event_type.as_str() {
        "muc-room-created" => secs_ms(&event, "created_at"),
        "muc-room-destroyed" => secs_ms(&event, "destroyed_at"),
        "muc-occupant-joined" => secs_ms(o, "joined_at"),
        "muc-occupant-left" => secs_ms(o, "left_at"),
        _ => None,
    };
    let participant = occupant.map(|o| {
        let jid = text(o, "occupant_jid");
        let name = text(o, "name");
        ParticipantFacts {
            role: bot_role(jid.as_deref(), name.as_deref()).map(str::to_owned),
            participant_id: jid,
            user_id: text(o, "id"),
            name,
            moderator: None,
        }
    });
    let room = text(&event, "room_name");
    let room_id = text(&event, "room_jid").or_else(|| room.clone());
    let facts = EventFacts {
        event_id: None,
        // A move into or out of a breakout room arrives as a leave and a join (the module
        // sends no reason): attendance joins them up.
        presence: match event_type.as_str() {
            "muc-room-created" => Some(Presence::SessionStarted),
            "muc-room-destroyed" => Some(Presence::SessionEnded),
            "muc-occupant-joined" => Some(Presence::Joined),
            "muc-occupant-left" => Some(Presence::Left),
            _ => None,
        },
        file_failure: false,
        // A breakout's events name the main room (PROVIDERS.md): one room, one timeline.
        room_key: room_id.as_deref().map(room_key),
        room,
        // Prosody names no meeting: a room's events are one timeline, under its JID (each
        // life of the room runs from muc-room-created to muc-room-destroyed within it).
        session_id: room_id,
        tenant: None,
        account: None,
        occurred_at_ms: Some(own_time.unwrap_or(received_at_ms)),
        participant,
        data_error,
        event_type,
    };
    Ok(Interpretation::Event(Box::new(Interpreted {
        facts,
        files: Ok(Vec::new()),
    })))
}

#[cfg(test)]
mod tests;
