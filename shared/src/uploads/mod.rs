//! jibri-uploads: the authenticated upload-grant API through which a self-hosted Jibri host
//! puts its recordings into the recordings bucket, with the copier's guarantees: every part
//! checked by S3 against its SHA-256, the whole object read back and its SHA-256 compared
//! before anything says "copied", a copy state in the copies table and an event in the
//! events table, idempotent throughout.
//!
//! ```text
//! jibri-finalize ──POST /uploads/jitsi──────────▶ grant: create or resume the multipart upload,
//!      │                                           presigned UploadPart URLs for missing parts
//!      ├──PUT part (x-amz-checksum-sha256)──────▶ S3 (never through the Lambda)
//!      └──POST /uploads/jitsi/complete─────────▶ complete, read back, compare SHA-256, tag,
//!                                                 copy state `copied`, event `recording-uploaded`
//! ```
//!
//! The body is described in [`wire`], checked in [`grant`] (pure), the storage reached
//! through [`ports`]. Jibri's hosts authenticate with the static bearer token of self-hosted
//! Jitsi ([`crate::auth::BearerTokens`], the secret's `jitsi.tokens`).

pub mod grant;
pub mod http;
pub mod ports;
pub mod wire;

#[cfg(test)]
mod use_case_tests;

use std::time::Duration;

use ::http::{HeaderMap, Method};
use sha2::{Digest, Sha256};
use tracing::{Instrument as _, info, warn};

use crate::config::{self, ConfigError, Env};
use crate::copier::service::STATE_RETENTION_AFTER_LINK_SECS;
use crate::copier::state::CopyResult;
use crate::ingest::ports::{EventRecord, EventStore, StoredPayload};
use crate::providers::{Refused, jitsi};
use grant::{Declared, Malformed};
use ports::{RecordingLedger, UploadBucket};
use wire::{GrantAnswer, PartUrl, status};

/// The start route; `…/complete` completes.
pub const ROUTE: &str = "/uploads/jitsi";
pub const COMPLETE_ROUTE: &str = "/uploads/jitsi/complete";

/// Typed configuration of jibri-uploads.
#[derive(Debug, Clone)]
pub struct UploadsConfig {
    pub events_table: String,
    pub copies_table: String,
    pub recordings_bucket: String,
    pub tokens: crate::auth::BearerTokens,
    /// How long a presigned part URL is valid (`UPLOAD_URL_TTL_SECONDS`, 60..=3600).
    pub url_ttl: Duration,
    /// Part URLs per answer (`UPLOAD_URLS_PER_ANSWER`): keeps the answer far below Lambda's
    /// 6 MB response limit; the client asks again for the next batch.
    pub urls_per_answer: usize,
    /// Largest recording accepted (`UPLOAD_MAX_GIB`).
    pub max_bytes: u64,
    /// Events expire with the table's TTL after this (`EVENT_RETENTION_DAYS`), if set.
    pub retention: Option<Duration>,
}

impl UploadsConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let tokens = crate::auth::BearerTokens::from_env(env, jitsi::TOKENS_VAR)?
            .ok_or(ConfigError::Missing(jitsi::TOKENS_VAR))?;
        let ttl: u64 = config::parsed_or(env, "UPLOAD_URL_TTL_SECONDS", 300)?;
        if !(60..=3600).contains(&ttl) {
            return Err(ConfigError::Invalid {
                var: "UPLOAD_URL_TTL_SECONDS",
                reason: "must be between 60 and 3600".into(),
            });
        }
        let urls: usize = config::parsed_or(env, "UPLOAD_URLS_PER_ANSWER", 100)?;
        let max_gib: u64 = config::parsed_or(env, "UPLOAD_MAX_GIB", 100)?;
        Ok(Self {
            events_table: config::required(env, "EVENTS_TABLE")?,
            copies_table: config::required(env, "COPIES_TABLE")?,
            recordings_bucket: config::required(env, "RECORDINGS_BUCKET")?,
            tokens,
            url_ttl: Duration::from_secs(ttl),
            urls_per_answer: urls.clamp(1, 1000),
            max_bytes: max_gib
                .clamp(1, 5 * 1024)
                .saturating_mul(1024 * 1024 * 1024),
            retention: config::event_retention(env)?,
        })
    }
}

/// What a request came to; [`http::response`] maps each to its answer, in one place.
#[derive(Debug)]
pub enum UploadOutcome {
    /// 200: parts to send, already uploaded, or completed.
    Answer(GrantAnswer),
    MethodNotAllowed,
    NotFound,
    /// 401: no valid bearer token. Nothing was read or stored.
    Unauthorized(Refused),
    /// 400
    Malformed(String),
    /// 413: larger than this deployment accepts.
    TooLarge,
    /// 409: completing before every part is uploaded.
    PartsMissing(Vec<u32>),
    /// 409: the upload id is unknown (aborted, expired): start again without it.
    UnknownUpload,
    /// 422: what arrived is not what was declared; the object was deleted. Start again.
    Mismatch(&'static str),
    /// 503: the bucket or a table failed; retry later.
    Unavailable(&'static str),
}

/// The upload grants over a bucket, the copy ledger and the event store.
#[derive(Debug)]
pub struct UploadService<B, L, E> {
    bucket: B,
    ledger: L,
    events: E,
    tokens: crate::auth::BearerTokens,
    url_ttl: Duration,
    urls_per_answer: usize,
    max_bytes: u64,
    retention: Option<Duration>,
}

fn unavailable<E: std::error::Error + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> UploadOutcome {
    move |e| {
        // The error chain names the SDK operation and S3/DynamoDB's code, never a URL or body.
        warn!(operation, error = %crate::copier::error_chain(&e), "storage failed");
        UploadOutcome::Unavailable(operation)
    }
}

impl<B: UploadBucket, L: RecordingLedger, E: EventStore> UploadService<B, L, E> {
    pub fn new(bucket: B, ledger: L, events: E, config: &UploadsConfig) -> Self {
        Self {
            bucket,
            ledger,
            events,
            tokens: config.tokens.clone(),
            url_ttl: config.url_ttl,
            urls_per_answer: config.urls_per_answer,
            max_bytes: config.max_bytes,
            retention: config.retention,
        }
    }

    /// One request: method, path (the route), headers and body.
    pub async fn handle(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> UploadOutcome {
        if method != Method::POST {
            return UploadOutcome::MethodNotAllowed;
        }
        if let Err(refused) = self.tokens.check(headers) {
            warn!(code = refused.code, "upload request refused");
            return UploadOutcome::Unauthorized(refused);
        }
        let path = path.trim_end_matches('/');
        let completing = if path.ends_with(COMPLETE_ROUTE) {
            true
        } else if path.ends_with(ROUTE) {
            false
        } else {
            return UploadOutcome::NotFound;
        };
        let declared = match Declared::parse(body) {
            Ok(d) => d,
            Err(Malformed(reason)) => return UploadOutcome::Malformed(reason),
        };
        if declared.size > self.max_bytes {
            return UploadOutcome::TooLarge;
        }
        let span = tracing::info_span!(
            "upload",
            session_id = %declared.session_id,
            file_name = %declared.file_name,
            completing
        );
        let result = if completing {
            self.complete(&declared, now_ms).instrument(span).await
        } else {
            self.start(&declared, now_ms).instrument(span).await
        };
        result.unwrap_or_else(|outcome| outcome)
    }

    /// Creates or resumes the upload and grants URLs for its missing parts, unless the
    /// verified object is already there.
    async fn start(&self, d: &Declared, now_ms: i64) -> Result<UploadOutcome, UploadOutcome> {
        let key = d.key();
        let existing = self
            .bucket
            .object(&key)
            .await
            .map_err(unavailable("HeadObject"))?;
        if existing
            .as_ref()
            .is_some_and(|o| o.size == d.size && o.sha256.as_deref() == Some(&d.sha256))
        {
            // Verified earlier; make sure the copy state and event exist (an earlier
            // completion may have stopped between the tag and the tables).
            self.record(d, &key, now_ms).await?;
            info!("already uploaded");
            return Ok(UploadOutcome::Answer(self.done(
                status::ALREADY_UPLOADED,
                d,
                &key,
            )));
        }
        let resumed = match &d.upload_id {
            Some(id) => self
                .bucket
                .parts(&key, id)
                .await
                .map_err(unavailable("ListParts"))?
                .map(|parts| (id.clone(), parts)),
            None => None,
        };
        let (upload_id, listed) = match resumed {
            Some(found) => found,
            // The upload is no longer open but its object of the declared size is there: a
            // completion whose read back outlasted the gateway's 30 s (or whose answer was
            // lost). Nothing to send: the host completes again, which verifies or finds the
            // recording recorded. (A new upload here would send the whole file again.)
            None if d.upload_id.is_some()
                && existing.as_ref().is_some_and(|o| o.size == d.size) =>
            {
                info!("upload already completed; awaiting its verification");
                return Ok(UploadOutcome::Answer(GrantAnswer {
                    status: status::UPLOAD.to_owned(),
                    key,
                    upload_id: d.upload_id.clone(),
                    part_size: Some(d.part_size),
                    parts: Vec::new(),
                    missing_parts: 0,
                    expires_in_seconds: Some(self.url_ttl.as_secs()),
                    bytes: None,
                    sha256: None,
                }));
            }
            None => {
                let id = self
                    .bucket
                    .create(&key, &d.object_meta())
                    .await
                    .map_err(unavailable("CreateMultipartUpload"))?;
                (id, Vec::new())
            }
        };
        let missing = d.missing(&listed);
        let mut parts: Vec<PartUrl> = Vec::new();
        for &number in missing.iter().take(self.urls_per_answer) {
            let sha = d
                .part_sha256_b64(number)
                .ok_or(UploadOutcome::Malformed("part checksum".into()))?;
            let url = self
                .bucket
                .presign_part(
                    &key,
                    &upload_id,
                    number,
                    d.part_len(number),
                    &sha,
                    self.url_ttl,
                )
                .await
                .map_err(unavailable("PresignUploadPart"))?;
            parts.push(url);
        }
        info!(
            missing = missing.len(),
            granted = parts.len(),
            resumed = !listed.is_empty(),
            "upload granted"
        );
        Ok(UploadOutcome::Answer(GrantAnswer {
            status: status::UPLOAD.to_owned(),
            key,
            upload_id: Some(upload_id),
            part_size: Some(d.part_size),
            parts,
            missing_parts: missing.len() as u32,
            expires_in_seconds: Some(self.url_ttl.as_secs()),
            bytes: None,
            sha256: None,
        }))
    }

    /// Completes, reads back, compares, records. Completing twice answers the same.
    async fn complete(&self, d: &Declared, now_ms: i64) -> Result<UploadOutcome, UploadOutcome> {
        let key = d.key();
        let Some(upload_id) = &d.upload_id else {
            return Err(UploadOutcome::Malformed(
                "uploadId is required to complete".into(),
            ));
        };
        let recorded = self
            .ledger
            .copied(&d.job_id())
            .await
            .map_err(unavailable("GetItem(copies)"))?;
        if recorded
            .as_ref()
            .is_some_and(|r| r.sha256 == d.sha256 && r.key == key && r.bytes == d.size)
        {
            self.record(d, &key, now_ms).await?;
            return Ok(UploadOutcome::Answer(self.done(status::COMPLETED, d, &key)));
        }
        match self
            .bucket
            .parts(&key, upload_id)
            .await
            .map_err(unavailable("ListParts"))?
        {
            Some(listed) => {
                let missing = d.missing(&listed);
                if !missing.is_empty() {
                    return Err(UploadOutcome::PartsMissing(missing));
                }
                let mut parts: Vec<_> = listed
                    .into_iter()
                    .filter(|p| (1..=d.parts()).contains(&p.number))
                    .collect();
                parts.sort_by_key(|p| p.number);
                parts.dedup_by_key(|p| p.number);
                self.bucket
                    .complete(&key, upload_id, &parts)
                    .await
                    .map_err(unavailable("CompleteMultipartUpload"))?;
            }
            None => {
                // Completed by an earlier call whose answer was lost, or gone.
                let existing = self
                    .bucket
                    .object(&key)
                    .await
                    .map_err(unavailable("HeadObject"))?;
                match existing {
                    None => return Err(UploadOutcome::UnknownUpload),
                    Some(o) if o.size == d.size && o.sha256.as_deref() == Some(&d.sha256) => {
                        self.record(d, &key, now_ms).await?;
                        return Ok(UploadOutcome::Answer(self.done(status::COMPLETED, d, &key)));
                    }
                    Some(_) => {}
                }
            }
        }
        let (bytes, sha256) = self
            .bucket
            .digest(&key)
            .await
            .map_err(unavailable("GetObject"))?;
        if bytes != d.size || sha256 != d.sha256 {
            let what = if bytes != d.size {
                "size_mismatch"
            } else {
                "sha256_mismatch"
            };
            warn!(
                what,
                bytes,
                declared = d.size,
                "uploaded object differs; deleting it"
            );
            self.bucket
                .delete(&key)
                .await
                .map_err(unavailable("DeleteObject"))?;
            return Err(UploadOutcome::Mismatch(what));
        }
        self.bucket
            .tag_sha256(&key, &sha256)
            .await
            .map_err(unavailable("PutObjectTagging"))?;
        self.record(d, &key, now_ms).await?;
        info!(bytes, "recording uploaded and verified");
        Ok(UploadOutcome::Answer(self.done(status::COMPLETED, d, &key)))
    }

    /// The copy state (`copied`) and the event; both idempotent.
    async fn record(&self, d: &Declared, key: &str, now_ms: i64) -> Result<(), UploadOutcome> {
        let result = CopyResult {
            key: key.to_owned(),
            bytes: d.size,
            sha256: d.sha256.clone(),
            objects: 1,
            about: Some(Box::new(d.about())),
        };
        self.ledger
            .record_copied(
                &d.job_id(),
                &result,
                now_ms,
                now_ms / 1000 + STATE_RETENTION_AFTER_LINK_SECS,
            )
            .await
            .map_err(unavailable("UpdateItem(copies)"))?;
        let payload = d.event_payload(key);
        let record = EventRecord {
            key: d.event_key(),
            provider: jitsi::NAME,
            event_type: grant::EVENT_TYPE.to_owned(),
            // Jibri's session id names the recording, not the meeting (that is in the job id
            // and the payload): the event is filed under the room, whose meeting at the time
            // the read API finds (`providers::Reading::files_without_session`).
            session_id: None,
            room_key: d.room_key(),
            room: d.room.clone(),
            tenant: d.tenant.clone(),
            timestamp_ms: now_ms,
            received_at_ms: now_ms,
            payload_sha256: hex::encode(Sha256::digest(&payload)),
            payload: StoredPayload::Inline(payload),
            indexes_room_session: true,
            job_ids: vec![d.job_id()],
            job_kinds: vec![crate::jobs::FileKind::Recording],
            // Copied and verified before it is recorded: nothing to watch
            // (`link_expires_at_ms` none), nothing to queue.
            expires_at_secs: crate::config::expires_at_secs(now_ms, self.retention),
            attempt: format!("jibri-{now_ms}"),
            ..EventRecord::default()
        };
        // `Exists`: recorded by an earlier completion of the same content. Fine.
        self.events
            .put_if_absent(&record)
            .await
            .map_err(unavailable("PutItem(events)"))?;
        Ok(())
    }

    fn done(&self, status: &str, d: &Declared, key: &str) -> GrantAnswer {
        GrantAnswer {
            status: status.to_owned(),
            key: key.to_owned(),
            upload_id: None,
            part_size: None,
            parts: Vec::new(),
            missing_parts: 0,
            expires_in_seconds: None,
            bytes: Some(d.size),
            sha256: Some(d.sha256.clone()),
        }
    }
}
