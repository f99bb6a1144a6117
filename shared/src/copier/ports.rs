//! The capabilities the copier needs, one small trait each: the copy state
//! ([`CopyStateStore`], DynamoDB in `aws::copies`), the object store ([`MultipartSink`], S3 in
//! `aws::objects`), the download ([`Origin`], the SSRF-checked HTTP client in
//! [`super::origin`]) and its own job queue ([`Requeue`], SQS in `aws::queue`). Tests may wrap them (e.g. to count parts) but the logic never knows
//! which it has.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

use super::layout::ObjectMeta;
use super::policy::Refusal;
use crate::jobs::AtRisk;

use super::state::{Checkpoint, Claim, CopyResult, ListedPart, PartRecord, UploadProgress};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A copy-state write failed. `lease_lost` means the condition `owner = me` failed: another
/// copier took the job over and this one must stop.
#[derive(Debug, thiserror::Error)]
#[error("copy state {operation} failed{}", if *.lease_lost { " (lease lost)" } else { "" })]
pub struct StateError {
    pub operation: &'static str,
    pub lease_lost: bool,
    #[source]
    pub source: Option<BoxError>,
}

/// Durable per-job copy state with conditional transitions (see [`super::state`]).
pub trait CopyStateStore: Send + Sync {
    /// Takes the job if [`super::state::claim_decision`] allows it, else says why not.
    fn claim(
        &self,
        job_id: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_secs: i64,
    ) -> impl Future<Output = Result<Claim, StateError>> + Send;

    /// Records a new multipart upload (replacing any earlier one and its parts).
    fn start_upload(
        &self,
        job_id: &str,
        owner: &str,
        upload: &UploadProgress,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Records that parts `1..=checkpoint.parts` are uploaded, and renews the lease.
    fn record_checkpoint(
        &self,
        job_id: &str,
        owner: &str,
        checkpoint: &Checkpoint,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Records how many screenshots of a screenshot job are copied, and renews the lease.
    fn record_screenshots(
        &self,
        job_id: &str,
        owner: &str,
        done: usize,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Extends the lease of a job this owner holds (the copier's heartbeat), changing nothing
    /// else; fails with `lease_lost` when the job is no longer this owner's.
    fn renew_lease(
        &self,
        job_id: &str,
        owner: &str,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Gives the job back (state pending, progress kept) so the next delivery resumes at once.
    fn release(
        &self,
        job_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    fn mark_copied(
        &self,
        job_id: &str,
        owner: &str,
        result: &CopyResult,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Marks the job failed (progress removed: the upload was aborted). `permanent` failures
    /// are never claimed again; others (retries exhausted) may be, e.g. after a DLQ redrive.
    fn mark_failed(
        &self,
        job_id: &str,
        owner: &str,
        reason: &str,
        permanent: bool,
        about: &crate::jobs::FileAbout,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Records a job message that cannot be processed at all (e.g. unsupported version),
    /// unless the job is already copied or being copied.
    fn reject(
        &self,
        job_id: &str,
        reason: &str,
        now_ms: i64,
        expires_at_secs: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

/// Records that a copy is at risk of being lost ([`AtRisk`]): once per job, never for a job
/// already copied. `Ok(true)` when this call flagged it.
pub trait AtRiskFlags: Send + Sync {
    fn flag_at_risk(&self, flag: &AtRisk) -> impl Future<Output = Result<bool, StateError>> + Send;
}

/// Writes `flag` through `flags`, logging and counting a new one (`CopiesAtRisk`) and
/// logging a failed write (the caller's next look at the job writes it). `Ok(true)` when this
/// call flagged the job.
pub async fn flag_at_risk(
    flags: &impl AtRiskFlags,
    flag: &AtRisk,
    now_ms: i64,
) -> Result<bool, StateError> {
    let result = flags.flag_at_risk(flag).await;
    match &result {
        Ok(true) => {
            tracing::warn!(job_id = %flag.job_id, cause = flag.cause.as_str(), link_seconds_left = flag.link_expires_at_ms.saturating_sub(now_ms) / 1000, reason = %flag.reason, "copy at risk");
            crate::metrics::count("CopiesAtRisk", 1.0);
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(job_id = %flag.job_id, error = %crate::telemetry::chain(e), "could not flag the copy at risk");
        }
    }
    result
}

/// An object-store failure. `no_such_upload` marks an upload that no longer exists
/// (aborted, or completed by an attempt that crashed before recording it).
#[derive(Debug, thiserror::Error)]
#[error("object store {operation} failed")]
pub struct SinkError {
    pub operation: &'static str,
    pub no_such_upload: bool,
    #[source]
    pub source: BoxError,
}

/// S3-style multipart uploads into one bucket.
pub trait MultipartSink: Send + Sync {
    /// Starts an upload (SHA-256 part checksums); returns its id.
    fn create(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> impl Future<Output = Result<String, SinkError>> + Send;

    /// Uploads one part with its base64 SHA-256 (verified by the store); returns the ETag.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
        sha256_b64: &str,
    ) -> impl Future<Output = Result<String, SinkError>> + Send;

    fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartRecord],
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    fn abort(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Every part of an upload (all pages).
    fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Vec<ListedPart>, SinkError>> + Send;

    /// Stores the whole-object SHA-256 (hex) with the finished object.
    fn tag_sha256(
        &self,
        key: &str,
        sha256_hex: &str,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Size and `sha256` tag of an existing object, if any (to recognise an upload that an
    /// earlier attempt completed but could not record).
    fn existing(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(u64, Option<String>)>, SinkError>> + Send;
}

/// A job-queue call failed. Never carries a message body (it holds the link).
#[derive(Debug, thiserror::Error)]
#[error("job queue {operation} failed")]
pub struct RequeueError {
    pub operation: &'static str,
    #[source]
    pub source: BoxError,
}

/// The copier's hold on the queue its jobs come from: when a record goes back, and how a job
/// continues in a fresh message.
pub trait Requeue: Send + Sync {
    /// Makes a received message visible again `delay` from now (SQS ChangeMessageVisibility
    /// on its receipt handle), instead of after the queue's whole visibility timeout.
    fn retry_after(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> impl Future<Output = Result<(), RequeueError>> + Send;

    /// Keeps a message that is being worked on invisible for `hold` from now (the copier's
    /// heartbeat; SQS ChangeMessageVisibility, like [`Requeue::retry_after`]).
    fn hold(
        &self,
        receipt_handle: &str,
        hold: Duration,
    ) -> impl Future<Output = Result<(), RequeueError>> + Send;

    /// Sends `body` (a job message, unchanged) as a new message, visible after `delay`.
    fn continue_job(
        &self,
        job_id: &str,
        body: &str,
        delay: Duration,
    ) -> impl Future<Output = Result<(), RequeueError>> + Send;
}

/// `Content-Range: bytes <start>-<end>/<total>` of a 206 answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: Option<u64>,
}

impl ContentRange {
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.trim().strip_prefix("bytes")?.trim_start();
        let (range, total) = rest.split_once('/')?;
        let (start, end) = range.trim().split_once('-')?;
        let start: u64 = start.trim().parse().ok()?;
        let end: u64 = end.trim().parse().ok()?;
        let total = match total.trim() {
            "*" => None,
            t => Some(t.parse().ok()?),
        };
        (end >= start && total.is_none_or(|t| end < t)).then_some(Self { start, end, total })
    }
}

pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, OriginError>> + Send>>;

/// A successful (200 or 206) answer whose body is still to be read.
pub struct OriginResponse {
    /// `Some` for 206 Partial Content.
    pub range: Option<ContentRange>,
    pub content_length: Option<u64>,
    pub content_type: Option<String>,
    /// What identifies this version of the file for `If-Range` ([`if_range_validator`]).
    pub validator: Option<String>,
    /// The host that finally answered (after redirects), safe to log and store.
    pub host: String,
    pub body: BodyStream,
}

impl std::fmt::Debug for OriginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginResponse")
            .field("range", &self.range)
            .field("content_length", &self.content_length)
            .field("content_type", &self.content_type)
            .field("validator", &self.validator)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// A download failure. Messages never contain the link.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("link refused by the source policy: {0}")]
    Refused(#[from] Refusal),
    #[error("origin answered HTTP {0}")]
    Status(u16),
    #[error("more than {0} redirects")]
    TooManyRedirects(u8),
    #[error("redirect without a usable Location header")]
    BadRedirect,
    #[error("origin answered 206 with a missing or malformed Content-Range")]
    BadRange,
    #[error("origin request failed: {what}")]
    Transport {
        what: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("origin body failed")]
    Body(#[source] BoxError),
}

impl OriginError {
    /// Permanent failures are not retried: the link is refused or gone. Anything transient
    /// (5xx, 408, 429, timeouts, resets, truncated bodies) is worth another attempt.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Refused(_) | Self::TooManyRedirects(_) | Self::BadRedirect => true,
            Self::Status(s) => match *s {
                // 416 on a resume: the file changed size; start over rather than give up.
                408 | 409 | 416 | 425 | 429 => false,
                400..=499 => true,
                500..=599 => false,
                // 1xx/2xx/3xx we cannot use (e.g. 204, 304): retrying will not change them.
                _ => true,
            },
            Self::BadRange | Self::Transport { .. } | Self::Body(_) => false,
        }
    }
}

/// The validator a resume may send as `If-Range` (RFC 9110 §13.1.5): a strong ETag, else the
/// Last-Modified date. A weak ETag (`W/"…"`) must never be used with If-Range, so it falls back
/// to Last-Modified; with neither there is nothing to resume against.
pub fn if_range_validator(etag: Option<&str>, last_modified: Option<&str>) -> Option<String> {
    let strong = etag
        .map(str::trim)
        .filter(|e| e.starts_with('"') && e.ends_with('"') && e.len() >= 2);
    strong
        .or_else(|| last_modified.map(str::trim).filter(|d| !d.is_empty()))
        .map(str::to_owned)
}

/// Downloads a link from byte `from` on (a `Range` request when `from > 0`, with `If-Range`
/// when a validator is given), following and re-checking redirects against `provider`'s host
/// allow-list.
pub trait Origin: Send + Sync {
    fn fetch(
        &self,
        provider: &str,
        link: &str,
        from: u64,
        if_range: Option<&str>,
    ) -> impl Future<Output = Result<OriginResponse, OriginError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses_strictly() {
        assert_eq!(
            ContentRange::parse("bytes 10-19/20"),
            Some(ContentRange {
                start: 10,
                end: 19,
                total: Some(20)
            })
        );
        assert_eq!(
            ContentRange::parse("bytes 0-9/*").map(|r| r.total),
            Some(None)
        );
        assert_eq!(ContentRange::parse("bytes 10-19/15"), None);
        assert_eq!(ContentRange::parse("bytes */20"), None);
        assert_eq!(ContentRange::parse("items 1-2/3"), None);
    }

    #[test]
    fn if_range_uses_a_strong_etag_else_last_modified_never_a_weak_etag() {
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(
            if_range_validator(Some("\"abc\""), Some(date)).as_deref(),
            Some("\"abc\"")
        );
        assert_eq!(
            if_range_validator(Some("W/\"abc\""), Some(date)).as_deref(),
            Some(date)
        );
        assert_eq!(if_range_validator(Some("W/\"abc\""), None), None);
        assert_eq!(if_range_validator(Some("unquoted"), None), None);
        assert_eq!(if_range_validator(None, None), None);
    }

    #[test]
    fn failure_classes() {
        for s in [403, 404, 410, 401, 400] {
            assert!(OriginError::Status(s).is_permanent(), "{s}");
        }
        for s in [500, 502, 503, 504, 429, 408] {
            assert!(!OriginError::Status(s).is_permanent(), "{s}");
        }
        assert!(OriginError::Refused(Refusal::InvalidUrl).is_permanent());
        assert!(!OriginError::Body("reset".into()).is_permanent());
    }
}
