//! The provider seam: one module per meeting platform, each behind the same small interface.
//!
//! A provider verifies a raw request (headers, body bytes, now) and interprets a verified body
//! into [`crate::facts`]: the neutral facts and the files the event carries. Ingest, the
//! tables, the copy jobs, metrics and `hooksctl` know only that interface and the registry
//! that picks a provider by its route name (`/webhooks/{provider}`). A provider is served only
//! when its configuration (its section of the secret) is present; any other name is 404.

pub mod daily;
pub mod jaas;
pub mod jitsi;
pub mod videosdk;

use std::sync::Arc;

use http::HeaderMap;

use crate::config::{ConfigError, Env};
use crate::facts::Interpreted;
use crate::jobs::LinkPolicy;

/// A refused request: a short code (JSON error and metric dimension) and a message safe to
/// return (never a secret, a signature or the body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl Refused {
    pub fn new(code: &'static str, message: &str) -> Self {
        Self {
            code,
            message: message.to_owned(),
        }
    }
}

/// What a verified body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpretation {
    /// An event to store (and its files to copy).
    Event(Box<Interpreted>),
    /// A provider's connectivity test (Daily's `{"test":"test"}` on webhook creation):
    /// answered 200 at once, not stored.
    Probe,
}

/// A verified body that is not an event of this provider: quarantined as it came, with
/// this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnEvent(pub &'static str);

/// One meeting platform.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The route name and the `provider` attribute of everything stored (`jaas`, `daily`).
    fn name(&self) -> &'static str;

    /// Checks the request's signature (and second factor, when configured) over the raw
    /// bytes, in constant time.
    fn verify(&self, headers: &HeaderMap, body: &[u8], now_unix_secs: i64) -> Result<(), Refused>;

    /// How long a signed request stays acceptable (must be shorter than the dedup retention).
    fn tolerance_secs(&self) -> u64;

    /// Reads a verified body. Pure: `received_at_ms` only stands in for a missing event time.
    fn interpret(
        &self,
        body: &[u8],
        received_at_ms: i64,
        links: LinkPolicy,
    ) -> Result<Interpretation, NotAnEvent>;
}

/// The providers this deployment serves, by route name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: Vec<Arc<dyn Provider>>,
}

impl Registry {
    pub fn new(providers: Vec<Arc<dyn Provider>>) -> Self {
        Self { providers }
    }

    /// Every provider whose configuration `env` holds: JaaS with `JAAS_WEBHOOK_SECRETS`,
    /// Daily with `DAILY_WEBHOOK_SECRETS`, VideoSDK with `VIDEOSDK_PUBLIC_KEYS`, self-hosted Jitsi
    /// with `JITSI_TOKENS`.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        if let Some(p) = jaas::JaasProvider::from_env(env)? {
            providers.push(Arc::new(p));
        }
        if let Some(p) = daily::DailyProvider::from_env(env)? {
            providers.push(Arc::new(p));
        }
        if let Some(p) = videosdk::VideoSdkProvider::from_env(env)? {
            providers.push(Arc::new(p));
        }
        if let Some(p) = jitsi::JitsiProvider::from_env(env)? {
            providers.push(Arc::new(p));
        }
        Ok(Self { providers })
    }

    pub fn get(&self, name: &str) -> Option<&dyn Provider> {
        self.providers
            .iter()
            .find(|p| p.name() == name)
            .map(|p| p.as_ref())
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.providers.iter().map(|p| p.name()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// The longest signature tolerance of any served provider.
    pub fn max_tolerance_secs(&self) -> u64 {
        self.providers
            .iter()
            .map(|p| p.tolerance_secs())
            .max()
            .unwrap_or(0)
    }
}

/// Where a provider's files may be downloaded from: the variable that lists its host
/// patterns, and the patterns when it is unset.
#[derive(Debug, Clone, Copy)]
pub struct SourceHosts {
    pub provider: &'static str,
    pub var: &'static str,
    pub defaults: &'static [&'static str],
}

/// Every provider's download hosts.
pub const SOURCE_HOSTS: &[SourceHosts] = &[
    SourceHosts {
        provider: jaas::NAME,
        var: "ALLOWED_SOURCE_HOSTS",
        defaults: jaas::SOURCE_HOSTS,
    },
    SourceHosts {
        provider: daily::NAME,
        var: "DAILY_SOURCE_HOSTS",
        defaults: daily::SOURCE_HOSTS,
    },
    SourceHosts {
        provider: videosdk::NAME,
        var: "VIDEOSDK_SOURCE_HOSTS",
        defaults: videosdk::SOURCE_HOSTS,
    },
];

/// A key of a provider's section in the secret: its name there, the variable it is laid
/// over as, and whether it is a list (a JSON array of strings, joined with `,`).
pub type SectionKey = (&'static str, &'static str, bool);

/// Every section of the secret: each provider's, by provider name, and the read API's
/// callers' tokens (`readApi`).
pub const SECRET_SECTIONS: &[(&str, &[SectionKey])] = &[
    (jaas::NAME, jaas::SECRET_SECTION),
    (daily::NAME, daily::SECRET_SECTION),
    (videosdk::NAME, videosdk::SECRET_SECTION),
    (jitsi::NAME, jitsi::SECRET_SECTION),
    ("readApi", crate::read::SECRET_SECTION),
];

/// How a provider's stored events read back (the read API), as its module says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// One session id for successive meetings (self-hosted Jitsi names the room only): the
    /// read API tells them apart by their start.
    pub reuses_session_ids: bool,
    /// File events may name no session (Daily's recordings): they belong to the room's
    /// session that started last before them.
    pub files_without_session: bool,
}

/// Every provider's [`Reading`], by provider name.
pub const READINGS: &[(&str, Reading)] = &[
    (jaas::NAME, jaas::READING),
    (daily::NAME, daily::READING),
    (videosdk::NAME, videosdk::READING),
    (jitsi::NAME, jitsi::READING),
];

fn reading(provider: &str) -> Reading {
    READINGS
        .iter()
        .find(|(name, _)| *name == provider)
        .map(|(_, r)| *r)
        .unwrap_or_default()
}

/// Whether `provider` uses one session id for successive meetings ([`Reading`]).
pub fn reuses_session_ids(provider: &str) -> bool {
    reading(provider).reuses_session_ids
}

/// Whether `provider`'s file events may name no session ([`Reading`]).
pub fn files_without_session(provider: &str) -> bool {
    reading(provider).files_without_session
}

/// The names every provider module answers to, served or not (dedup namespaces).
pub const ALL: &[&str] = &["jaas", "daily", "videosdk", "jitsi"];

/// Resolves provider objects for the copier: each to its own provider's API, when that
/// provider's API credentials are configured.
#[derive(Debug, Clone, Default)]
pub struct Resolvers {
    pub daily: Option<daily::api::DailyApi>,
}

impl Resolvers {
    /// Daily's API client when `DAILY_API_KEY` is set ([`daily::api::DailyApi::from_env`]).
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self {
            daily: daily::api::DailyApi::from_env(env)?,
        })
    }
}

impl crate::facts::SourceResolver for Resolvers {
    fn resolve<'a>(
        &'a self,
        provider: &'a str,
        object: &'a crate::facts::ProviderObject,
    ) -> futures::future::BoxFuture<
        'a,
        Result<crate::facts::ResolvedLink, crate::facts::ResolveError>,
    > {
        match (provider, &self.daily) {
            (daily::NAME, Some(api)) => api.resolve(provider, object),
            _ => crate::facts::NoObjects.resolve(provider, object),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::facts::Presence;
    use crate::jobs::LinkPolicy;

    use super::Interpretation;

    fn presence(interpreted: Result<Interpretation, super::NotAnEvent>) -> Option<Presence> {
        match interpreted {
            Ok(Interpretation::Event(e)) => e.facts.presence,
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn every_provider_says_who_is_present_in_the_same_words() {
        let jaas = |t: &str| {
            let body = super::jaas::catalogue::example(t).body;
            presence(super::jaas::interpret(
                body.as_bytes(),
                0,
                LinkPolicy::HttpsOnly,
            ))
        };
        assert_eq!(jaas("ROOM_CREATED"), Some(Presence::SessionStarted));
        assert_eq!(jaas("PARTICIPANT_JOINED"), Some(Presence::Joined));
        assert_eq!(jaas("PARTICIPANT_LEFT"), Some(Presence::Left));
        assert_eq!(
            jaas("PARTICIPANT_JOINED_LOBBY"),
            Some(Presence::LobbyJoined)
        );
        assert_eq!(jaas("PARTICIPANT_LEFT_LOBBY"), Some(Presence::LobbyLeft));
        assert_eq!(jaas("ROOM_DESTROYED"), Some(Presence::SessionEnded));
        assert_eq!(jaas("RECORDING_UPLOADED"), None);
        // A move into or out of a breakout room is not a leave.
        let switched = super::jaas::catalogue::example("PARTICIPANT_LEFT")
            .body
            .replace("\"left\"", "\"switch_room\"");
        assert!(switched.contains("switch_room"));
        assert_eq!(
            presence(super::jaas::interpret(
                switched.as_bytes(),
                0,
                LinkPolicy::HttpsOnly
            )),
            Some(Presence::Moved)
        );

        let daily = |t: &str| {
            let body = super::daily::catalogue::body(t, "id", 1.0);
            presence(super::daily::interpret(body.as_bytes(), 0))
        };
        assert_eq!(daily("meeting.started"), Some(Presence::SessionStarted));
        assert_eq!(daily("participant.joined"), Some(Presence::Joined));
        assert_eq!(daily("participant.left"), Some(Presence::Left));
        assert_eq!(
            daily("waiting-participant.joined"),
            Some(Presence::LobbyJoined)
        );
        assert_eq!(daily("waiting-participant.left"), Some(Presence::LobbyLeft));
        assert_eq!(daily("meeting.ended"), Some(Presence::SessionEnded));

        let videosdk = |t: &str| {
            let body = super::videosdk::catalogue::body_with(t, "https://cdn.videosdk.live/x.mp4");
            presence(super::videosdk::interpret(
                body.as_bytes(),
                0,
                LinkPolicy::HttpsOnly,
            ))
        };
        assert_eq!(videosdk("session-started"), Some(Presence::SessionStarted));
        assert_eq!(videosdk("participant-joined"), Some(Presence::Joined));
        assert_eq!(videosdk("participant-left"), Some(Presence::Left));
        assert_eq!(videosdk("session-ended"), Some(Presence::SessionEnded));

        for (name, body) in super::jitsi::catalogue::examples() {
            let want = match name.split('-').nth(2) {
                Some("created") => Presence::SessionStarted,
                Some("destroyed") => Presence::SessionEnded,
                Some("joined") => Presence::Joined,
                _ => Presence::Left,
            };
            assert_eq!(
                presence(super::jitsi::interpret(body.as_bytes(), 0)),
                Some(want),
                "{name}"
            );
        }
        for p in Presence::ALL {
            assert_eq!(Presence::parse(p.as_str()), Some(p));
        }
    }
}
