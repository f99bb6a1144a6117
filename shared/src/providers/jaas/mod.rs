//! 8x8 Jitsi as a Service: webhook model, signature verification, catalogue examples, and
//! the provider interface over them.

pub mod catalogue;
pub mod files;
pub use crate::lenient;
pub mod model;
pub mod signature;
pub mod token;

use http::HeaderMap;

pub use files::{file_plan, plan_job, plan_job_with};
pub use model::{EnvelopeError, EventData, EventType, JaasEvent};
pub use signature::{JaasVerifier, SignatureError, VerifiedBody};

use super::{Interpretation, NotAnEvent, Provider, Refused};
use crate::config::{ConfigError, Env};
use crate::facts::{EventFacts, Interpreted, ParticipantFacts, Presence};
use crate::jobs::LinkPolicy;

/// The route name and `provider` attribute.
pub const NAME: &str = "jaas";

/// How this provider's events read back (the read API).
pub const READING: super::Reading = super::Reading {
    reuses_session_ids: false,
    files_without_session: false,
};

/// The secret's `jaas` section (also read from the flat form of earlier deployments).
pub const SECRET_SECTION: &[super::SectionKey] = &[
    ("webhookSecrets", "JAAS_WEBHOOK_SECRETS", true),
    ("authorization", "JAAS_AUTHORIZATION", false),
    // The JaaS API key host-api signs join tokens with (`POST /v1/jaas/token`).
    ("appId", token::http::APP_ID_VAR, false),
    ("apiKeyId", token::http::KEY_ID_VAR, false),
    ("apiPrivateKey", token::http::PRIVATE_KEY_VAR, false),
];

/// The storage hosts that appear in the JaaS catalogue's links: Oracle Cloud object storage,
/// 8x8's own domain and S3 presigned URLs (rtcstats), in their virtual-hosted
/// (`<bucket>.s3.amazonaws.com`, `<bucket>.s3.<region>.amazonaws.com`) and path-style
/// (`s3.amazonaws.com`, `s3.<region>.amazonaws.com`) forms. Not `*.amazonaws.com`: that would
/// admit any load balancer, API Gateway or other endpoint anyone can create there.
pub const SOURCE_HOSTS: &[&str] = &[
    "objectstorage.*.oraclecloud.com",
    "8x8.vc",
    "*.8x8.vc",
    "*.s3.amazonaws.com",
    "*.s3.*.amazonaws.com",
    "s3.amazonaws.com",
    "s3.*.amazonaws.com",
];

/// The neutral facts of a JaaS event. Participant facts are read from the raw `data` by
/// path, so a sibling field of the wrong type never costs them.
pub fn facts(event: &JaasEvent) -> EventFacts {
    let participant = match event.known_type() {
        Some(
            EventType::ParticipantJoined
            | EventType::ParticipantLeft
            | EventType::ParticipantJoinedLobby
            | EventType::ParticipantLeftLobby,
        ) => {
            let data = &event.raw_data;
            let text = |name: &str| data.get(name).and_then(lenient::string_of);
            Some(ParticipantFacts {
                participant_id: text("participantId").or_else(|| text("participantJid")),
                user_id: text("id"),
                name: text("name"),
                moderator: data.get("moderator").and_then(lenient::bool_of),
                role: None,
            })
        }
        _ => None,
    };
    EventFacts {
        event_id: event.idempotency_key.clone(),
        event_type: event.event_type.clone(),
        session_id: event.session_id.clone(),
        room: event.room().map(str::to_owned),
        room_key: event.fqn.clone(),
        tenant: event.app().map(str::to_owned),
        account: event.customer_id.clone(),
        occurred_at_ms: event.timestamp,
        presence: presence_of(event),
        participant,
        data_error: event.data_error.clone(),
        file_failure: false,
    }
}

/// What a JaaS event says about presence. A PARTICIPANT_LEFT with `disconnectReason`
/// `switch_room` is a move into or out of a breakout room, not a leave.
fn presence_of(event: &JaasEvent) -> Option<Presence> {
    Some(match event.known_type()? {
        EventType::RoomCreated => Presence::SessionStarted,
        EventType::RoomDestroyed => Presence::SessionEnded,
        EventType::ParticipantJoined => Presence::Joined,
        EventType::ParticipantLeft => {
            let reason = event
                .raw_data
                .get("disconnectReason")
                .and_then(lenient::string_of);
            if reason.as_deref() == Some("switch_room") {
                Presence::Moved
            } else {
                Presence::Left
            }
        }
        EventType::ParticipantJoinedLobby => Presence::LobbyJoined,
        EventType::ParticipantLeftLobby => Presence::LobbyLeft,
        _ => return None,
    })
}

/// JaaS behind the provider interface.
#[derive(Debug, Clone)]
pub struct JaasProvider {
    verifier: JaasVerifier,
}

impl JaasProvider {
    pub fn new(verifier: JaasVerifier) -> Self {
        Self { verifier }
    }

    /// Served when `JAAS_WEBHOOK_SECRETS` holds a secret (see [`JaasVerifier::from_env`]).
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let verifier = JaasVerifier::from_env(env)?;
        Ok(verifier.has_secrets().then(|| Self::new(verifier)))
    }
}

impl From<SignatureError> for Refused {
    fn from(e: SignatureError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl Provider for JaasProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8], now_unix_secs: i64) -> Result<(), Refused> {
        self.verifier.verify(headers, body, now_unix_secs)?;
        Ok(())
    }

    fn tolerance_secs(&self) -> u64 {
        self.verifier.tolerance().as_secs()
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

/// Reads a verified JaaS body into its facts and file plan.
pub fn interpret(
    body: &[u8],
    received_at_ms: i64,
    links: LinkPolicy,
) -> Result<Interpretation, NotAnEvent> {
    let event = JaasEvent::parse(body).map_err(|e| NotAnEvent(e.code()))?;
    let files = file_plan(&event, received_at_ms, links).map(|plan| plan.into_iter().collect());
    Ok(Interpretation::Event(Box::new(Interpreted {
        facts: facts(&event),
        files,
    })))
}
