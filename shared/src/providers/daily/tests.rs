use super::*;
use crate::facts::FileSource;

const SECRET: &str = "c2VjcmV0LWtleS1vZi10aGUtdGVzdHM="; // base64("secret-key-of-the-tests")
const NOW: i64 = 1_708_972_900;

fn verifier(secrets: &[&str], basic: Option<&str>) -> DailyVerifier {
    DailyVerifier::new(
        &secrets
            .iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect::<Vec<_>>(),
        Duration::from_secs(300),
        basic.map(|b| SecretString::from(b.to_owned())),
    )
    .expect("valid secrets")
}

fn signed(secret: &str, ts: &str, body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(SIGNATURE_HEADER, sign(secret, ts, body).parse().expect("h"));
    h.insert(TIMESTAMP_HEADER, ts.parse().expect("h"));
    h
}

#[test]
fn a_known_answer_signature_verifies_over_the_raw_bytes() {
    // Computed independently: printf '1708972900.{"test":"test"}' |
    //   openssl dgst -sha256 -hmac secret-key-of-the-tests -binary | base64
    let body = br#"{"test":"test"}"#;
    let expected = "f+UA5Hv3GP65upS0qXT5ON7XJOUoToQ2PeEFa86Qe94=";
    assert_eq!(sign(SECRET, "1708972900", body), expected);
    let mut h = HeaderMap::new();
    h.insert(SIGNATURE_HEADER, expected.parse().expect("h"));
    h.insert(TIMESTAMP_HEADER, "1708972900".parse().expect("h"));
    verifier(&[SECRET], None)
        .verify(&h, body, NOW)
        .expect("verifies");
    // One byte more (a re-serialised body) does not.
    let err = verifier(&[SECRET], None)
        .verify(&h, br#"{"test": "test"}"#, NOW)
        .expect_err("other bytes");
    assert_eq!(err.code, "signature_mismatch");
}

#[test]
fn forged_stale_unsigned_and_wrong_second_factor_are_refused_with_a_reason() {
    let body = catalogue::body("meeting.started", "ev-x", 1_708_972_800.5);
    let body = body.as_bytes();
    let v = verifier(&[SECRET], None);
    let ok = signed(SECRET, "1708972900", body);
    v.verify(&ok, body, NOW).expect("valid");
    let cases: Vec<(HeaderMap, &str)> = vec![
        (HeaderMap::new(), "signature_missing"),
        (signed("b3RoZXI=", "1708972900", body), "signature_mismatch"),
        (signed(SECRET, "1708960000", body), "signature_stale"),
        (signed(SECRET, "soon", body), "timestamp_malformed"),
        (
            {
                let mut h = ok.clone();
                h.insert(SIGNATURE_HEADER, "%%%".parse().expect("h"));
                h
            },
            "signature_malformed",
        ),
        (
            {
                let mut h = ok.clone();
                h.remove(TIMESTAMP_HEADER);
                h
            },
            "timestamp_missing",
        ),
    ];
    for (headers, code) in cases {
        let err = v.verify(&headers, body, NOW).expect_err(code);
        assert_eq!(err.code, code);
        assert!(!err.message.contains(SECRET));
    }
    // Milliseconds in the timestamp header are read as such.
    v.verify(&signed(SECRET, "1708972900123", body), body, NOW)
        .expect("ms timestamp");
    // Basic second factor.
    let with_basic = verifier(&[SECRET], Some("dXNlcjpwdw=="));
    assert_eq!(
        with_basic
            .verify(&ok, body, NOW)
            .expect_err("no basic")
            .code,
        "authorization_missing"
    );
    let mut h = ok.clone();
    h.insert("authorization", "Basic d3Jvbmc=".parse().expect("h"));
    assert_eq!(
        with_basic.verify(&h, body, NOW).expect_err("wrong").code,
        "authorization_mismatch"
    );
    h.insert("authorization", "Basic dXNlcjpwdw==".parse().expect("h"));
    with_basic.verify(&h, body, NOW).expect("both factors");
}

#[test]
fn several_secrets_rotate_and_a_secret_that_is_not_base64_is_a_config_error() {
    let old = "b2xkLXNlY3JldA==";
    let v = verifier(&[SECRET, old], None);
    let body = b"{}";
    v.verify(&signed(old, "1708972900", body), body, NOW)
        .expect("old secret still accepted");
    v.verify(&signed(SECRET, "1708972900", body), body, NOW)
        .expect("new secret");
    let err = DailyVerifier::new(
        &[SecretString::from("not base64 !!".to_owned())],
        Duration::from_secs(1),
        None,
    )
    .expect_err("invalid");
    assert!(!err.contains("not base64 !!"), "{err}");
}

fn event(body: &str) -> Interpreted {
    match interpret(body.as_bytes(), 1).expect("an event") {
        Interpretation::Event(ev) => *ev,
        Interpretation::Probe => panic!("not a probe"),
    }
}

#[test]
fn the_creation_test_is_a_probe_and_unreadable_bodies_are_not_events() {
    assert_eq!(
        interpret(br#"{"test":"test"}"#, 1),
        Ok(Interpretation::Probe)
    );
    assert_eq!(interpret(b"[1]", 1), Err(NotAnEvent("not_an_object")));
    assert_eq!(interpret(b"nope", 1), Err(NotAnEvent("not_json")));
    assert_eq!(
        interpret(br#"{"id":"x"}"#, 1),
        Err(NotAnEvent("missing_event_type"))
    );
}

#[test]
fn every_documented_type_is_read_with_its_facts() {
    let examples = catalogue::examples();
    assert_eq!(examples.len(), 32);
    for (ty, body) in &examples {
        let ev = event(body);
        assert_eq!(ev.facts.event_type, *ty);
        assert!(ev.facts.event_id.is_some(), "{ty}");
        assert_eq!(ev.facts.data_error, None, "{ty}");
        assert!(
            ev.facts
                .occurred_at_ms
                .is_some_and(|t| t > 1_708_000_000_000),
            "{ty}"
        );
        let with_files = ev.files.as_ref().map(Vec::len).unwrap_or(0);
        let file_event = matches!(
            *ty,
            "recording.ready-to-download" | "transcript.ready-to-download"
        );
        assert_eq!(with_files > 0, file_event, "{ty}");
    }
    let joined = event(&catalogue::body("participant.joined", "j", 1.0)).facts;
    assert_eq!(joined.room.as_deref(), Some(catalogue::ROOM));
    assert_eq!(joined.room_key.as_deref(), Some("daily:daily-demo-room"));
    assert_eq!(joined.session_id.as_deref(), Some(catalogue::MEETING_ID));
    assert_eq!(joined.occurred_at_ms, Some(1_708_972_205_000));
    let p = joined.participant.expect("participant");
    assert_eq!(p.participant_id.as_deref(), Some("p-ana-1"));
    assert_eq!(p.user_id.as_deref(), Some("u-ana"));
    assert_eq!(p.moderator, Some(true));
    let left = event(&catalogue::body("participant.left", "l", 1.0)).facts;
    assert_eq!(
        left.occurred_at_ms,
        Some(1_708_972_795_000),
        "joined_at + duration"
    );
    let started = event(&catalogue::body("meeting.started", "m", 1.0)).facts;
    assert_eq!(started.presence, Some(Presence::SessionStarted));
    let rec = event(&catalogue::body("recording.ready-to-download", "r", 1.0)).facts;
    assert_eq!(rec.room.as_deref(), Some(catalogue::ROOM), "room_name");
    assert!(
        event(&catalogue::body("recording.error", "e", 1.0))
            .facts
            .file_failure
    );
}

#[test]
fn odd_shapes_are_read_leniently_and_never_refused() {
    // Float and string times, absent payload, wrong-typed siblings, unknown types.
    let ev = event(
        r#"{"type":"meeting.started","id":"a","event_ts":"1708972279.96","payload":{"room":7,"start_ts":"x"}}"#,
    );
    assert_eq!(ev.facts.occurred_at_ms, Some(1_708_972_279_960));
    assert_eq!(ev.facts.room.as_deref(), Some("7"));
    let ev = event(r#"{"type":"meeting.ended","id":"b"}"#);
    assert_eq!(ev.facts.data_error.as_deref(), Some("payload is absent"));
    assert_eq!(ev.facts.occurred_at_ms, Some(1), "receive time");
    let ev = event(r#"{"type":"something.new","id":"c","payload":{"x":[1]},"event_ts":1e308}"#);
    assert_eq!(ev.files, Ok(Vec::new()));
    assert_eq!(ev.facts.occurred_at_ms, Some(MAX_TIME_MS));
    let ev = event(
        r#"{"type":"participant.joined","id":"d","payload":{"owner":"true","joined_at":-5}}"#,
    );
    assert_eq!(ev.facts.participant.and_then(|p| p.moderator), Some(true));
}

#[test]
fn recordings_become_one_job_per_file_whoever_learns_of_them() {
    let cloud = event(&catalogue::body("recording.ready-to-download", "r", 1.0));
    let plans = cloud.files.expect("plans");
    assert_eq!(plans.len(), 1);
    assert_eq!(
        plans[0].source,
        FileSource::Object(ProviderObject {
            object: "recording".into(),
            id: catalogue::RECORDING_ID.into(),
            part: None
        })
    );
    assert_eq!(
        plans[0].job_id.as_deref(),
        Some(recording_job_id(catalogue::RECORDING_ID, None).as_str())
    );
    assert_eq!(
        plans[0].meta.file_name.as_deref(),
        Some("1708972230000.mp4")
    );
    assert_eq!(plans[0].meta.duration_sec, Some(540));

    // The recordings list's item for the same recording makes the same plan.
    let listed: Map<String, Value> = serde_json::from_value(serde_json::json!({
        "id": catalogue::RECORDING_ID, "room_name": catalogue::ROOM, "start_ts": 1_708_972_230,
        "status": "finished", "duration": 540,
        "s3key": format!("demo-domain/{}/1708972230000.mp4", catalogue::ROOM),
        "mtgSessionId": catalogue::MEETING_ID
    }))
    .expect("map");
    let facts = EventFacts {
        event_type: "recording.reconciled".into(),
        ..EventFacts::default()
    };
    let from_list = recording_plans(&listed, None, &facts).expect("plans");
    assert_eq!(from_list, plans);

    let raw = r#"{"type":"recording.ready-to-download","id":"t","payload":{"type":"raw-tracks","recording_id":"rt-1","room_name":"r","start_ts":1708972230,"tracks":[{"s3Key":"d/r/1-cam-video.webm","size":100,"type":"video"},{"s3Key":"d/r/1-mic-audio.webm","size":50,"type":"audio"},{"size":1},"junk"]}}"#;
    let plans = event(raw).files.expect("tracks");
    assert_eq!(plans.len(), 2, "every track with a key");
    assert_ne!(plans[0].job_id, plans[1].job_id);
    assert_eq!(plans[1].meta.file_name.as_deref(), Some("1-mic-audio.webm"));
    assert_eq!(plans[1].meta.file_size, Some(50));

    for (payload, field) in [
        (r#"{"type":"cloud"}"#, "recording_id"),
        (r#"{"recording_id":[1]}"#, "recording_id"),
        (
            r#"{"type":"raw-tracks","recording_id":"x","tracks":null}"#,
            "tracks",
        ),
    ] {
        let body =
            format!(r#"{{"type":"recording.ready-to-download","id":"m","payload":{payload}}}"#);
        let missing = event(&body).files.expect_err(payload);
        assert_eq!(missing.field, field);
    }
}

#[test]
fn a_transcript_becomes_a_job_resolved_at_copy_time() {
    let ev = event(&catalogue::body("transcript.ready-to-download", "t", 1.0));
    assert_eq!(ev.facts.session_id.as_deref(), Some(catalogue::MEETING_ID));
    let plans = ev.files.expect("plan");
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].kind, FileKind::Transcription);
    assert_eq!(
        plans[0].job_id.as_deref(),
        Some(format!("daily:transcript:{}", catalogue::TRANSCRIPT_ID).as_str())
    );
}
