//! The read use cases over in-memory ports: paging, reused session ids, files that name no
//! session, repeats, and authorization before any read.

use std::sync::atomic::Ordering;

use http::{HeaderMap, HeaderValue, Method};
use secrecy::SecretString;
use serde_json::Value;

use super::http::{ReadApi, answer};
use super::memory::Memory;
use super::model::{CopyView, JobRef, StoredEvent};
use super::service::ReadService;
use crate::auth::BearerTokens;
use crate::facts::{ParticipantFacts, Presence};

const TOKEN: &str = "read-token-0123456789";

fn api(memory: &Memory) -> ReadApi<&Memory, &Memory, &Memory> {
    ReadApi {
        service: ReadService::new(memory, memory, memory, "recordings", 300),
        tokens: BearerTokens::new(vec![SecretString::from(TOKEN)]),
    }
}

fn authorized() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("header"),
    );
    h
}

async fn get(memory: &Memory, path: &str, query: &str) -> (u16, Value) {
    let r = answer(
        &api(memory),
        &Method::GET,
        path,
        query,
        &authorized(),
        1_000_000,
    )
    .await;
    let status = r.status().as_u16();
    let body: Value = serde_json::from_slice(r.body().as_ref()).expect("JSON answer");
    (status, body)
}

fn event(provider: &str, key: &str, session: Option<&str>, room: &str, at: i64) -> StoredEvent {
    StoredEvent {
        key: key.into(),
        provider: provider.into(),
        event_type: "x".into(),
        at_ms: at,
        received_at_ms: at,
        session_id: session.map(str::to_owned),
        room_key: Some(room.into()),
        room: Some("room".into()),
        ..StoredEvent::default()
    }
}

fn with_presence(mut e: StoredEvent, p: Presence, who: Option<&str>) -> StoredEvent {
    e.presence = Some(p);
    e.event_type = p.as_str().into();
    e.participant = who.map(|w| ParticipantFacts {
        participant_id: Some(w.into()),
        name: Some(w.to_uppercase()),
        ..ParticipantFacts::default()
    });
    e
}

fn meeting(m: &Memory, provider: &str, session: &str, room: &str, start: i64, end: i64) {
    let key = |s: &str| format!("{provider}:{session}:{start}:{s}");
    m.store(with_presence(
        event(provider, &key("start"), Some(session), room, start),
        Presence::SessionStarted,
        None,
    ));
    m.store(with_presence(
        event(provider, &key("join"), Some(session), room, start + 1_000),
        Presence::Joined,
        Some("ann"),
    ));
    m.store(with_presence(
        event(provider, &key("leave"), Some(session), room, end - 1_000),
        Presence::Left,
        Some("ann"),
    ));
    m.store(with_presence(
        event(provider, &key("end"), Some(session), room, end),
        Presence::SessionEnded,
        None,
    ));
}

fn ids(body: &Value) -> Vec<String> {
    body["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_rooms_sessions_come_newest_first_in_pages_and_ranges() {
    let m = Memory::new(3);
    for i in 0..5 {
        meeting(
            &m,
            "jaas",
            &format!("s{i}"),
            "app/r",
            10_000_000 * (i + 1),
            10_000_000 * (i + 1) + 60_000,
        );
    }
    meeting(&m, "jaas", "other", "app/other", 15_000_000, 15_060_000);
    let mut seen = Vec::new();
    let mut query = "room=app%2Fr&limit=2".to_owned();
    loop {
        let (status, body) = get(&m, "/v1/sessions", &query).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(ids(&body));
        match body["nextCursor"].as_str() {
            Some(c) => query = format!("room=app%2Fr&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["s4", "s3", "s2", "s1", "s0"]);
    let (_, body) = get(&m, "/v1/sessions", "room=app%2Fr&from=20000000&to=40000000").await;
    assert_eq!(ids(&body), ["s2", "s1"], "from included, to excluded");
    assert_eq!(body["sessions"][0]["durationSecs"], 60);
    let (_, body) = get(
        &m,
        "/v1/sessions",
        "room=app%2Fr&from=1970-01-01T08:20:00Z&limit=1",
    )
    .await;
    assert_eq!(ids(&body), ["s4"]);
    for bad in [
        "",
        "room=app%2Fr&limit=0",
        "room=app%2Fr&from=yesterday",
        "room=app%2Fr&cursor=zz",
    ] {
        let (status, body) = get(&m, "/v1/sessions", bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }
}

#[tokio::test]
async fn nothing_is_read_without_a_valid_token() {
    let m = Memory::new(10);
    meeting(&m, "jaas", "s", "app/r", 1_000, 100_000);
    for headers in [HeaderMap::new(), {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer read-token-0123456788"),
        );
        h
    }] {
        for path in [
            "/v1/sessions",
            "/v1/sessions/s/attendance",
            "/v1/sessions/s/files",
            "/v1/nope",
        ] {
            let r = answer(&api(&m), &Method::GET, path, "room=app%2Fr", &headers, 0).await;
            assert_eq!(r.status(), 401, "{path}");
            let body: Value = serde_json::from_slice(r.body().as_ref()).expect("json");
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("authorization_"))
            );
        }
    }
    assert_eq!(
        m.reads.load(Ordering::Relaxed),
        0,
        "a refused call reads nothing"
    );
    let (status, _) = get(&m, "/v1/sessions/s/attendance", "").await;
    assert_eq!(status, 200);
    assert!(m.reads.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn a_reused_session_id_is_one_session_per_meeting() {
    let m = Memory::new(2);
    let jid = "standup@conference.meet.example.com";
    let room = "jitsi:standup@conference.meet.example.com";
    meeting(&m, "jitsi", jid, room, 1_000_000, 1_600_000);
    meeting(&m, "jitsi", jid, room, 5_000_000, 5_900_000);
    let (_, body) = get(&m, "/v1/sessions", &format!("room={room}")).await;
    let listed = ids(&body);
    assert_eq!(listed, [format!("{jid}~5000000"), format!("{jid}~1000000")]);
    for (id, (from, to)) in listed
        .iter()
        .zip([(5_001_000, 5_899_000), (1_001_000, 1_599_000)])
    {
        let (status, body) = get(&m, &format!("/v1/sessions/{id}/attendance"), "").await;
        assert_eq!(status, 200, "{body}");
        let rows = body["participants"].as_array().expect("rows");
        assert_eq!(rows.len(), 1, "{body}");
        assert_eq!(rows[0]["totalSecs"], (to - from) / 1000);
        assert_eq!(rows[0]["firstJoin"], crate::time::iso(from));
        let (_, timeline) = get(&m, &format!("/v1/sessions/{id}/timeline"), "").await;
        assert_eq!(
            timeline["events"].as_array().expect("events").len(),
            4,
            "{timeline}"
        );
    }
}

#[tokio::test]
async fn files_that_name_no_session_belong_to_the_rooms_meeting_at_the_time() {
    let m = Memory::new(2);
    meeting(&m, "daily", "m1", "daily:r", 1_000_000, 1_600_000);
    meeting(&m, "daily", "m2", "daily:r", 5_000_000, 5_900_000);
    let rec = |key: &str, at: i64, job: &str| {
        let mut e = event("daily", key, None, "daily:r", at);
        e.event_type = "recording.ready-to-download".into();
        e.jobs = vec![JobRef {
            id: job.into(),
            kind: Some("recording".into()),
        }];
        m.store(e);
    };
    // m1's recording is ready after m1 ended, before m2; m2's after m2. m1's was also found
    // by reconciliation before its webhook came: the same job under another event.
    rec(
        "daily:reconciled:daily:recording:1",
        1_690_000,
        "daily:recording:1",
    );
    rec("rec-1", 1_700_000, "daily:recording:1");
    rec("rec-2", 6_000_000, "daily:recording:2");
    let mut transcript = event("daily", "tr-1", Some("m1"), "daily:r", 1_650_000);
    transcript.jobs = vec![JobRef {
        id: "daily:transcript:1".into(),
        kind: Some("transcription".into()),
    }];
    m.store(transcript);
    let mut broken = event("daily", "rec-broken", Some("m1"), "daily:r", 1_660_000);
    broken.link_error = Some("download_link missing".into());
    m.store(broken);
    m.copies.lock().expect("lock").insert(
        "daily:recording:1".into(),
        CopyView {
            state: "copied".into(),
            object_key: Some("daily/r/m1/rec.mp4".into()),
            bytes: Some(42),
            sha256: Some("ab".repeat(32)),
            ..CopyView::default()
        },
    );
    let (status, body) = get(&m, "/v1/sessions/m1/files", "").await;
    assert_eq!(status, 200, "{body}");
    let files = body["files"].as_array().expect("files");
    let by_job = |id: &str| files.iter().find(|f| f["jobId"] == id).cloned();
    let copied = by_job("daily:recording:1").expect("m1's recording");
    assert_eq!(
        files
            .iter()
            .filter(|f| f["jobId"] == "daily:recording:1")
            .count(),
        1,
        "a file is listed once, whichever events name it: {body}"
    );
    assert_eq!(copied["state"], "copied");
    assert_eq!(copied["bytes"], 42);
    assert_eq!(copied["s3"]["key"], "daily/r/m1/rec.mp4");
    assert_eq!(copied["s3"]["bucket"], "recordings");
    assert!(
        copied["download"]["url"]
            .as_str()
            .expect("url")
            .contains("daily/r/m1/rec.mp4")
    );
    assert_eq!(
        by_job("daily:transcript:1").expect("transcript")["state"],
        "queued"
    );
    assert!(
        by_job("daily:recording:2").is_none(),
        "m2's recording is not m1's"
    );
    let unavailable = files
        .iter()
        .find(|f| f["state"] == "unavailable")
        .expect("broken");
    assert_eq!(unavailable["reason"], "download_link missing");
    let (_, body) = get(&m, "/v1/sessions/m2/files", "").await;
    let jobs: Vec<&str> = body["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["jobId"].as_str())
        .collect();
    assert_eq!(jobs, ["daily:recording:2"]);
}

#[tokio::test]
async fn repeats_are_marked_and_do_not_change_attendance() {
    let ordered = Memory::new(3);
    meeting(&ordered, "videosdk", "s", "videosdk:r", 1_000, 100_000);
    let (_, expected) = get(&ordered, "/v1/sessions/s/attendance", "").await;

    let shuffled = Memory::new(3);
    let mut events = ordered.events.lock().expect("lock").clone();
    events.reverse();
    for e in events.iter().chain(events.iter()) {
        shuffled.store(e.clone());
    }
    // The same join under another key (a body differing in an irrelevant byte).
    let mut again = events
        .iter()
        .find(|e| e.presence == Some(Presence::Joined))
        .expect("join")
        .clone();
    again.key = "videosdk:sha256:other".into();
    again.received_at_ms += 5;
    shuffled.store(again);
    let mut conflict = events[0].clone();
    conflict.key = format!("{}#conflict", conflict.key);
    conflict.conflict_of = Some(events[0].key.clone());
    shuffled.store(conflict);
    let (_, got) = get(&shuffled, "/v1/sessions/s/attendance", "").await;
    assert_eq!(got["participants"], expected["participants"]);
    let (_, timeline) = get(&shuffled, "/v1/sessions/s/timeline", "").await;
    let events = timeline["events"].as_array().expect("events");
    let at: Vec<&str> = events
        .iter()
        .map(|e| e["at"].as_str().expect("at"))
        .collect();
    assert!(
        at.windows(2).all(|w| w[0] <= w[1]),
        "event-time order: {at:?}"
    );
    let dup = events
        .iter()
        .find(|e| e["key"] == "videosdk:sha256:other")
        .expect("dup");
    assert!(
        dup["duplicateOf"]
            .as_str()
            .is_some_and(|k| k.ends_with(":join")),
        "{dup}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["conflictOf"].is_string())
            .count(),
        1
    );
    let (status, body) = get(&shuffled, "/v1/sessions/unknown/timeline", "").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("session_unknown"))
    );
}
