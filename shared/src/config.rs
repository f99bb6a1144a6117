//! Reading typed configuration from the environment, once, at cold start.
//!
//! Every function has its own config struct built from these helpers; a missing or
//! malformed variable fails start-up with the variable's name so the operator knows
//! exactly what to fix. Secret values are never echoed back in errors.

use std::str::FromStr;

use secrecy::SecretString;

/// A configuration variable that is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Source of configuration values: the process environment in production, a map in tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name)
            .cloned()
            .filter(|v| !v.trim().is_empty())
    }
}

/// Two sources read as one: a value in `overlay` wins over the same name in `base`.
///
/// Used to lay the values fetched from a secret store over the process environment at cold
/// start, so every `from_env` stays a pure read of one [`Env`] and never learns where a
/// secret came from.
#[derive(Debug, Clone, Default)]
pub struct Layered<O, B> {
    pub overlay: O,
    pub base: B,
}

impl<O, B> Layered<O, B> {
    pub fn new(overlay: O, base: B) -> Self {
        Self { overlay, base }
    }
}

impl<O: Env, B: Env> Env for Layered<O, B> {
    fn get(&self, name: &str) -> Option<String> {
        self.overlay.get(name).or_else(|| self.base.get(name))
    }
}

/// A required plain value.
pub fn required(env: &impl Env, var: &'static str) -> Result<String, ConfigError> {
    env.get(var).ok_or(ConfigError::Missing(var))
}

/// An optional value parsed with `FromStr`, or `default` when unset.
pub fn parsed_or<T>(env: &impl Env, var: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match env.get(var) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            }),
    }
}

/// An optional value parsed with `FromStr`.
pub fn parsed_opt<T>(env: &impl Env, var: &'static str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    env.get(var)
        .map(|raw| {
            raw.trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Invalid {
                    var,
                    reason: e.to_string(),
                })
        })
        .transpose()
}

/// A boolean flag: `true`/`1`/`yes` or `false`/`0`/`no`.
pub fn flag(env: &impl Env, var: &'static str) -> Result<bool, ConfigError> {
    match env.get(var).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
        Some(_) => Err(ConfigError::Invalid {
            var,
            reason: "expected true or false".into(),
        }),
    }
}

/// A comma-separated list of secrets (for rotation: old and new side by side).
/// The reason on error never contains the value.
pub fn secret_list(env: &impl Env, var: &'static str) -> Result<Vec<SecretString>, ConfigError> {
    Ok(env
        .get(var)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| SecretString::from(s.to_owned()))
                .collect()
        })
        .unwrap_or_default())
}

/// An optional single secret.
pub fn secret_opt(env: &impl Env, var: &'static str) -> Option<SecretString> {
    env.get(var).map(SecretString::from)
}

/// A comma-separated list of plain values.
pub fn list(env: &impl Env, var: &'static str) -> Vec<String> {
    env.get(var)
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The TTL (Unix seconds) of an event stored at `now_ms` that is kept for `retention`.
pub fn expires_at_secs(now_ms: i64, retention: Option<std::time::Duration>) -> Option<i64> {
    retention.map(|r| {
        now_ms
            .div_euclid(1000)
            .saturating_add(i64::try_from(r.as_secs()).unwrap_or(i64::MAX))
    })
}

/// `EVENT_RETENTION_DAYS`: stored events expire with the table's TTL after this many days;
/// absent or 0, they are kept.
pub fn event_retention(env: &impl Env) -> Result<Option<std::time::Duration>, ConfigError> {
    let days: Option<u64> = parsed_opt(env, "EVENT_RETENTION_DAYS")?;
    Ok(days
        .filter(|d| *d > 0)
        .map(|d| std::time::Duration::from_secs(d.saturating_mul(86_400))))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn layered_overlay_wins_and_falls_back_to_base() {
        let env = Layered::new(
            map(&[("A", "from-overlay"), ("EMPTY", " ")]),
            map(&[
                ("A", "from-base"),
                ("B", "only-base"),
                ("EMPTY", "base-value"),
            ]),
        );
        assert_eq!(env.get("A").as_deref(), Some("from-overlay"));
        assert_eq!(env.get("B").as_deref(), Some("only-base"));
        // A blank overlay value counts as unset, like a blank environment variable.
        assert_eq!(env.get("EMPTY").as_deref(), Some("base-value"));
        assert_eq!(env.get("C"), None);
    }
}
