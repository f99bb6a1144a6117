//! Settings provisioning: JaaS POSTs `{"fqn":"<appId>/<room>"}` before **every** meeting and
//! starts the meeting open (no lobby, no passcode) if the answer is slow (about 3 s) or an
//! error. So this service always answers 200 with a validated document once the caller is
//! known and the request makes sense:
//!
//! 1. a cached answer within `SETTINGS_CACHE_TTL_SECONDS`, **0 by default**: the store is the
//!    authority, so an operator's change (a room locked, a passcode set) applies to the very
//!    next request; a TTL is an explicit trade of that freshness for latency, else
//! 2. one `BatchGetItem` (app defaults + room), resolved over the global default
//!    ([`resolve()`]), bounded by a short timeout, else, when storage fails or hangs,
//! 3. the last cached answer however old (*stale*), else
//! 4. the configured *fallback* (lobby on by default).
//!
//! Each answer is counted as `SettingsAnswers{Source=cache|store|stale|fallback}`; failures
//! are logged with the fqn and the error chain, never with a passcode.
//!
//! Refusals: 405 for a method other than POST, 401 when the caller check fails (same verifier
//! as webhook-ingest; which checks apply is [`CallerCheck`]), 400 with a reason for
//! a body that is not `{"fqn": "<appId>/<room>"}`, 403 for an appId this deployment does not
//! serve. The HTTP mapping lives in [`http`].

pub mod cache;
pub mod http;
pub mod model;
pub mod ports;
pub mod resolve;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use ::http::{HeaderMap, Method};
use serde_json::Value;
use tracing::{Span, error, instrument, warn};

use crate::config::{self, ConfigError, Env};
use crate::jaas::{JaasVerifier, SignatureError};
use crate::metrics;
use cache::AnswerCache;
pub use model::{AppId, Field, Fqn, Scope, Settings, SettingsError};
use ports::{SettingsStore, SettingsStoreError};
pub use resolve::{Resolved, resolve};

/// Configuration of the settings-provisioning function, read once at cold start.
#[derive(Debug, Clone)]
pub struct SettingsConfig {
    pub settings_table: String,
    /// The JaaS appIds this deployment answers for; any other gets 403.
    pub allowed_app_ids: HashSet<AppId>,
    pub verifier: JaasVerifier,
    pub cache_ttl: Duration,
    pub cache_max_entries: usize,
    /// Upper bound on one storage round trip, retries included.
    pub store_timeout: Duration,
    /// The lowest level of the resolution.
    pub global_default: Settings,
    /// Answered when storage fails and nothing is cached for the room.
    pub fallback: Settings,
}

impl SettingsConfig {
    /// Read through by default: a change is effective on the next request. The cache then only
    /// serves answers when the store fails or is slower than `SETTINGS_STORE_TIMEOUT_MS`.
    pub const DEFAULT_CACHE_TTL_SECS: u64 = 0;
    pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 10_000;
    /// JaaS waits about 3 s; one second for storage leaves room for a cold start.
    pub const DEFAULT_STORE_TIMEOUT_MS: u64 = 1_000;
    pub const DEFAULT_FALLBACK: &str = r#"{"lobbyEnabled":true}"#;

    /// Reads `SETTINGS_TABLE`, `ALLOWED_APP_IDS` (comma-separated), `JAAS_WEBHOOK_SECRETS`,
    /// `JAAS_AUTHORIZATION`, `SIGNATURE_TOLERANCE_SECONDS`, `SETTINGS_CACHE_TTL_SECONDS`
    /// (default 0: read through), `SETTINGS_CACHE_MAX_ENTRIES` (default 10000), `SETTINGS_STORE_TIMEOUT_MS`
    /// (default 1000), `SETTINGS_DEFAULT` (optional JSON), `SETTINGS_FALLBACK` (JSON, default
    /// `{"lobbyEnabled":true}`) and `ALLOW_INSECURE_NO_AUTH`.
    ///
    /// Refuses to start when neither a webhook secret nor `JAAS_AUTHORIZATION` is configured
    /// (anyone could then read every room's passcode) unless `ALLOW_INSECURE_NO_AUTH=true`.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let verifier = JaasVerifier::from_env(env)?;
        let insecure = config::flag(env, "ALLOW_INSECURE_NO_AUTH")?;
        if !verifier.has_secrets() && !verifier.has_authorization() && !insecure {
            return Err(ConfigError::Invalid {
                var: "JAAS_AUTHORIZATION",
                reason: "no caller check configured: set JAAS_AUTHORIZATION and/or \
                         JAAS_WEBHOOK_SECRETS, or ALLOW_INSECURE_NO_AUTH=true for development"
                    .into(),
            });
        }
        let raw_apps = config::list(env, "ALLOWED_APP_IDS");
        if raw_apps.is_empty() {
            return Err(ConfigError::Missing("ALLOWED_APP_IDS"));
        }
        let allowed_app_ids = raw_apps
            .iter()
            .map(|a| {
                AppId::parse(a).map_err(|reason| ConfigError::Invalid {
                    var: "ALLOWED_APP_IDS",
                    reason: reason.into(),
                })
            })
            .collect::<Result<_, _>>()?;
        let settings_json =
            |var: &'static str, default: Option<&str>| match env.get(var).as_deref().or(default) {
                None => Ok(Settings::default()),
                Some(raw) => Settings::from_json_str(raw).map_err(|e| ConfigError::Invalid {
                    var,
                    reason: e.to_string(),
                }),
            };
        let ttl: u64 = config::parsed_or(
            env,
            "SETTINGS_CACHE_TTL_SECONDS",
            Self::DEFAULT_CACHE_TTL_SECS,
        )?;
        let timeout_ms: u64 = config::parsed_or(
            env,
            "SETTINGS_STORE_TIMEOUT_MS",
            Self::DEFAULT_STORE_TIMEOUT_MS,
        )?;
        if timeout_ms == 0 || timeout_ms >= 3_000 {
            return Err(ConfigError::Invalid {
                var: "SETTINGS_STORE_TIMEOUT_MS",
                reason: "must be between 1 and 2999: JaaS gives up after about 3 s".into(),
            });
        }
        Ok(Self {
            settings_table: config::required(env, "SETTINGS_TABLE")?,
            allowed_app_ids,
            verifier,
            cache_ttl: Duration::from_secs(ttl),
            cache_max_entries: config::parsed_or(
                env,
                "SETTINGS_CACHE_MAX_ENTRIES",
                Self::DEFAULT_CACHE_MAX_ENTRIES,
            )?,
            store_timeout: Duration::from_millis(timeout_ms),
            global_default: settings_json("SETTINGS_DEFAULT", None)?,
            fallback: settings_json("SETTINGS_FALLBACK", Some(Self::DEFAULT_FALLBACK))?,
        })
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// A cached answer within its TTL.
    Cache,
    /// Freshly read from storage.
    Store,
    /// Storage failed; the last cached answer, past its TTL.
    Stale,
    /// Storage failed and nothing was cached: the configured fallback.
    Fallback,
}

impl AnswerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerSource::Cache => "cache",
            AnswerSource::Store => "store",
            AnswerSource::Stale => "stale",
            AnswerSource::Fallback => "fallback",
        }
    }
}

/// How one settings request ended. Mapped to a status and JSON body in [`http`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsOutcome {
    Answer {
        settings: Settings,
        source: AnswerSource,
    },
    MethodNotAllowed,
    Unauthorized(SignatureError),
    Malformed(&'static str),
    UnknownApp,
}

/// Largest body we read: `{"fqn": ...}` with a 512-byte room fits many times over.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// Parses JaaS's request body. Unknown extra fields are ignored (JaaS may add some).
pub fn parse_request(body: &[u8]) -> Result<Fqn, &'static str> {
    if body.len() > MAX_BODY_BYTES {
        return Err("body is larger than 8 KiB");
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| "body is not JSON")?;
    let fqn = value
        .as_object()
        .ok_or("body is not a JSON object")?
        .get("fqn")
        .ok_or("fqn is missing")?
        .as_str()
        .ok_or("fqn is not a string")?;
    Fqn::parse(fqn)
}

/// How callers are checked, decided once from what is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerCheck {
    /// `JAAS_AUTHORIZATION` is set: the header is required; a signature, when JaaS sends
    /// one, must verify too (JaaS does not promise to sign settings requests).
    Authorization,
    /// Only webhook secrets are set: the signature is then the only check, so it is
    /// required (accepting unsigned requests would make the secret protect nothing).
    Signature,
    /// Neither (only with `ALLOW_INSECURE_NO_AUTH=true`): anyone may ask.
    None,
}

impl CallerCheck {
    pub fn for_verifier(verifier: &JaasVerifier) -> Self {
        if verifier.has_authorization() {
            CallerCheck::Authorization
        } else if verifier.has_secrets() {
            CallerCheck::Signature
        } else {
            CallerCheck::None
        }
    }
}

/// The settings-provisioning use case over its storage port.
#[derive(Debug)]
pub struct SettingsService<S> {
    store: S,
    verifier: JaasVerifier,
    caller_check: CallerCheck,
    allowed_app_ids: HashSet<AppId>,
    global_default: Settings,
    fallback: Settings,
    store_timeout: Duration,
    cache: Mutex<AnswerCache>,
}

impl<S: SettingsStore> SettingsService<S> {
    pub fn new(store: S, config: &SettingsConfig) -> Self {
        Self {
            store,
            verifier: config.verifier.clone(),
            caller_check: CallerCheck::for_verifier(&config.verifier),
            allowed_app_ids: config.allowed_app_ids.clone(),
            global_default: config.global_default.clone(),
            fallback: config.fallback.clone(),
            store_timeout: config.store_timeout,
            cache: Mutex::new(AnswerCache::new(
                config.cache_ttl.as_millis().min(i64::MAX as u128) as i64,
                config.cache_max_entries,
            )),
        }
    }

    /// Handles one request. `now_ms` is the current Unix time in milliseconds (signature
    /// tolerance and cache age both use it).
    #[instrument(name = "settings", skip_all, fields(fqn, source))]
    pub async fn handle(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> SettingsOutcome {
        let outcome = self.handle_inner(method, headers, body, now_ms).await;
        match &outcome {
            SettingsOutcome::Answer { source, .. } => {
                Span::current().record("source", source.as_str());
                metrics::count_by("SettingsAnswers", 1.0, &[("Source", source.as_str())]);
            }
            SettingsOutcome::Unauthorized(e) => {
                metrics::count_by("SettingsRefused", 1.0, &[("Reason", e.code())])
            }
            SettingsOutcome::Malformed(_) => {
                metrics::count_by("SettingsRefused", 1.0, &[("Reason", "malformed_body")])
            }
            SettingsOutcome::UnknownApp => {
                metrics::count_by("SettingsRefused", 1.0, &[("Reason", "unknown_app")])
            }
            SettingsOutcome::MethodNotAllowed => {
                metrics::count_by("SettingsRefused", 1.0, &[("Reason", "method_not_allowed")])
            }
        }
        outcome
    }

    async fn handle_inner(
        &self,
        method: &Method,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> SettingsOutcome {
        if method != Method::POST {
            return SettingsOutcome::MethodNotAllowed;
        }
        // The caller check comes first so strangers learn nothing about our rooms.
        let now_s = now_ms.div_euclid(1000);
        let checked = match self.caller_check {
            CallerCheck::Signature => self.verifier.verify(headers, body, now_s).map(|_| ()),
            CallerCheck::Authorization => self
                .verifier
                .verify_if_signed(headers, body, now_s)
                .map(|_| ()),
            CallerCheck::None => Ok(()),
        };
        if let Err(e) = checked {
            warn!(reason = e.code(), "settings request refused");
            return SettingsOutcome::Unauthorized(e);
        }
        let fqn = match parse_request(body) {
            Ok(fqn) => fqn,
            Err(reason) => {
                warn!(reason, "malformed settings request");
                return SettingsOutcome::Malformed(reason);
            }
        };
        Span::current().record("fqn", tracing::field::display(&fqn));
        if !self.allowed_app_ids.contains(fqn.app()) {
            warn!("settings request for an appId we do not serve");
            return SettingsOutcome::UnknownApp;
        }
        let (settings, source) = self.answer(&fqn, now_ms).await;
        SettingsOutcome::Answer { settings, source }
    }

    /// Cache, then storage, then stale cache, then fallback.
    async fn answer(&self, fqn: &Fqn, now_ms: i64) -> (Settings, AnswerSource) {
        let cached = self.cache().get(fqn, now_ms);
        if let Some(hit) = &cached
            && hit.fresh
        {
            return (hit.settings.clone(), AnswerSource::Cache);
        }
        let failure = match tokio::time::timeout(self.store_timeout, self.store.load(fqn)).await {
            Ok(Ok(layers)) => {
                let resolved = resolve(
                    &self.global_default,
                    layers.app.as_ref(),
                    layers.room.as_ref(),
                );
                if resolved.soft_limit_clamped {
                    warn!("participantsSoftLimit above maxOccupants after resolution: lowered");
                }
                self.cache().insert(fqn, resolved.settings.clone(), now_ms);
                return (resolved.settings, AnswerSource::Store);
            }
            Ok(Err(e)) => e,
            Err(_elapsed) => SettingsStoreError::Unavailable {
                operation: "load (timed out)",
                source: format!("no answer within {} ms", self.store_timeout.as_millis()).into(),
            },
        };
        metrics::count("SettingsStoreFailures", 1.0);
        let chain = error_chain(&failure);
        match cached {
            Some(stale) => {
                warn!(error = %chain, age_ms = stale.age_ms, "settings storage failed; answering the stale cached settings");
                (stale.settings, AnswerSource::Stale)
            }
            None => {
                error!(error = %chain, "settings storage failed and nothing is cached; answering the fallback settings");
                (self.fallback.clone(), AnswerSource::Fallback)
            }
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, AnswerCache> {
        // A panic while holding the lock cannot leave the map inconsistent (every mutation is
        // a single insert/remove), so a poisoned lock is still usable.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The store this service reads (for operators' tools and tests).
    pub fn store(&self) -> &S {
        &self.store
    }
}

/// What JaaS would receive for `fqn` from storage right now (no cache): what the CLI's
/// `effective` prints.
pub async fn effective<S: SettingsStore>(
    store: &S,
    global_default: &Settings,
    fqn: &Fqn,
) -> Result<Resolved, SettingsStoreError> {
    let layers = store.load(fqn).await?;
    Ok(resolve(
        global_default,
        layers.app.as_ref(),
        layers.room.as_ref(),
    ))
}

/// "outer: inner: innermost", for one log field.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const BASE: [(&str, &str); 3] = [
        ("SETTINGS_TABLE", "settings"),
        (
            "ALLOWED_APP_IDS",
            "vpaas-magic-cookie-a, vpaas-magic-cookie-b",
        ),
        ("JAAS_AUTHORIZATION", "Bearer x"),
    ];

    #[test]
    fn config_defaults() {
        let c = SettingsConfig::from_env(&env(&BASE)).expect("config");
        assert_eq!(c.settings_table, "settings");
        assert_eq!(c.allowed_app_ids.len(), 2);
        assert!(
            c.allowed_app_ids
                .contains(&AppId::parse("vpaas-magic-cookie-b").unwrap())
        );
        assert_eq!(c.cache_ttl, Duration::from_secs(0));
        assert_eq!(c.store_timeout, Duration::from_millis(1_000));
        assert!(c.global_default.is_empty());
        assert_eq!(
            c.fallback.to_json(),
            serde_json::json!({"lobbyEnabled": true})
        );
    }

    #[test]
    fn config_reads_every_variable() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("SETTINGS_CACHE_TTL_SECONDS", "5"),
            ("SETTINGS_CACHE_MAX_ENTRIES", "7"),
            ("SETTINGS_STORE_TIMEOUT_MS", "250"),
            ("SETTINGS_DEFAULT", r#"{"maxOccupants": 50}"#),
            (
                "SETTINGS_FALLBACK",
                r#"{"lobbyEnabled": true, "lobbyType": "WAIT_FOR_MODERATOR"}"#,
            ),
        ]);
        let c = SettingsConfig::from_env(&env(&pairs)).expect("config");
        assert_eq!(c.cache_ttl, Duration::from_secs(5));
        assert_eq!(c.cache_max_entries, 7);
        assert_eq!(c.store_timeout, Duration::from_millis(250));
        assert_eq!(
            c.global_default.to_json(),
            serde_json::json!({"maxOccupants": 50})
        );
        assert_eq!(
            c.fallback.to_json()["lobbyType"],
            serde_json::json!("WAIT_FOR_MODERATOR")
        );
    }

    fn failing_var(pairs: &[(&str, &str)]) -> &'static str {
        match SettingsConfig::from_env(&env(pairs)).unwrap_err() {
            ConfigError::Missing(v) => v,
            ConfigError::Invalid { var, .. } => var,
        }
    }

    #[test]
    fn config_errors_name_the_variable() {
        let with = |extra: (&'static str, &'static str)| {
            let mut p = BASE.to_vec();
            p.retain(|(k, _)| *k != extra.0);
            p.push(extra);
            p
        };
        assert_eq!(failing_var(&BASE[1..]), "SETTINGS_TABLE");
        assert_eq!(failing_var(&[BASE[0], BASE[2]]), "ALLOWED_APP_IDS");
        assert_eq!(
            failing_var(&with(("ALLOWED_APP_IDS", "bad app"))),
            "ALLOWED_APP_IDS"
        );
        assert_eq!(
            failing_var(&with(("SETTINGS_DEFAULT", r#"{"maxOccupants": 1}"#))),
            "SETTINGS_DEFAULT"
        );
        assert_eq!(
            failing_var(&with(("SETTINGS_FALLBACK", r#"{"lobby": true}"#))),
            "SETTINGS_FALLBACK"
        );
        assert_eq!(
            failing_var(&with(("SETTINGS_FALLBACK", "not json"))),
            "SETTINGS_FALLBACK"
        );
        assert_eq!(
            failing_var(&with(("SETTINGS_CACHE_TTL_SECONDS", "-1"))),
            "SETTINGS_CACHE_TTL_SECONDS"
        );
        for t in ["0", "3000", "x"] {
            assert_eq!(
                failing_var(&with(("SETTINGS_STORE_TIMEOUT_MS", t))),
                "SETTINGS_STORE_TIMEOUT_MS"
            );
        }
    }

    #[test]
    fn no_caller_check_refuses_to_start_unless_insecure_flag() {
        let open = [BASE[0], BASE[1]];
        assert_eq!(failing_var(&open), "JAAS_AUTHORIZATION");
        let mut insecure = open.to_vec();
        insecure.push(("ALLOW_INSECURE_NO_AUTH", "false"));
        assert_eq!(failing_var(&insecure), "JAAS_AUTHORIZATION");
        insecure.pop();
        insecure.push(("ALLOW_INSECURE_NO_AUTH", "true"));
        SettingsConfig::from_env(&env(&insecure)).expect("explicitly insecure");
        let mut signed = open.to_vec();
        signed.push(("JAAS_WEBHOOK_SECRETS", "whsec_x"));
        SettingsConfig::from_env(&env(&signed)).expect("a secret is a caller check");
    }

    #[test]
    fn request_body_parsing() {
        let fqn = parse_request(br#"{"fqn":"vpaas-magic-cookie-a/Room 1","extra":1}"#).unwrap();
        assert_eq!(fqn.room(), "Room 1");
        for (body, reason) in [
            (&b""[..], "body is not JSON"),
            (b"{", "body is not JSON"),
            (b"[]", "body is not a JSON object"),
            (b"{}", "fqn is missing"),
            (br#"{"fqn":1}"#, "fqn is not a string"),
            (br#"{"fqn":"noslash"}"#, "fqn must look like <appId>/<room>"),
            (br#"{"fqn":"app/"}"#, "room name is empty"),
        ] {
            assert_eq!(parse_request(body).unwrap_err(), reason, "{body:?}");
        }
        let big = format!(r#"{{"fqn":"a/b","pad":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert_eq!(
            parse_request(big.as_bytes()).unwrap_err(),
            "body is larger than 8 KiB"
        );
    }
}
