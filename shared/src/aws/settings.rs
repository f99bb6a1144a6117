//! [`SettingsStore`] on DynamoDB.
//!
//! One item per scope (`id` = `app#<appId>` or `room#<appId>/<room>`, see
//! [`crate::schema::SETTINGS`]). The validated document is kept as **one JSON string
//! attribute** `settings` rather than one attribute per field: it is read back through the
//! same parser that validated it, so a hand-edited item that breaks a rule is detected
//! (and treated as an outage, never as "no settings"), and a new setting needs no adapter
//! change. `version` and `updatedAt` support optimistic locking for operators' edits.
//!
//! The hot path, [`SettingsStore::load`], fetches the app item and the room item with one
//! `BatchGetItem`. If DynamoDB leaves keys unprocessed (throttling) we do not make a second
//! round trip: JaaS gives up after about 3 s, so the caller answers from its cache or the
//! fallback instead.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use crate::schema::settings_attr as a;
use crate::settings::model::{Fqn, Scope, Settings};
use crate::settings::ports::{Layers, SettingsStore, SettingsStoreError, StoredSettings};

/// The settings table.
#[derive(Debug, Clone)]
pub struct DynamoSettingsStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSettingsStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn unavailable<E>(operation: &'static str) -> impl FnOnce(E) -> SettingsStoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| SettingsStoreError::Unavailable {
        operation,
        source: super::boxed(e),
    }
}

fn key(scope: &Scope) -> HashMap<String, AttributeValue> {
    HashMap::from([(a::ID.to_owned(), AttributeValue::S(scope.key()))])
}

fn string_attr<'i>(
    item: &'i HashMap<String, AttributeValue>,
    name: &str,
    id: &str,
) -> Result<&'i str, SettingsStoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| SettingsStoreError::Malformed {
            key: id.to_owned(),
            reason: "a string attribute is missing",
        })
}

fn number_attr(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Reads one item back through the validating parser.
pub fn parse_item(
    item: &HashMap<String, AttributeValue>,
) -> Result<StoredSettings, SettingsStoreError> {
    let id = string_attr(item, a::ID, "?")?;
    let scope = Scope::from_key(id).map_err(|reason| SettingsStoreError::Malformed {
        key: id.to_owned(),
        reason,
    })?;
    let settings =
        Settings::from_json_str(string_attr(item, a::SETTINGS, id)?).map_err(|source| {
            SettingsStoreError::Corrupt {
                key: id.to_owned(),
                source,
            }
        })?;
    Ok(StoredSettings {
        scope,
        settings,
        version: number_attr(item, a::VERSION).max(0) as u64,
        updated_at_ms: number_attr(item, a::UPDATED_AT),
    })
}

impl SettingsStore for DynamoSettingsStore {
    async fn load(&self, fqn: &Fqn) -> Result<Layers, SettingsStoreError> {
        let app_scope = Scope::App(fqn.app().clone());
        let room_scope = Scope::Room(fqn.clone());
        let keys = KeysAndAttributes::builder()
            .keys(key(&app_scope))
            .keys(key(&room_scope))
            .build()
            .map_err(unavailable("BatchGetItem"))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, keys)
            .send()
            .await
            .map_err(unavailable("BatchGetItem"))?;
        if out
            .unprocessed_keys()
            .is_some_and(|u| u.values().any(|k| !k.keys().is_empty()))
        {
            return Err(SettingsStoreError::Malformed {
                key: room_scope.key(),
                reason: "BatchGetItem left keys unprocessed (throttled)",
            });
        }
        let mut layers = Layers::default();
        let items = out
            .responses()
            .and_then(|r| r.get(&self.table))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for item in items {
            let stored = parse_item(item)?;
            match stored.scope {
                Scope::App(_) if stored.scope == app_scope => layers.app = Some(stored.settings),
                Scope::Room(_) if stored.scope == room_scope => layers.room = Some(stored.settings),
                _ => {
                    return Err(SettingsStoreError::Malformed {
                        key: stored.scope.key(),
                        reason: "BatchGetItem returned an item that was not asked for",
                    });
                }
            }
        }
        Ok(layers)
    }

    async fn get(&self, scope: &Scope) -> Result<Option<StoredSettings>, SettingsStoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(scope)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable("GetItem"))?;
        out.item().map(parse_item).transpose()
    }

    async fn put(
        &self,
        scope: &Scope,
        settings: &Settings,
        expected_version: Option<u64>,
        now_ms: i64,
    ) -> Result<u64, SettingsStoreError> {
        // The types already guarantee each field; the cross-field rule is checked here too
        // so no caller can store a document the reader would refuse.
        settings
            .validate()
            .map_err(|source| SettingsStoreError::Corrupt {
                key: scope.key(),
                source,
            })?;
        let version = expected_version.map_or(1, |v| v + 1);
        let scope_kind = match scope {
            Scope::App(_) => "app",
            Scope::Room(_) => "room",
        };
        let req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(a::ID, AttributeValue::S(scope.key()))
            .item(a::SCOPE, AttributeValue::S(scope_kind.to_owned()))
            .item(
                a::SETTINGS,
                AttributeValue::S(settings.to_json().to_string()),
            )
            .item(a::VERSION, AttributeValue::N(version.to_string()))
            .item(a::UPDATED_AT, AttributeValue::N(now_ms.to_string()));
        // DynamoDB refuses expression names an expression does not use: one set per branch.
        let req = match expected_version {
            None => req
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", a::ID),
            // False when the item is gone too: a missing attribute compares unequal.
            Some(v) => req
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", a::VERSION)
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        match req.send().await {
            Ok(_) => Ok(version),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Err(SettingsStoreError::Conflict {
                    scope: scope.to_string(),
                })
            }
            Err(e) => Err(unavailable("PutItem")(e)),
        }
    }

    async fn delete(&self, scope: &Scope) -> Result<bool, SettingsStoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(scope)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(unavailable("DeleteItem"))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn list(&self) -> Result<Vec<StoredSettings>, SettingsStoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable("Scan"))?;
            for item in page.items() {
                out.push(parse_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out.sort_by(|x, y| x.scope.cmp(&y.scope));
        Ok(out)
    }
}
