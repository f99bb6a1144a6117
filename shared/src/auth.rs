//! Static bearer tokens: self-hosted Jitsi's (Prosody's `api_headers`, the Jibri hosts'
//! uploads) and the read API's callers. Compared in constant time with every configured
//! token, so neither timing nor the answer tells which token (or how much of one) matched.

use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::config::{self, ConfigError, Env};
use crate::providers::Refused;

/// The accepted `Authorization: Bearer <token>` values.
#[derive(Debug, Clone)]
pub struct BearerTokens {
    tokens: Vec<SecretString>,
}

impl BearerTokens {
    pub fn new(tokens: Vec<SecretString>) -> Self {
        Self { tokens }
    }

    /// From `var` (comma-separated, or a list in the secret: `jitsi.tokens` is `JITSI_TOKENS`,
    /// `readApi.tokens` is `READ_API_TOKENS`); `None` when unset. A token shorter than 16
    /// characters is refused: it would be guessable.
    pub fn from_env(env: &impl Env, var: &'static str) -> Result<Option<Self>, ConfigError> {
        let tokens = config::secret_list(env, var)?;
        if tokens.is_empty() {
            return Ok(None);
        }
        if let Some(i) = tokens
            .iter()
            .position(|t| t.expose_secret().trim().len() < 16)
        {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("token {} of the list is shorter than 16 characters", i + 1),
            });
        }
        Ok(Some(Self::new(tokens)))
    }

    /// Checks `Authorization: Bearer <token>`. Every token is compared (constant time each).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refused> {
        let header = headers
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| Refused::new("authorization_missing", "missing Authorization header"))?;
        let got = header.as_bytes();
        let got = got
            .strip_prefix(b"Bearer ")
            .or_else(|| got.strip_prefix(b"bearer "))
            .ok_or_else(|| {
                Refused::new(
                    "authorization_malformed",
                    "Authorization is not a Bearer token",
                )
            })?;
        let mut ok = subtle::Choice::from(0);
        for token in &self.tokens {
            ok |= got.ct_eq(token.expose_secret().trim().as_bytes());
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(Refused::new(
                "authorization_mismatch",
                "Authorization header does not match",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn any_configured_token_passes_and_nothing_else() {
        let env: std::collections::HashMap<String, String> = [(
            "JITSI_TOKENS".to_owned(),
            "new-token-0123456789, old-token-0123456789".to_owned(),
        )]
        .into();
        let tokens = BearerTokens::from_env(&env, "JITSI_TOKENS")
            .expect("ok")
            .expect("configured");
        tokens
            .check(&headers("Bearer new-token-0123456789"))
            .expect("new");
        tokens
            .check(&headers("Bearer old-token-0123456789"))
            .expect("old");
        let code = |h: &HeaderMap| tokens.check(h).expect_err("refused").code;
        assert_eq!(
            code(&headers("Bearer new-token-012345678")),
            "authorization_mismatch"
        );
        assert_eq!(
            code(&headers("Bearer new-token-01234567890")),
            "authorization_mismatch"
        );
        assert_eq!(
            code(&headers("Basic new-token-0123456789")),
            "authorization_malformed"
        );
        assert_eq!(code(&HeaderMap::new()), "authorization_missing");
        let message = tokens
            .check(&headers("Bearer x"))
            .expect_err("refused")
            .message;
        assert!(!message.contains("token-0123"), "{message}");
    }

    #[test]
    fn short_tokens_are_refused_and_none_means_not_served() {
        let short: std::collections::HashMap<String, String> = [(
            "JITSI_TOKENS".to_owned(),
            "long-enough-token-123,short".to_owned(),
        )]
        .into();
        let err = BearerTokens::from_env(&short, "JITSI_TOKENS")
            .expect_err("short")
            .to_string();
        assert!(err.contains("token 2") && !err.contains("short,"), "{err}");
        let none: std::collections::HashMap<String, String> = Default::default();
        assert!(
            BearerTokens::from_env(&none, "JITSI_TOKENS")
                .expect("ok")
                .is_none()
        );
    }
}
