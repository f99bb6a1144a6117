//! Verification of JaaS webhook requests.
//!
//! JaaS signs each request with `X-Jaas-Signature: t=<unix seconds>,v1=<base64>[,v1=...]`:
//! `base64(HMAC-SHA256(secret, "<t>." ++ raw body))`, where the secret is the string the JaaS
//! console shows, `whsec_` prefix included. We verify over the raw bytes as received (never a
//! re-serialised JSON), accept any matching `v1`, ignore every other scheme (downgrade
//! protection) and compare in constant time. Several secrets may be configured at once so a
//! secret can be rotated without downtime. The console can additionally send a static
//! `Authorization` header; when configured it is checked as a second factor.
//!
//! The only way to obtain a [`VerifiedBody`] is [`JaasVerifier::verify`]: an unverified request
//! cannot reach storage.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the JaaS signature.
pub const SIGNATURE_HEADER: &str = "x-jaas-signature";

type HmacSha256 = Hmac<Sha256>;

/// Why a request was refused. The messages are safe to return to the caller: they never
/// contain a secret, a signature or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Jaas-Signature header")]
    MissingSignature,
    #[error("malformed X-Jaas-Signature header: {0}")]
    Malformed(&'static str),
    #[error("no v1 signature in X-Jaas-Signature header")]
    NoV1Signature,
    #[error("signature timestamp outside the accepted tolerance")]
    StaleTimestamp,
    #[error("signature does not match")]
    Mismatch,
    #[error("missing Authorization header")]
    MissingAuthorization,
    #[error("Authorization header does not match")]
    AuthorizationMismatch,
}

impl SignatureError {
    /// A short machine-readable code for the JSON error body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature => "signature_missing",
            Self::Malformed(_) => "signature_malformed",
            Self::NoV1Signature => "signature_no_v1",
            Self::StaleTimestamp => "signature_stale",
            Self::Mismatch => "signature_mismatch",
            Self::MissingAuthorization => "authorization_missing",
            Self::AuthorizationMismatch => "authorization_mismatch",
        }
    }
}

/// Body bytes whose signature (and Authorization header, when configured) checked out.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedBody<'a> {
    bytes: &'a [u8],
}

impl<'a> VerifiedBody<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A parsed `X-Jaas-Signature` header.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    /// Decoded `v1` signatures; undecodable ones are dropped (another may still match).
    pub v1: Vec<Vec<u8>>,
}

impl SignatureHeader {
    /// Parses the header: elements split on `,`, each on its **first** `=` (base64 has `=`).
    pub fn parse(raw: &str) -> Result<Self, SignatureError> {
        let mut timestamp = None;
        let mut v1 = Vec::new();
        let mut saw_v1 = false;
        for element in raw.split(',') {
            let element = element.trim();
            if element.is_empty() {
                continue;
            }
            let (scheme, value) = element
                .split_once('=')
                .ok_or(SignatureError::Malformed("element without '='"))?;
            match scheme.trim() {
                "t" => {
                    if timestamp.is_some() {
                        return Err(SignatureError::Malformed("more than one t"));
                    }
                    let t = value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("t is not an integer"))?;
                    timestamp = Some(t);
                }
                "v1" => {
                    saw_v1 = true;
                    if let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(value.trim())
                    {
                        v1.push(sig);
                    }
                }
                // Other schemes are ignored on purpose: accepting them would allow a downgrade.
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed("missing t"))?;
        if !saw_v1 {
            return Err(SignatureError::NoV1Signature);
        }
        Ok(Self { timestamp, v1 })
    }
}

/// Computes the `v1` signature JaaS would send (used by tests, samples and the demo).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Builds a full `X-Jaas-Signature` header value for `body` at `timestamp`.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// Checks JaaS requests against the configured secrets and optional Authorization value.
#[derive(Debug, Clone)]
pub struct JaasVerifier {
    secrets: Vec<SecretString>,
    tolerance: Duration,
    authorization: Option<SecretString>,
}

impl JaasVerifier {
    pub fn new(
        secrets: Vec<SecretString>,
        tolerance: Duration,
        authorization: Option<SecretString>,
    ) -> Self {
        Self {
            secrets,
            tolerance,
            authorization,
        }
    }

    /// Default tolerance on `t`: a day. Replays inside the dedup retention are harmless and
    /// JaaS does not document whether retries renew `t`; refusing a genuine late retry would
    /// lose the event for good.
    pub const DEFAULT_TOLERANCE_SECS: u64 = 24 * 3600;

    /// Reads `JAAS_WEBHOOK_SECRETS` (comma-separated, several during rotation),
    /// `JAAS_AUTHORIZATION` (optional static header value) and `SIGNATURE_TOLERANCE_SECONDS`.
    /// Whether an empty secret list is acceptable is the caller's decision.
    pub fn from_env(env: &impl crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        use crate::config;
        let tolerance: u64 = config::parsed_or(
            env,
            "SIGNATURE_TOLERANCE_SECONDS",
            Self::DEFAULT_TOLERANCE_SECS,
        )?;
        Ok(Self::new(
            config::secret_list(env, "JAAS_WEBHOOK_SECRETS")?,
            Duration::from_secs(tolerance),
            config::secret_opt(env, "JAAS_AUTHORIZATION"),
        ))
    }

    /// The accepted clock difference on `t`.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// True when at least one webhook secret is configured.
    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// True when a static Authorization value is configured.
    pub fn has_authorization(&self) -> bool {
        self.authorization.is_some()
    }

    /// Full check for webhooks: Authorization (when configured), then the signature,
    /// which is mandatory.
    pub fn verify<'a>(
        &self,
        headers: &HeaderMap,
        body: &'a [u8],
        now_unix_secs: i64,
    ) -> Result<VerifiedBody<'a>, SignatureError> {
        self.check_authorization(headers)?;
        let raw = header_str(headers, SIGNATURE_HEADER).ok_or(SignatureError::MissingSignature)?;
        self.check_signature(raw, body, now_unix_secs)?;
        Ok(VerifiedBody { bytes: body })
    }

    /// Check for the settings request: Authorization when configured, the signature when
    /// the request carries one (JaaS does not promise to sign it).
    pub fn verify_if_signed<'a>(
        &self,
        headers: &HeaderMap,
        body: &'a [u8],
        now_unix_secs: i64,
    ) -> Result<VerifiedBody<'a>, SignatureError> {
        self.check_authorization(headers)?;
        if let Some(raw) = header_str(headers, SIGNATURE_HEADER) {
            self.check_signature(raw, body, now_unix_secs)?;
        }
        Ok(VerifiedBody { bytes: body })
    }

    fn check_authorization(&self, headers: &HeaderMap) -> Result<(), SignatureError> {
        let Some(expected) = &self.authorization else {
            return Ok(());
        };
        let got = headers
            .get(http::header::AUTHORIZATION)
            .ok_or(SignatureError::MissingAuthorization)?;
        if bool::from(got.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
            Ok(())
        } else {
            Err(SignatureError::AuthorizationMismatch)
        }
    }

    fn check_signature(&self, raw: &str, body: &[u8], now: i64) -> Result<(), SignatureError> {
        let header = SignatureHeader::parse(raw)?;
        let age = now.abs_diff(header.timestamp);
        if age > self.tolerance.as_secs() {
            return Err(SignatureError::StaleTimestamp);
        }
        let mut matched = false;
        for secret in &self.secrets {
            let mut mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
                .expect("HMAC accepts any key length");
            mac.update(header.timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            for candidate in &header.v1 {
                // Constant time; no early exit so timing does not tell which secret matched.
                matched |= bool::from(candidate.as_slice().ct_eq(expected.as_slice()));
            }
        }
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const VECTOR: &str = include_str!("../../../testdata/jaas-signature.json");

    struct Vector {
        secret: String,
        header: String,
        timestamp: i64,
        body: String,
        expected: String,
    }

    fn vector() -> Vector {
        let v: serde_json::Value = serde_json::from_str(VECTOR).expect("vector is JSON");
        let s = |k: &str| v[k].as_str().expect("string field").to_owned();
        Vector {
            secret: s("secret"),
            header: s("header"),
            timestamp: v["timestamp"].as_i64().expect("timestamp"),
            body: s("body"),
            expected: s("expected_signature"),
        }
    }

    fn verifier(secrets: &[&str]) -> JaasVerifier {
        JaasVerifier::new(
            secrets
                .iter()
                .map(|s| SecretString::from(s.to_string()))
                .collect(),
            Duration::from_secs(300),
            None,
        )
    }

    fn headers(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            HeaderValue::from_str(sig).expect("header"),
        );
        h
    }

    #[test]
    fn known_answer_vector_signs_and_verifies() {
        let v = vector();
        assert_eq!(sign(&v.secret, v.timestamp, v.body.as_bytes()), v.expected);
        verifier(&[&v.secret])
            .verify(&headers(&v.header), v.body.as_bytes(), v.timestamp + 2)
            .expect("documented example verifies");
    }

    #[test]
    fn secret_without_prefix_is_rejected() {
        let v = vector();
        let bare = v.secret.trim_start_matches("whsec_");
        assert_eq!(
            sign(bare, v.timestamp, v.body.as_bytes()),
            "vIlhk4FCMq3z+zBEiRRoXbAvylwBXcy2nMGM9knqhJI="
        );
        let err = verifier(&[bare])
            .verify(&headers(&v.header), v.body.as_bytes(), v.timestamp)
            .unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
    }

    #[test]
    fn missing_and_garbled_headers() {
        let v = vector();
        let ver = verifier(&[&v.secret]);
        let body = v.body.as_bytes();
        assert_eq!(
            ver.verify(&HeaderMap::new(), body, v.timestamp)
                .unwrap_err(),
            SignatureError::MissingSignature
        );
        for garbled in ["", "garbage", "t=abc,v1=xx", "v1=xlzq", "t=1,t=2,v1=a"] {
            let err = ver
                .verify(&headers(garbled), body, v.timestamp)
                .unwrap_err();
            assert!(
                matches!(err, SignatureError::Malformed(_)),
                "{garbled:?} gave {err:?}"
            );
        }
        // A v1 that is not base64 is simply not a match.
        let err = ver
            .verify(
                &headers(&format!("t={},v1=!!!", v.timestamp)),
                body,
                v.timestamp,
            )
            .unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let v = vector();
        let err = verifier(&["whsec_0000"])
            .verify(&headers(&v.header), v.body.as_bytes(), v.timestamp)
            .unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
    }

    #[test]
    fn only_non_v1_schemes_are_rejected() {
        let v = vector();
        let h = format!("t={},v0={},v2={}", v.timestamp, v.expected, v.expected);
        let err = verifier(&[&v.secret])
            .verify(&headers(&h), v.body.as_bytes(), v.timestamp)
            .unwrap_err();
        assert_eq!(err, SignatureError::NoV1Signature);
    }

    #[test]
    fn one_good_v1_among_bad_ones_is_accepted() {
        let v = vector();
        let h = format!(
            "t={},v1=AAAA,v0={},v1={},v1=notbase64!",
            v.timestamp, v.expected, v.expected
        );
        verifier(&[&v.secret])
            .verify(&headers(&h), v.body.as_bytes(), v.timestamp)
            .expect("any matching v1 is enough");
    }

    #[test]
    fn any_of_several_secrets_is_accepted() {
        let v = vector();
        verifier(&["whsec_old", &v.secret])
            .verify(&headers(&v.header), v.body.as_bytes(), v.timestamp)
            .expect("rotation: second secret matches");
    }

    #[test]
    fn timestamp_outside_tolerance_is_rejected_both_ways() {
        let v = vector();
        let ver = verifier(&[&v.secret]);
        let body = v.body.as_bytes();
        ver.verify(&headers(&v.header), body, v.timestamp + 300)
            .expect("edge");
        for now in [v.timestamp + 301, v.timestamp - 301] {
            assert_eq!(
                ver.verify(&headers(&v.header), body, now).unwrap_err(),
                SignatureError::StaleTimestamp
            );
        }
    }

    #[test]
    fn one_changed_body_byte_is_rejected() {
        let v = vector();
        let mut body = v.body.clone().into_bytes();
        let i = body.len() / 2;
        body[i] ^= 0x01;
        let err = verifier(&[&v.secret])
            .verify(&headers(&v.header), &body, v.timestamp)
            .unwrap_err();
        assert_eq!(err, SignatureError::Mismatch);
    }

    #[test]
    fn authorization_is_a_second_factor_when_configured() {
        let v = vector();
        let ver = JaasVerifier::new(
            vec![SecretString::from(v.secret.clone())],
            Duration::from_secs(300),
            Some(SecretString::from("Bearer tok".to_owned())),
        );
        let mut h = headers(&v.header);
        assert_eq!(
            ver.verify(&h, v.body.as_bytes(), v.timestamp).unwrap_err(),
            SignatureError::MissingAuthorization
        );
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(
            ver.verify(&h, v.body.as_bytes(), v.timestamp).unwrap_err(),
            SignatureError::AuthorizationMismatch
        );
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer tok"),
        );
        ver.verify(&h, v.body.as_bytes(), v.timestamp)
            .expect("both factors");
    }

    #[test]
    fn settings_check_accepts_unsigned_but_verifies_present_signature() {
        let v = vector();
        let ver = verifier(&[&v.secret]);
        ver.verify_if_signed(&HeaderMap::new(), b"{}", v.timestamp)
            .expect("unsigned allowed");
        assert_eq!(
            ver.verify_if_signed(&headers(&v.header), b"{}", v.timestamp)
                .unwrap_err(),
            SignatureError::Mismatch
        );
    }
}
