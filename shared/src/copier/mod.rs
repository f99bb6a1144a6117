//! The recording copier: consumes the copy jobs the webhook-ingest function enqueues and
//! streams each file into the recordings bucket before its link dies, exactly once, in flat
//! memory, and never from an internal address.
//!
//! - [`policy`]: the SSRF rules (pure) and [`origin`]: the HTTP client that enforces them on
//!   the addresses it connects to and on every redirect.
//! - [`parts`]: part sizes (pure); [`layout`]: S3 keys and metadata (pure; the key layout is
//!   documented there: `<provider>/<appId>/<room>/<sessionId>/<kind>/<file>`).
//! - [`state`]: the per-job state machine (pure) that `aws::copies` enforces in DynamoDB.
//! - [`service`]: one job end to end; [`sqs`]: an SQS batch with partial batch failures.
//! - [`screenshots`]: the lenient parser for SCREEN_SHARING_HISTORY link lists.
//! - `memory` (tests only): the ports in memory; `use_case_tests`: the use case against them.

pub mod layout;
#[cfg(test)]
pub(crate) mod memory;
pub mod origin;
pub mod parts;
pub mod policy;
pub mod ports;
pub mod screenshots;
pub mod service;
pub mod sqs;
pub mod state;
#[cfg(test)]
mod use_case_tests;

use std::time::Duration;

use crate::config::{self, ConfigError, Env};
use policy::{HostPattern, SourcePolicies, SourcePolicy};
use service::CopySettings;
use sqs::RetryBackoff;

/// Configuration of the recording-copier function, read once at cold start.
#[derive(Debug, Clone)]
pub struct CopierConfig {
    pub copies_table: String,
    pub recordings_bucket: String,
    /// The queue the jobs come from: returned records are delayed on it, continuations sent to it.
    pub jobs_queue_url: String,
    pub retry_backoff: RetryBackoff,
    /// JaaS's download policy (`ALLOWED_SOURCE_HOSTS`).
    pub policy: SourcePolicy,
    /// Every provider's download policy, JaaS's included.
    pub policies: SourcePolicies,
    pub part_size: u64,
    pub max_parts_in_flight: usize,
    pub lease: Duration,
    pub deadline_margin: Duration,
    pub max_redirects: u8,
    pub max_attempts: Option<u32>,
    pub inline_retries: u32,
    /// `LINK_AT_RISK_SECONDS` ([`crate::jobs::at_risk_window`]).
    pub at_risk_window: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

fn is_loopback_endpoint(raw: &str) -> bool {
    url::Url::parse(raw).ok().is_some_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    })
}

impl CopierConfig {
    pub const DEFAULT_PART_MIB: u64 = 8;
    pub const DEFAULT_IN_FLIGHT: usize = 4;
    pub const DEFAULT_LEASE_SECS: u64 = 120;
    pub const DEFAULT_MARGIN_SECS: u64 = 30;
    pub const DEFAULT_REDIRECTS: u8 = 3;
    pub const DEFAULT_INLINE_RETRIES: u32 = 4;

    /// Reads `COPIES_TABLE`, `RECORDINGS_BUCKET`, `JOBS_QUEUE_URL` (required),
    /// `COPY_RETRY_BASE_SECONDS` (10) and `COPY_RETRY_MAX_SECONDS` (300) (see
    /// [`RetryBackoff`]), each provider's download host list ([`crate::providers::SOURCE_HOSTS`]:
    /// `ALLOWED_SOURCE_HOSTS` for JaaS, `DAILY_SOURCE_HOSTS`, ...; comma lists of host
    /// patterns, defaults from each provider), `ALLOW_INSECURE_LOCAL_ORIGIN`
    /// (development only), `COPY_PART_SIZE_MIB` (≥ 5, default 8), `COPY_MAX_PARTS_IN_FLIGHT`
    /// (default 4), `COPY_LEASE_SECONDS` (default 120), `COPY_DEADLINE_MARGIN_SECONDS`
    /// (default 30), `COPY_MAX_REDIRECTS` (default 3), `COPY_MAX_ATTEMPTS` (optional: the
    /// queue's maxReceiveCount), `COPY_INLINE_RETRIES` (retryable failures retried within an
    /// invocation, 0..=10, default 4), `COPY_CONNECT_TIMEOUT_SECONDS` (10),
    /// `COPY_READ_TIMEOUT_SECONDS` (30).
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let insecure = config::flag(env, "ALLOW_INSECURE_LOCAL_ORIGIN")?;
        if insecure
            && env.get("AWS_LAMBDA_FUNCTION_NAME").is_some()
            && !env
                .get("AWS_ENDPOINT_URL")
                .is_some_and(|e| is_loopback_endpoint(&e))
        {
            // Only a local stack (AWS APIs on loopback) may fetch from loopback over http.
            return Err(invalid(
                "ALLOW_INSECURE_LOCAL_ORIGIN",
                "development-only setting refused in Lambda unless AWS_ENDPOINT_URL is a loopback emulator",
            ));
        }
        let mut policies = Vec::new();
        for hosts in crate::providers::SOURCE_HOSTS {
            let raw = config::list(env, hosts.var);
            let raw: Vec<String> = if raw.is_empty() {
                hosts.defaults.iter().map(|s| (*s).to_owned()).collect()
            } else {
                raw
            };
            let patterns = raw
                .iter()
                .map(|p| HostPattern::parse(p).map_err(|r| invalid(hosts.var, r)))
                .collect::<Result<Vec<_>, _>>()?;
            policies.push((
                hosts.provider.to_owned(),
                SourcePolicy::new(patterns, insecure),
            ));
        }
        let policy = policies
            .iter()
            .find(|(p, _)| p == crate::providers::jaas::NAME)
            .map(|(_, policy)| policy.clone())
            .unwrap_or_else(|| SourcePolicy::new(Vec::new(), insecure));
        let part_mib: u64 = config::parsed_or(env, "COPY_PART_SIZE_MIB", Self::DEFAULT_PART_MIB)?;
        if !(5..=5120).contains(&part_mib) {
            return Err(invalid(
                "COPY_PART_SIZE_MIB",
                "must be 5..=5120 (S3 parts are at least 5 MiB except the last, at most 5 GiB)",
            ));
        }
        let in_flight: usize =
            config::parsed_or(env, "COPY_MAX_PARTS_IN_FLIGHT", Self::DEFAULT_IN_FLIGHT)?;
        if !(1..=32).contains(&in_flight) {
            return Err(invalid("COPY_MAX_PARTS_IN_FLIGHT", "must be 1..=32"));
        }
        let lease: u64 = config::parsed_or(env, "COPY_LEASE_SECONDS", Self::DEFAULT_LEASE_SECS)?;
        if lease < 5 {
            return Err(invalid("COPY_LEASE_SECONDS", "must be at least 5"));
        }
        let margin: u64 = config::parsed_or(
            env,
            "COPY_DEADLINE_MARGIN_SECONDS",
            Self::DEFAULT_MARGIN_SECS,
        )?;
        let max_redirects: u8 =
            config::parsed_or(env, "COPY_MAX_REDIRECTS", Self::DEFAULT_REDIRECTS)?;
        if max_redirects > 10 {
            return Err(invalid("COPY_MAX_REDIRECTS", "must be at most 10"));
        }
        let max_attempts: Option<u32> = config::parsed_opt(env, "COPY_MAX_ATTEMPTS")?;
        if max_attempts == Some(0) {
            return Err(invalid("COPY_MAX_ATTEMPTS", "must be at least 1"));
        }
        let inline_retries: u32 =
            config::parsed_or(env, "COPY_INLINE_RETRIES", Self::DEFAULT_INLINE_RETRIES)?;
        if inline_retries > 10 {
            return Err(invalid("COPY_INLINE_RETRIES", "must be at most 10"));
        }
        let retry_base: u64 = config::parsed_or(
            env,
            "COPY_RETRY_BASE_SECONDS",
            RetryBackoff::DEFAULT_BASE_SECS,
        )?;
        if retry_base > 900 {
            return Err(invalid("COPY_RETRY_BASE_SECONDS", "must be at most 900"));
        }
        let retry_max: u64 = config::parsed_or(
            env,
            "COPY_RETRY_MAX_SECONDS",
            RetryBackoff::DEFAULT_MAX_SECS,
        )?;
        if !(retry_base..=43_200).contains(&retry_max) {
            return Err(invalid(
                "COPY_RETRY_MAX_SECONDS",
                "must be at least COPY_RETRY_BASE_SECONDS and at most 43200 (SQS's 12 h)",
            ));
        }
        let connect: u64 = config::parsed_or(env, "COPY_CONNECT_TIMEOUT_SECONDS", 10)?;
        let read: u64 = config::parsed_or(env, "COPY_READ_TIMEOUT_SECONDS", 30)?;
        Ok(Self {
            copies_table: config::required(env, "COPIES_TABLE")?,
            recordings_bucket: config::required(env, "RECORDINGS_BUCKET")?,
            jobs_queue_url: config::required(env, "JOBS_QUEUE_URL")?,
            retry_backoff: RetryBackoff {
                base: Duration::from_secs(retry_base),
                max: Duration::from_secs(retry_max),
            },
            policy,
            policies: SourcePolicies::new(policies),
            part_size: part_mib * parts::MIB,
            max_parts_in_flight: in_flight,
            lease: Duration::from_secs(lease),
            deadline_margin: Duration::from_secs(margin),
            max_redirects,
            max_attempts,
            inline_retries,
            at_risk_window: crate::jobs::at_risk_window(env)?,
            connect_timeout: Duration::from_secs(connect.max(1)),
            read_timeout: Duration::from_secs(read.max(1)),
        })
    }

    pub fn settings(&self) -> CopySettings {
        CopySettings {
            part_size: self.part_size,
            max_parts_in_flight: self.max_parts_in_flight,
            lease: self.lease,
            max_attempts: self.max_attempts,
            inline_retries: self.inline_retries,
            at_risk_window: self.at_risk_window,
        }
    }

    /// The SSRF-checked HTTP origin for this configuration.
    pub fn origin(&self) -> Result<origin::HttpOrigin, reqwest::Error> {
        self.origin_with_lookup(origin::SystemLookup)
    }

    /// [`Self::origin`] resolving names with `lookup` (tests: a failing resolver).
    pub fn origin_with_lookup(
        &self,
        lookup: impl origin::Lookup + Clone,
    ) -> Result<origin::HttpOrigin, reqwest::Error> {
        origin::HttpOrigin::with_policies(
            self.policies.clone(),
            self.max_redirects,
            self.connect_timeout,
            self.read_timeout,
            lookup,
        )
    }
}

/// An error and its causes on one line, for logs (our messages never contain links).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const BASE: [(&str, &str); 3] = [
        ("COPIES_TABLE", "c"),
        ("RECORDINGS_BUCKET", "b"),
        (
            "JOBS_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/1/jobs",
        ),
    ];

    #[test]
    fn defaults_and_required_variables() {
        let c = CopierConfig::from_env(&env(&BASE)).expect("config");
        assert_eq!(c.part_size, 8 * parts::MIB);
        assert_eq!(c.max_parts_in_flight, 4);
        assert_eq!(c.max_redirects, 3);
        assert_eq!(c.inline_retries, 4);
        assert_eq!(c.policy, SourcePolicy::production_default());
        assert_eq!(c.retry_backoff, RetryBackoff::default());
        assert!(matches!(
            CopierConfig::from_env(&env(&[("COPIES_TABLE", "c")])),
            Err(ConfigError::Missing("RECORDINGS_BUCKET"))
        ));
        assert!(matches!(
            CopierConfig::from_env(&env(&BASE[..2])),
            Err(ConfigError::Missing("JOBS_QUEUE_URL"))
        ));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("COPY_PART_SIZE_MIB", "4"),
            ("COPY_MAX_PARTS_IN_FLIGHT", "0"),
            ("ALLOWED_SOURCE_HOSTS", "*.com"),
            ("COPY_MAX_REDIRECTS", "x"),
            ("COPY_INLINE_RETRIES", "11"),
            ("COPY_RETRY_BASE_SECONDS", "901"),
            ("COPY_RETRY_MAX_SECONDS", "5"),
        ] {
            let mut e = env(&BASE);
            e.insert(var.into(), value.into());
            match CopierConfig::from_env(&e) {
                Err(ConfigError::Invalid { var: v, .. }) => assert_eq!(v, var),
                other => panic!("{var}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn insecure_local_origin_is_refused_in_lambda_without_a_loopback_emulator() {
        let mut e = env(&BASE);
        e.insert("ALLOW_INSECURE_LOCAL_ORIGIN".into(), "true".into());
        assert!(
            CopierConfig::from_env(&e)
                .expect("dev")
                .policy
                .allows_insecure_local()
        );
        e.insert("AWS_LAMBDA_FUNCTION_NAME".into(), "recording-copier".into());
        assert!(matches!(
            CopierConfig::from_env(&e),
            Err(ConfigError::Invalid {
                var: "ALLOW_INSECURE_LOCAL_ORIGIN",
                ..
            })
        ));
        e.insert(
            "AWS_ENDPOINT_URL".into(),
            "https://dynamodb.us-east-1.amazonaws.com".into(),
        );
        assert!(CopierConfig::from_env(&e).is_err());
        e.insert("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:4566".into());
        assert!(CopierConfig::from_env(&e).is_ok());
    }
}
