//! `hooksctl demo --provider daily`: plays a signed Daily meeting against the running local
//! stack. Daily's side is the stack's REST API stand-in: the demo registers three files there
//! (a cloud recording and a transcript whose `*.ready-to-download` webhooks it sends, and a
//! second recording whose webhook is never sent), plays the meeting's webhooks (one delivered
//! twice, the creation test first), then waits until the copier has every file, the third one
//! found by reconciliation, and reads each back from local S3 byte for byte.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use meeting_hooks::providers::daily;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::demo::{Delivery, copied_object, deliver, pseudo_random};
use crate::ops::target::Target;
use crate::stack::info::StackInfo;

/// One file of the demo and where it ended.
#[derive(Debug, Clone)]
pub struct DailyFile {
    pub label: &'static str,
    pub job_id: String,
    pub sha256: String,
    /// (S3 key, bytes, read back equal) once copied.
    pub copied: Option<(String, u64, bool)>,
}

/// What the Daily demo found.
#[derive(Debug, Clone)]
pub struct DailyReport {
    pub meeting_id: String,
    pub deliveries: Vec<Delivery>,
    pub files: Vec<DailyFile>,
}

fn event(ty: &str, id: &str, ts: f64, payload: Value) -> String {
    json!({"version": "1.0.0", "type": ty, "id": id, "payload": payload, "event_ts": ts})
        .to_string()
}

/// Plays the meeting and waits up to `wait` for the copies (reconciliation included).
pub async fn run(info: &StackInfo, wait: Duration, verbose: bool) -> anyhow::Result<DailyReport> {
    let daily = info
        .providers
        .get(daily::NAME)
        .context("the running stack does not serve Daily (restart `hooksctl up`)")?;
    let api = daily
        .api_base_url
        .clone()
        .context("the stack description has no Daily API stand-in")?;
    let stand_in = api.trim_end_matches("/v1").to_owned();
    let secret = daily
        .webhook_secret
        .clone()
        .context("the stack description has no Daily webhook secret")?;
    let nonce = crate::demo::nonce();
    let room = format!("daily-demo-{nonce}");
    let meeting = format!("mtg-{nonce}");
    let (rec, lost, transcript) = (
        format!("rec-{nonce}"),
        format!("lost-{nonce}"),
        format!("tr-{nonce}"),
    );
    let now = meeting_hooks::respond::now_ms() / 1000;
    let start = now - 900;
    let http = reqwest::Client::new();

    // Daily finishes the files: they exist at Daily before any webhook says so.
    let contents = [
        (
            "recording",
            rec.as_str(),
            pseudo_random(12 * 1024 * 1024 + 777, 0xda11),
            start + 30,
        ),
        (
            "recording",
            lost.as_str(),
            pseudo_random(6 * 1024 * 1024 + 5, 0x1057),
            start + 400,
        ),
        (
            "transcript",
            transcript.as_str(),
            bytes::Bytes::from_static(b"WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nAna: hello\n"),
            start + 40,
        ),
    ];
    for (object, id, bytes, ts) in &contents {
        let mut register = url::Url::parse(&format!("{stand_in}/_local/files"))?;
        register
            .query_pairs_mut()
            .append_pair("object", object)
            .append_pair("id", id)
            .append_pair("room", &room)
            .append_pair("start_ts", &ts.to_string());
        let resp = http
            .post(register)
            .body(bytes.clone())
            .send()
            .await
            .context("register a file with the Daily API stand-in")?;
        if !resp.status().is_success() {
            bail!("the Daily API stand-in refused a file: {}", resp.status());
        }
    }
    let s = start as f64;
    let joined = |who: &str, name: &str, at: f64, owner: bool| {
        json!({"room": room, "user_id": format!("u-{who}"), "user_name": name,
               "session_id": format!("p-{who}"), "joined_at": at, "owner": owner,
               "meeting_id": meeting})
    };
    let mut left_bo = joined("bo", "Bo", s + 20.0, false);
    left_bo["duration"] = json!(500);
    let mut left_ana = joined("ana", "Ana", s + 5.0, true);
    left_ana["duration"] = json!(560);
    let plan: Vec<(&str, String)> = vec![
        ("test (webhook creation)", r#"{"test":"test"}"#.to_owned()),
        (
            "meeting.started",
            event(
                "meeting.started",
                &format!("{nonce}-1"),
                s + 0.41,
                json!({"start_ts": s, "meeting_id": meeting, "room": room}),
            ),
        ),
        // Out of order: Bo's join arrives before Ana's.
        (
            "participant.joined (Bo, early)",
            event(
                "participant.joined",
                &format!("{nonce}-3"),
                s + 20.5,
                joined("bo", "Bo", s + 20.0, false),
            ),
        ),
        (
            "participant.joined (Ana)",
            event(
                "participant.joined",
                &format!("{nonce}-2"),
                s + 5.5,
                joined("ana", "Ana", s + 5.0, true),
            ),
        ),
        (
            "recording.started",
            event(
                "recording.started",
                &format!("{nonce}-4"),
                s + 30.2,
                json!({"recording_id": rec, "room_name": room, "start_ts": s + 30.0}),
            ),
        ),
        (
            "participant.left (Bo)",
            event(
                "participant.left",
                &format!("{nonce}-5"),
                s + 520.7,
                left_bo.clone(),
            ),
        ),
        // Delivered twice, as a retry would.
        (
            "participant.left (Bo, again)",
            event(
                "participant.left",
                &format!("{nonce}-5"),
                s + 520.7,
                left_bo,
            ),
        ),
        (
            "participant.left (Ana)",
            event(
                "participant.left",
                &format!("{nonce}-6"),
                s + 565.1,
                left_ana,
            ),
        ),
        (
            "meeting.ended",
            event(
                "meeting.ended",
                &format!("{nonce}-7"),
                s + 585.9,
                json!({"start_ts": s, "end_ts": s + 566.0, "meeting_id": meeting, "room": room}),
            ),
        ),
        (
            "recording.ready-to-download",
            event(
                "recording.ready-to-download",
                &format!("{nonce}-8"),
                s + 600.3,
                json!({
                    "type": "cloud", "recording_id": rec, "room_name": room, "start_ts": start + 30,
                    "status": "finished", "max_participants": 2, "duration": 530,
                    "s3_key": format!("local-domain/{room}/{}.mp4", (start + 30) * 1000)
                }),
            ),
        ),
        (
            "transcript.ready-to-download",
            event(
                "transcript.ready-to-download",
                &format!("{nonce}-9"),
                s + 610.0,
                json!({
                    "id": transcript, "room_id": "local-room-id", "mtg_session_id": meeting,
                    "duration": 520, "status": "t_finished"
                }),
            ),
        ),
        // The second recording's webhook is never sent: reconciliation finds it.
    ];
    let url = format!("{}{}", info.api_base_url, daily.route);
    let mut deliveries = Vec::new();
    for (label, body) in plan {
        let ts = (meeting_hooks::respond::now_ms() / 1000).to_string();
        let headers = [
            (
                daily::SIGNATURE_HEADER,
                daily::sign(&secret, &ts, body.as_bytes()),
            ),
            (daily::TIMESTAMP_HEADER, ts),
        ];
        deliveries.push(deliver(&http, &url, label, &headers, body, verbose).await?);
    }

    let mut files: Vec<DailyFile> = [
        (
            "cloud recording (webhook)",
            daily::recording_job_id(&rec, None),
            &contents[0].2,
        ),
        (
            "recording (webhook never sent)",
            daily::recording_job_id(&lost, None),
            &contents[1].2,
        ),
        (
            "transcript (webhook)",
            format!("daily:transcript:{transcript}"),
            &contents[2].2,
        ),
    ]
    .into_iter()
    .map(|(label, job_id, bytes)| DailyFile {
        label,
        job_id,
        sha256: hex::encode(Sha256::digest(bytes)),
        copied: None,
    })
    .collect();
    let target = Target::from_stack(info).await;
    let copies = meeting_hooks::aws::copies::DynamoCopyStore::new(
        meeting_hooks::aws::dynamodb(&target.sdk),
        &info.tables.copies,
    );
    let s3 = meeting_hooks::aws::s3(&target.sdk);
    let deadline = Instant::now() + wait;
    loop {
        for f in files.iter_mut().filter(|f| f.copied.is_none()) {
            f.copied = copied_object(&copies, &s3, &info.bucket, &f.job_id, &f.sha256).await?;
        }
        let done = files.iter().filter(|f| f.copied.is_some()).count();
        if verbose {
            eprint!(
                "\r  waiting for the copier (and reconciliation): {done}/{} files copied",
                files.len()
            );
        }
        if done == files.len() || Instant::now() > deadline {
            if verbose {
                eprintln!();
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(DailyReport {
        meeting_id: meeting,
        deliveries,
        files,
    })
}

/// Prints the report and fails when a file is missing or differs.
pub fn print_and_check(report: &DailyReport) -> anyhow::Result<()> {
    println!(
        "\nDaily meeting {}: files in the recordings bucket, read back:",
        report.meeting_id
    );
    for f in &report.files {
        match &f.copied {
            Some((key, size, same)) => println!(
                "  {:<32} {size:>10} bytes  sha256 {}  {key}",
                f.label,
                if *same {
                    "matches Daily's file"
                } else {
                    "DIFFERS from Daily's file"
                }
            ),
            None => println!("  {:<32} not copied ({})", f.label, f.job_id),
        }
    }
    let intact = report
        .files
        .iter()
        .filter(|f| f.copied.as_ref().is_some_and(|c| c.2))
        .count();
    if intact < report.files.len() {
        bail!(
            "{intact} of {} Daily files landed intact",
            report.files.len()
        );
    }
    println!(
        "\nall {} Daily files copied byte for byte, one found by reconciliation.",
        report.files.len()
    );
    Ok(())
}
