//! `hooksctl demo`: plays a realistic signed JaaS meeting against a running local stack and
//! shows the result. Room created, two participants join (the second's event delivered before
//! the first's), recording started and ended, a participant leaves (delivered twice), room
//! destroyed, then RECORDING_UPLOADED, CHAT_UPLOADED and TRANSCRIPTION_UPLOADED whose links point
//! at files this command serves on 127.0.0.1 (the stack's development-only origin setting allows
//! that). It then waits for the copier and checks each object in local S3 byte for byte.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use meeting_hooks::jaas::signature::signature_header;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use meeting_hooks::copier::state::CopyStatus;

use crate::ops::{self, target::Target};
use crate::stack::info::StackInfo;

/// A file the demo serves as a JaaS storage link.
#[derive(Debug, Clone)]
pub struct DemoFile {
    pub path: String,
    pub kind: &'static str,
    pub bytes: Bytes,
}

impl DemoFile {
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// Deterministic pseudo-random bytes (xorshift): large enough to need several multipart parts.
pub fn pseudo_random(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn demo_files(session: &str) -> Vec<DemoFile> {
    let chat = json!({
        "roomAddress": "demo@conference",
        "meetingFqn": "demo",
        "sessionId": session,
        "timestamp": 0,
        "messageType": "CHAT",
        "messages": [{"jid": "alice@8x8.vc", "content": "hello", "timestamp": 0}]
    });
    vec![
        DemoFile {
            path: "/recording.mp4".into(),
            kind: "recording",
            bytes: pseudo_random(20 * 1024 * 1024 + 12_345, 0x5eed),
        },
        DemoFile {
            path: "/chat.json".into(),
            kind: "chat",
            bytes: Bytes::from(chat.to_string()),
        },
        DemoFile {
            path: "/transcript.txt".into(),
            kind: "transcription",
            bytes: Bytes::from_static(b"[00:00:01] Alice: hello\n[00:00:03] Bob: hi\n"),
        },
    ]
}

/// Serves the files on 127.0.0.1 (ephemeral port) until the returned task is dropped.
pub(crate) async fn serve(
    files: Vec<DemoFile>,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let files: Arc<HashMap<String, Bytes>> =
        Arc::new(files.into_iter().map(|f| (f.path, f.bytes)).collect());
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let files = Arc::clone(&files);
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let files = Arc::clone(&files);
                    async move {
                        let resp = match files.get(req.uri().path()) {
                            Some(b) => hyper::Response::builder()
                                .header("content-length", b.len())
                                .header("content-type", "application/octet-stream")
                                .body(Full::new(b.clone())),
                            None => hyper::Response::builder()
                                .status(404)
                                .body(Full::new(Bytes::from_static(b"not found"))),
                        };
                        resp.map_err(|e| anyhow::anyhow!(e))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((base, task))
}

fn envelope(app: &str, session: &str, key: &str, ty: &str, ts: i64, data: Value) -> String {
    json!({
        "idempotencyKey": key,
        "customerId": app.trim_start_matches("vpaas-magic-cookie-"),
        "appId": app,
        "eventType": ty,
        "sessionId": session,
        "timestamp": ts,
        "fqn": format!("{app}/demo-room"),
        "data": data,
    })
    .to_string()
}

/// One delivery the demo makes, and what it answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub label: String,
    pub status: u16,
    pub answer: String,
}

/// POSTs `body` as JSON with the provider's `headers` and says what came back (printed when
/// `verbose`): one delivery of every demo.
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    label: &str,
    headers: &[(&str, String)],
    body: String,
    verbose: bool,
) -> anyhow::Result<Delivery> {
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let resp = request
        .send()
        .await
        .with_context(|| format!("POST {url} (is the stack running?)"))?;
    let status = resp.status().as_u16();
    let answer = resp.text().await.unwrap_or_default();
    if verbose {
        println!("  {label:<34} -> {status} {answer}");
    }
    Ok(Delivery {
        label: label.to_owned(),
        status,
        answer,
    })
}

/// What the demo found at the end.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub session_id: String,
    /// The copier's account of each file.
    pub jobs: Vec<ops::jobs::JobRow>,
    pub deliveries: Vec<Delivery>,
    pub timeline: Vec<ops::events::TimelineEntry>,
    /// (kind, S3 key, size, checksum matches)
    pub objects: Vec<(String, String, u64, bool)>,
}

/// Plays the meeting and waits up to `wait` for the copies.
pub async fn run(info: &StackInfo, wait: Duration, verbose: bool) -> anyhow::Result<DemoReport> {
    let nonce = nonce();
    let session = format!("demo-{nonce}");
    let app = info.app_id.as_str();
    let files = demo_files(&session);
    let (origin, _server) = serve(files.clone()).await?;
    let t0 = meeting_hooks::respond::now_ms() - 120_000;
    let k = |n: &str| format!("{nonce}-{n}");
    let alice =
        json!({"name":"Alice","id":"alice","participantJid":"alice@8x8.vc","moderator":"true"});
    let bob = json!({"name":"Bob","id":"bob","participantJid":"bob@8x8.vc","moderator":false});
    let link = |p: &str| json!({ "preAuthenticatedLink": format!("{origin}{p}") });
    let mut recording = link("/recording.mp4");
    recording["durationSec"] = json!(60);
    recording["participants"] = json!([{"name":"Alice","id":"alice"},{"name":"Bob","id":"bob"}]);
    let conference = json!({"conference": "demo-room@conference.8x8.vc"});
    let mut left = bob.clone();
    left["disconnectReason"] = json!("left");
    let plan: Vec<(&str, String)> = vec![
        (
            "ROOM_CREATED",
            envelope(
                app,
                &session,
                &k("created"),
                "ROOM_CREATED",
                t0,
                conference.clone(),
            ),
        ),
        // Out of order: Bob's join arrives before Alice's.
        (
            "PARTICIPANT_JOINED (Bob, early)",
            envelope(
                app,
                &session,
                &k("join-bob"),
                "PARTICIPANT_JOINED",
                t0 + 2_000,
                bob.clone(),
            ),
        ),
        (
            "PARTICIPANT_JOINED (Alice)",
            envelope(
                app,
                &session,
                &k("join-alice"),
                "PARTICIPANT_JOINED",
                t0 + 1_000,
                alice,
            ),
        ),
        (
            "RECORDING_STARTED",
            envelope(
                app,
                &session,
                &k("rec-start"),
                "RECORDING_STARTED",
                t0 + 5_000,
                conference.clone(),
            ),
        ),
        (
            "PARTICIPANT_LEFT (Bob)",
            envelope(
                app,
                &session,
                &k("left-bob"),
                "PARTICIPANT_LEFT",
                t0 + 60_000,
                left.clone(),
            ),
        ),
        // Delivered twice, as JaaS retries do.
        (
            "PARTICIPANT_LEFT (Bob, again)",
            envelope(
                app,
                &session,
                &k("left-bob"),
                "PARTICIPANT_LEFT",
                t0 + 60_000,
                left,
            ),
        ),
        (
            "RECORDING_ENDED",
            envelope(
                app,
                &session,
                &k("rec-end"),
                "RECORDING_ENDED",
                t0 + 65_000,
                conference.clone(),
            ),
        ),
        (
            "ROOM_DESTROYED",
            envelope(
                app,
                &session,
                &k("destroyed"),
                "ROOM_DESTROYED",
                t0 + 70_000,
                conference,
            ),
        ),
        (
            "RECORDING_UPLOADED",
            envelope(
                app,
                &session,
                &k("rec-up"),
                "RECORDING_UPLOADED",
                t0 + 90_000,
                recording,
            ),
        ),
        (
            "CHAT_UPLOADED",
            envelope(
                app,
                &session,
                &k("chat-up"),
                "CHAT_UPLOADED",
                t0 + 91_000,
                link("/chat.json"),
            ),
        ),
        (
            "TRANSCRIPTION_UPLOADED",
            envelope(
                app,
                &session,
                &k("tr-up"),
                "TRANSCRIPTION_UPLOADED",
                t0 + 92_000,
                link("/transcript.txt"),
            ),
        ),
    ];
    let http = reqwest::Client::new();
    let mut deliveries = Vec::new();
    for (label, body) in plan {
        let t = meeting_hooks::respond::now_ms() / 1000;
        let headers = [
            ("authorization", info.authorization.clone()),
            (
                "x-jaas-signature",
                signature_header(&info.webhook_secret, t, body.as_bytes()),
            ),
        ];
        deliveries.push(deliver(&http, &info.webhook_url(), label, &headers, body, verbose).await?);
    }

    // Wait for the copier to land every file.
    let target = Target::from_stack(info).await;
    // Done means the copier recorded every file as copied (or failed), not merely that an
    // object exists: the copies table is the copier's own account of each file.
    let deadline = Instant::now() + wait;
    let jobs = loop {
        let rows = ops::jobs::session_jobs(&target, &session).await?;
        let settled = rows
            .iter()
            .filter(|r| matches!(r.copy, Some(CopyStatus::Copied | CopyStatus::Failed { .. })))
            .count();
        if verbose {
            eprint!(
                "\r  waiting for the copier: {settled}/{} files settled",
                files.len()
            );
        }
        if settled >= files.len() || Instant::now() > deadline {
            if verbose {
                eprintln!();
            }
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let s3 = meeting_hooks::aws::s3(&target.sdk);
    let objects: Vec<(String, u64)> = jobs
        .iter()
        .filter(|r| matches!(r.copy, Some(CopyStatus::Copied)))
        .filter_map(|r| Some((r.object_key.clone()?, r.bytes.unwrap_or(0))))
        .collect();
    let mut checked = Vec::new();
    for (key, size) in objects {
        let Some(file) = files
            .iter()
            .find(|f| key.contains(&format!("/{}/", f.kind)))
        else {
            continue;
        };
        let body = read_object(&s3, &info.bucket, &key).await?;
        let ok = hex::encode(Sha256::digest(&body)) == file.sha256();
        checked.push((file.kind.to_owned(), key, size, ok));
    }
    let timeline = ops::events::timeline(&target, &session).await?;
    Ok(DemoReport {
        session_id: session,
        jobs,
        deliveries,
        timeline,
        objects: checked,
    })
}

/// A token unique to this demo run (process id and time), for ids that must not repeat.
pub fn nonce() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        meeting_hooks::respond::now_ms()
    )
}

/// The object of a copy job the copier recorded as copied, read back: (S3 key, bytes, equal
/// to `sha256`); `None` while it is not copied.
pub async fn copied_object(
    copies: &meeting_hooks::aws::copies::DynamoCopyStore,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    job_id: &str,
    sha256: &str,
) -> anyhow::Result<Option<(String, u64, bool)>> {
    let Some(item) = copies.get(job_id).await? else {
        return Ok(None);
    };
    let key = item
        .get(meeting_hooks::schema::copy_attr::OBJECT_KEY)
        .and_then(|v| v.as_s().ok())
        .cloned();
    let (Some(CopyStatus::Copied), Some(key)) = (meeting_hooks::aws::copies::status_of(&item), key)
    else {
        return Ok(None);
    };
    let body = read_object(s3, bucket, &key).await?;
    let same = hex::encode(Sha256::digest(&body)) == sha256;
    Ok(Some((key, body.len() as u64, same)))
}

/// An object of the local recordings bucket, read back whole (to compare with its origin).
pub async fn read_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> anyhow::Result<Bytes> {
    Ok(s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("get {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?
        .body
        .collect()
        .await
        .context("read object body")?
        .into_bytes())
}

/// Prints the report and fails when a file is missing or differs.
pub fn print_and_check(report: &DemoReport) -> anyhow::Result<()> {
    println!();
    ops::events::print(
        &mut std::io::stdout().lock(),
        &report.session_id,
        &report.timeline,
    )?;
    println!();
    ops::jobs::print(
        &mut std::io::stdout().lock(),
        &report.session_id,
        &report.jobs,
    )?;
    println!("\nrecordings bucket, read back and compared with the origin:");
    for (kind, key, size, ok) in &report.objects {
        println!(
            "  {kind:<14} {size:>10} bytes  sha256 {}  {key}",
            if *ok {
                "matches the origin"
            } else {
                "DIFFERS from the origin"
            }
        );
    }
    let expected = 3;
    if report.objects.len() < expected || report.objects.iter().any(|o| !o.3) {
        bail!(
            "{} of {expected} files landed intact; see `hooksctl jobs --session {}`",
            report.objects.iter().filter(|o| o.3).count(),
            report.session_id
        );
    }
    println!("\nall {expected} files copied byte for byte.");
    Ok(())
}
