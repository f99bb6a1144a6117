//! Copy jobs: the versioned message the webhook-ingest function puts on the job queue for
//! every event that carries a downloadable file, and that the recording copier consumes.
//!
//! Links are credentials (pre-authenticated): [`Link`] never shows its query string in
//! `Debug`/`Display`, so a job can be logged without leaking it.

use serde::{Deserialize, Serialize};

use crate::jaas::{EventType, JaasEvent, lenient};

/// Current job message version. Consumers refuse versions they do not know.
pub const JOB_VERSION: u32 = 1;

/// The largest job message SQS takes (its classic 256 KiB limit).
pub const JOB_MESSAGE_MAX_BYTES: usize = 256 * 1024;

const HOUR_MS: i64 = 3_600_000;

/// The latest instant a job carries (Unix ms, year 2286: 13 digits). Payload times are
/// untrusted: anything later is clamped here so later arithmetic and sort keys stay sane.
pub const MAX_TIME_MS: i64 = 9_999_999_999_999;

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

    /// Scheme, host and port, safe to log. Parsed by the same URL parser the HTTP client
    /// uses, so the host named here is the host a request goes to (`https://a\@b/` is `a`).
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(u) => match (u.host_str(), u.port()) {
                (Some(host), Some(port)) => format!("{}://{host}:{port}/…", u.scheme()),
                (Some(host), None) => format!("{}://{host}/…", u.scheme()),
                (None, _) => format!("{}:…", u.scheme()),
            },
            Err(_) => "<not a url>".to_owned(),
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

/// Why a file event's link cannot be used. Never quotes the value (a link is a credential).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    Missing,
    /// Present but not a string (or an empty one).
    NotAString,
    /// Not an absolute `https://` URL with a host.
    NotHttps,
}

impl LinkProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::NotAString => "not a string",
            Self::NotHttps => "not an https URL",
        }
    }
}

/// An event of a file-carrying type without a usable link: stored, but nothing to copy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} {field} is {}: nothing to copy", problem.as_str())]
pub struct MissingLink {
    pub event_type: String,
    pub field: &'static str,
    pub problem: LinkProblem,
}

/// Which links make a job. JaaS's links are all https; the copier refuses anything else in
/// production, so a job for another link could only fail later, after the 2xx.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkPolicy {
    #[default]
    HttpsOnly,
    /// Development only (the local stack's `ALLOW_INSECURE_LOCAL_ORIGIN`): also `http://` to
    /// a loopback host, where the demo serves its files.
    HttpsOrLoopbackHttp,
}

impl LinkPolicy {
    fn check(self, link: &str) -> Result<(), LinkProblem> {
        let url = url::Url::parse(link).map_err(|_| LinkProblem::NotHttps)?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err(LinkProblem::NotHttps),
        };
        match (url.scheme(), self) {
            ("https", _) => Ok(()),
            ("http", Self::HttpsOrLoopbackHttp) if loopback => Ok(()),
            _ => Err(LinkProblem::NotHttps),
        }
    }
}

/// [`plan_job_with`] under [`LinkPolicy::HttpsOnly`].
pub fn plan_job(
    event: &JaasEvent,
    stored_key: &str,
    received_at_ms: i64,
) -> Result<Option<CopyJob>, MissingLink> {
    plan_job_with(event, stored_key, received_at_ms, LinkPolicy::HttpsOnly)
}

/// Decides which file (if any) an event asks us to copy. Pure: no I/O, no clock (the
/// receive time is passed in and used only when the event has no timestamp).
///
/// Reads the few fields it needs from the raw `data` by path, each on its own: a sibling
/// field that does not fit its type (which makes the typed `data` fail) never costs the
/// file. A link that is missing, not a string or not allowed by `policy` is reported as a
/// [`MissingLink`] saying which.
pub fn plan_job_with(
    event: &JaasEvent,
    stored_key: &str,
    received_at_ms: i64,
    policy: LinkPolicy,
) -> Result<Option<CopyJob>, MissingLink> {
    let data = &event.raw_data;
    let text = |name: &str| data.get(name).and_then(lenient::string_of);
    let int = |name: &str| data.get(name).and_then(lenient::i64_of);
    let link_at = |name: &str| -> Result<&str, LinkProblem> {
        let value = data.get(name).ok_or(LinkProblem::Missing)?;
        let link = value
            .as_str()
            .filter(|l| !l.trim().is_empty())
            .ok_or(LinkProblem::NotAString)?;
        policy.check(link)?;
        Ok(link)
    };
    let (kind, field) = match event.known_type() {
        Some(EventType::RecordingUploaded) => (FileKind::Recording, "preAuthenticatedLink"),
        Some(EventType::TranscriptionUploaded) => (FileKind::Transcription, "preAuthenticatedLink"),
        Some(EventType::ChatUploaded) => (FileKind::Chat, "preAuthenticatedLink"),
        Some(EventType::VideoSegmentUploaded) => (FileKind::VideoSegment, "preAuthenticatedLink"),
        Some(EventType::DocumentAdded) => (FileKind::Document, "preAuthenticatedLink"),
        Some(EventType::ScreenSharingHistory) => (FileKind::Screenshots, "preAuthenticatedLink"),
        Some(EventType::RtcstatsUploaded) => (FileKind::Rtcstats, "statsUrl"),
        _ => return Ok(None),
    };
    let link = match kind {
        // Prefer the plain list; the V2 (paginated) variant when only it is usable.
        FileKind::Screenshots => link_at(field).or_else(|problem| {
            link_at("preAuthenticatedLinkV2").map_err(|v2| match problem {
                LinkProblem::Missing => v2,
                _ => problem,
            })
        }),
        _ => link_at(field),
    };
    let link = link.map_err(|problem| MissingLink {
        event_type: event.event_type.clone(),
        field,
        problem,
    })?;
    // A non-positive expiry is nonsense: treated as absent (the default validity applies).
    let expiration = match kind {
        FileKind::Rtcstats => None,
        _ => int("linkExpiration").filter(|e| *e > 0),
    };
    let meta = match kind {
        FileKind::Recording => FileMeta {
            duration_sec: int("durationSec"),
            recording_session_id: text("recordingSessionId"),
            ..FileMeta::default()
        },
        FileKind::VideoSegment => FileMeta {
            duration_sec: match (int("startTimestamp"), int("endTimestamp")) {
                (Some(s), Some(e)) if e >= s => e.checked_sub(s).map(|d| d / 1000),
                _ => None,
            },
            recording_session_id: text("recordingSessionId"),
            ..FileMeta::default()
        },
        FileKind::Document => FileMeta {
            file_name: text("fileName"),
            file_size: int("fileSize"),
            ..FileMeta::default()
        },
        FileKind::Rtcstats => FileMeta {
            participant_id: text("participantId"),
            ..FileMeta::default()
        },
        _ => FileMeta::default(),
    };
    let event_time = event.timestamp.unwrap_or(received_at_ms);
    Ok(Some(CopyJob {
        v: JOB_VERSION,
        job_id: format!("{stored_key}/{}", kind.as_str()),
        provider: "jaas".to_owned(),
        kind,
        link: Link::new(link),
        link_expires_at: expiration
            .unwrap_or_else(|| event_time.saturating_add(kind.default_validity_ms()))
            .clamp(0, MAX_TIME_MS),
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
    fn redacted_names_the_host_the_client_connects_to() {
        let r = |u: &str| Link::new(u).redacted();
        // A backslash ends the authority for https (WHATWG, as the HTTP client parses it).
        assert_eq!(
            r("https://evil.example\\@8x8.vc/rec.mp4"),
            "https://evil.example/…"
        );
        assert_eq!(
            r("https://user:pw@8x8.vc/rec.mp4?X-Sig=secret"),
            "https://8x8.vc/…"
        );
        assert_eq!(r("https://8x8.vc:8443/a?b#c"), "https://8x8.vc:8443/…");
        assert_eq!(r("https://[::1]/x"), "https://[::1]/…");
        assert_eq!(r("not a url ?X-Sig=secret"), "<not a url>");
        for u in ["https://a.example/p?X-Sig=secret", "data:secret"] {
            assert!(!r(u).contains("secret"), "{}", r(u));
        }
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
        assert_eq!(err.problem, LinkProblem::Missing);
    }

    #[test]
    fn a_link_that_is_not_a_string_or_not_https_is_no_link_and_never_quoted() {
        let cases = [
            (
                "RECORDING_UPLOADED",
                "preAuthenticatedLink",
                "5",
                LinkProblem::NotAString,
            ),
            (
                "TRANSCRIPTION_UPLOADED",
                "preAuthenticatedLink",
                "\"  \"",
                LinkProblem::NotAString,
            ),
            (
                "CHAT_UPLOADED",
                "preAuthenticatedLink",
                "{\"u\":1}",
                LinkProblem::NotAString,
            ),
            (
                "RECORDING_UPLOADED",
                "preAuthenticatedLink",
                "\"http://x.example/r?sig=secret\"",
                LinkProblem::NotHttps,
            ),
            (
                "DOCUMENT_ADDED",
                "preAuthenticatedLink",
                "\"ftp://x.example/d?sig=secret\"",
                LinkProblem::NotHttps,
            ),
            (
                "VIDEO_SEGMENT_UPLOADED",
                "preAuthenticatedLink",
                "\"not a url sig=secret\"",
                LinkProblem::NotHttps,
            ),
            (
                "RTCSTATS_UPLOADED",
                "statsUrl",
                "\"file:///etc/passwd?sig=secret\"",
                LinkProblem::NotHttps,
            ),
            (
                "SCREEN_SHARING_HISTORY",
                "preAuthenticatedLink",
                "\"http://x.example/s?sig=secret\"",
                LinkProblem::NotHttps,
            ),
            (
                "RECORDING_UPLOADED",
                "preAuthenticatedLink",
                "\"https://?sig=secret\"",
                LinkProblem::NotHttps,
            ),
        ];
        for (ty, field, value, problem) in cases {
            let body = format!(r#"{{"eventType":"{ty}","data":{{"{field}":{value}}}}}"#);
            let ev = JaasEvent::parse(body.as_bytes()).expect("parses");
            let err = plan_job(&ev, "k", 0).expect_err(ty);
            assert_eq!((err.field, err.problem), (field, problem), "{ty} {value}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        // The local stack's demo links: http to loopback, development policy only.
        for local in [
            "http://127.0.0.1:9000/r.mp4",
            "http://localhost/r.mp4",
            "http://[::1]/r",
        ] {
            let body = format!(
                r#"{{"eventType":"RECORDING_UPLOADED","data":{{"preAuthenticatedLink":"{local}"}}}}"#
            );
            let ev = JaasEvent::parse(body.as_bytes()).expect("parses");
            assert!(plan_job(&ev, "k", 0).is_err(), "{local}");
            let job = plan_job_with(&ev, "k", 0, LinkPolicy::HttpsOrLoopbackHttp)
                .expect("allowed")
                .expect("job");
            assert_eq!(job.link.expose(), local);
        }
        let ev = JaasEvent::parse(
            br#"{"eventType":"RECORDING_UPLOADED","data":{"preAuthenticatedLink":"http://10.0.0.1/r"}}"#,
        )
        .expect("parses");
        assert!(plan_job_with(&ev, "k", 0, LinkPolicy::HttpsOrLoopbackHttp).is_err());
    }
    #[test]
    fn a_broken_sibling_field_never_costs_the_file() {
        // (type, a field that breaks typed data, expected kind)
        let cases = [
            (
                "RECORDING_UPLOADED",
                r#""participants":null"#,
                FileKind::Recording,
            ),
            (
                "TRANSCRIPTION_UPLOADED",
                r#""extra":1,"linkExpiration":{}"#,
                FileKind::Transcription,
            ),
            ("CHAT_UPLOADED", r#""linkExpiration":[1]"#, FileKind::Chat),
            (
                "VIDEO_SEGMENT_UPLOADED",
                r#""startTimestamp":{"a":1}"#,
                FileKind::VideoSegment,
            ),
            (
                "DOCUMENT_ADDED",
                r#""fileName":{"x":1}"#,
                FileKind::Document,
            ),
            (
                "SCREEN_SHARING_HISTORY",
                r#""linkExpiration":[]"#,
                FileKind::Screenshots,
            ),
            (
                "RTCSTATS_UPLOADED",
                r#""participantId":[1,2]"#,
                FileKind::Rtcstats,
            ),
        ];
        for (ty, broken, kind) in cases {
            let link_field = if kind == FileKind::Rtcstats {
                "statsUrl"
            } else {
                "preAuthenticatedLink"
            };
            let body = format!(
                r#"{{"eventType":"{ty}","timestamp":1000,"data":{{{broken},"{link_field}":"https://x.example/f"}}}}"#
            );
            let ev = JaasEvent::parse(body.as_bytes()).expect("parses");
            let job = plan_job(&ev, "k", 0)
                .unwrap_or_else(|e| panic!("{ty}: {e}"))
                .unwrap_or_else(|| panic!("{ty}: no job"));
            assert_eq!(job.kind, kind, "{ty}");
            assert_eq!(job.link.expose(), "https://x.example/f", "{ty}");
            assert_eq!(
                job.link_expires_at,
                1000 + kind.default_validity_ms(),
                "{ty}: a wrong-typed linkExpiration is absent"
            );
        }
        for participants in ["null", r#"["Jane"]"#, "{}"] {
            let body = format!(
                r#"{{"eventType":"RECORDING_UPLOADED","data":{{"participants":{participants},"preAuthenticatedLink":"https://x.example/r","durationSec":"15"}}}}"#
            );
            let ev = JaasEvent::parse(body.as_bytes()).expect("parses");
            assert!(ev.data_error.is_some(), "{participants}: still flagged");
            let job = plan_job(&ev, "k", 0).expect("plannable").expect("job");
            assert_eq!(job.meta.duration_sec, Some(15));
        }
    }

    #[test]
    fn a_link_of_the_wrong_type_is_missing() {
        let ev = JaasEvent::parse(
            br#"{"eventType":"CHAT_UPLOADED","data":{"preAuthenticatedLink":["https://x"]}}"#,
        )
        .expect("ok");
        assert!(plan_job(&ev, "k", 0).is_err());
        let ev = JaasEvent::parse(
            br#"{"eventType":"SCREEN_SHARING_HISTORY","data":{"preAuthenticatedLink":5,"preAuthenticatedLinkV2":"https://x.example/v2"}}"#,
        )
        .expect("ok");
        let job = plan_job(&ev, "k", 0).expect("ok").expect("job");
        assert_eq!(job.link.expose(), "https://x.example/v2");
    }

    fn job_with(timestamp: &str, data: &str) -> CopyJob {
        let sep = if data.is_empty() { "" } else { "," };
        let body = format!(
            r#"{{"eventType":"VIDEO_SEGMENT_UPLOADED","timestamp":{timestamp},"data":{{{data}{sep}"preAuthenticatedLink":"https://x.example/v"}}}}"#
        );
        let ev = JaasEvent::parse(body.as_bytes()).expect("parses");
        plan_job(&ev, "k", 1_000).expect("ok").expect("job")
    }

    #[test]
    fn untrusted_numbers_at_the_extremes_never_panic_or_wrap() {
        let max = i64::MAX.to_string();
        let min = i64::MIN.to_string();
        let times = [
            max.as_str(),
            min.as_str(),
            "1e30",
            "-1e30",
            r#""NaN""#,
            r#""inf""#,
            r#""1e30""#,
            "null",
        ];
        for ts in times {
            for exp in times {
                for (start, end) in [(min.as_str(), max.as_str()), (max.as_str(), min.as_str())] {
                    let job = job_with(
                        ts,
                        &format!(
                            r#""linkExpiration":{exp},"startTimestamp":{start},"endTimestamp":{end}"#
                        ),
                    );
                    assert!(
                        (0..=MAX_TIME_MS).contains(&job.link_expires_at),
                        "{ts} {exp}: {}",
                        job.link_expires_at
                    );
                    assert_eq!(job.meta.duration_sec, None, "{start}..{end}");
                }
            }
        }
        // An expiry far in the future is far in the future, not expired.
        assert_eq!(
            job_with("1", &format!(r#""linkExpiration":{max}"#)).link_expires_at,
            MAX_TIME_MS
        );
        assert_eq!(
            job_with("1", r#""linkExpiration":1e30"#).link_expires_at,
            MAX_TIME_MS
        );
        // An event time far in the future plus the validity does not wrap into the past.
        assert_eq!(job_with(&max, "").link_expires_at, MAX_TIME_MS);
        assert_eq!(job_with("1e30", "").link_expires_at, MAX_TIME_MS);
        // A negative or unreadable expiry falls back to event time + validity.
        let day = 24 * HOUR_MS;
        assert_eq!(
            job_with("5", &format!(r#""linkExpiration":{min}"#)).link_expires_at,
            5 + day
        );
        assert_eq!(
            job_with("5", r#""linkExpiration":"NaN""#).link_expires_at,
            5 + day
        );
        // A very old event time saturates instead of wrapping.
        assert_eq!(job_with(&min, "").link_expires_at, 0);
    }
}
