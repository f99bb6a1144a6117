//! Daily's REST API, the two calls we need: a fresh access link for a recording or transcript
//! (asked on every copy attempt, used byte for byte, never stored or logged) and the list of
//! recent recordings (reconciliation).
//!
//! `Authorization: Bearer <API key>`; the key comes from the secret's `daily` section and
//! never reaches a log or an error text; nor does a link (errors carry no URL).

use std::time::Duration;

use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::NAME;
use crate::config::{self, ConfigError, Env};
use crate::facts::{ProviderObject, ResolveError, ResolvedLink, SourceResolver};
use crate::jobs::Link;
use crate::lenient;

/// Daily's public API.
pub const DEFAULT_BASE_URL: &str = "https://api.daily.co/v1";

/// One page of `GET /recordings` (Daily's maximum).
const PAGE: usize = 100;
/// Pages read per listing at most: 10,000 recordings.
const MAX_PAGES: usize = 100;

/// Why a call failed. Never quotes a link, the key or a response body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Daily API answered HTTP {0}")]
    Status(u16),
    #[error("Daily API request failed")]
    Transport(#[source] reqwest::Error),
    #[error("Daily API answer is not what was expected: {0}")]
    Shape(&'static str),
}

impl ApiError {
    /// Not worth retrying: the object does not exist (404) or the request is wrong (400).
    /// A refused key (401/403) is retried: a fixed secret makes the job succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Status(400 | 404 | 410))
    }
}

/// The Daily REST client.
#[derive(Debug, Clone)]
pub struct DailyApi {
    client: reqwest::Client,
    base: String,
    key: SecretString,
}

impl DailyApi {
    pub fn new(base_url: &str, key: SecretString, timeout: Duration) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(ApiError::Transport)?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            key,
        })
    }

    /// Configured when `DAILY_API_KEY` is set (from the secret's `daily.apiKey`);
    /// `DAILY_API_BASE_URL` (default [`DEFAULT_BASE_URL`]) must be https, except a loopback
    /// `http://` stand-in with `ALLOW_INSECURE_LOCAL_ORIGIN` (the local stack).
    pub fn from_env(env: &impl Env) -> Result<Option<Self>, ConfigError> {
        let Some(key) = config::secret_opt(env, "DAILY_API_KEY") else {
            return Ok(None);
        };
        let base = env
            .get("DAILY_API_BASE_URL")
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let invalid = |reason: &str| ConfigError::Invalid {
            var: "DAILY_API_BASE_URL",
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(&base).map_err(|_| invalid("not a URL"))?;
        let loopback = matches!(
            url.host(),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback()
        );
        match url.scheme() {
            "https" => {}
            "http" if loopback && config::flag(env, "ALLOW_INSECURE_LOCAL_ORIGIN")? => {}
            _ => {
                return Err(invalid(
                    "must be https (http only to loopback in the local stack)",
                ));
            }
        }
        let timeout: u64 = config::parsed_or(env, "DAILY_API_TIMEOUT_SECONDS", 10)?;
        Self::new(&base, key, Duration::from_secs(timeout.max(1)))
            .map(Some)
            .map_err(|_| invalid("HTTP client could not be built"))
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ApiError> {
        let mut url = url::Url::parse(&format!("{}{path}", self.base))
            .map_err(|_| ApiError::Shape("base URL and path do not make a URL"))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let resp = self
            .client
            .get(url)
            .bearer_auth(self.key.expose_secret())
            .send()
            .await
            .map_err(|e| ApiError::Transport(e.without_url()))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(ApiError::Status(status));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| ApiError::Transport(e.without_url()))?;
        serde_json::from_slice(&body).map_err(|_| ApiError::Shape("answer is not JSON"))
    }

    /// A fresh download link for a recording (a raw-tracks recording's track when `part`
    /// names one) or a transcript.
    pub async fn access_link(&self, object: &ProviderObject) -> Result<ResolvedLink, ApiError> {
        let id = urlencode(&object.id);
        let answer = match object.object.as_str() {
            "recording" => {
                self.get(&format!("/recordings/{id}/access-link"), &[])
                    .await?
            }
            "transcript" => {
                self.get(&format!("/transcript/{id}/access-link"), &[])
                    .await?
            }
            _ => return Err(ApiError::Shape("unknown object kind")),
        };
        link_in(&answer, object.part.as_deref())
    }

    /// Recordings that started at or after `since_ms`, newest first, every page.
    pub async fn recordings_since(
        &self,
        since_ms: i64,
    ) -> Result<Vec<Map<String, Value>>, ApiError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("limit", PAGE.to_string())];
            if let Some(a) = &after {
                query.push(("starting_after", a.clone()));
            }
            let page = self.get("/recordings", &query).await?;
            let items = page
                .get("data")
                .and_then(Value::as_array)
                .ok_or(ApiError::Shape("recordings list without `data`"))?;
            let mut older = false;
            for item in items {
                let Some(rec) = item.as_object() else {
                    continue;
                };
                let start_ms = rec
                    .get("start_ts")
                    .and_then(lenient::i64_of)
                    .map(|s| s.saturating_mul(1000));
                if start_ms.is_some_and(|s| s < since_ms) {
                    older = true;
                    continue;
                }
                out.push(rec.clone());
            }
            after = items
                .last()
                .and_then(|i| i.get("id"))
                .and_then(lenient::string_of);
            if older || items.len() < PAGE || after.is_none() {
                break;
            }
        }
        Ok(out)
    }
}

/// The link in an access-link answer: `download_link` (recordings) or `link` (transcripts);
/// for a track, the entry of `tracks` whose `s3Key` is `part`.
fn link_in(answer: &Value, part: Option<&str>) -> Result<ResolvedLink, ApiError> {
    let (holder, link) = match part {
        None => (
            answer,
            answer
                .get("download_link")
                .or_else(|| answer.get("link"))
                .and_then(Value::as_str),
        ),
        Some(part) => {
            let track = answer
                .get("tracks")
                .and_then(Value::as_array)
                .and_then(|tracks| {
                    tracks.iter().find(|t| {
                        t.get("s3Key")
                            .or_else(|| t.get("s3_key"))
                            .and_then(Value::as_str)
                            == Some(part)
                    })
                })
                .ok_or(ApiError::Shape("no link for this track"))?;
            (
                track,
                track
                    .get("download_link")
                    .or_else(|| track.get("link"))
                    .and_then(Value::as_str),
            )
        }
    };
    let link = link
        .filter(|l| !l.trim().is_empty())
        .ok_or(ApiError::Shape("no download link in the answer"))?;
    // Daily documents that `download_link` may hold an error text instead of a URL (say
    // while the domain's settings block access to recordings): a retryable shape error,
    // never a link the copier would refuse for good. The text is not quoted.
    if !url::Url::parse(link).is_ok_and(|u| matches!(u.scheme(), "https" | "http")) {
        return Err(ApiError::Shape(
            "download_link is not a URL (Daily puts an error text there when access is blocked)",
        ));
    }
    Ok(ResolvedLink {
        link: Link::new(link),
        expires_at_ms: holder
            .get("expires")
            .and_then(lenient::i64_of)
            .map(|s| s.saturating_mul(1000)),
    })
}

/// Percent-encodes an id for a path segment (ids are UUIDs; anything else stays one segment).
fn urlencode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl SourceResolver for DailyApi {
    fn resolve<'a>(
        &'a self,
        provider: &'a str,
        object: &'a ProviderObject,
    ) -> BoxFuture<'a, Result<ResolvedLink, ResolveError>> {
        Box::pin(async move {
            if provider != NAME {
                return Err(ResolveError {
                    provider: provider.to_owned(),
                    object: object.object.clone(),
                    reason: "not a Daily object".into(),
                    permanent: true,
                    source: None,
                });
            }
            self.access_link(object).await.map_err(|e| ResolveError {
                provider: provider.to_owned(),
                object: object.object.clone(),
                reason: e.to_string(),
                permanent: e.is_permanent(),
                source: Some(Box::new(e)),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_link_is_taken_byte_for_byte_and_tracks_are_found_by_key() {
        let link = "https://bucket.s3.amazonaws.com/r.mp4?X-Amz-Signature=a%2Fb&x=1";
        let got = link_in(
            &json!({"download_link": link, "expires": 1_700_000_000}),
            None,
        )
        .expect("link");
        assert_eq!(got.link.expose(), link);
        assert_eq!(got.expires_at_ms, Some(1_700_000_000_000));
        let transcript = link_in(&json!({"link": "https://t.example/x.vtt"}), None).expect("t");
        assert_eq!(transcript.link.expose(), "https://t.example/x.vtt");
        let tracks = json!({"tracks": [
            {"s3Key": "a/cam.webm", "download_link": "https://x.s3.amazonaws.com/cam"},
            {"s3Key": "a/mic.webm", "download_link": "https://x.s3.amazonaws.com/mic"}
        ]});
        assert_eq!(
            link_in(&tracks, Some("a/mic.webm"))
                .expect("mic")
                .link
                .expose(),
            "https://x.s3.amazonaws.com/mic"
        );
        assert!(link_in(&tracks, Some("a/other.webm")).is_err());
        assert!(link_in(&json!({"download_link": ""}), None).is_err());
        assert!(link_in(&json!({"download_link": 5}), None).is_err());
        // An error text where the link should be: retryable, and not quoted.
        let blocked = link_in(
            &json!({"download_link": "access to recordings is disabled for this domain"}),
            None,
        )
        .expect_err("not a link");
        assert!(!blocked.is_permanent());
        assert!(!blocked.to_string().contains("disabled"), "{blocked}");
    }

    #[test]
    fn only_missing_objects_are_permanent() {
        assert!(ApiError::Status(404).is_permanent());
        for s in [401, 403, 429, 500, 503] {
            assert!(!ApiError::Status(s).is_permanent(), "{s}");
        }
    }

    #[test]
    fn the_base_url_must_be_https_except_a_local_stand_in() {
        let env = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(DailyApi::from_env(&env(&[])).expect("ok").is_none());
        let key = ("DAILY_API_KEY", "k");
        assert!(DailyApi::from_env(&env(&[key])).expect("ok").is_some());
        let local = ("DAILY_API_BASE_URL", "http://127.0.0.1:9/v1");
        assert!(DailyApi::from_env(&env(&[key, local])).is_err());
        assert!(
            DailyApi::from_env(&env(&[key, local, ("ALLOW_INSECURE_LOCAL_ORIGIN", "true")]))
                .expect("local")
                .is_some()
        );
        let remote_http = ("DAILY_API_BASE_URL", "http://api.daily.co/v1");
        assert!(
            DailyApi::from_env(&env(&[
                key,
                remote_http,
                ("ALLOW_INSECURE_LOCAL_ORIGIN", "true")
            ]))
            .is_err()
        );
    }
}

/// Daily's recent recordings as files to reconcile: every finished recording of
/// `GET /v1/recordings`, planned exactly as its `recording.ready-to-download` webhook would be.
#[derive(Debug, Clone)]
pub struct DailyRecordings(pub DailyApi);

impl crate::reconcile::RecentFiles for DailyRecordings {
    fn provider(&self) -> &'static str {
        NAME
    }

    async fn recent_files(
        &self,
        since_ms: i64,
    ) -> Result<Vec<crate::reconcile::ListedFile>, crate::copier::ports::BoxError> {
        let recordings = self.0.recordings_since(since_ms).await?;
        let mut files = Vec::new();
        for rec in recordings {
            if rec.get("status").and_then(Value::as_str) != Some("finished") {
                continue;
            }
            let room = rec
                .get("room_name")
                .and_then(lenient::string_of)
                .filter(|r| !r.is_empty());
            let start_ms = rec
                .get("start_ts")
                .and_then(lenient::i64_of)
                .map(|s| s.saturating_mul(1000));
            let facts = crate::facts::EventFacts {
                event_type: "recording.reconciled".into(),
                room_key: room.as_deref().map(super::room_key),
                room,
                occurred_at_ms: start_ms,
                ..crate::facts::EventFacts::default()
            };
            let finished_at_ms = start_ms.unwrap_or(0).saturating_add(
                rec.get("duration")
                    .and_then(lenient::i64_of)
                    .unwrap_or(0)
                    .saturating_mul(1000),
            );
            // A recording the webhook path could not plan either (no id, no tracks) is
            // skipped here too: the webhook stored it with its reason.
            if let Ok(plans) = super::recording_plans(&rec, start_ms, &facts) {
                for plan in plans {
                    files.push(crate::reconcile::ListedFile {
                        facts: facts.clone(),
                        plan,
                        finished_at_ms,
                    });
                }
            }
        }
        Ok(files)
    }
}
