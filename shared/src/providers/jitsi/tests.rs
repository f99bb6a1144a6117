use super::*;

fn event(body: &[u8]) -> Interpreted {
    match interpret(body, 7_000) {
        Ok(Interpretation::Event(e)) => *e,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn every_example_is_read_with_its_facts() {
    for (name, body) in catalogue::examples() {
        let e = event(body.as_bytes());
        assert!(TYPES.contains(&e.facts.event_type.as_str()), "{name}");
        assert!(name.starts_with(&e.facts.event_type), "{name}");
        assert_eq!(e.facts.data_error, None, "{name}");
        assert_eq!(e.facts.event_id, None, "{name}: keyed by the body's hash");
        assert_eq!(e.files, Ok(Vec::new()), "{name}");
        assert_eq!(
            e.facts.participant.is_some(),
            name.starts_with("muc-occupant"),
            "{name}"
        );
    }
    let by_name: std::collections::HashMap<_, _> = catalogue::examples().into_iter().collect();
    let read = |n: &str| event(by_name[n].as_bytes()).facts;

    let created = read("muc-room-created");
    assert_eq!(created.presence, Some(Presence::SessionStarted));
    assert_eq!(created.occurred_at_ms, Some(catalogue::CREATED_AT * 1000));
    assert_eq!(created.room.as_deref(), Some(catalogue::ROOM));
    assert_eq!(
        created.room_key.as_deref(),
        Some("jitsi:catchup@conference.meet.example.com")
    );
    assert_eq!(created.session_id.as_deref(), Some(catalogue::ROOM_JID));

    let joined = read("muc-occupant-joined");
    let p = joined.participant.expect("occupant");
    assert_eq!(p.name.as_deref(), Some("Ana"));
    assert_eq!(
        p.user_id.as_deref(),
        Some("00380324-a840-400d-880f-7ee0933b7556")
    );
    assert!(
        p.participant_id
            .as_deref()
            .is_some_and(|j| j.ends_with("/OWhl8jSh"))
    );
    assert_eq!(p.role, None);
    assert_eq!(
        joined.occurred_at_ms,
        Some((catalogue::CREATED_AT + 5) * 1000)
    );

    let left = read("muc-occupant-left");
    assert_eq!(
        left.occurred_at_ms,
        Some((catalogue::CREATED_AT + 600) * 1000)
    );

    let recorder = read("muc-occupant-joined-recorder")
        .participant
        .expect("occupant");
    assert_eq!(
        recorder.role.as_deref(),
        Some("recorder"),
        "kept, but marked"
    );

    // A breakout's events name the main room: the same room key, one timeline.
    let breakout = read("muc-occupant-joined-breakout");
    assert_eq!(breakout.room_key, created.room_key);

    let destroyed = read("muc-room-destroyed-empty");
    assert_eq!(
        destroyed.occurred_at_ms,
        Some((catalogue::CREATED_AT + 1) * 1000)
    );
    assert_eq!(destroyed.presence, Some(Presence::SessionEnded));
}

#[test]
fn machines_are_told_from_people() {
    for (jid, name, role) in [
        (
            Some("recorder@recorder.meet.example.com/x"),
            None,
            Some("recorder"),
        ),
        (
            Some("jibri-7@recorder.meet.example.com/x"),
            None,
            Some("recorder"),
        ),
        (
            Some("transcriber@recorder.meet.example.com/x"),
            None,
            Some("transcriber"),
        ),
        (
            Some("abc@meet.example.com/x"),
            Some("Transcriber"),
            Some("transcriber"),
        ),
        (Some("abc@meet.example.com/x"), Some("Recorder Rita"), None),
        (Some("recorderfan@meet.example.com/x"), None, None),
        (None, None, None),
    ] {
        assert_eq!(bot_role(jid, name), role, "{jid:?} {name:?}");
    }
}

#[test]
fn odd_shapes_are_stored_never_refused() {
    // No event_name: stored as `unknown`, with the reason.
    let e = event(br#"{"room_name":"r"}"#);
    assert_eq!(e.facts.event_type, "unknown");
    assert_eq!(e.facts.data_error.as_deref(), Some("event_name is absent"));
    assert_eq!(
        e.facts.occurred_at_ms,
        Some(7_000),
        "the receive time stands in"
    );
    // Times as strings or floats, an occupant that is not an object, a room JID absent.
    let e = event(
        br#"{"event_name":"muc-occupant-left","room_name":"r","occupant":{"left_at":"1700000000.5","occupant_jid":5}}"#,
    );
    assert_eq!(e.facts.occurred_at_ms, Some(1_700_000_000_500));
    assert_eq!(e.facts.room_key.as_deref(), Some("jitsi:r"));
    let p = e.facts.participant.expect("occupant");
    assert_eq!(p.participant_id.as_deref(), Some("5"));
    let e = event(br#"{"event_name":"muc-occupant-joined","occupant":[]}"#);
    assert_eq!(e.facts.participant, None);
    let e = event(br#"{"event_name":"muc-room-created","created_at":1e300}"#);
    assert_eq!(
        e.facts.occurred_at_ms,
        Some(MAX_TIME_MS),
        "saturated, not wrapped"
    );
    for (body, reason) in [(&b"nope"[..], "not_json"), (b"[]", "not_an_object")] {
        assert_eq!(interpret(body, 0), Err(NotAnEvent(reason)));
    }
}
