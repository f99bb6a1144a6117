//! What teams store webhooks for, computed from the stored neutral facts only (never a
//! provider's fields): which sessions a room had ([`sessions`]), what happened in one
//! ([`timeline`]), who attended and for how long ([`attendance`]), and where its files are
//! ([`service::ReadService::files`]). [`http`] serves them as `GET /v1/…` to the host
//! application's servers (a bearer token from the secret's `readApi.tokens`).

pub mod attendance;
pub mod http;
#[cfg(test)]
mod memory;
pub mod model;
pub mod ports;
pub mod service;
pub mod sessions;
pub mod timeline;
#[cfg(test)]
mod use_case_tests;

use crate::auth::BearerTokens;
use crate::config::{self, ConfigError, Env};

/// The variable holding the callers' bearer tokens (the secret's `readApi.tokens`).
pub const TOKENS_VAR: &str = "READ_API_TOKENS";

/// The secret's `readApi` section: `tokens`, the bearer tokens the host application's
/// servers send (several during a rotation).
pub const SECRET_SECTION: &[crate::providers::SectionKey] = &[("tokens", TOKENS_VAR, true)];

/// The read API's configuration, read once at cold start.
#[derive(Debug, Clone)]
pub struct ReadConfig {
    pub events_table: String,
    pub copies_table: String,
    pub recordings_bucket: String,
    pub tokens: BearerTokens,
    /// How long a download URL of a copy is valid (`DOWNLOAD_URL_TTL_SECONDS`, 60..=3600).
    pub download_url_ttl_secs: u64,
}

impl ReadConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let tokens =
            BearerTokens::from_env(env, TOKENS_VAR)?.ok_or(ConfigError::Missing(TOKENS_VAR))?;
        let ttl: u64 = config::parsed_or(env, "DOWNLOAD_URL_TTL_SECONDS", 300)?;
        if !(60..=3600).contains(&ttl) {
            return Err(ConfigError::Invalid {
                var: "DOWNLOAD_URL_TTL_SECONDS",
                reason: "must be between 60 and 3600".into(),
            });
        }
        Ok(Self {
            events_table: config::required(env, "EVENTS_TABLE")?,
            copies_table: config::required(env, "COPIES_TABLE")?,
            recordings_bucket: config::required(env, "RECORDINGS_BUCKET")?,
            tokens,
            download_url_ttl_secs: ttl,
        })
    }
}
