//! Secrets Manager as the source of the JaaS webhook secrets and Authorization token, against
//! the emulator: what `webhook-ingest`'s main does at cold start (`env_with_secrets`, then
//! `IngestConfig::from_env`), with the shapes the template's secret goes through.

use std::collections::HashMap;

use integration_tests::{emulator, unique};
use meeting_hooks::aws::secrets::{self, SecretsError};
use meeting_hooks::config::{ConfigError, Env};
use meeting_hooks::ingest::IngestConfig;
use meeting_hooks::jaas::signature;

async fn create_secret(text: &str) -> String {
    emulator()
        .secretsmanager()
        .create_secret()
        .name(unique("jaas"))
        .secret_string(text)
        .send()
        .await
        .expect("create secret")
        .arn
        .expect("arn")
}

fn base_env(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("EVENTS_TABLE", "events"),
        ("JOBS_QUEUE_URL", "http://127.0.0.1/queue/jobs"),
        ("PAYLOAD_BUCKET", "payloads"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

fn signed_headers(secret: &str, now: i64, body: &[u8], auth: &str) -> ::http::HeaderMap {
    let mut h = ::http::HeaderMap::new();
    h.insert(
        signature::SIGNATURE_HEADER,
        signature::signature_header(secret, now, body)
            .parse()
            .expect("header value"),
    );
    h.insert("authorization", auth.parse().expect("header value"));
    h
}

#[tokio::test]
async fn ingest_config_reads_rotating_secrets_and_token_from_secrets_manager() {
    let arn = create_secret(
        r#"{"webhookSecrets":"whsec_new,whsec_old","authorization":"Bearer from-secrets-manager"}"#,
    )
    .await;
    // A stale plain variable must lose against the secret.
    let base = base_env(&[
        ("PROVIDER_SECRETS_ARN", arn.as_str()),
        ("JAAS_WEBHOOK_SECRETS", "whsec_stale_plain_variable"),
    ]);
    let env = secrets::env_with_secrets(&emulator().sdk, base)
        .await
        .expect("secret read");
    assert_eq!(
        env.overlay.names(),
        vec!["JAAS_AUTHORIZATION", "JAAS_WEBHOOK_SECRETS"]
    );
    assert_eq!(env.get("EVENTS_TABLE").as_deref(), Some("events"));
    let config = IngestConfig::from_env(&env).expect("config");

    let body = br#"{"eventType":"ROOM_CREATED"}"#;
    let now = 1_800_000_000;
    for secret in ["whsec_new", "whsec_old"] {
        let h = signed_headers(secret, now, body, "Bearer from-secrets-manager");
        config
            .providers
            .get("jaas")
            .expect("jaas served")
            .verify(&h, body, now)
            .unwrap_or_else(|e| panic!("{secret}: {e}"));
    }
    let stale = signed_headers(
        "whsec_stale_plain_variable",
        now,
        body,
        "Bearer from-secrets-manager",
    );
    assert!(
        config
            .providers
            .get("jaas")
            .expect("jaas")
            .verify(&stale, body, now)
            .is_err()
    );
    let wrong_token = signed_headers("whsec_new", now, body, "Bearer other");
    assert!(
        config
            .providers
            .get("jaas")
            .expect("jaas")
            .verify(&wrong_token, body, now)
            .is_err()
    );
    assert_eq!(config.providers.max_tolerance_secs(), 86_400);
}

#[tokio::test]
async fn fresh_deployment_without_webhook_secret_fails_start_with_the_variable_name() {
    // What the template creates before the operator pastes the console's whsec_ secret.
    let arn = create_secret(r#"{"webhookSecrets":"","authorization":"generatedToken123"}"#).await;
    let env =
        secrets::env_with_secrets(&emulator().sdk, base_env(&[("PROVIDER_SECRETS_ARN", &arn)]))
            .await
            .expect("secret read");
    assert_eq!(
        env.get("JAAS_AUTHORIZATION").as_deref(),
        Some("generatedToken123")
    );
    let err = IngestConfig::from_env(&env).expect_err("no webhook secret yet");
    assert!(
        matches!(err, ConfigError::Missing("JAAS_WEBHOOK_SECRETS")),
        "{err}"
    );
}

#[tokio::test]
async fn without_secrets_arn_the_plain_variables_apply_and_nothing_is_fetched() {
    // An SDK config pointing at a closed port: any fetch would fail.
    let closed = meeting_hooks::aws::emulator_config("http://127.0.0.1:9", "us-east-1");
    let env = secrets::env_with_secrets(
        &closed,
        base_env(&[("JAAS_WEBHOOK_SECRETS", "whsec_plain")]),
    )
    .await
    .expect("no fetch without PROVIDER_SECRETS_ARN");
    assert!(env.overlay.names().is_empty());
    assert_eq!(
        env.get("JAAS_WEBHOOK_SECRETS").as_deref(),
        Some("whsec_plain")
    );
    IngestConfig::from_env(&env).expect("config from plain variables");
}

#[tokio::test]
async fn unreadable_secrets_stop_the_start_with_a_reason_and_no_value() {
    let emu = emulator();
    let missing = format!(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:{}",
        unique("absent")
    );
    let err = secrets::env_with_secrets(&emu.sdk, base_env(&[("PROVIDER_SECRETS_ARN", &missing)]))
        .await
        .expect_err("absent secret");
    assert!(matches!(err, SecretsError::Fetch { .. }), "{err}");
    assert!(err.to_string().contains(&missing), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "keeps the SDK error as its source"
    );

    let typo = create_secret(r#"{"webhookSecret":"whsec_typo_leak"}"#).await;
    let err = secrets::env_with_secrets(&emu.sdk, base_env(&[("PROVIDER_SECRETS_ARN", &typo)]))
        .await
        .expect_err("unknown key");
    assert!(matches!(err, SecretsError::Malformed { .. }), "{err}");
    assert!(!err.to_string().contains("whsec_typo_leak"), "{err}");

    let binary = emu
        .secretsmanager()
        .create_secret()
        .name(unique("binary"))
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            b"whsec_x".to_vec(),
        ))
        .send()
        .await
        .expect("create binary secret")
        .arn
        .expect("arn");
    let err = secrets::env_with_secrets(&emu.sdk, base_env(&[("PROVIDER_SECRETS_ARN", &binary)]))
        .await
        .expect_err("binary secret");
    assert!(matches!(err, SecretsError::NotText { .. }), "{err}");
}
