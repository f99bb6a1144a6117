//! Copy jobs: the versioned message the webhook-ingest function puts on the job queue for
//! every event that carries a downloadable file, and that the recording copier consumes.
//!
//! Links are credentials (pre-authenticated): [`Link`] never shows its query string in
//! `Debug`/`Display`, so a job can be logged without leaking it.

use serde::{Deserialize, Serialize};

use crate::jaas::{EventData, JaasEvent};

/// Current job message version. Consumers refuse versions they do not know.
pub const JOB_VERSION: u32 = 1;

const HOUR_MS: i64 = 3_600_000;

/// What kind of file a job copies. Determines the S3 key segment and link validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Recording,
    Transcription,
    Chat,
    VideoSegment,
    /// SCREEN_SHARING_HISTORY: the link returns a list of short-lived screenshot links.
    Screenshots,
    Document,
    Rtcstats,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recording => "recording",
            Self::Transcription => "transcription",
            Self::Chat => "chat",
            Self::VideoSegment => "video_segment",
            Self::Screenshots => "screenshots",
            Self::Document => "document",
            Self::Rtcstats => "rtcstats",
        }
    }

    /// How long JaaS keeps a link valid when the event does not say (PROVIDERS.md).
    pub fn default_validity_ms(self) -> i64 {
        match self {
            Self::Rtcstats => 48 * HOUR_MS,
            _ => 24 * HOUR_MS,
        }
    }
}

/// A pre-authenticated URL. Treated as a credential: only [`Link::expose`] reveals it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Link(String);

impl Link {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The full URL, for the HTTP client only. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Scheme and host, safe to log.
    pub fn redacted(&self) -> String {
        match self.0.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                // Drop userinfo if present.
                let host = host.rsplit('@').next().unwrap_or(host);
                format!("{scheme}://{host}/…")
            }
            None => "<not a url>".to_owned(),
        }
    }
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link({})", self.redacted())
    }
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// The event a job came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceEvent {
    /// The key the event is stored under (its idempotencyKey, or a derived key).
    pub stored_key: String,
    pub event_type: String,
    /// Event time, Unix ms.
    pub timestamp: i64,
}

/// Descriptive facts about the file, copied into the object's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_sec: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<String>,
}

/// One file to copy before its link dies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CopyJob {
    /// Message format version ([`JOB_VERSION`]).
    pub v: u32,
    /// Stable id: `<stored key>/<kind>`; the copier's exactly-once state is keyed on it.
    pub job_id: String,
    pub provider: String,
    pub kind: FileKind,
    pub link: Link,
    /// When the link stops working, Unix ms.
    pub link_expires_at: i64,
    pub source: SourceEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub meta: FileMeta,
}

impl CopyJob {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a CopyJob always serializes")
    }
}

/// Why a job message could not be read. The description never quotes the message's values
/// (a job carries a pre-authenticated link).
#[derive(Debug, thiserror::Error)]
pub enum JobDecodeError {
    #[error("job message is not valid JSON for version {JOB_VERSION}: {0}")]
    Invalid(String),
    #[error("job message version {0} is not supported (expected {JOB_VERSION})")]
    UnsupportedVersion(u32),
}

/// Reads a job message body, refusing unknown versions.
pub fn decode_job(body: &str) -> Result<CopyJob, JobDecodeError> {
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let invalid =
        |e: serde_json::Error| JobDecodeError::Invalid(crate::jaas::lenient::describe_error(&e));
    let Version { v } = serde_json::from_str(body).map_err(invalid)?;
    if v != JOB_VERSION {
        return Err(JobDecodeError::UnsupportedVersion(v));
    }
    serde_json::from_str(body).map_err(invalid)
}

/// An event of a file-carrying type whose link is missing: stored, but nothing to copy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} carries no {field}: nothing to copy")]
pub struct MissingLink {
    pub event_type: String,
    pub field: &'static str,
}

/// Decides which file (if any) an event asks us to copy. Pure: no I/O, no clock (the
/// receive time is passed in and used only when the event has no timestamp).
pub fn plan_job(
    event: &JaasEvent,
    stored_key: &str,
    received_at_ms: i64,
) -> Result<Option<CopyJob>, MissingLink> {
    let (kind, field, link, expiration, meta) = match &event.data {
        EventData::RecordingUploaded(d) => (
            FileKind::Recording,
            "preAuthenticatedLink",
            &d.pre_authenticated_link,
            d.link_expiration,
            FileMeta {
                duration_sec: d.duration_sec,
                recording_session_id: d.recording_session_id.clone(),
                ..FileMeta::default()
            },
        ),
        EventData::TranscriptionUploaded(d) => (
            FileKind::Transcription,
            "preAuthenticatedLink",
            &d.pre_authenticated_link,
            d.link_expiration,
            FileMeta::default(),
        ),
        EventData::ChatUploaded(d) => (
            FileKind::Chat,
            "preAuthenticatedLink",
            &d.pre_authenticated_link,
            d.link_expiration,
            FileMeta::default(),
        ),
        EventData::VideoSegmentUploaded(d) => (
            FileKind::VideoSegment,
            "preAuthenticatedLink",
            &d.pre_authenticated_link,
            d.link_expiration,
            FileMeta {
                duration_sec: match (d.start_timestamp, d.end_timestamp) {
                    (Some(s), Some(e)) if e >= s => Some((e - s) / 1000),
                    _ => None,
                },
                recording_session_id: d.recording_session_id.clone(),
                ..FileMeta::default()
            },
        ),
        EventData::DocumentAdded(d) => (
            FileKind::Document,
            "preAuthenticatedLink",
            &d.pre_authenticated_link,
            d.link_expiration,
            FileMeta {
                file_name: d.file_name.clone(),
                file_size: d.file_size,
                ..FileMeta::default()
            },
        ),
        EventData::ScreenSharingHistory(d) => (
            FileKind::Screenshots,
            "preAuthenticatedLink",
            // Prefer the plain list; the V2 (paginated) variant when only it is given.
            if d.pre_authenticated_link.is_some() {
                &d.pre_authenticated_link
            } else {
                &d.pre_authenticated_link_v2
            },
            d.link_expiration,
            FileMeta::default(),
        ),
        EventData::RtcstatsUploaded(d) => (
            FileKind::Rtcstats,
            "statsUrl",
            &d.stats_url,
            None,
            FileMeta {
                participant_id: d.participant_id.clone(),
                ..FileMeta::default()
            },
        ),
        _ => return Ok(None),
    };
    let Some(link) = link.as_deref().filter(|l| !l.trim().is_empty()) else {
        return Err(MissingLink {
            event_type: event.event_type.clone(),
            field,
        });
    };
    let event_time = event.timestamp.unwrap_or(received_at_ms);
    Ok(Some(CopyJob {
        v: JOB_VERSION,
        job_id: format!("{stored_key}/{}", kind.as_str()),
        provider: "jaas".to_owned(),
        kind,
        link: Link::new(link),
        link_expires_at: expiration.unwrap_or(event_time + kind.default_validity_ms()),
        source: SourceEvent {
            stored_key: stored_key.to_owned(),
            event_type: event.event_type.clone(),
            timestamp: event_time,
        },
        session_id: event.session_id.clone(),
        fqn: event.fqn.clone(),
        room: event.room().map(str::to_owned),
        app_id: event.app().map(str::to_owned),
        customer_id: event.customer_id.clone(),
        meta,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jaas::catalogue;

    fn job_for(section: &str) -> Option<CopyJob> {
        let ex = catalogue::example(section);
        let ev = JaasEvent::parse(ex.body.as_bytes()).expect("parses");
        plan_job(&ev, "k", 0).expect("plannable")
    }

    #[test]
    fn exactly_the_file_events_produce_jobs() {
        let with_jobs: Vec<_> = catalogue::examples()
            .into_iter()
            .filter(|ex| job_for(&ex.section).is_some())
            .map(|ex| ex.section)
            .collect();
        assert_eq!(
            with_jobs,
            [
                "TRANSCRIPTION_UPLOADED",
                "CHAT_UPLOADED",
                "RECORDING_UPLOADED",
                "SCREEN_SHARING_HISTORY",
                "VIDEO_SEGMENT_UPLOADED",
                "RTCSTATS_UPLOADED",
                "DOCUMENT_ADDED"
            ]
        );
    }

    #[test]
    fn expiry_comes_from_link_expiration_else_event_time_plus_validity() {
        let doc = job_for("DOCUMENT_ADDED").expect("job");
        assert_eq!(doc.link_expires_at, 1_751_375_450_905);
        assert_eq!(doc.meta.file_size, Some(510_460));
        let rec = job_for("RECORDING_UPLOADED").expect("job");
        assert_eq!(rec.link_expires_at, 1_600_952_817_465 + 24 * HOUR_MS);
        assert_eq!(rec.kind, FileKind::Recording);
        assert_eq!(rec.meta.duration_sec, Some(15));
        assert_eq!(rec.room.as_deref(), Some("testroom2"));
        let stats = job_for("RTCSTATS_UPLOADED").expect("job");
        assert_eq!(stats.link_expires_at, 1_659_683_984_807 + 48 * HOUR_MS);
    }

    #[test]
    fn job_round_trips_and_versions_are_checked() {
        let job = job_for("RECORDING_UPLOADED").expect("job");
        let json = job.to_json();
        assert_eq!(decode_job(&json).expect("decodes"), job);
        let v2 = json.replacen("\"v\":1", "\"v\":2", 1);
        assert!(matches!(
            decode_job(&v2),
            Err(JobDecodeError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn links_never_show_in_debug() {
        let job = job_for("RTCSTATS_UPLOADED").expect("job");
        let dbg = format!("{job:?}");
        assert!(!dbg.contains("Signature="), "{dbg}");
        assert!(dbg.contains("jitsi-micros-rtcstats-server.s3.us-west-2.amazonaws.com"));
    }

    #[test]
    fn missing_link_is_reported() {
        let ev = JaasEvent::parse(br#"{"eventType":"RECORDING_UPLOADED","data":{}}"#).expect("ok");
        let err = plan_job(&ev, "k", 0).unwrap_err();
        assert_eq!(err.field, "preAuthenticatedLink");
    }
}
