//! The capabilities the upload grants need, one small trait each: the recordings bucket
//! ([`UploadBucket`], S3 in `aws::uploads`) and the copy ledger ([`RecordingLedger`], the
//! copies table in `aws::uploads`). The event is written through ingest's
//! [`crate::ingest::ports::EventStore`], the same conditional write every webhook event takes.

use std::time::Duration;

use crate::copier::layout::ObjectMeta;
use crate::copier::ports::{SinkError, StateError};
use crate::copier::state::{CopyResult, ListedPart};
use crate::uploads::wire::PartUrl;

/// An object as the bucket holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The `sha256` tag: set only after the content was read back and verified.
    pub sha256: Option<String>,
}

/// The recordings bucket, as the upload grants use it: uploads the client feeds through
/// presigned part URLs, and the reading back that proves what arrived.
pub trait UploadBucket: Send + Sync {
    /// Size and `sha256` tag of the object, if there is one.
    fn object(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<ObjectInfo>, SinkError>> + Send;

    /// Starts a multipart upload with SHA-256 part checksums; returns its id.
    fn create(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> impl Future<Output = Result<String, SinkError>> + Send;

    /// The parts of an upload; `None` when the upload does not exist (completed or aborted).
    fn parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<ListedPart>>, SinkError>> + Send;

    /// A URL that uploads part `number` of `len` bytes for `ttl`, valid only with the part's
    /// SHA-256 (`x-amz-checksum-sha256`, base64) and length: S3 refuses other bytes.
    fn presign_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        len: u64,
        sha256_b64: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<PartUrl, SinkError>> + Send;

    /// Completes the upload from the listed parts (each with its ETag and checksum).
    fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ListedPart],
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Reads the whole object back, streaming: its length and hex SHA-256 (S3 keeps no
    /// full-object SHA-256 of a multipart upload).
    fn digest(&self, key: &str) -> impl Future<Output = Result<(u64, String), SinkError>> + Send;

    fn tag_sha256(
        &self,
        key: &str,
        sha256_hex: &str,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    fn delete(&self, key: &str) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// The copies table as the upload grants use it: a finished recording is recorded in the
/// shape the copier writes (`copied`, key, bytes, sha256).
pub trait RecordingLedger: Send + Sync {
    /// The recorded result of a job that is `copied`, if it is.
    fn copied(
        &self,
        job_id: &str,
    ) -> impl Future<Output = Result<Option<CopyResult>, StateError>> + Send;

    /// Records the job as `copied` with this result (whatever it was before: the object was
    /// just verified, and this is what the bucket now holds).
    fn record_copied(
        &self,
        job_id: &str,
        result: &CopyResult,
        now_ms: i64,
        expires_at_secs: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}
