//! The Prosody half of `hooksctl demo --provider jitsi`: plays one room's life as
//! `mod_event_sync_component` posts it (bearer token from `.local/stack.json`) against a
//! running local stack. Room created, two people and Jibri's recorder join, Ana moves to a
//! breakout room and back out, Bo leaves (delivered twice, as the module's retries do), the
//! room is destroyed; then a request with another token and one with none, which must both be
//! refused. It reads the room's timeline back.

use anyhow::{Context as _, bail};
use meeting_hooks::providers::jitsi::{self, catalogue};
use serde_json::{Value, json};

use crate::demo::{Delivery, deliver};
use crate::ops::{self, target::Target};
use crate::stack::info::StackInfo;

/// What the Prosody demo found.
#[derive(Debug, Clone)]
pub struct ProsodyReport {
    pub room_jid: String,
    pub deliveries: Vec<Delivery>,
    /// The room's timeline as stored: (event type, participant name or role).
    pub timeline: Vec<(String, String)>,
}

impl ProsodyReport {
    /// The meeting's URL as Jibri's `metadata.json` names it (the MUC domain is
    /// `conference.<host>`, the deployment's default).
    pub fn meeting_url(&self) -> String {
        let (room, domain) = self
            .room_jid
            .split_once('@')
            .unwrap_or((&self.room_jid, ""));
        let host = domain.strip_prefix("conference.").unwrap_or(domain);
        format!("https://{host}/{room}")
    }
}

/// Plays the room (created 15 minutes ago) and reads its timeline back.
pub async fn run(info: &StackInfo, verbose: bool) -> anyhow::Result<ProsodyReport> {
    let provider = info
        .providers
        .get(jitsi::NAME)
        .context("the running stack does not serve self-hosted Jitsi (restart `hooksctl up`)")?;
    let authorization = provider
        .authorization
        .clone()
        .context("the stack description has no Jitsi token")?;
    let prefix = format!("{}{}", info.api_base_url, provider.route);
    let nonce = crate::demo::nonce();
    let room = format!("demo-{nonce}");
    let jid = format!("{room}@conference.meet.local");
    let t0 = meeting_hooks::respond::now_ms() / 1000 - 900;
    let base = |event: &str, breakout: bool| {
        let mut v = json!({"event_name": event, "room_name": room, "room_jid": jid, "is_breakout": breakout});
        if breakout {
            v["breakout_room_id"] = json!(format!("breakout-{nonce}"));
        }
        v
    };
    let with_occupant = |event: &str, breakout: bool, occupant: Value| {
        let mut v = base(event, breakout);
        v["occupant"] = occupant;
        v
    };
    let ana = |joined: i64, left: Option<i64>| {
        catalogue::occupant(
            "Ana",
            "user-ana",
            &format!("ana-{nonce}@meet.local/a1"),
            joined,
            left,
        )
    };
    let bo = |left: Option<i64>| {
        catalogue::occupant(
            "Bo",
            "user-bo",
            &format!("bo-{nonce}@meet.local/b1"),
            t0 + 10,
            left,
        )
    };
    let recorder = |left: Option<i64>| {
        let mut o =
            json!({"occupant_jid": "recorder@recorder.meet.local/jibri", "joined_at": t0 + 30});
        if let Some(l) = left {
            o["left_at"] = json!(l);
        }
        o
    };
    let mut created = base("muc-room-created", false);
    created["created_at"] = json!(t0);
    let mut destroyed = base("muc-room-destroyed", false);
    destroyed["created_at"] = json!(t0);
    destroyed["destroyed_at"] = json!(t0 + 700);
    destroyed["all_occupants"] = json!([ana(t0 + 5, Some(t0 + 600)), bo(Some(t0 + 500))]);
    let bo_left = with_occupant("muc-occupant-left", false, bo(Some(t0 + 500)));
    let plan: Vec<(&str, Value)> = vec![
        ("room created", created),
        (
            "Ana joined",
            with_occupant("muc-occupant-joined", false, ana(t0 + 5, None)),
        ),
        (
            "Bo joined",
            with_occupant("muc-occupant-joined", false, bo(None)),
        ),
        (
            "recorder joined",
            with_occupant("muc-occupant-joined", false, recorder(None)),
        ),
        (
            "Ana left for a breakout",
            with_occupant("muc-occupant-left", false, ana(t0 + 5, Some(t0 + 200))),
        ),
        (
            "Ana joined the breakout",
            with_occupant("muc-occupant-joined", true, ana(t0 + 200, None)),
        ),
        (
            "Ana left the breakout",
            with_occupant("muc-occupant-left", true, ana(t0 + 200, Some(t0 + 300))),
        ),
        (
            "Ana back in the main room",
            with_occupant("muc-occupant-joined", false, ana(t0 + 300, None)),
        ),
        ("Bo left", bo_left.clone()),
        ("Bo left (retried)", bo_left),
        (
            "recorder left",
            with_occupant("muc-occupant-left", false, recorder(Some(t0 + 560))),
        ),
        (
            "Ana left",
            with_occupant("muc-occupant-left", false, ana(t0 + 300, Some(t0 + 600))),
        ),
        ("room destroyed", destroyed),
    ];
    let http = reqwest::Client::new();
    let mut deliveries = Vec::new();
    let forged = with_occupant("muc-occupant-joined", false, bo(None));
    let attempts = plan
        .into_iter()
        .map(|(label, body)| (label, body, Some(authorization.clone())))
        .chain([
            (
                "another token",
                forged.clone(),
                Some("Bearer not-the-configured-token".to_owned()),
            ),
            ("no token", forged, None),
        ]);
    for (label, body, auth) in attempts {
        let event = body["event_name"].as_str().unwrap_or_default().to_owned();
        let url = format!("{prefix}{}", catalogue::route_of(&event));
        let mut headers = vec![("user-agent", "Prosody (demo)".to_owned())];
        headers.extend(auth.map(|a| ("authorization", a)));
        deliveries.push(deliver(&http, &url, label, &headers, body.to_string(), verbose).await?);
    }
    let target = Target::from_stack(info).await;
    let timeline = ops::events::timeline(&target, &jid)
        .await?
        .into_iter()
        .map(|e| (e.event_type, e.key))
        .collect();
    Ok(ProsodyReport {
        room_jid: jid,
        deliveries,
        timeline,
    })
}

/// Prints the report and fails when the room did not land as played.
pub fn print_and_check(report: &ProsodyReport) -> anyhow::Result<()> {
    println!(
        "\nJitsi room {}: {} events stored",
        report.room_jid,
        report.timeline.len()
    );
    let statuses: Vec<u16> = report.deliveries.iter().map(|d| d.status).collect();
    let expected: Vec<u16> = [200; 13].into_iter().chain([401, 401]).collect();
    if statuses != expected {
        bail!("answers {statuses:?}, expected {expected:?}");
    }
    if !report.deliveries[9].answer.contains("duplicate") {
        bail!(
            "the retried request was not a duplicate: {}",
            report.deliveries[9].answer
        );
    }
    if report.timeline.len() != 12 {
        bail!(
            "{} events stored for the room, expected 12",
            report.timeline.len()
        );
    }
    println!("Prosody's events stored once each, the retry deduplicated, other tokens refused.");
    Ok(())
}
