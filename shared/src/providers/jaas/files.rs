//! Which file a JaaS event asks us to copy: its file plan.

use super::{EventType, JaasEvent, lenient};
use crate::facts::{FilePlan, FileSource};
use crate::jobs::{
    CopyJob, FileKind, FileMeta, HOUR_MS, Link, LinkPolicy, LinkProblem, MAX_TIME_MS, MissingLink,
    job_from_plan,
};

/// How long JaaS keeps a link valid when the event does not say (PROVIDERS.md).
pub fn validity_ms(kind: FileKind) -> i64 {
    match kind {
        FileKind::Rtcstats => 48 * HOUR_MS,
        _ => 24 * HOUR_MS,
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

/// The copy job of `event` stored under `stored_key`, if it carries a file: its
/// [`file_plan`] made into a job the way ingest makes it.
pub fn plan_job_with(
    event: &JaasEvent,
    stored_key: &str,
    received_at_ms: i64,
    policy: LinkPolicy,
) -> Result<Option<CopyJob>, MissingLink> {
    let plan = file_plan(event, received_at_ms, policy)?;
    Ok(plan.map(|plan| {
        job_from_plan(
            super::NAME,
            &super::facts(event),
            stored_key,
            received_at_ms,
            plan,
        )
    }))
}

/// Decides which file (if any) an event asks us to copy. Pure: no I/O, no clock (the
/// receive time is passed in and used only when the event has no timestamp).
///
/// Reads the few fields it needs from the raw `data` by path, each on its own: a sibling
/// field that does not fit its type (which makes the typed `data` fail) never costs the
/// file. A link that is missing, not a string or not allowed by `policy` is reported as a
/// [`MissingLink`] saying which.
pub fn file_plan(
    event: &JaasEvent,
    received_at_ms: i64,
    policy: LinkPolicy,
) -> Result<Option<FilePlan>, MissingLink> {
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
    Ok(Some(FilePlan {
        kind,
        source: FileSource::Url(Link::new(link)),
        expires_at_ms: expiration
            .unwrap_or_else(|| event_time.saturating_add(validity_ms(kind)))
            .clamp(0, MAX_TIME_MS),
        meta,
        job_id: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jaas::catalogue;
    use crate::jobs::{JobDecodeError, decode_job};

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
        let v2 = json.replacen("\"v\":2", "\"v\":3", 1);
        assert!(matches!(
            decode_job(&v2),
            Err(JobDecodeError::UnsupportedVersion(3))
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
            assert_eq!(job.url().expect("url").expose(), local);
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
            assert_eq!(
                job.url().expect("url").expose(),
                "https://x.example/f",
                "{ty}"
            );
            assert_eq!(
                job.link_expires_at,
                1000 + validity_ms(kind),
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
        assert_eq!(job.url().expect("url").expose(), "https://x.example/v2");
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
