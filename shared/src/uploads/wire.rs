//! The JSON contract of the upload-grant API, shared by the Lambda (`jibri-uploads`) and its
//! only client (`jibri-finalize` on the Jibri host), so the two cannot disagree on a field.
//!
//! ```text
//! POST /uploads/jitsi           UploadRequest  -> 200 GrantAnswer (status "upload" | "already_uploaded")
//! POST /uploads/jitsi/complete  UploadRequest  -> 200 GrantAnswer (status "completed")
//! refusals: {"error": "<code>", "reason": "<short text>"} (plus "missingParts" for parts_missing)
//! ```
//!
//! Every checksum is lowercase hex SHA-256; the API turns part checksums into the base64
//! `x-amz-checksum-sha256` header S3 wants.

use serde::{Deserialize, Serialize};

/// What the Jibri host declares about one recording file (both routes take the same body;
/// `uploadId` is required to complete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadRequest {
    /// The recording directory's name: Jibri's session id, sanitised to `[a-zA-Z0-9_-]`.
    pub session_id: String,
    /// `<callName>_<yyyy-MM-dd-HH-mm-ss>.mp4`.
    pub file_name: String,
    pub size: u64,
    /// SHA-256 of the whole file.
    pub sha256: String,
    /// Every part is this long except the last (S3: 5 MiB ..= 5 GiB, at most 10,000 parts).
    pub part_size: u64,
    /// SHA-256 of each part, part 1 first.
    pub part_sha256: Vec<String>,
    /// The upload to resume (or to complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Jibri's `metadata.json` as it is (`meeting_url`, `participants`, app-data keys).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// The deployment's MUC domain (Prosody's rooms are `<room>@<mucDomain>`), when it is not
    /// `conference.<meeting host>`: files the recording under the room Prosody's events name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muc_domain: Option<String>,
}

/// One part to send: `PUT url` with exactly these headers and the part's bytes.
/// The URL is a credential for a few minutes: never log it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartUrl {
    pub number: u32,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for PartUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartUrl")
            .field("number", &self.number)
            .field("url", &"<presigned>")
            .finish()
    }
}

/// `status` of a [`GrantAnswer`].
pub mod status {
    /// Parts to send follow (`parts`); none left: complete next.
    pub const UPLOAD: &str = "upload";
    /// The object is in the bucket with this SHA-256, verified earlier: nothing to send.
    pub const ALREADY_UPLOADED: &str = "already_uploaded";
    /// Completed and verified now (or earlier: completing twice answers the same).
    pub const COMPLETED: &str = "completed";
}

/// The successful answer of both routes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantAnswer {
    pub status: String,
    /// The object key in the recordings bucket.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
    /// Presigned `UploadPart` URLs for (the first batch of) the parts not yet uploaded.
    #[serde(default)]
    pub parts: Vec<PartUrl>,
    /// How many parts are still missing in all (more than `parts` holds when batched).
    #[serde(default)]
    pub missing_parts: u32,
    /// Seconds the URLs stay valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<u64>,
    /// The verified size and SHA-256 (already uploaded / completed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Whether `domain` may be sent as `mucDomain`: a DNS name of letters, digits, dots and
/// hyphens, at most 253 bytes. The API refuses anything else; `jibri-finalize` checks it
/// at start.
pub fn is_muc_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}
