//! Daily (daily.co): webhook verification, the lenient reading of its 32 event types, the file
//! plans of recordings and transcripts, and (in [`api`]) the REST client that resolves their
//! download links at copy time and lists recent recordings for reconciliation.
//!
//! Facts (`PROVIDERS.md`, Daily): envelope `version`, `type`, `id` (the dedup key), `payload`,
//! `event_ts` (seconds, often a float). Signature: `X-Webhook-Signature` = base64
//! HMAC-SHA256 over `<X-Webhook-Timestamp>.<raw body>` with the base64-decoded secret; with
//! `basicAuth` set Daily also sends `Authorization: Basic <value>`. Three failed or slow
//! deliveries disable the webhook: a correctly signed request is never answered 4xx.

pub mod api;
pub mod catalogue;

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Interpretation, NotAnEvent, Provider, Refused};
use crate::config::{self, ConfigError, Env};
use crate::facts::{
    EventFacts, FilePlan, FileSource, Interpreted, ParticipantFacts, Presence, ProviderObject,
};
use crate::jobs::{FileKind, FileMeta, HOUR_MS, LinkProblem, MAX_TIME_MS, MissingLink};
use crate::lenient;

/// The route name and `provider` attribute.
pub const NAME: &str = "daily";

/// Where Daily's access links point by default: S3 (virtual-hosted and path-style) and
/// Daily's own domain. Daily does not document the host (`DAILY_SOURCE_HOSTS` overrides).
pub const SOURCE_HOSTS: &[&str] = &[
    "*.s3.amazonaws.com",
    "*.s3.*.amazonaws.com",
    "s3.amazonaws.com",
    "s3.*.amazonaws.com",
    "daily.co",
    "*.daily.co",
];

/// How this provider's events read back (the read API).
pub const READING: super::Reading = super::Reading {
    reuses_session_ids: false,
    // recording.ready-to-download carries `room_name` and `start_ts`, no meeting id.
    files_without_session: true,
};

/// The secret's `daily` section.
pub const SECRET_SECTION: &[super::SectionKey] = &[
    ("webhookSecrets", "DAILY_WEBHOOK_SECRETS", true),
    ("basicAuth", "DAILY_BASIC_AUTH", false),
    ("apiKey", "DAILY_API_KEY", false),
];

pub const SIGNATURE_HEADER: &str = "x-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-webhook-timestamp";

/// How long a Daily recording stays downloadable when nothing says otherwise: Daily keeps
/// recordings in its storage (no 24 h link as with JaaS); a fresh access link is fetched per
/// attempt. Bounded so a job for a deleted recording still ends.
pub const RECORDING_AVAILABILITY_MS: i64 = 14 * 24 * HOUR_MS;

type HmacSha256 = Hmac<Sha256>;

/// One webhook secret, base64-decoded as Daily uses it.
type Key = SecretBox<Vec<u8>>;

/// Checks Daily's signature (several secrets during rotation) and, when configured, the
/// Basic second factor.
#[derive(Debug, Clone)]
pub struct DailyVerifier {
    keys: Vec<std::sync::Arc<Key>>,
    tolerance: Duration,
    basic_auth: Option<SecretString>,
}

impl DailyVerifier {
    /// A day, as for JaaS: retries within it are deduplicated, not refused.
    pub const DEFAULT_TOLERANCE_SECS: u64 = 24 * 3600;

    /// `secrets`: the webhook's `hmac` values as Daily shows them (base64). Errors name the
    /// position of a secret that is not base64, never its value.
    pub fn new(
        secrets: &[SecretString],
        tolerance: Duration,
        basic_auth: Option<SecretString>,
    ) -> Result<Self, String> {
        let keys = secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                decode_b64(s.expose_secret().trim())
                    .map(|k| std::sync::Arc::new(SecretBox::new(Box::new(k))))
                    .ok_or_else(|| format!("secret {} of the list is not base64", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys,
            tolerance,
            basic_auth,
        })
    }

    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Refused> {
        if let Some(expected) = &self.basic_auth {
            let got = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
                Refused::new("authorization_missing", "missing Authorization header")
            })?;
            let want = format!("Basic {}", expected.expose_secret());
            if !bool::from(got.as_bytes().ct_eq(want.as_bytes())) {
                return Err(Refused::new(
                    "authorization_mismatch",
                    "Authorization header does not match",
                ));
            }
        }
        let text = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let signature = text(SIGNATURE_HEADER).ok_or_else(|| {
            Refused::new("signature_missing", "missing X-Webhook-Signature header")
        })?;
        let timestamp = text(TIMESTAMP_HEADER).ok_or_else(|| {
            Refused::new("timestamp_missing", "missing X-Webhook-Timestamp header")
        })?;
        let signature = decode_b64(signature).ok_or_else(|| {
            Refused::new(
                "signature_malformed",
                "malformed X-Webhook-Signature header",
            )
        })?;
        let seconds = timestamp_secs(timestamp).ok_or_else(|| {
            Refused::new(
                "timestamp_malformed",
                "malformed X-Webhook-Timestamp header",
            )
        })?;
        if now.abs_diff(seconds) > self.tolerance.as_secs() {
            return Err(Refused::new(
                "signature_stale",
                "signature timestamp outside the accepted tolerance",
            ));
        }
        let mut matched = false;
        for key in &self.keys {
            let mut mac = HmacSha256::new_from_slice(key.expose_secret())
                .expect("HMAC accepts any key length");
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            // Constant time; no early exit so timing does not tell which secret matched.
            matched |= bool::from(mac.finalize().into_bytes().as_slice().ct_eq(&signature));
        }
        if matched {
            Ok(())
        } else {
            Err(Refused::new(
                "signature_mismatch",
                "signature does not match",
            ))
        }
    }
}

/// Standard base64 with or without padding (Daily shows its secrets padded).
fn decode_b64(raw: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD
        .decode(raw)
        .or_else(|_| STANDARD_NO_PAD.decode(raw))
        .ok()
}

/// The signature timestamp in seconds. Daily does not document its unit: a value past the
/// year 5138 in seconds is read as milliseconds. The signed text is the header as sent.
fn timestamp_secs(raw: &str) -> Option<i64> {
    let n: i64 = raw.parse().ok()?;
    Some(if n > 100_000_000_000 { n / 1000 } else { n })
}

/// The signature Daily would send for `body` at `timestamp` with `secret_b64` (tests, the
/// demo and the samples sign with it).
pub fn sign(secret_b64: &str, timestamp: &str, body: &[u8]) -> String {
    let key = decode_b64(secret_b64).unwrap_or_default();
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Daily behind the provider interface.
#[derive(Debug, Clone)]
pub struct DailyProvider {
    verifier: DailyVerifier,
}

impl DailyProvider {
    pub fn new(verifier: DailyVerifier) -> Self {
        Self { verifier }
    }

    /// Served when `DAILY_WEBHOOK_SECRETS` holds a secret (comma-separated, base64 as Daily
    /// shows them); `DAILY_BASIC_AUTH` (optional: the webhook's `basicAuth` value) and
    /// `DAILY_SIGNATURE_TOLERANCE_SECONDS` (default a day).
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let secrets = config::secret_list(env, "DAILY_WEBHOOK_SECRETS")?;
        if secrets.is_empty() {
            return Ok(None);
        }
        let tolerance: u64 = config::parsed_or(
            env,
            "DAILY_SIGNATURE_TOLERANCE_SECONDS",
            DailyVerifier::DEFAULT_TOLERANCE_SECS,
        )?;
        let verifier = DailyVerifier::new(
            &secrets,
            Duration::from_secs(tolerance),
            config::secret_opt(env, "DAILY_BASIC_AUTH"),
        )
        .map_err(|reason| ConfigError::Invalid {
            var: "DAILY_WEBHOOK_SECRETS",
            reason,
        })?;
        Ok(Some(Self::new(verifier)))
    }
}

impl Provider for DailyProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], now_unix_secs: i64) -> Result<(), Refused> {
        self.verifier.verify(headers, body, now_unix_secs)
    }

    fn tolerance_secs(&self) -> u64 {
        self.verifier.tolerance.as_secs()
    }

    fn interpret(
        &self,
        body: &[u8],
        received_at_ms: i64,
        _links: crate::jobs::LinkPolicy,
    ) -> Result<Interpretation, NotAnEvent> {
        interpret(body, received_at_ms)
    }
}

/// The documented types (PROVIDERS.md); others are stored as they came.
pub const TYPES: [&str; 32] = [
    "meeting.started",
    "meeting.ended",
    "participant.joined",
    "participant.left",
    "waiting-participant.joined",
    "waiting-participant.left",
    "recording.started",
    "recording.ready-to-download",
    "recording.error",
    "transcript.started",
    "transcript.ready-to-download",
    "transcript.error",
    "streaming.started",
    "streaming.updated",
    "streaming.ended",
    "streaming.error",
    "batch-processor.job-finished",
    "batch-processor.error",
    "dialout.connected",
    "dialout.answered",
    "dialout.stopped",
    "dialout.warning",
    "dialout.error",
    "dialin.ready",
    "dialin.connected",
    "dialin.stopped",
    "dialin.warning",
    "dialin.error",
    "calltransfer.triggered",
    "calltransfer.initiated",
    "calltransfer.answered",
    "calltransfer.completed",
];

/// Reads a verified Daily body. Every field is read by its path, leniently: a field of an
/// unexpected type is absent, never a refusal (the body is stored as it came).
pub fn interpret(body: &[u8], received_at_ms: i64) -> Result<Interpretation, NotAnEvent> {
    let value: Value = serde_json::from_slice(body).map_err(|_| NotAnEvent("not_json"))?;
    let Value::Object(envelope) = value else {
        return Err(NotAnEvent("not_an_object"));
    };
    let event_type = match envelope.get("type") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        _ if envelope.get("test").is_some() => return Ok(Interpretation::Probe),
        _ => return Err(NotAnEvent("missing_event_type")),
    };
    let empty = Map::new();
    let payload = envelope
        .get("payload")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let data_error = match envelope.get("payload") {
        Some(Value::Object(_)) => None,
        None | Some(Value::Null) => Some("payload is absent".to_owned()),
        Some(_) => Some("payload is not an object".to_owned()),
    };
    let facts = facts_of(&envelope, payload, event_type, data_error, received_at_ms);
    let files = match facts.event_type.as_str() {
        "recording.ready-to-download" => recording_plans(payload, facts.occurred_at_ms, &facts),
        "transcript.ready-to-download" => transcript_plan(payload, &facts).map(|p| vec![p]),
        _ => Ok(Vec::new()),
    };
    Ok(Interpretation::Event(Box::new(Interpreted {
        facts,
        files,
    })))
}

fn text(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.get(name)
        .and_then(lenient::string_of)
        .filter(|s| !s.is_empty())
}

/// Seconds (integer, float or numeric string) as milliseconds, saturating.
fn secs_ms(map: &Map<String, Value>, name: &str) -> Option<i64> {
    let v = map.get(name)?;
    let secs = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !secs.is_finite() {
        return None;
    }
    // `as` saturates on overflow; the clamp keeps every later sum in range.
    Some(((secs * 1000.0) as i64).clamp(0, MAX_TIME_MS))
}

/// The room's identity in the room index: namespaced, as Daily room names are per domain
/// and a JaaS `fqn` (`<app>/<room>`) never starts with `daily:`.
pub fn room_key(room: &str) -> String {
    format!("{NAME}:{room}")
}

fn facts_of(
    envelope: &Map<String, Value>,
    payload: &Map<String, Value>,
    event_type: String,
    data_error: Option<String>,
    received_at_ms: i64,
) -> EventFacts {
    let room = text(payload, "room").or_else(|| text(payload, "room_name"));
    let family = event_type.split('.').next().unwrap_or("");
    // The event's own time where the payload says, else when the webhook was sent.
    let own_time = match event_type.as_str() {
        "meeting.ended" => secs_ms(payload, "end_ts"),
        "participant.left" | "waiting-participant.left" => {
            match (secs_ms(payload, "joined_at"), secs_ms(payload, "duration")) {
                (Some(j), Some(d)) => Some(j.saturating_add(d).min(MAX_TIME_MS)),
                _ => None,
            }
        }
        "participant.joined" | "waiting-participant.joined" => secs_ms(payload, "joined_at"),
        "meeting.started" | "recording.started" | "transcript.started" => {
            secs_ms(payload, "start_ts")
        }
        _ => None,
    };
    let occurred_at_ms = own_time
        .or_else(|| secs_ms(envelope, "event_ts"))
        .or(Some(received_at_ms));
    let participant =
        matches!(family, "participant" | "waiting-participant").then(|| ParticipantFacts {
            participant_id: text(payload, "session_id"),
            user_id: text(payload, "user_id"),
            name: text(payload, "user_name"),
            moderator: payload.get("owner").and_then(lenient::bool_of),
            role: None,
        });
    // A participant's `session_id` is its own presence, not the meeting's.
    let session_id = text(payload, "meeting_id").or_else(|| text(payload, "mtg_session_id"));
    EventFacts {
        event_id: text(envelope, "id"),
        presence: match event_type.as_str() {
            "meeting.started" => Some(Presence::SessionStarted),
            "meeting.ended" => Some(Presence::SessionEnded),
            "participant.joined" => Some(Presence::Joined),
            "participant.left" => Some(Presence::Left),
            "waiting-participant.joined" => Some(Presence::LobbyJoined),
            "waiting-participant.left" => Some(Presence::LobbyLeft),
            _ => None,
        },
        file_failure: matches!(event_type.as_str(), "recording.error" | "transcript.error"),
        event_type,
        session_id,
        room_key: room.as_deref().map(room_key),
        room,
        tenant: None,
        account: None,
        occurred_at_ms,
        participant,
        data_error,
    }
}

fn missing(event_type: &str, field: &'static str, problem: LinkProblem) -> MissingLink {
    MissingLink {
        event_type: event_type.to_owned(),
        field,
        problem,
    }
}

/// The last path segment of a storage key, when it names a file (has an extension).
fn file_name_in(key: Option<&str>) -> Option<String> {
    let last = key?.rsplit('/').find(|s| !s.is_empty())?;
    last.contains('.').then(|| last.to_owned())
}

/// The job id of a recording (or one of its tracks): the same whoever learns of it, the
/// webhook or reconciliation, so there is one copy per recording.
pub fn recording_job_id(recording_id: &str, track_key: Option<&str>) -> String {
    match track_key {
        None => format!("{NAME}:recording:{recording_id}"),
        Some(k) => format!(
            "{NAME}:recording:{recording_id}/track-{}",
            hex::encode(&Sha256::digest(k.as_bytes())[..8])
        ),
    }
}

/// The files of a recording: one for `cloud` / `cloud-audio-only` (or an absent type), every
/// track of a `raw-tracks` recording. `recording` is a `recording.ready-to-download` payload
/// or an item of `GET /v1/recordings` (`id`, `s3key`): both make the same plans.
pub fn recording_plans(
    recording: &Map<String, Value>,
    event_time_ms: Option<i64>,
    facts: &EventFacts,
) -> Result<Vec<FilePlan>, MissingLink> {
    let ty = facts.event_type.as_str();
    let id = match recording
        .get("recording_id")
        .or_else(|| recording.get("id"))
    {
        None => return Err(missing(ty, "recording_id", LinkProblem::Missing)),
        Some(v) => lenient::string_of(v)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| missing(ty, "recording_id", LinkProblem::NotAString))?,
    };
    let start = secs_ms(recording, "start_ts")
        .or(event_time_ms)
        .unwrap_or(0);
    let expires_at_ms = start
        .saturating_add(RECORDING_AVAILABILITY_MS)
        .min(MAX_TIME_MS);
    let duration_sec = recording.get("duration").and_then(lenient::i64_of);
    let object = |part: Option<String>| ProviderObject {
        object: "recording".into(),
        id: id.clone(),
        part,
    };
    let s3_key = text(recording, "s3_key").or_else(|| text(recording, "s3key"));
    if text(recording, "type").as_deref() != Some("raw-tracks") {
        return Ok(vec![FilePlan {
            kind: FileKind::Recording,
            source: FileSource::Object(object(None)),
            expires_at_ms,
            meta: FileMeta {
                duration_sec,
                file_name: file_name_in(s3_key.as_deref()).or_else(|| Some(format!("{id}.mp4"))),
                recording_session_id: Some(id.clone()),
                ..FileMeta::default()
            },
            job_id: Some(recording_job_id(&id, None)),
        }]);
    }
    let tracks = match recording.get("tracks") {
        Some(Value::Array(t)) if !t.is_empty() => t,
        // "If role permissions have been removed, the tracks field may be null."
        _ => return Err(missing(ty, "tracks", LinkProblem::Missing)),
    };
    let mut plans = Vec::new();
    for track in tracks {
        let Some(track) = track.as_object() else {
            continue;
        };
        let Some(key) = text(track, "s3Key").or_else(|| text(track, "s3_key")) else {
            continue;
        };
        plans.push(FilePlan {
            kind: FileKind::Recording,
            source: FileSource::Object(object(Some(key.clone()))),
            expires_at_ms,
            meta: FileMeta {
                duration_sec,
                file_name: file_name_in(Some(&key)),
                file_size: track.get("size").and_then(lenient::i64_of),
                recording_session_id: Some(id.clone()),
                participant_id: text(track, "participantId")
                    .or_else(|| text(track, "participant_id")),
            },
            job_id: Some(recording_job_id(&id, Some(&key))),
        });
    }
    if plans.is_empty() {
        return Err(missing(ty, "tracks", LinkProblem::NotAString));
    }
    Ok(plans)
}

fn transcript_plan(
    payload: &Map<String, Value>,
    facts: &EventFacts,
) -> Result<FilePlan, MissingLink> {
    let ty = facts.event_type.as_str();
    let id = match payload.get("id") {
        None => return Err(missing(ty, "id", LinkProblem::Missing)),
        Some(v) => lenient::string_of(v)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| missing(ty, "id", LinkProblem::NotAString))?,
    };
    let time = facts.occurred_at_ms.unwrap_or(0);
    Ok(FilePlan {
        kind: FileKind::Transcription,
        source: FileSource::Object(ProviderObject {
            object: "transcript".into(),
            id: id.clone(),
            part: None,
        }),
        expires_at_ms: time
            .saturating_add(RECORDING_AVAILABILITY_MS)
            .min(MAX_TIME_MS),
        meta: FileMeta {
            duration_sec: payload.get("duration").and_then(lenient::i64_of),
            file_name: Some(format!("{id}.vtt")),
            ..FileMeta::default()
        },
        job_id: Some(format!("{NAME}:transcript:{id}")),
    })
}

#[cfg(test)]
mod tests;
