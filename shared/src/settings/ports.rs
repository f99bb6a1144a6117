//! The one capability settings need: a store of settings documents by [`Scope`]. The
//! DynamoDB implementation is [`crate::aws::settings::DynamoSettingsStore`].

use super::model::{Fqn, Scope, Settings, SettingsError};

/// The stored levels that apply to one room (the global default comes from config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layers {
    pub app: Option<Settings>,
    pub room: Option<Settings>,
}

/// One stored document with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSettings {
    pub scope: Scope,
    pub settings: Settings,
    /// Incremented on every write; writers state the version they read (optimistic locking,
    /// so two operators editing the same room cannot silently undo each other).
    pub version: u64,
    pub updated_at_ms: i64,
}

/// A storage failure. Messages name the operation or key; the source keeps the SDK error.
#[derive(Debug, thiserror::Error)]
pub enum SettingsStoreError {
    #[error("settings store {operation} failed")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A document that breaks a rule: refused on write; on read (an item edited by hand)
    /// treated like an outage, never as "no settings", which would open the room.
    #[error("settings under {key} are invalid")]
    Corrupt {
        key: String,
        #[source]
        source: SettingsError,
    },
    #[error("stored item {key} is malformed: {reason}")]
    Malformed { key: String, reason: &'static str },
    /// The document changed since it was read.
    #[error("settings of {scope} changed since they were read; run the command again")]
    Conflict { scope: String },
}

/// Durable settings by scope.
pub trait SettingsStore: Send + Sync {
    /// The app's defaults and the room's settings for `fqn`, in one round trip.
    fn load(&self, fqn: &Fqn) -> impl Future<Output = Result<Layers, SettingsStoreError>> + Send;

    /// One document.
    fn get(
        &self,
        scope: &Scope,
    ) -> impl Future<Output = Result<Option<StoredSettings>, SettingsStoreError>> + Send;

    /// Writes a document if the stored version is still `expected_version` (`None`: only if
    /// nothing is stored). Returns the new version.
    fn put(
        &self,
        scope: &Scope,
        settings: &Settings,
        expected_version: Option<u64>,
        now_ms: i64,
    ) -> impl Future<Output = Result<u64, SettingsStoreError>> + Send;

    /// Removes a document; true if there was one.
    fn delete(
        &self,
        scope: &Scope,
    ) -> impl Future<Output = Result<bool, SettingsStoreError>> + Send;

    /// Every document (operators' listing; a settings table holds apps and rooms, not events).
    fn list(&self) -> impl Future<Output = Result<Vec<StoredSettings>, SettingsStoreError>> + Send;
}
