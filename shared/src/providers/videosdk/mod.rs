//! VideoSDK (videosdk.live): webhook verification and the lenient reading of its events.
//!
//! Facts (`PROVIDERS.md`, VideoSDK): body `{"webhookType": …, "data": {meetingId, sessionId,
//! …}}` (the server SDK's type also carries `type`, same value); `recording-stopped` adds
//! `filePath` and `fileUrl` (on `cdn.videosdk.live`). Header `videosdk-signature` = base64
//! RSA-SHA256 (PKCS#1 v1.5) over the **raw body**, verified with VideoSDK's public key,
//! configured as PEM (never fetched at request time). No event id and no timestamp: the
//! dedup key is the body's SHA-256 (namespaced), and a replay is caught only while the
//! event's dedup item is kept (`EVENT_RETENTION_DAYS`). Retry behaviour is not documented.

pub mod catalogue;
pub mod keys;

use http::HeaderMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Interpretation, NotAnEvent, Provider, Refused};
use crate::config::{self, ConfigError, Env};
use crate::facts::{EventFacts, FilePlan, FileSource, Interpreted, ParticipantFacts, Presence};
use crate::jobs::{
    FileKind, FileMeta, HOUR_MS, Link, LinkPolicy, LinkProblem, MAX_TIME_MS, MissingLink,
};
use crate::lenient;

/// The route name and `provider` attribute.
pub const NAME: &str = "videosdk";

/// Where VideoSDK's recording links point (`VIDEOSDK_SOURCE_HOSTS` overrides).
pub const SOURCE_HOSTS: &[&str] = &["cdn.videosdk.live"];

pub const SIGNATURE_HEADER: &str = "videosdk-signature";

/// How long a recording's `fileUrl` is assumed downloadable: VideoSDK does not document it,
/// so the product's general premise (a link dies within a day) holds.
pub const LINK_VALIDITY_MS: i64 = 24 * HOUR_MS;

/// How this provider's events read back (the read API).
pub const READING: super::Reading = super::Reading {
    reuses_session_ids: false,
    files_without_session: false,
};

/// The secret's `videosdk` section: `publicKeys`, one PEM or several (rotation).
pub const SECRET_SECTION: &[super::SectionKey] = &[("publicKeys", "VIDEOSDK_PUBLIC_KEYS", true)];

/// Checks `videosdk-signature` against each configured public key.
#[derive(Debug, Clone)]
pub struct VideoSdkVerifier {
    keys: Vec<keys::PublicKey>,
}

impl VideoSdkVerifier {
    pub fn new(keys: Vec<keys::PublicKey>) -> Self {
        Self { keys }
    }

    /// Verifies over the raw bytes. The RSA check (aws-lc) compares the decoded signature in
    /// constant time; every key is tried, so timing does not tell which one matched.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Refused> {
        let header = headers.get(SIGNATURE_HEADER).ok_or_else(|| {
            Refused::new("signature_missing", "missing videosdk-signature header")
        })?;
        let signature = header
            .to_str()
            .ok()
            .and_then(|s| keys::decode_b64(s.trim()))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Refused::new("signature_malformed", "videosdk-signature is not base64")
            })?;
        let mut ok = false;
        for key in &self.keys {
            ok |= key.verifies(body, &signature);
        }
        if ok {
            Ok(())
        } else {
            Err(Refused::new(
                "signature_mismatch",
                "signature does not match",
            ))
        }
    }
}

/// VideoSDK behind the provider interface.
#[derive(Debug, Clone)]
pub struct VideoSdkProvider {
    verifier: VideoSdkVerifier,
}

impl VideoSdkProvider {
    pub fn new(verifier: VideoSdkVerifier) -> Self {
        Self { verifier }
    }

    /// Served when `VIDEOSDK_PUBLIC_KEYS` holds a PEM public key (several PEM blocks, in one
    /// value or comma-separated, during a rotation). A value without a usable RSA key of at
    /// least 2048 bits is a configuration error that names no key material.
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let Some(raw) = config::secret_opt(env, "VIDEOSDK_PUBLIC_KEYS") else {
            return Ok(None);
        };
        use secrecy::ExposeSecret as _;
        let keys =
            keys::public_keys_in(raw.expose_secret()).map_err(|reason| ConfigError::Invalid {
                var: "VIDEOSDK_PUBLIC_KEYS",
                reason,
            })?;
        Ok(Some(Self::new(VideoSdkVerifier::new(keys))))
    }
}

impl Provider for VideoSdkProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], _now_unix_secs: i64) -> Result<(), Refused> {
        self.verifier.verify(headers, body)
    }

    /// No signed timestamp: nothing to be stale against.
    fn tolerance_secs(&self) -> u64 {
        0
    }

    fn interpret(
        &self,
        body: &[u8],
        received_at_ms: i64,
        links: LinkPolicy,
    ) -> Result<Interpretation, NotAnEvent> {
        interpret(body, received_at_ms, links)
    }
}

/// The documented types (PROVIDERS.md); the set is open-ended and others are stored.
pub const TYPES: [&str; 25] = [
    "recording-starting",
    "recording-started",
    "recording-stopping",
    "recording-stopped",
    "recording-failed",
    "participant-joined",
    "participant-left",
    "session-started",
    "session-ended",
    "livestream-starting",
    "livestream-started",
    "livestream-stopping",
    "livestream-stopped",
    "livestream-failed",
    "hls-starting",
    "hls-started",
    "hls-playable",
    "hls-stopping",
    "hls-stopped",
    "hls-failed",
    "agent-session-starting",
    "agent-session-started",
    "agent-session-stopping",
    "agent-session-stopped",
    "agent-session-failed",
];

fn text(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.get(name)
        .and_then(lenient::string_of)
        .filter(|s| !s.trim().is_empty())
}

fn time_ms(map: &Map<String, Value>, name: &str) -> Option<i64> {
    match map.get(name)? {
        Value::String(s) => lenient::iso8601_ms(s),
        // A number: seconds or milliseconds, told apart by size (ms since 2001 > 1e12).
        v => lenient::i64_of(v).map(|n| {
            if n.unsigned_abs() < 100_000_000_000 {
                n.saturating_mul(1000)
            } else {
                n
            }
            .clamp(0, MAX_TIME_MS)
        }),
    }
}

/// The room's identity in the room index: VideoSDK's `meetingId` is the room.
pub fn room_key(meeting_id: &str) -> String {
    format!("{NAME}:{meeting_id}")
}

/// Reads a verified VideoSDK body by path, leniently (trailing commas forgiven, a field of an
/// unexpected type is absent, never a refusal).
pub fn interpret(
    body: &[u8],
    received_at_ms: i64,
    links: LinkPolicy,
) -> Result<Interpretation, NotAnEvent> {
    let Some(value) = lenient::parse_relaxed(body) else {
        return Err(NotAnEvent("not_json"));
    };
    let Value::Object(envelope) = value else {
        return Err(NotAnEvent("not_an_object"));
    };
    let event_type = text(&envelope, "webhookType")
        .or_else(|| text(&envelope, "type"))
        .ok_or(NotAnEvent("missing_event_type"))?;
    let empty = Map::new();
    let (data, data_error) = match envelope.get("data") {
        Some(Value::Object(d)) => (d, None),
        None | Some(Value::Null) => (&empty, Some("data is absent".to_owned())),
        Some(_) => (&empty, Some("data is not an object".to_owned())),
    };
    let own_time = match event_type.as_str() {
        "session-ended" => time_ms(data, "end"),
        "session-started" => time_ms(data, "start"),
        _ => None,
    };
    let occurred_at_ms = own_time
        .or_else(|| time_ms(data, "timestamp"))
        .or_else(|| time_ms(&envelope, "timestamp"))
        .unwrap_or(received_at_ms);
    let room = text(data, "meetingId").or_else(|| text(data, "roomId"));
    let participant = event_type
        .starts_with("participant-")
        .then(|| ParticipantFacts {
            participant_id: text(data, "participantId"),
            user_id: None,
            name: text(data, "participantName"),
            moderator: None,
            role: None,
        });
    let facts = EventFacts {
        event_id: None,
        presence: match event_type.as_str() {
            "session-started" => Some(Presence::SessionStarted),
            "session-ended" => Some(Presence::SessionEnded),
            "participant-joined" => Some(Presence::Joined),
            "participant-left" => Some(Presence::Left),
            _ => None,
        },
        file_failure: event_type == "recording-failed",
        session_id: text(data, "sessionId"),
        room_key: room.as_deref().map(room_key),
        room,
        tenant: None,
        account: None,
        occurred_at_ms: Some(occurred_at_ms),
        participant,
        data_error,
        event_type,
    };
    let files = if facts.event_type == "recording-stopped" {
        recording_plan(data, &facts, links).map(|p| vec![p])
    } else {
        Ok(Vec::new())
    };
    Ok(Interpretation::Event(Box::new(Interpreted {
        facts,
        files,
    })))
}

/// The job id of a recording: from its `filePath` (else its link), so a re-sent
/// `recording-stopped` whose bytes differ still copies the file once.
pub fn recording_job_id(file_path: &str) -> String {
    format!(
        "{NAME}:recording:{}",
        hex::encode(&Sha256::digest(file_path.as_bytes())[..16])
    )
}

fn recording_plan(
    data: &Map<String, Value>,
    facts: &EventFacts,
    links: LinkPolicy,
) -> Result<FilePlan, MissingLink> {
    let missing = |problem| MissingLink {
        event_type: facts.event_type.clone(),
        field: "data.fileUrl",
        problem,
    };
    let url = match data.get("fileUrl") {
        None | Some(Value::Null) => return Err(missing(LinkProblem::Missing)),
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(_) => return Err(missing(LinkProblem::NotAString)),
    };
    links.check(&url).map_err(missing)?;
    let file_path = text(data, "filePath");
    let file_name = file_path
        .as_deref()
        .or(Some(url.as_str()))
        .and_then(|p| p.split(['?', '#']).next())
        .and_then(|p| p.rsplit('/').find(|s| !s.is_empty()))
        .filter(|n| n.contains('.'))
        .map(str::to_owned);
    let occurred = facts.occurred_at_ms.unwrap_or(0);
    Ok(FilePlan {
        kind: FileKind::Recording,
        job_id: Some(recording_job_id(file_path.as_deref().unwrap_or(&url))),
        source: FileSource::Url(Link::new(url)),
        expires_at_ms: occurred.saturating_add(LINK_VALIDITY_MS).min(MAX_TIME_MS),
        meta: FileMeta {
            file_name,
            duration_sec: data.get("duration").and_then(lenient::i64_of),
            ..FileMeta::default()
        },
    })
}

#[cfg(test)]
mod tests;
