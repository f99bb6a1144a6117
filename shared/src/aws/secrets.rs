//! Provider secrets (webhook secrets, second factors, API keys) from AWS Secrets Manager,
//! read once at cold start.
//!
//! Secrets never travel as template parameters or plain environment variables: the template
//! gives each function only `PROVIDER_SECRETS_ARN`, the function fetches that one secret while
//! it starts, and the values are laid over the process environment under the names the
//! configs read (`JAAS_WEBHOOK_SECRETS`, `DAILY_API_KEY`, ...: [`Layered`]). Every
//! `XConfig::from_env` therefore stays a pure read of one [`Env`]. Without
//! `PROVIDER_SECRETS_ARN` nothing is fetched and the plain variables apply (local runs, tests).
//!
//! The secret is a JSON object with one section per provider ([`parse_secret`]). A list value
//! may also be a JSON array; several secrets side by side allow rotation. Errors name the
//! secret and the offending key, never a value.

use std::collections::HashMap;

use aws_config::SdkConfig;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::config::{Env, Layered};
/// Each provider's section of the secret.
use crate::providers::SECRET_SECTIONS as SECTIONS;

/// The variable naming the secret (ARN or name).
pub const SECRETS_ARN_VAR: &str = "PROVIDER_SECRETS_ARN";
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
/// One section per provider: `{"jaas": {"webhookSecrets": ..., "authorization": ...},
/// "daily": {"webhookSecrets": [...], "basicAuth": ..., "apiKey": ...}}`; a provider without
/// a section (or with empty values) is not served. The flat form of earlier deployments
/// (`{"webhookSecrets": ..., "authorization": ...}`) is read as the `jaas` section.
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
    let flat = fields
        .keys()
        .any(|k| k == WEBHOOK_SECRETS_KEY || k == AUTHORIZATION_KEY);
    let mut out = HashMap::new();
    let mut sections: Vec<(String, serde_json::Map<String, Value>)> = Vec::new();
    let mut flat_fields = serde_json::Map::new();
    for (key, value) in fields {
        if SECTIONS.iter().any(|(name, _)| *name == key) {
            let Value::Object(section) = value else {
                return Err(malformed(format!("section {key:?} must be a JSON object")));
            };
            sections.push((key, section));
        } else if flat {
            flat_fields.insert(key, value);
        } else {
            // A typo must not silently leave a function without its secret. The key is not
            // quoted: a value pasted into the key column would leak.
            return Err(malformed(format!(
                "unknown key (sections are {:?})",
                SECTIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            )));
        }
    }
    if flat {
        if sections.iter().any(|(n, _)| n == "jaas") {
            return Err(malformed(
                "both a \"jaas\" section and top-level JaaS keys".into(),
            ));
        }
        sections.push(("jaas".into(), flat_fields));
    }
    for (name, section) in sections {
        let keys = SECTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, keys)| *keys)
            .unwrap_or_default();
        for (key, value) in section {
            let Some((key, var, list)) = keys.iter().find(|(k, _, _)| *k == key) else {
                return Err(malformed(format!(
                    "unknown key in section {name:?} (only {:?} are read)",
                    keys.iter().map(|(k, _, _)| *k).collect::<Vec<_>>()
                )));
            };
            let joined = match value {
                Value::String(s) => s,
                Value::Array(items) if *list => items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s),
                        _ => Err(malformed(format!("{key} must hold strings only"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                _ if *list => {
                    return Err(malformed(format!(
                        "{key} must be a string or an array of strings"
                    )));
                }
                _ => return Err(malformed(format!("{key} must be a string"))),
            };
            out.insert(*var, SecretString::from(joined));
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

/// The environment a function's config reads: the secret named by `PROVIDER_SECRETS_ARN` (when
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
    fn each_provider_has_its_section() {
        let o = parse_secret(
            "s",
            r#"{"jaas":{"webhookSecrets":["whsec_a"]},"daily":{"webhookSecrets":["c2VjcmV0","b2xk"],"basicAuth":"dXNlcjpwdw==","apiKey":"key"}}"#,
        )
        .expect("valid");
        assert_eq!(o.get("JAAS_WEBHOOK_SECRETS").as_deref(), Some("whsec_a"));
        assert_eq!(
            o.get("DAILY_WEBHOOK_SECRETS").as_deref(),
            Some("c2VjcmV0,b2xk")
        );
        assert_eq!(o.get("DAILY_BASIC_AUTH").as_deref(), Some("dXNlcjpwdw=="));
        assert_eq!(o.get("DAILY_API_KEY").as_deref(), Some("key"));
        // Daily only: JaaS is not configured.
        let o = parse_secret("s", r#"{"daily":{"webhookSecrets":"c2VjcmV0"}}"#).expect("valid");
        assert_eq!(o.names(), vec!["DAILY_WEBHOOK_SECRETS"]);
        for (text, expect) in [
            (r#"{"daily":{"apiKeys":"leak"}}"#, "unknown key in section"),
            (r#"{"daily":"leak"}"#, "must be a JSON object"),
            (
                r#"{"daily":{"apiKey":["leak"]}}"#,
                "apiKey must be a string",
            ),
            (
                r#"{"webhookSecrets":"leak","jaas":{"webhookSecrets":"leak"}}"#,
                "both",
            ),
        ] {
            let err = parse_secret("arn:x", text).expect_err(text).to_string();
            assert!(err.contains(expect), "{err}");
            assert!(!err.contains("leak"), "secret leaked into: {err}");
        }
    }

    #[test]
    fn debug_shows_no_value() {
        let o = parse_secret("s", r#"{"webhookSecrets":"whsec_hidden"}"#).expect("valid");
        assert!(!format!("{o:?}").contains("whsec_hidden"));
    }
}
