use http::{HeaderMap, HeaderValue};

use super::keys::{self, public_keys_in};
use super::*;
use crate::providers::Interpretation;

/// The sample key pair of `events/videosdk/` (local development only).
pub(crate) const SAMPLE_PRIVATE_KEY: &str =
    include_str!("../../../testdata/videosdk-sample-key.pem");

fn verifier_for(private: &[&str]) -> VideoSdkVerifier {
    let pems: String = private
        .iter()
        .map(|p| keys::public_pem_of(p).expect("public half"))
        .collect::<Vec<_>>()
        .join(",");
    VideoSdkVerifier::new(public_keys_in(&pems).expect("keys"))
}

fn signed(private: &str, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&keys::sign(private, body).expect("sign")).expect("header"),
    );
    h
}

fn event(body: &[u8]) -> Interpreted {
    match interpret(body, 1_000, LinkPolicy::HttpsOnly) {
        Ok(Interpretation::Event(e)) => *e,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn a_signature_over_the_raw_bytes_verifies_under_any_configured_key() {
    let (other_private, _) = keys::generate_pem_pair().expect("pair");
    let body = catalogue::DOCUMENTED_RECORDING_STOPPED.as_bytes();
    // Rotation: either key verifies.
    let both = verifier_for(&[&other_private, SAMPLE_PRIVATE_KEY]);
    both.verify(&signed(SAMPLE_PRIVATE_KEY, body), body)
        .expect("sample key");
    both.verify(&signed(&other_private, body), body)
        .expect("other key");
    // Also with `openssl dgst -sha256 -sign` semantics: PKCS#1 v1.5 is deterministic.
    assert_eq!(
        keys::sign(SAMPLE_PRIVATE_KEY, body),
        keys::sign(SAMPLE_PRIVATE_KEY, body)
    );
}

#[test]
fn forged_tampered_reserialised_unsigned_and_malformed_are_refused() {
    let verifier = verifier_for(&[SAMPLE_PRIVATE_KEY]);
    let (attacker, _) = keys::generate_pem_pair().expect("pair");
    let body = catalogue::DOCUMENTED_RECORDING_STOPPED.as_bytes();
    let code = |h: &HeaderMap, b: &[u8]| verifier.verify(h, b).expect_err("refused").code;
    assert_eq!(code(&signed(&attacker, body), body), "signature_mismatch");
    let tampered = catalogue::DOCUMENTED_RECORDING_STOPPED.replace("62d1", "62d2");
    assert_eq!(
        code(&signed(SAMPLE_PRIVATE_KEY, body), tampered.as_bytes()),
        "signature_mismatch"
    );
    // The old docs' way: re-serialised JSON is not what was signed.
    let reserialised =
        serde_json::to_vec(&crate::lenient::parse_relaxed(body).expect("relaxed")).expect("json");
    assert_eq!(
        code(&signed(SAMPLE_PRIVATE_KEY, body), &reserialised),
        "signature_mismatch"
    );
    assert_eq!(code(&HeaderMap::new(), body), "signature_missing");
    let mut h = HeaderMap::new();
    h.insert(SIGNATURE_HEADER, HeaderValue::from_static("%%%"));
    assert_eq!(code(&h, body), "signature_malformed");
    h.insert(SIGNATURE_HEADER, HeaderValue::from_static("c2hvcnQ="));
    assert_eq!(code(&h, body), "signature_mismatch");
}

#[test]
fn configuration_errors_name_no_key_material() {
    for (text, expected) in [
        ("", "no PEM block"),
        ("not a key", "no PEM block"),
        (
            "-----BEGIN PUBLIC KEY-----\n%%%\n-----END PUBLIC KEY-----",
            "not base64",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
            "not an RSA public key",
        ),
        ("-----BEGIN PUBLIC KEY-----\nAAAA", "no END line"),
        (SAMPLE_PRIVATE_KEY, "PRIVATE KEY"),
    ] {
        let err = public_keys_in(text).expect_err(text);
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains("MII"), "{err}");
    }
    let env: std::collections::HashMap<String, String> =
        [("VIDEOSDK_PUBLIC_KEYS".to_owned(), "junk".to_owned())].into();
    assert!(VideoSdkProvider::from_env(&env).is_err());
    let none: std::collections::HashMap<String, String> = Default::default();
    assert!(VideoSdkProvider::from_env(&none).expect("ok").is_none());
}

#[test]
fn the_documented_recording_sample_with_its_trailing_commas_becomes_a_job() {
    let e = event(catalogue::DOCUMENTED_RECORDING_STOPPED.as_bytes());
    assert_eq!(e.facts.event_type, "recording-stopped");
    assert_eq!(e.facts.session_id.as_deref(), Some(catalogue::SESSION_ID));
    assert_eq!(e.facts.room.as_deref(), Some(catalogue::MEETING_ID));
    assert_eq!(e.facts.room_key.as_deref(), Some("videosdk:jvsg-8rjn-j304"));
    assert_eq!(e.facts.event_id, None, "deduplicated by the body's hash");
    let plans = e.files.expect("plans");
    assert_eq!(plans.len(), 1);
    let plan = &plans[0];
    assert_eq!(plan.kind, FileKind::Recording);
    assert_eq!(
        plan.source,
        FileSource::Url(Link::new(catalogue::documented_file_url()))
    );
    assert_eq!(
        plan.meta.file_name.as_deref(),
        Some("62d148951a1eb20029fc9b05.mp4")
    );
    assert_eq!(plan.expires_at_ms, 1_000 + LINK_VALIDITY_MS);
    // The catalogue's valid-JSON form of the same recording: the same job id.
    let valid = event(
        catalogue::body_with("recording-stopped", &catalogue::documented_file_url()).as_bytes(),
    );
    assert_eq!(valid.files.expect("plans")[0].job_id, plan.job_id);
}

#[test]
fn every_documented_type_is_read_with_its_facts() {
    for (t, body) in catalogue::examples() {
        let e = event(body.as_bytes());
        assert_eq!(e.facts.event_type, t);
        assert_eq!(
            e.facts.session_id.as_deref(),
            Some(catalogue::SESSION_ID),
            "{t}"
        );
        assert_eq!(e.facts.data_error, None, "{t}");
        assert_eq!(
            e.facts.participant.is_some(),
            t.starts_with("participant-"),
            "{t}"
        );
        assert_eq!(
            e.files.as_ref().map(Vec::len),
            Ok(usize::from(t == "recording-stopped")),
            "{t}"
        );
        assert_eq!(e.facts.file_failure, t == "recording-failed", "{t}");
    }
    let started = event(catalogue::body_with("session-started", "").as_bytes());
    assert_eq!(
        started.facts.occurred_at_ms,
        crate::lenient::iso8601_ms(catalogue::START)
    );
    assert_eq!(
        started.facts.presence,
        Some(crate::facts::Presence::SessionStarted)
    );
    let ended = event(catalogue::body_with("session-ended", "").as_bytes());
    assert_eq!(
        ended.facts.occurred_at_ms,
        crate::lenient::iso8601_ms(catalogue::END)
    );
    let joined = event(catalogue::body_with("participant-joined", "").as_bytes());
    let p = joined.facts.participant.expect("participant");
    assert_eq!(
        (p.participant_id.as_deref(), p.name.as_deref()),
        (Some("p-ana"), Some("Ana"))
    );
}

#[test]
fn odd_shapes_are_read_leniently_and_never_refused() {
    // `type` alone (the server SDK's field), unknown types, a data of the wrong shape, the
    // docs' impossible time, a link that is not https: all stored, with the reason noted.
    let e = event(br#"{"type":"recording-started","data":{"meetingId":5,"sessionId":"s"}}"#);
    assert_eq!(e.facts.event_type, "recording-started");
    assert_eq!(e.facts.room.as_deref(), Some("5"));
    let e = event(br#"{"webhookType":"something-new","data":[1]}"#);
    assert_eq!(e.facts.data_error.as_deref(), Some("data is not an object"));
    let e =
        event(br#"{"webhookType":"session-started","data":{"start":"2023-10-05T15:60:35.000Z"}}"#);
    assert_eq!(
        e.facts.occurred_at_ms,
        crate::lenient::iso8601_ms("2023-10-05T16:00:35Z")
    );
    let e = event(br#"{"webhookType":"session-started","data":{"start":{"x":1}}}"#);
    assert_eq!(
        e.facts.occurred_at_ms,
        Some(1_000),
        "the receive time stands in"
    );
    for (data, problem) in [
        (
            r#"{"fileUrl":"http://cdn.videosdk.live/x.mp4"}"#,
            LinkProblem::NotHttps,
        ),
        (r#"{"fileUrl":7}"#, LinkProblem::NotAString),
        (r#"{}"#, LinkProblem::Missing),
    ] {
        let body = format!(r#"{{"webhookType":"recording-stopped","data":{data}}}"#);
        let e = event(body.as_bytes());
        assert_eq!(e.files.expect_err("no job").problem, problem, "{data}");
    }
    for (body, reason) in [
        (&b"nope"[..], "not_json"),
        (b"[1]", "not_an_object"),
        (br#"{"data":{}}"#, "missing_event_type"),
    ] {
        assert_eq!(
            interpret(body, 0, LinkPolicy::HttpsOnly),
            Err(NotAnEvent(reason))
        );
    }
}
