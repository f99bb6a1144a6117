//! `hooksctl demo --provider videosdk`: plays a VideoSDK meeting, each request signed with the
//! local stack's VideoSDK key (RSA-SHA256 over the raw body, as VideoSDK signs), against a
//! running local stack. Session started, two participants join, a recording starts, one
//! participant leaves (delivered twice: the same bytes, so one item), the recording stops with
//! a `fileUrl` this command serves on 127.0.0.1, the session ends; then one request signed
//! with another key, which must be refused. It waits for the copier and reads the object back.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use meeting_hooks::providers::videosdk::{self, keys};
use serde_json::{Value, json};

use crate::demo::{Delivery, DemoFile, copied_object, deliver, pseudo_random, serve};
use crate::ops::{self, target::Target};
use crate::stack::info::StackInfo;

/// What the VideoSDK demo found.
#[derive(Debug, Clone)]
pub struct VideoSdkReport {
    pub session_id: String,
    pub deliveries: Vec<Delivery>,
    /// Items stored for the session.
    pub stored: usize,
    pub recording_sha256: String,
    /// (S3 key, bytes, read back equal) once copied.
    pub copied: Option<(String, u64, bool)>,
}

fn iso(ms: i64) -> String {
    meeting_hooks::time::iso(ms)
}

fn event(ty: &str, meeting: &str, session: &str, extra: Value) -> String {
    let mut data = json!({"meetingId": meeting, "sessionId": session});
    if let (Some(d), Value::Object(e)) = (data.as_object_mut(), extra) {
        d.extend(e);
    }
    json!({"webhookType": ty, "type": ty, "data": data}).to_string()
}

/// Plays the meeting and waits up to `wait` for the copy.
pub async fn run(
    info: &StackInfo,
    wait: Duration,
    verbose: bool,
) -> anyhow::Result<VideoSdkReport> {
    let provider = info
        .providers
        .get(videosdk::NAME)
        .context("the running stack does not serve VideoSDK (restart `hooksctl up`)")?;
    let key_path = provider
        .private_key_path
        .as_deref()
        .context("the stack description has no VideoSDK key")?;
    let private = std::fs::read_to_string(key_path).with_context(|| format!("read {key_path}"))?;
    let url = format!("{}{}", info.api_base_url, provider.route);
    let nonce = crate::demo::nonce();
    let meeting = format!("vsdk-{nonce}");
    let session = format!("sess-{nonce}");
    let file_path = format!("/encoded/videos/{nonce}.mp4");
    let file = DemoFile {
        path: file_path.clone(),
        kind: "recording",
        bytes: pseudo_random(7 * 1024 * 1024 + 4_321, 0x7d5),
    };
    let (origin, _server) = serve(vec![file.clone()]).await?;
    let t0 = meeting_hooks::respond::now_ms() - 600_000;
    let ana = json!({"participantId": "p-ana", "participantName": "Ana"});
    let bo = json!({"participantId": "p-bo", "participantName": "Bo"});
    let ev = |ty: &str, extra: Value| event(ty, &meeting, &session, extra);
    let left = ev("participant-left", bo.clone());
    let plan: Vec<(&str, String)> = vec![
        (
            "session-started",
            ev("session-started", json!({"start": iso(t0)})),
        ),
        ("participant-joined (Ana)", ev("participant-joined", ana)),
        ("participant-joined (Bo)", ev("participant-joined", bo)),
        ("recording-started", ev("recording-started", json!({}))),
        ("participant-left (Bo)", left.clone()),
        ("participant-left (Bo, again)", left),
        (
            "recording-stopped",
            ev(
                "recording-stopped",
                json!({"filePath": file_path, "fileUrl": format!("{origin}{file_path}")}),
            ),
        ),
        (
            "session-ended",
            ev(
                "session-ended",
                json!({"start": iso(t0), "end": iso(t0 + 540_000)}),
            ),
        ),
    ];
    let (attacker, _) = keys::generate_pem_pair().map_err(anyhow::Error::msg)?;
    let forged = ev(
        "recording-stopped",
        json!({"filePath": "/x.mp4", "fileUrl": format!("{origin}/x.mp4")}),
    );
    let http = reqwest::Client::new();
    let mut deliveries = Vec::new();
    for (label, body, key) in plan
        .into_iter()
        .map(|(l, b)| (l, b, private.as_str()))
        .chain([("forged (another key)", forged, attacker.as_str())])
    {
        let signature = keys::sign(key, body.as_bytes()).map_err(anyhow::Error::msg)?;
        let headers = [(videosdk::SIGNATURE_HEADER, signature)];
        deliveries.push(deliver(&http, &url, label, &headers, body, verbose).await?);
    }

    let target = Target::from_stack(info).await;
    let copies = meeting_hooks::aws::copies::DynamoCopyStore::new(
        meeting_hooks::aws::dynamodb(&target.sdk),
        &info.tables.copies,
    );
    let job_id = videosdk::recording_job_id(&file_path);
    let s3 = meeting_hooks::aws::s3(&target.sdk);
    let recording_sha256 = file.sha256();
    let deadline = Instant::now() + wait;
    let copied = loop {
        if let Some(copied) =
            copied_object(&copies, &s3, &info.bucket, &job_id, &recording_sha256).await?
        {
            break Some(copied);
        }
        if Instant::now() > deadline {
            break None;
        }
        if verbose {
            eprint!("\r  waiting for the copier…");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if verbose {
        eprintln!();
    }
    let stored = ops::events::timeline(&target, &session).await?.len();
    Ok(VideoSdkReport {
        session_id: session,
        deliveries,
        stored,
        recording_sha256,
        copied,
    })
}

/// Prints the report and fails when the meeting did not land as played.
pub fn print_and_check(report: &VideoSdkReport) -> anyhow::Result<()> {
    println!("\nVideoSDK session {}:", report.session_id);
    println!(
        "  {} events stored (8 signed deliveries, one repeated)",
        report.stored
    );
    match &report.copied {
        Some((key, size, same)) => println!(
            "  recording {size} bytes, sha256 {}  {key}",
            if *same {
                "matches VideoSDK's file"
            } else {
                "DIFFERS from VideoSDK's file"
            }
        ),
        None => println!("  recording not copied"),
    }
    let statuses: Vec<u16> = report.deliveries.iter().map(|d| d.status).collect();
    let expected: Vec<u16> = [200; 8].into_iter().chain([401]).collect();
    if statuses != expected {
        bail!("answers {statuses:?}, expected {expected:?}");
    }
    if !report.deliveries[5].answer.contains("duplicate") {
        bail!(
            "the repeated delivery was not a duplicate: {}",
            report.deliveries[5].answer
        );
    }
    if report.stored != 7 {
        bail!(
            "{} events stored for the session, expected 7",
            report.stored
        );
    }
    if !report.copied.as_ref().is_some_and(|c| c.2) {
        bail!("the recording did not land intact");
    }
    println!(
        "\nVideoSDK meeting stored once, forged request refused, recording copied byte for byte."
    );
    Ok(())
}
