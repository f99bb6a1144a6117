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
