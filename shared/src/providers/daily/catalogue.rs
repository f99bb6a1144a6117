//! One example body per documented Daily event type, in the shapes Daily documents (float
//! `event_ts`, `room` on meeting and participant events, `room_name` on recording events,
//! absent optional fields). The tests parse every one; `events/daily/` and the demo are made
//! from them.

use serde_json::{Value, json};

/// The room of the examples.
pub const ROOM: &str = "daily-demo-room";
/// The meeting session of the examples.
pub const MEETING_ID: &str = "c6e2b2f5-4a1b-4d8e-9a51-0d1f5e0b7a10";
/// The cloud recording of the examples.
pub const RECORDING_ID: &str = "8ba5a0d1-6a0f-4f61-b9f0-2a2b9d1d3c01";
/// The transcript of the examples.
pub const TRANSCRIPT_ID: &str = "3f0f5c1e-9d7e-4c55-8d55-5a1f1f7b2e02";
/// When the example meeting starts (seconds).
pub const START: f64 = 1_708_972_200.0;

/// The payload of each documented type.
fn payload(event_type: &str) -> Value {
    let start = START;
    match event_type {
        "meeting.started" => json!({"start_ts": start, "meeting_id": MEETING_ID, "room": ROOM}),
        "meeting.ended" => json!({
            "start_ts": start, "end_ts": start + 600.0, "meeting_id": MEETING_ID, "room": ROOM
        }),
        "participant.joined" => json!({
            "room": ROOM, "user_id": "u-ana", "user_name": "Ana", "session_id": "p-ana-1",
            "joined_at": start + 5.0, "will_eject_at": null, "owner": true,
            "permissions": {"hasPresence": true, "canSend": true, "canAdmin": ["participants"]},
            "meeting_id": MEETING_ID
        }),
        "participant.left" => json!({
            "room": ROOM, "user_id": "u-ana", "user_name": "Ana", "session_id": "p-ana-1",
            "joined_at": start + 5.0, "duration": 590, "will_eject_at": null, "owner": true,
            "permissions": {"hasPresence": true, "canSend": true}, "meeting_id": MEETING_ID
        }),
        "waiting-participant.joined" => json!({
            "room": ROOM, "id": "w-bo-1", "user_name": "Bo", "joined_at": start + 20.0,
            "permissions": {"hasPresence": true}
        }),
        "waiting-participant.left" => json!({
            "room": ROOM, "id": "w-bo-1", "user_name": "Bo", "joined_at": start + 20.0,
            "duration": 15
        }),
        "recording.started" => json!({
            "action": "cloud-recording-started", "recording_id": RECORDING_ID,
            "room_name": ROOM, "start_ts": start + 30.0, "layout": {"preset": "default"},
            "started_by": "p-ana-1", "instance_id": "i-1"
        }),
        "recording.ready-to-download" => json!({
            "type": "cloud", "recording_id": RECORDING_ID, "room_name": ROOM,
            "start_ts": start + 30.0, "status": "finished", "max_participants": 2,
            "duration": 540, "s3_key": format!("demo-domain/{ROOM}/1708972230000.mp4"),
            "share_token": "tok-not-a-secret"
        }),
        "recording.error" => json!({
            "action": "cloud-recording-error", "error_msg": "recording failed to start",
            "instance_id": "i-2", "room_name": ROOM, "timestamp": start + 31.0
        }),
        "transcript.started" => json!({
            "id": TRANSCRIPT_ID, "room_id": "room-uuid-1", "mtg_session_id": MEETING_ID,
            "start_ts": start + 40.0
        }),
        "transcript.ready-to-download" => json!({
            "id": TRANSCRIPT_ID,
            "out_params": {"s3": {"key": "t/transcript.vtt", "bucket": "daily-t", "region": "us-west-2"}},
            "room_id": "room-uuid-1", "mtg_session_id": MEETING_ID, "duration": 520,
            "participant_minutes": 17.5, "status": "t_finished", "domain_id": "domain-uuid-1"
        }),
        "transcript.error" => json!({
            "id": TRANSCRIPT_ID, "room_id": "room-uuid-1", "mtg_session_id": MEETING_ID,
            "error": "transcription provider unavailable"
        }),
        "streaming.started" | "streaming.updated" | "streaming.ended" => json!({
            "room_name": ROOM, "instance_id": "s-1", "domain_id": "domain-uuid-1",
            "mtg_session_id": MEETING_ID, "timestamp": start + 60.0
        }),
        "streaming.error" => json!({
            "room_name": ROOM, "instance_id": "s-1", "error_msg": "rtmp endpoint refused",
            "timestamp": start + 61.0
        }),
        "batch-processor.job-finished" => json!({
            "id": "job-1", "preset": "transcript", "status": "finished",
            "input": {"sourceType": "recordingId", "recordingId": RECORDING_ID},
            "output": {"transcription": [{"format": "txt", "s3Config": {"key": "b/out.txt"}}]}
        }),
        "batch-processor.error" => json!({
            "id": "job-2", "preset": "summarize", "status": "error", "error": "input too short"
        }),
        t if t.starts_with("dialout.") || t.starts_with("dialin.") => json!({
            "session_id": "sip-1", "room": ROOM, "domain_id": "domain-uuid-1",
            "sip_from": "sip:+15550000@example.com", "timestamp": start + 90.0
        }),
        t if t.starts_with("calltransfer.") => json!({
            "session_id": "sip-1", "room": ROOM, "domain_id": "domain-uuid-1",
            "to": "+15550001", "timestamp": start + 95.0
        }),
        _ => json!({}),
    }
}

/// The example body of `event_type`, with event id `id` and send time `event_ts` (seconds,
/// a float as Daily sends it).
pub fn body(event_type: &str, id: &str, event_ts: f64) -> String {
    json!({
        "version": "1.0.0",
        "type": event_type,
        "id": id,
        "payload": payload(event_type),
        "event_ts": event_ts,
    })
    .to_string()
}

/// Every documented type's example: (type, body), ids `ev-<n>` in catalogue order.
pub fn examples() -> Vec<(&'static str, String)> {
    super::TYPES
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (
                *t,
                body(t, &format!("ev-{i:02}"), START + 600.0 + i as f64 + 0.25),
            )
        })
        .collect()
}
