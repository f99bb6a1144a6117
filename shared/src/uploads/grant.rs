//! The pure core of the upload grants: a request body becomes a [`Declared`] recording (every
//! field checked, every number bounded) or a reason; its object key, job id and event key;
//! which parts of an upload are still missing. No I/O, no SDK types.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::wire::UploadRequest;
use crate::copier::layout::{metadata_value, segment};
use crate::copier::parts::{MIB, S3_MAX_PART, S3_MAX_PARTS, S3_MIN_PART};
use crate::copier::state::ListedPart;
use crate::providers::jitsi;

/// S3's largest object (5 TiB).
pub const S3_MAX_OBJECT: u64 = 5 * 1024 * 1024 * MIB;
/// A request body: 10,000 part checksums are about 670 KB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Jibri's `metadata.json` holds a URL, a participant list and app-data keys: small.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Jibri's session ids are UUID-like; file names are at most 125 characters.
const MAX_SESSION_ID: usize = 200;
const MAX_FILE_NAME: usize = 255;
const MAX_UPLOAD_ID: usize = 1024;

/// The event type recorded for an uploaded recording.
pub const EVENT_TYPE: &str = "recording-uploaded";

/// A request the API accepts: a Jibri recording file, described by its host.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub session_id: String,
    pub file_name: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub part_size: u64,
    /// Lowercase hex, one per part.
    pub part_sha256: Vec<String>,
    pub upload_id: Option<String>,
    /// The meeting URL's host (the Jitsi deployment): the key's tenant level.
    pub tenant: Option<String>,
    /// The meeting URL's last path segment.
    pub room: Option<String>,
    /// `metadata.json` with the meeting URL's query and fragment removed (a `?jwt=` would be
    /// a credential).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Prosody's MUC domain, when the host gave one (else `conference.<tenant>`).
    pub muc_domain: Option<String>,
}

/// Why a body was refused (the text goes back to the client: it never quotes a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn bad(reason: impl Into<String>) -> Malformed {
    Malformed(reason.into())
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The number of parts of `size` bytes cut into `part_size` pieces (at least one).
pub fn part_count(size: u64, part_size: u64) -> u64 {
    size.div_ceil(part_size.max(1)).max(1)
}

impl Declared {
    /// Reads and checks a request body.
    pub fn parse(body: &[u8]) -> Result<Self, Malformed> {
        if body.len() > MAX_BODY_BYTES {
            return Err(bad("body too large"));
        }
        let req: UploadRequest = serde_json::from_slice(body).map_err(|e| {
            // serde's message can quote the input; only its position is given back.
            bad(format!(
                "not an upload request (JSON line {}, column {}: {:?})",
                e.line(),
                e.column(),
                e.classify()
            ))
        })?;
        Self::check(req)
    }

    /// Checks an already decoded request.
    pub fn check(req: UploadRequest) -> Result<Self, Malformed> {
        let session_ok = !req.session_id.is_empty()
            && req.session_id.len() <= MAX_SESSION_ID
            && req
                .session_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !session_ok {
            return Err(bad(
                "sessionId must be 1 to 200 characters of [a-zA-Z0-9_-] (the recording directory's name)",
            ));
        }
        let name = &req.file_name;
        let name_ok = !name.is_empty()
            && name.len() <= MAX_FILE_NAME
            && name != "."
            && name != ".."
            && !name
                .chars()
                .any(|c| c == '/' || c == '\\' || c.is_control());
        if !name_ok {
            return Err(bad(
                "fileName must be a plain file name of 1 to 255 characters",
            ));
        }
        if req.size == 0 || req.size > S3_MAX_OBJECT {
            return Err(bad("size must be between 1 byte and 5 TiB"));
        }
        if !is_sha256_hex(&req.sha256) {
            return Err(bad("sha256 must be 64 hex digits"));
        }
        let parts = part_count(req.size, req.part_size);
        // Every part but the last is at least 5 MiB: a file that is one part may be smaller.
        let one_part = req.part_size >= req.size;
        if req.part_size > S3_MAX_PART || (req.part_size < S3_MIN_PART && !one_part) {
            return Err(bad("partSize must be between 5 MiB and 5 GiB"));
        }
        if parts > S3_MAX_PARTS {
            return Err(bad("more than 10,000 parts: use a larger partSize"));
        }
        if req.part_sha256.len() as u64 != parts {
            return Err(bad(format!(
                "partSha256 must hold one checksum per part ({parts})"
            )));
        }
        if !req.part_sha256.iter().all(|h| is_sha256_hex(h)) {
            return Err(bad("every partSha256 must be 64 hex digits"));
        }
        if let Some(id) = &req.upload_id {
            let ok = !id.is_empty()
                && id.len() <= MAX_UPLOAD_ID
                && id.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(bad("uploadId is not an upload id"));
            }
        }
        let mut metadata = req.metadata;
        let (tenant, room) = match metadata.get("meeting_url").and_then(|v| v.as_str()) {
            Some(raw) => match url::Url::parse(raw) {
                Ok(mut url) => {
                    url.set_query(None);
                    url.set_fragment(None);
                    let room = url
                        .path_segments()
                        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
                        .map(str::to_owned);
                    let tenant = url.host_str().map(str::to_ascii_lowercase);
                    metadata.insert("meeting_url".into(), url.as_str().into());
                    (tenant, room)
                }
                Err(_) => {
                    metadata.remove("meeting_url");
                    (None, None)
                }
            },
            None => (None, None),
        };
        if req
            .muc_domain
            .as_deref()
            .is_some_and(|d| !super::wire::is_muc_domain(d))
        {
            return Err(bad("mucDomain is not a domain name"));
        }
        let metadata_len = serde_json::to_vec(&metadata).map(|v| v.len()).unwrap_or(0);
        if metadata_len > MAX_METADATA_BYTES {
            return Err(bad("metadata larger than 64 KiB"));
        }
        Ok(Self {
            session_id: req.session_id,
            file_name: req.file_name,
            size: req.size,
            sha256: req.sha256.to_ascii_lowercase(),
            part_size: req.part_size,
            part_sha256: req
                .part_sha256
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            upload_id: req.upload_id,
            tenant,
            room,
            metadata,
            muc_domain: req.muc_domain,
        })
    }

    pub fn parts(&self) -> u32 {
        // Bounded by S3_MAX_PARTS in `check`.
        self.part_sha256.len() as u32
    }

    /// Length of part `number` (1-based): `part_size`, the last one the rest.
    pub fn part_len(&self, number: u32) -> u64 {
        let start = u64::from(number.saturating_sub(1)).saturating_mul(self.part_size);
        self.size.saturating_sub(start).min(self.part_size)
    }

    /// The base64 SHA-256 of part `number`, as S3's `x-amz-checksum-sha256` carries it.
    pub fn part_sha256_b64(&self, number: u32) -> Option<String> {
        let hex = self.part_sha256.get(number.checked_sub(1)? as usize)?;
        let raw = hex::decode(hex).ok()?;
        Some(base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// The copy-state job id: `jitsi:recording:<session>/<file name>`.
    /// What the recording belongs to (its copy state keeps it; meeting events read it).
    pub fn about(&self) -> crate::jobs::FileAbout {
        crate::jobs::FileAbout {
            provider: jitsi::NAME.to_owned(),
            kind: crate::jobs::FileKind::Recording.as_str().to_owned(),
            session_id: Some(self.session_id.clone()),
            room_key: self.room_key(),
            room: self.room.clone(),
            tenant: self.tenant.clone(),
            event_key: None,
        }
    }

    pub fn job_id(&self) -> String {
        format!(
            "{}:recording:{}/{}",
            jitsi::NAME,
            self.session_id,
            self.file_name
        )
    }

    /// The event's dedup key: one event per recorded content.
    pub fn event_key(&self) -> String {
        format!("{}:{EVENT_TYPE}:{}", jitsi::NAME, self.sha256)
    }

    /// The object key, in the copier's layout:
    /// `jitsi/<host>/<room>/<session>/recording/<12 hex of SHA-256(jobId)>-<file name>`.
    pub fn key(&self) -> String {
        let prefix = hex::encode(&Sha256::digest(self.job_id().as_bytes())[..6]);
        format!(
            "{}/{}/{}/{}/recording/{prefix}-{}",
            jitsi::NAME,
            segment(self.tenant.as_deref()),
            segment(self.room.as_deref()),
            segment(Some(&self.session_id)),
            segment(Some(&self.file_name)),
        )
    }

    /// The room's identity for the events table: the key Prosody's events give the room,
    /// `jitsi:<room>@<MUC domain>` (room names are lowercase in JIDs; the MUC domain is
    /// `conference.<meeting host>` unless the host says otherwise), so that the read API
    /// files the recording under the meeting the room held when it was made.
    pub fn room_key(&self) -> Option<String> {
        let room = self.room.as_deref()?.to_lowercase();
        let domain = match &self.muc_domain {
            Some(d) => d.to_ascii_lowercase(),
            None => format!("conference.{}", self.tenant.as_deref()?),
        };
        Some(jitsi::room_key(&format!("{room}@{domain}")))
    }

    /// Content type and `x-amz-meta-*` of the object.
    pub fn object_meta(&self) -> crate::copier::layout::ObjectMeta {
        let content_type = if self.file_name.to_ascii_lowercase().ends_with(".mp4") {
            "video/mp4"
        } else {
            "application/octet-stream"
        };
        let mut metadata = vec![
            ("job-id".to_owned(), metadata_value(&self.job_id())),
            ("session-id".to_owned(), metadata_value(&self.session_id)),
            ("file-name".to_owned(), metadata_value(&self.file_name)),
            ("event-type".to_owned(), EVENT_TYPE.to_owned()),
            ("source-host".to_owned(), "jibri".to_owned()),
        ];
        if let Some(room) = &self.room {
            metadata.push(("room".to_owned(), metadata_value(room)));
        }
        crate::copier::layout::ObjectMeta {
            content_type: content_type.to_owned(),
            metadata,
        }
    }

    /// The event's payload: what was recorded, deterministic (a repeated completion writes
    /// the same bytes).
    pub fn event_payload(&self, key: &str) -> Vec<u8> {
        serde_json::json!({
            "sessionId": self.session_id,
            "fileName": self.file_name,
            "key": key,
            "bytes": self.size,
            "sha256": self.sha256,
            "jobId": self.job_id(),
            "metadata": self.metadata,
        })
        .to_string()
        .into_bytes()
    }

    /// Parts `1..=parts()` not yet uploaded as declared: absent from the listing, of another
    /// size, or carrying another checksum than the declared one (sent again, replacing it).
    pub fn missing(&self, listed: &[ListedPart]) -> Vec<u32> {
        (1..=self.parts())
            .filter(|&n| {
                !listed.iter().any(|p| {
                    p.number == n
                        && p.size == self.part_len(n)
                        && p.sha256
                            .as_ref()
                            .is_none_or(|s| Some(s) == self.part_sha256_b64(n).as_ref())
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn request(size: u64, part_size: u64) -> UploadRequest {
        let parts = part_count(size, part_size) as usize;
        UploadRequest {
            muc_domain: None,
            session_id: "abc_DEF-123".into(),
            file_name: "room1_2026-01-02-03-04-05.mp4".into(),
            size,
            sha256: "A".repeat(64),
            part_size,
            part_sha256: vec!["b".repeat(64); parts],
            upload_id: None,
            metadata: serde_json::json!({
                "meeting_url": "https://meet.example.com/Team/Room1?jwt=secret#x",
                "participants": [{"id": "p1"}],
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        }
    }

    #[test]
    fn a_jibri_request_becomes_a_key_in_our_layout() {
        let d = Declared::check(request(12 * MIB, 5 * MIB)).expect("ok");
        assert_eq!(d.parts(), 3);
        assert_eq!(d.part_len(1), 5 * MIB);
        assert_eq!(d.part_len(3), 2 * MIB);
        assert_eq!(d.sha256, "a".repeat(64));
        assert_eq!(d.room.as_deref(), Some("Room1"));
        assert_eq!(d.tenant.as_deref(), Some("meet.example.com"));
        let key = d.key();
        assert!(
            key.starts_with("jitsi/meet.example.com/Room1/abc_DEF-123/recording/"),
            "{key}"
        );
        assert!(key.ends_with("-room1_2026-01-02-03-04-05.mp4"), "{key}");
        assert_eq!(
            d.job_id(),
            "jitsi:recording:abc_DEF-123/room1_2026-01-02-03-04-05.mp4"
        );
        assert_eq!(
            d.event_key(),
            format!("jitsi:recording-uploaded:{}", "a".repeat(64))
        );
        // The meeting URL's query (a JWT) is never kept.
        let payload = String::from_utf8(d.event_payload(&key)).expect("utf-8");
        assert!(!payload.contains("secret"), "{payload}");
        assert_eq!(
            d.part_sha256_b64(1).as_deref(),
            Some("u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7u7s=")
        );
    }

    #[test]
    fn numbers_and_names_are_bounded() {
        let refused = |f: &dyn Fn(&mut UploadRequest)| {
            let mut r = request(12 * MIB, 5 * MIB);
            f(&mut r);
            Declared::check(r).expect_err("refused").0
        };
        assert!(refused(&|r| r.session_id = "../etc".into()).contains("sessionId"));
        assert!(refused(&|r| r.session_id = String::new()).contains("sessionId"));
        assert!(refused(&|r| r.file_name = "a/b.mp4".into()).contains("fileName"));
        assert!(refused(&|r| r.file_name = "..".into()).contains("fileName"));
        assert!(refused(&|r| r.size = 0).contains("size"));
        assert!(refused(&|r| r.size = u64::MAX).contains("size"));
        assert!(refused(&|r| r.sha256 = "zz".into()).contains("sha256"));
        assert!(refused(&|r| r.part_size = MIB).contains("partSize"));
        assert!(refused(&|r| r.part_size = u64::MAX).contains("partSize"));
        assert!(refused(&|r| r.part_sha256.pop().map(drop).unwrap_or(())).contains("partSha256"));
        assert!(refused(&|r| r.part_sha256[0] = "x".repeat(64)).contains("partSha256"));
        assert!(refused(&|r| r.upload_id = Some("a b".into())).contains("uploadId"));
        assert!(
            refused(&|r| {
                r.metadata
                    .insert("big".into(), "x".repeat(MAX_METADATA_BYTES).into());
            })
            .contains("metadata")
        );
        // 10,001 parts of 5 MiB.
        let mut r = request(10_001 * 5 * MIB, 5 * MIB);
        r.part_sha256 = vec![];
        assert!(
            Declared::check(r)
                .expect_err("refused")
                .0
                .contains("10,000")
        );
        // A small file is one part, whatever its size.
        let small = Declared::check(request(1000, 1000)).expect("one small part");
        assert_eq!((small.parts(), small.part_len(1)), (1, 1000));
        // Garbage and oversized bodies.
        assert!(Declared::parse(b"{").is_err());
        assert!(Declared::parse(&vec![b' '; MAX_BODY_BYTES + 1]).is_err());
        let err = Declared::parse(br#"{"sessionId": "secret-value", "size": "x"}"#)
            .expect_err("refused")
            .0;
        assert!(!err.contains("secret-value"), "{err}");
    }

    #[test]
    fn missing_parts_are_the_absent_the_short_and_the_wrongly_summed() {
        let d = Declared::check(request(12 * MIB, 5 * MIB)).expect("ok");
        let good = |n: u32| ListedPart {
            number: n,
            etag: format!("e{n}"),
            size: d.part_len(n),
            sha256: d.part_sha256_b64(n),
        };
        assert_eq!(d.missing(&[]), vec![1, 2, 3]);
        assert_eq!(d.missing(&[good(1), good(2), good(3)]), Vec::<u32>::new());
        let short = ListedPart { size: 1, ..good(2) };
        let other_sum = ListedPart {
            sha256: Some("AAAA".into()),
            ..good(3)
        };
        assert_eq!(d.missing(&[good(1), short, other_sum]), vec![2, 3]);
        // A listing without checksums is judged by size.
        let unsummed = ListedPart {
            sha256: None,
            ..good(1)
        };
        assert_eq!(d.missing(&[unsummed, good(2)]), vec![3]);
    }
}
