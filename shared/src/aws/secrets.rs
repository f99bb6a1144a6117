//! JaaS webhook secrets and the Authorization token from AWS Secrets Manager, read once at
//! cold start.
//!
//! Secrets never travel as template parameters or plain environment variables: the template
//! gives each function only `JAAS_SECRETS_ARN`, the function fetches that one secret while it
//! starts, and the values are laid over the process environment as `JAAS_WEBHOOK_SECRETS` and
//! `JAAS_AUTHORIZATION` ([`Layered`]). Every `XConfig::from_env` therefore stays a pure read of
//! one [`Env`]. Without `JAAS_SECRETS_ARN` nothing is fetched and the plain variables apply
//! (local runs, tests).
//!
//! The secret is a JSON object (what the console's "key/value" editor writes):
//! `{"webhookSecrets": "whsec_new,whsec_old", "authorization": "Bearer ..."}`.
//! `webhookSecrets` may also be a JSON array; several secrets side by side allow rotation.
//! Errors name the secret and the offending key, never a value.

use std::collections::HashMap;

use aws_config::SdkConfig;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::{Env, Layered};

/// The variable naming the secret (ARN or name).
pub const SECRETS_ARN_VAR: &str = "JAAS_SECRETS_ARN";
/// Key in the secret JSON holding the webhook secret(s).
pub const WEBHOOK_SECRETS_KEY: &str = "webhookSecrets";
/// Key in the secret JSON holding the static Authorization header value.
pub const AUTHORIZATION_KEY: &str = "authorization";

/// Why the secret could not be turned into configuration.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read secret {secret_id} (named by {SECRETS_ARN_VAR})")]
    Fetch {
        secret_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {secret_id} has no SecretString (a binary secret is not supported)")]
    NotText { secret_id: String },
    #[error("secret {secret_id} is not the expected JSON object: {reason}")]
    Malformed { secret_id: String, reason: String },
}

/// Values taken from the secret, under the environment names the configs read.
/// `Debug` shows names only: the values are [`SecretString`]s.
#[derive(Debug, Clone, Default)]
pub struct SecretOverlay(HashMap<&'static str, SecretString>);

impl SecretOverlay {
    /// Names the overlay provides (for a start-up log line that shows no value).
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.0.keys().copied().collect();
        names.sort_unstable();
        names
    }
}

impl Env for SecretOverlay {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.expose_secret().to_owned())
            .filter(|v| !v.trim().is_empty())
    }
}

/// Reads the secret JSON. Pure; `secret_id` only labels errors.
///
/// serde's own messages are not used for type errors on purpose: they quote the offending
/// value, which here would be a secret.
pub fn parse_secret(secret_id: &str, text: &str) -> Result<SecretOverlay, SecretsError> {
    let malformed = |reason: String| SecretsError::Malformed {
        secret_id: secret_id.to_owned(),
        reason,
    };
    let value: Value = serde_json::from_str(text).map_err(|e| {
        malformed(format!(
            "not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(fields) = value else {
        return Err(malformed("expected a JSON object".into()));
    };
    let mut out = HashMap::new();
    for (key, value) in fields {
        match key.as_str() {
            WEBHOOK_SECRETS_KEY => {
                let joined = match value {
                    Value::String(s) => s,
                    Value::Array(items) => items
                        .into_iter()
                        .map(|item| match item {
                            Value::String(s) => Ok(s),
                            _ => Err(malformed(format!(
                                "{WEBHOOK_SECRETS_KEY} must hold strings only"
                            ))),
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .join(","),
                    _ => {
                        return Err(malformed(format!(
                            "{WEBHOOK_SECRETS_KEY} must be a string or an array of strings"
                        )));
                    }
                };
                out.insert("JAAS_WEBHOOK_SECRETS", SecretString::from(joined));
            }
            AUTHORIZATION_KEY => {
                let Value::String(s) = value else {
                    return Err(malformed(format!("{AUTHORIZATION_KEY} must be a string")));
                };
                out.insert("JAAS_AUTHORIZATION", SecretString::from(s));
            }
            // A typo ("webhookSecret") must not silently leave a function without its
            // secret. The key is not quoted: a value pasted into the key column would leak.
            _ => {
                return Err(malformed(format!(
                    "unknown key (only {WEBHOOK_SECRETS_KEY:?} and {AUTHORIZATION_KEY:?} are read)"
                )));
            }
        }
    }
    Ok(SecretOverlay(out))
}

/// Fetches and reads one secret.
pub async fn fetch_overlay(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<SecretOverlay, SecretsError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| SecretsError::Fetch {
            secret_id: secret_id.to_owned(),
            source: super::boxed(e),
        })?;
    let text = out.secret_string().ok_or_else(|| SecretsError::NotText {
        secret_id: secret_id.to_owned(),
    })?;
    parse_secret(secret_id, text)
}

/// The environment a function's config reads: the secret named by `JAAS_SECRETS_ARN` (when
/// set) laid over `base`. Called once at cold start; a failure stops the start with a reason.
pub async fn env_with_secrets<B: Env>(
    sdk: &SdkConfig,
    base: B,
) -> Result<Layered<SecretOverlay, B>, SecretsError> {
    let overlay = match base.get(SECRETS_ARN_VAR) {
        Some(id) => fetch_overlay(&super::secretsmanager(sdk), id.trim()).await?,
        None => SecretOverlay::default(),
    };
    Ok(Layered::new(overlay, base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_string_or_array_and_authorization() {
        let o = parse_secret(
            "s",
            r#"{"webhookSecrets":"whsec_a, whsec_b","authorization":"Bearer x"}"#,
        )
        .expect("valid");
        assert_eq!(
            o.get("JAAS_WEBHOOK_SECRETS").as_deref(),
            Some("whsec_a, whsec_b")
        );
        assert_eq!(o.get("JAAS_AUTHORIZATION").as_deref(), Some("Bearer x"));
        let o = parse_secret("s", r#"{"webhookSecrets":["whsec_a","whsec_b"]}"#).expect("valid");
        assert_eq!(
            o.get("JAAS_WEBHOOK_SECRETS").as_deref(),
            Some("whsec_a,whsec_b")
        );
        assert_eq!(o.get("JAAS_AUTHORIZATION"), None);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let o = parse_secret("s", r#"{"webhookSecrets":"","authorization":"  "}"#).expect("valid");
        assert_eq!(o.get("JAAS_WEBHOOK_SECRETS"), None);
        assert_eq!(o.get("JAAS_AUTHORIZATION"), None);
        assert_eq!(
            o.names(),
            vec!["JAAS_AUTHORIZATION", "JAAS_WEBHOOK_SECRETS"]
        );
    }

    #[test]
    fn errors_name_the_key_never_the_value() {
        for (text, expect) in [
            (r#"{"webhookSecret":"whsec_leak"}"#, "unknown key"),
            (r#"{"whsec_leak":""}"#, "unknown key"),
            (
                r#"{"webhookSecrets":42}"#,
                "webhookSecrets must be a string",
            ),
            (r#"{"webhookSecrets":["whsec_leak",1]}"#, "strings only"),
            (
                r#"{"authorization":["whsec_leak"]}"#,
                "authorization must be a string",
            ),
            (r#"["whsec_leak"]"#, "expected a JSON object"),
            (r#"{"webhookSecrets":"whsec_leak""#, "not JSON"),
        ] {
            let err = parse_secret("arn:x", text).expect_err(text).to_string();
            assert!(err.contains(expect), "{err}");
            assert!(err.contains("arn:x"), "{err}");
            assert!(!err.contains("whsec_leak"), "secret leaked into: {err}");
        }
    }

    #[test]
    fn debug_shows_no_value() {
        let o = parse_secret("s", r#"{"webhookSecrets":"whsec_hidden"}"#).expect("valid");
        assert!(!format!("{o:?}").contains("whsec_hidden"));
    }
}
