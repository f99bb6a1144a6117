//! One example body per documented VideoSDK type, in the shape VideoSDK documents
//! (`webhookType` plus the server SDK's `type`, a `data` object). The recording samples are
//! the documentation's own, made valid JSON (the docs print them with trailing commas, which
//! [`super::interpret`] also reads: see the tests). `events/videosdk/` and the demo are made
//! from these.

use serde_json::{Value, json};

/// The room (VideoSDK's `meetingId`) of the examples: the documentation's.
pub const MEETING_ID: &str = "jvsg-8rjn-j304";
/// The session of the examples: the documentation's.
pub const SESSION_ID: &str = "613731342f27f56e4fc4b6d0";
/// The recording of the examples: the documentation's.
pub const FILE_PATH: &str = "/encoded/videos/62d148951a1eb20029fc9b05.mp4";
/// When the example session starts.
pub const START: &str = "2023-11-14T22:13:20.000Z";
pub const END: &str = "2023-11-14T22:43:20.000Z";

/// The `data` of each documented type.
fn data(event_type: &str, file_url: &str) -> Value {
    let mut d = json!({"meetingId": MEETING_ID, "sessionId": SESSION_ID});
    let extra = match event_type {
        "recording-stopped" => json!({"filePath": FILE_PATH, "fileUrl": file_url}),
        "participant-joined" | "participant-left" => {
            json!({"participantId": "p-ana", "participantName": "Ana"})
        }
        "session-started" => json!({"start": START}),
        "session-ended" => json!({"start": START, "end": END}),
        "hls-playable" | "hls-started" => {
            json!({"playbackHlsUrl": "https://cdn.videosdk.live/meetings-hls/x/index.m3u8"})
        }
        _ => json!({}),
    };
    if let (Some(d), Value::Object(e)) = (d.as_object_mut(), extra) {
        d.extend(e);
    }
    d
}

/// The example body of `event_type`; a `recording-stopped` points at `file_url`.
pub fn body_with(event_type: &str, file_url: &str) -> String {
    json!({
        "webhookType": event_type,
        "type": event_type,
        "data": data(event_type, file_url),
    })
    .to_string()
}

/// The documented link of the example recording.
pub fn documented_file_url() -> String {
    format!("https://cdn.videosdk.live{FILE_PATH}")
}

/// Every documented type's example: (type, body).
pub fn examples() -> Vec<(&'static str, String)> {
    super::TYPES
        .iter()
        .map(|t| (*t, body_with(t, &documented_file_url())))
        .collect()
}

/// The documentation's `recording-stopped` sample byte for byte, trailing commas included.
pub const DOCUMENTED_RECORDING_STOPPED: &str = r#"{
"webhookType": "recording-stopped",
"data": {
"meetingId": "jvsg-8rjn-j304",
"sessionId": "613731342f27f56e4fc4b6d0",
"filePath" : "/encoded/videos/62d148951a1eb20029fc9b05.mp4",
"fileUrl" : "https://cdn.videosdk.live/encoded/videos/62d148951a1eb20029fc9b05.mp4",

},
}"#;
