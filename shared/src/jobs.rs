//! Copy jobs: the versioned message the webhook-ingest function puts on the job queue for
//! every event that carries a downloadable file, and that the recording copier consumes.
//!
//! Links are credentials (pre-authenticated): [`Link`] never shows its query string in
//! `Debug`/`Display`, so a job can be logged without leaking it.

use serde::{Deserialize, Serialize};

use crate::facts::{EventFacts, FilePlan, FileSource};

/// Current job message version. Version 1 (a `link` instead of a `file` source) is still
/// read, so a job queued before an upgrade is still copied; other versions are refused.
pub const JOB_VERSION: u32 = 2;

/// The largest job message SQS takes (its classic 256 KiB limit).
pub const JOB_MESSAGE_MAX_BYTES: usize = 256 * 1024;

pub(crate) const HOUR_MS: i64 = 3_600_000;

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
    /// Where the bytes come from: a link, or a provider object resolved at copy time.
    pub file: FileSource,
    /// When the file stops being downloadable, Unix ms.
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

/// What a copied file belongs to, kept in its copy state so that the meeting events published
/// from the copies table's stream (`RecordingCopied`, `RecordingAtRisk`) can say it without
/// another read. Never a link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAbout {
    pub provider: String,
    /// `recording`, `transcription`, … ([`FileKind::as_str`]).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The stored event that announced the file, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_key: Option<String>,
}

impl FileAbout {
    pub fn of(job: &CopyJob) -> Self {
        Self {
            provider: job.provider.clone(),
            kind: job.kind.as_str().to_owned(),
            session_id: job.session_id.clone(),
            room_key: job.fqn.clone(),
            room: job.room.clone(),
            tenant: job.app_id.clone().or_else(|| job.customer_id.clone()),
            event_key: Some(job.source.stored_key.clone()).filter(|k| !k.is_empty()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a FileAbout always serializes")
    }
}

/// Why a copy still not done is flagged at risk (the `cause` of its `RecordingAtRisk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskCause {
    /// Handed back uncopied (or never queued) with its link dying within the warning window.
    LinkExpiring,
    /// The copier gave up retrying: the job waits in the dead-letter queue for a redrive.
    RetriesExhausted,
}

impl RiskCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinkExpiring => "link_expiring",
            Self::RetriesExhausted => "retries_exhausted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::LinkExpiring, Self::RetriesExhausted]
            .into_iter()
            .find(|c| c.as_str() == raw)
    }
}

/// The warning window: a copy still not done when its link has less than this left is at
/// risk. `LINK_AT_RISK_SECONDS` (default 6 h, a quarter of a JaaS link's 24 h), read by the
/// copier and the sweeper alike.
pub fn at_risk_window(
    env: &impl crate::config::Env,
) -> Result<std::time::Duration, crate::config::ConfigError> {
    let secs: u64 = crate::config::parsed_or(env, "LINK_AT_RISK_SECONDS", DEFAULT_AT_RISK_SECS)?;
    Ok(std::time::Duration::from_secs(secs))
}

pub const DEFAULT_AT_RISK_SECS: u64 = 6 * 3600;

/// A copy that may be lost: recorded once per job in its copy state (never for a copied
/// one), from where the meeting events publish `RecordingAtRisk`. Never holds a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRisk {
    pub job_id: String,
    pub cause: RiskCause,
    /// Why the copy is not done (a failure's text; never a link).
    pub reason: String,
    pub link_expires_at_ms: i64,
    pub about: FileAbout,
    /// When it was flagged, Unix ms.
    pub at_ms: i64,
}

impl AtRisk {
    pub fn new(job: &CopyJob, cause: RiskCause, reason: &str, now_ms: i64) -> Self {
        Self {
            job_id: job.job_id.clone(),
            cause,
            reason: reason.to_owned(),
            link_expires_at_ms: job.link_expires_at,
            about: FileAbout::of(job),
            at_ms: now_ms,
        }
    }

    /// `job` not copied at `now_ms`: at risk when its link dies within `window`.
    pub fn link_expiring(
        job: &CopyJob,
        reason: &str,
        now_ms: i64,
        window: std::time::Duration,
    ) -> Option<Self> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        (job.link_expires_at.saturating_sub(now_ms) < window_ms)
            .then(|| Self::new(job, RiskCause::LinkExpiring, reason, now_ms))
    }
}

impl CopyJob {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a CopyJob always serializes")
    }

    /// The link the webhook carried, for a job whose source is one.
    pub fn url(&self) -> Option<&Link> {
        match &self.file {
            FileSource::Url(link) => Some(link),
            FileSource::Object(_) => None,
        }
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

/// Reads a job message body, refusing unknown versions. A version 1 message (its link in
/// `link`) is read as the same job with a URL source.
pub fn decode_job(body: &str) -> Result<CopyJob, JobDecodeError> {
    let invalid =
        |e: serde_json::Error| JobDecodeError::Invalid(crate::lenient::describe_error(&e));
    let mut value: serde_json::Value = serde_json::from_str(body).map_err(invalid)?;
    let version = value
        .get("v")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| JobDecodeError::Invalid("no version field `v`".into()))?;
    match version {
        v if v == u64::from(JOB_VERSION) => {}
        1 => {
            let fields = value
                .as_object_mut()
                .ok_or_else(|| JobDecodeError::Invalid("not an object".into()))?;
            let link = fields
                .remove("link")
                .ok_or_else(|| JobDecodeError::Invalid("version 1 job without `link`".into()))?;
            fields.insert("file".into(), serde_json::json!({ "url": link }));
            fields.insert("v".into(), JOB_VERSION.into());
        }
        other => {
            return Err(JobDecodeError::UnsupportedVersion(
                u32::try_from(other).unwrap_or(u32::MAX),
            ));
        }
    }
    serde_json::from_value(value).map_err(invalid)
}

/// The job message kept with an event item until it is queued: the one job as its message,
/// or a JSON array of them when the event carries several files.
pub fn encode_jobs(jobs: &[CopyJob]) -> String {
    match jobs {
        [one] => one.to_json(),
        many => serde_json::to_string(many).expect("CopyJobs always serialize"),
    }
}

/// Reads what [`encode_jobs`] wrote (each job through [`decode_job`], so old versions too).
pub fn decode_jobs(body: &str) -> Result<Vec<CopyJob>, JobDecodeError> {
    if !body.trim_start().starts_with('[') {
        return decode_job(body).map(|job| vec![job]);
    }
    let items: Vec<serde_json::Value> = serde_json::from_str(body)
        .map_err(|e| JobDecodeError::Invalid(crate::lenient::describe_error(&e)))?;
    items
        .iter()
        .map(|item| decode_job(&item.to_string()))
        .collect()
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
    pub fn check(self, link: &str) -> Result<(), LinkProblem> {
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

/// The job that copies `plan`, a file of the event with `facts` stored under `stored_key`.
/// `received_at_ms` stands in for a missing event time.
pub fn job_from_plan(
    provider: &str,
    facts: &EventFacts,
    stored_key: &str,
    received_at_ms: i64,
    plan: FilePlan,
) -> CopyJob {
    let event_time = facts.occurred_at_ms.unwrap_or(received_at_ms);
    CopyJob {
        v: JOB_VERSION,
        job_id: plan
            .job_id
            .unwrap_or_else(|| format!("{stored_key}/{}", plan.kind.as_str())),
        provider: provider.to_owned(),
        kind: plan.kind,
        file: plan.source,
        link_expires_at: plan.expires_at_ms.clamp(0, MAX_TIME_MS),
        source: SourceEvent {
            stored_key: stored_key.to_owned(),
            event_type: facts.event_type.clone(),
            timestamp: event_time,
        },
        session_id: facts.session_id.clone(),
        fqn: facts.room_key.clone(),
        room: facts.room.clone(),
        app_id: facts.tenant.clone(),
        customer_id: facts.account.clone(),
        meta: plan.meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_job_still_in_a_queue_is_read_as_a_url_job() {
        let v1 = r#"{"v":1,"jobId":"k/recording","provider":"jaas","kind":"recording","link":"https://8x8.vc/r.mp4?sig=s","linkExpiresAt":5,"source":{"storedKey":"k","eventType":"RECORDING_UPLOADED","timestamp":1},"sessionId":"s","meta":{}}"#;
        let job = decode_job(v1).expect("v1 decodes");
        assert_eq!(job.v, JOB_VERSION);
        assert_eq!(
            job.url().map(Link::expose),
            Some("https://8x8.vc/r.mp4?sig=s")
        );
        assert_eq!(job.job_id, "k/recording");
        // Re-encoded, it is a current job that decodes to itself.
        assert_eq!(decode_job(&job.to_json()).expect("v2"), job);
        assert!(matches!(
            decode_job(&v1.replace(r#""v":1"#, r#""v":3"#)),
            Err(JobDecodeError::UnsupportedVersion(3))
        ));
        assert!(matches!(
            decode_job(&v1.replace(r#""link""#, r#""lnk""#)),
            Err(JobDecodeError::Invalid(_))
        ));
    }
}
