//! The machine-readable description of a running local stack (`.local/stack.json`), written by
//! `hooksctl up` and read by `hooksctl demo`, the operator commands and scripts.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Where `up` writes the file, relative to the working directory.
pub const DEFAULT_PATH: &str = ".local/stack.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    pub webhook: String,
    pub settings: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tables {
    pub events: String,
    pub settings: String,
    pub copies: String,
}

/// A provider the local stack serves: its route and local credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub route: String,
    /// The webhook secret as the provider's console shows it (Daily: base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// VideoSDK: the local key pair's private half (PEM), to sign requests as VideoSDK does
    /// (`openssl dgst -sha256 -sign <path>`); its public half is in the stack's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_path: Option<String>,
    /// The `Authorization` header value the provider sends, where one is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// Daily: the base URL of the local REST API stand-in (`…/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    /// Daily: the local API key the stand-in accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Self-hosted Jitsi: the upload-grant URL jibri-finalize uses (`JIBRI_UPLOAD_URL`; its
    /// token is the `authorization` value without `Bearer `).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_url: Option<String>,
}

/// The read API for the host application's servers (`GET /v1/…`, openapi.yaml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadApiInfo {
    /// e.g. `http://127.0.0.1:3000`: the paths of openapi.yaml follow it.
    pub base_url: String,
    /// The `Authorization` header value a local caller sends.
    pub authorization: String,
}

/// `POST /v1/jaas/token` of the local stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JaasTokenInfo {
    /// The path after `apiBaseUrl` (`/v1/jaas/token`).
    pub route: String,
    /// The `Authorization` header value a local caller sends (the read API's).
    pub authorization: String,
    /// The local JaaS API key's public half (PEM): minted tokens verify with it.
    pub public_key_path: String,
    /// The `kid` tokens carry.
    pub kid: String,
}

/// The local meeting events: the bus and the queue its subscriber rule fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingEventsInfo {
    pub bus_name: String,
    /// What a subscriber would receive (`hooksctl tail-events` reads it).
    pub subscriber_queue_url: String,
    /// Events the bus would not take (`hooksctl redrive-events`).
    pub dead_letter_queue_url: String,
}

/// Everything a script needs to drive the local stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackInfo {
    /// e.g. `http://127.0.0.1:3000`
    pub api_base_url: String,
    pub routes: Routes,
    /// The AWS endpoint (emulator) every client uses; `None` for real AWS.
    pub aws_endpoint_url: Option<String>,
    pub region: String,
    pub tables: Tables,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
    /// Recordings bucket (copied files).
    pub bucket: String,
    /// Bucket for payloads too large for an item, and quarantined bodies.
    pub payload_bucket: String,
    /// The Secrets Manager secret the functions read their credentials from.
    pub secret_arn: String,
    /// The local webhook secret (development only, never a production secret).
    pub webhook_secret: String,
    /// The local `Authorization` header value JaaS would send (development only).
    pub authorization: String,
    /// The JaaS appId the local settings endpoint accepts.
    pub app_id: String,
    /// Process id of `hooksctl up`.
    pub pid: u32,
    /// Every provider served, by route name (`jaas`, `daily`, `videosdk`).
    #[serde(default)]
    pub providers: std::collections::BTreeMap<String, ProviderInfo>,
    /// The read API (absent in files written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_api: Option<ReadApiInfo>,
    /// JaaS join tokens (absent in files written before they existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jaas_token: Option<JaasTokenInfo>,
    /// Meeting events on EventBridge (absent in files written before they existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_events: Option<MeetingEventsInfo>,
}

impl StackInfo {
    pub fn webhook_url(&self) -> String {
        format!("{}{}", self.api_base_url, self.routes.webhook)
    }

    pub fn settings_url(&self) -> String {
        format!("{}{}", self.api_base_url, self.routes.settings)
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json).with_context(|| format!("write {}", path.display()))
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read_to_string(path).with_context(|| {
            format!(
                "read {} (is `hooksctl up` / `./dev up` running?)",
                path.display()
            )
        })?;
        serde_json::from_str(&raw).with_context(|| format!("parse {}", path.display()))
    }

    /// SDK configuration for this stack's AWS side.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        match &self.aws_endpoint_url {
            Some(endpoint) => meeting_hooks::aws::emulator_config(endpoint, &self.region),
            None => meeting_hooks::aws::load_config().await,
        }
    }
}

pub fn default_path() -> PathBuf {
    PathBuf::from(DEFAULT_PATH)
}
