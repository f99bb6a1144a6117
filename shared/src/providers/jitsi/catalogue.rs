//! Example bodies of `mod_event_sync_component`'s four events, in the module's documented
//! shape (jitsi-contrib/prosody-plugins, event_sync), plus the shapes PROVIDERS.md warns of:
//! a breakout room's event (naming the main room), Jibri's recorder joining, and a destroyed
//! room whose empty occupant list arrives as `{}`. `events/jitsi/` and the demo are made
//! from these.

use serde_json::{Value, json};

/// The room of the examples.
pub const ROOM: &str = "catchup";
pub const ROOM_JID: &str = "catchup@conference.meet.example.com";
/// When the example room is created (Unix seconds).
pub const CREATED_AT: i64 = 1_700_000_000;

/// An occupant as the module describes one (JWT user context: name, email, id).
pub fn occupant(name: &str, id: &str, jid: &str, joined: i64, left: Option<i64>) -> Value {
    let mut o = json!({
        "name": name, "email": format!("{}@example.com", name.to_ascii_lowercase()),
        "id": id, "occupant_jid": jid, "joined_at": joined,
    });
    if let Some(left) = left {
        o["left_at"] = json!(left);
    }
    o
}

fn ana(left: Option<i64>) -> Value {
    occupant(
        "Ana",
        "00380324-a840-400d-880f-7ee0933b7556",
        "14f01c40-5195-4a4d-8efb-f58b49d18741@meet.example.com/OWhl8jSh",
        CREATED_AT + 5,
        left,
    )
}

fn room(event: &str) -> Value {
    json!({"event_name": event, "room_name": ROOM, "room_jid": ROOM_JID, "is_breakout": false})
}

/// Every example: (name, body).
pub fn examples() -> Vec<(&'static str, String)> {
    let mut created = room("muc-room-created");
    created["created_at"] = json!(CREATED_AT);
    let mut joined = room("muc-occupant-joined");
    joined["active_occupants_count"] = json!(1);
    joined["occupant"] = ana(None);
    let mut recorder = room("muc-occupant-joined");
    recorder["active_occupants_count"] = json!(2);
    recorder["occupant"] = json!({
        "occupant_jid": "recorder@recorder.meet.example.com/jibri-1",
        "joined_at": CREATED_AT + 30,
    });
    let mut breakout = room("muc-occupant-joined");
    breakout["is_breakout"] = json!(true);
    breakout["breakout_room_id"] = json!("b1f0c2d4-1111-4e0e-9a51-breakout0001");
    breakout["active_occupants_count"] = json!(1);
    breakout["occupant"] = ana(None);
    breakout["occupant"]["joined_at"] = json!(CREATED_AT + 120);
    let mut left = room("muc-occupant-left");
    left["active_occupants_count"] = json!(1);
    left["occupant"] = ana(Some(CREATED_AT + 600));
    left["occupant"]["total_dominant_speaker_time"] = json!(123_456);
    let mut destroyed = room("muc-room-destroyed");
    destroyed["created_at"] = json!(CREATED_AT);
    destroyed["destroyed_at"] = json!(CREATED_AT + 660);
    destroyed["all_occupants"] = json!([ana(Some(CREATED_AT + 600))]);
    let mut destroyed_empty = room("muc-room-destroyed");
    destroyed_empty["room_name"] = json!("empty-room");
    destroyed_empty["room_jid"] = json!("empty-room@conference.meet.example.com");
    destroyed_empty["created_at"] = json!(CREATED_AT);
    destroyed_empty["destroyed_at"] = json!(CREATED_AT + 1);
    // Prosody's JSON encoder writes an empty table as an object.
    destroyed_empty["all_occupants"] = json!({});
    vec![
        ("muc-room-created", created),
        ("muc-occupant-joined", joined),
        ("muc-occupant-joined-recorder", recorder),
        ("muc-occupant-joined-breakout", breakout),
        ("muc-occupant-left", left),
        ("muc-room-destroyed", destroyed),
        ("muc-room-destroyed-empty", destroyed_empty),
    ]
    .into_iter()
    .map(|(n, v)| (n, v.to_string()))
    .collect()
}

/// The route each example is posted to, below `/webhooks/jitsi`.
pub fn route_of(event_name: &str) -> &'static str {
    match event_name {
        n if n.starts_with("muc-room-created") => "/events/room/created",
        n if n.starts_with("muc-room-destroyed") => "/events/room/destroyed",
        n if n.starts_with("muc-occupant-joined") => "/events/occupant/joined",
        _ => "/events/occupant/left",
    }
}
