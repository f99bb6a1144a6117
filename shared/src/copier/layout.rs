//! Where a copied file lives in the recordings bucket, and what metadata it carries.
//!
//! Key layout (one documented place):
//!
//! ```text
//! <provider>/<appId>/<room>/<sessionId>/<kind>/<file>
//! jaas/vpaas-magic-cookie-1234/myroom/8d5a…/recording/3f9c0a1b2c4d-rec.mp4
//! ```
//!
//! - `kind` is [`FileKind::as_str`] (`recording`, `transcription`, `chat`, `video_segment`,
//!   `screenshots`, `document`, `rtcstats`).
//! - `file` is `<12 hex digits of SHA-256(jobId)>-<name>`: the prefix keeps two files of one
//!   session apart (a session can hold several recordings), and is the same for every delivery
//!   of one job, so retries overwrite rather than duplicate. `name` is the document's file
//!   name, else the last path segment of the link (never its query, which is the credential),
//!   else `<kind>`. Screenshots are `<prefix>-<index, 4 digits>-<name>`.
//! - Each segment keeps `[A-Za-z0-9._-]` and percent-encodes every other byte, so a room name
//!   cannot add path levels; a missing value is `_`.
//!
//! Metadata (`x-amz-meta-*`, ASCII only, non-ASCII percent-encoded): `job-id`, `session-id`,
//! `fqn`, `event-type`, `event-key`, `duration-sec`, `file-name`, `source-host`; the
//! `Content-Type` is the origin's (or a per-kind default). The full-object SHA-256 is known
//! only after the last byte, when the metadata of a multipart upload is already fixed: it is
//! stored as the object tag `sha256` (and in the copy state), and every part carries S3's own
//! `ChecksumSHA256`, so S3 keeps a composite checksum too.

use sha2::{Digest, Sha256};

use crate::jobs::{CopyJob, FileKind};

/// Object metadata entries (name without the `x-amz-meta-` prefix, value) plus content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: String,
    pub metadata: Vec<(String, String)>,
}

/// One path segment: `[A-Za-z0-9._-]` kept, other bytes percent-encoded; `.`/`..` escaped.
pub fn segment(raw: Option<&str>) -> String {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty());
    let Some(raw) = raw else {
        return "_".to_owned();
    };
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    // S3 keys are at most 1024 bytes; keep each segment well below.
    out.truncate(200);
    out
}

/// Printable ASCII only (S3 user metadata travels in HTTP headers): other bytes and `%` are
/// percent-encoded, so the original is recoverable.
pub fn metadata_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    cut(&mut out, 512);
    out
}

/// Truncates a percent-encoded ASCII value to at most `keep` bytes, never inside a `%XX`.
fn cut(value: &mut String, keep: usize) {
    if value.len() <= keep {
        return;
    }
    let keep = match value[..keep].rfind('%') {
        Some(pct) if keep - pct < 3 => pct,
        _ => keep,
    };
    value.truncate(keep);
}

/// The link's last path segment, percent-decoding nothing (it is re-encoded by [`segment`]).
fn link_file_name(link: &str) -> Option<String> {
    let url = url::Url::parse(link).ok()?;
    let last = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    Some(last.to_owned())
}

fn job_prefix(job_id: &str) -> String {
    hex::encode(&Sha256::digest(job_id.as_bytes())[..6])
}

/// `<provider>/<app>/<room>/<session>/<kind>/`
pub fn key_dir(job: &CopyJob) -> String {
    format!(
        "{}/{}/{}/{}/{}/",
        segment(Some(&job.provider)),
        segment(job.app_id.as_deref()),
        segment(job.room.as_deref()),
        segment(job.session_id.as_deref()),
        job.kind.as_str(),
    )
}

/// The object key of a job's file.
pub fn object_key(job: &CopyJob) -> String {
    let name = job
        .meta
        .file_name
        .clone()
        .or_else(|| job.url().and_then(|l| link_file_name(l.expose())))
        .unwrap_or_else(|| job.kind.as_str().to_owned());
    format!(
        "{}{}-{}",
        key_dir(job),
        job_prefix(&job.job_id),
        segment(Some(&name))
    )
}

/// The object key of screenshot `index` (0-based) of a SCREEN_SHARING_HISTORY job.
pub fn screenshot_key(job: &CopyJob, index: usize, link: &str) -> String {
    let name = link_file_name(link).unwrap_or_else(|| "screenshot".to_owned());
    format!(
        "{}{}-{index:04}-{}",
        key_dir(job),
        job_prefix(&job.job_id),
        segment(Some(&name))
    )
}

/// Content type when the origin sends none.
pub fn default_content_type(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Recording | FileKind::VideoSegment => "video/mp4",
        FileKind::Chat | FileKind::Transcription => "application/json",
        FileKind::Rtcstats => "application/gzip",
        FileKind::Screenshots => "image/png",
        FileKind::Document => "application/octet-stream",
    }
}

/// Metadata for a job's object. `origin_type` is the origin's Content-Type, if any.
pub fn object_meta(job: &CopyJob, origin_type: Option<&str>, source_host: &str) -> ObjectMeta {
    let content_type = origin_type
        .map(metadata_value)
        .filter(|t| !t.is_empty() && t.contains('/'))
        .unwrap_or_else(|| default_content_type(job.kind).to_owned());
    let mut metadata = vec![
        ("job-id".to_owned(), metadata_value(&job.job_id)),
        (
            "event-type".to_owned(),
            metadata_value(&job.source.event_type),
        ),
        (
            "event-key".to_owned(),
            metadata_value(&job.source.stored_key),
        ),
        ("source-host".to_owned(), metadata_value(source_host)),
    ];
    let optional = [
        ("session-id", job.session_id.clone()),
        ("fqn", job.fqn.clone()),
        ("duration-sec", job.meta.duration_sec.map(|d| d.to_string())),
        ("file-name", job.meta.file_name.clone()),
        (
            "recording-session-id",
            job.meta.recording_session_id.clone(),
        ),
        ("participant-id", job.meta.participant_id.clone()),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            metadata.push((name.to_owned(), metadata_value(&v)));
        }
    }
    fit_metadata(&mut metadata);
    ObjectMeta {
        content_type,
        metadata,
    }
}

/// S3 refuses an object whose user metadata (names and values) passes 2 KB, on every retry:
/// long payload values (a session id, a file name) must never cost the file. Counted with the
/// `x-amz-meta-` prefix, to stay clear of the limit however S3 counts.
pub const METADATA_BUDGET: usize = 2000;

fn metadata_size(metadata: &[(String, String)]) -> usize {
    metadata
        .iter()
        .map(|(k, v)| "x-amz-meta-".len() + k.len() + v.len())
        .sum()
}

/// Shortens the longest values until the metadata fits [`METADATA_BUDGET`]. Values are ASCII
/// ([`metadata_value`]); a cut never leaves half of a `%XX` escape.
fn fit_metadata(metadata: &mut [(String, String)]) {
    while metadata_size(metadata) > METADATA_BUDGET {
        let excess = metadata_size(metadata) - METADATA_BUDGET;
        let Some((_, longest)) = metadata.iter_mut().max_by_key(|(_, v)| v.len()) else {
            return;
        };
        if longest.is_empty() {
            return;
        }
        let keep = longest.len().saturating_sub(excess.max(1));
        cut(longest, keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jaas::plan_job;
    use crate::jaas::{JaasEvent, catalogue};

    fn job(section: &str) -> CopyJob {
        let ex = catalogue::example(section);
        let ev = JaasEvent::parse(ex.body.as_bytes()).expect("parses");
        plan_job(&ev, "key-1", 0).expect("ok").expect("job")
    }

    #[test]
    fn keys_follow_the_layout() {
        let rec = job("RECORDING_UPLOADED");
        let key = object_key(&rec);
        let prefix = format!(
            "jaas/{}/{}/{}/recording/",
            segment(rec.app_id.as_deref()),
            segment(rec.room.as_deref()),
            segment(rec.session_id.as_deref())
        );
        assert!(key.starts_with(&prefix), "{key}");
        assert!(!key.contains('?'), "{key}");
        assert_eq!(object_key(&rec), key, "deterministic per job");
        let doc = job("DOCUMENT_ADDED");
        assert!(object_key(&doc).contains("/document/"));
        assert!(object_key(&doc).ends_with(&segment(doc.meta.file_name.as_deref())));
    }

    #[test]
    fn segments_cannot_escape_their_level() {
        assert_eq!(segment(Some("a/b")), "a%2Fb");
        assert_eq!(segment(Some("..")), "%2E%2E");
        assert_eq!(segment(Some("räum 1")), "r%C3%A4um%201");
        assert_eq!(segment(None), "_");
        assert_eq!(segment(Some("  ")), "_");
    }

    #[test]
    fn long_payload_values_never_push_the_metadata_past_s3s_limit() {
        let mut rec = job("RECORDING_UPLOADED");
        let long = "é".repeat(700);
        rec.job_id = format!("{}/recording", "k".repeat(1100));
        rec.source.stored_key = "k".repeat(1100);
        rec.session_id = Some(long.clone());
        rec.fqn = Some(long.clone());
        rec.meta.file_name = Some(long.clone());
        rec.meta.recording_session_id = Some(long);
        let meta = object_meta(&rec, Some("video/mp4"), "objectstorage.x.oraclecloud.com");
        assert!(metadata_size(&meta.metadata) <= METADATA_BUDGET);
        let names: Vec<_> = meta.metadata.iter().map(|(k, _)| k.as_str()).collect();
        for n in [
            "job-id",
            "event-type",
            "session-id",
            "fqn",
            "file-name",
            "source-host",
        ] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        for (_, v) in &meta.metadata {
            let tail = v.rsplit('%').next().unwrap_or("");
            assert!(!v.contains('%') || tail.len() >= 2, "cut escape in {v}");
        }
        // Short values are left alone.
        let plain = object_meta(&job("RECORDING_UPLOADED"), None, "h");
        assert!(plain.metadata.iter().all(|(_, v)| v.len() < 200));
    }

    #[test]
    fn metadata_is_ascii_and_complete() {
        let rec = job("RECORDING_UPLOADED");
        let meta = object_meta(&rec, Some("video/mp4"), "objectstorage.x.oraclecloud.com");
        assert_eq!(meta.content_type, "video/mp4");
        let names: Vec<_> = meta.metadata.iter().map(|(k, _)| k.as_str()).collect();
        for n in ["job-id", "event-type", "session-id", "fqn", "duration-sec"] {
            assert!(names.contains(&n), "{n} in {names:?}");
        }
        assert_eq!(metadata_value("Zoë\n%"), "Zo%C3%AB%0A%25");
        let none = object_meta(&rec, None, "h");
        assert_eq!(none.content_type, "video/mp4");
    }
}
