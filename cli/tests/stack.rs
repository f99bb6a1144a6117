//! End to end, as a user runs it: `hooksctl up` starts its own moto_server and serves the API;
//! the demo meeting is played against it; the operator commands inspect and redrive.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hooksctl::stack::info::StackInfo;

struct Up {
    child: Child,
    stack_file: PathBuf,
}

impl Drop for Up {
    fn drop(&mut self) {
        // SIGTERM: the stack stops moto and removes its stack file.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        if let Some(dir) = self.stack_file.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn hooksctl(stack_file: &PathBuf, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hooksctl"))
        .arg("--stack-file")
        .arg(stack_file)
        .args(args)
        .env_remove("SETTINGS_TABLE")
        .env_remove("EVENTS_TABLE")
        .output()
        .expect("run hooksctl")
}

fn start_stack() -> (Up, StackInfo) {
    let dir =
        std::env::temp_dir().join(format!("hooks-e2e-{}-{}", std::process::id(), free_port()));
    let stack_file = dir.join("stack.json");
    let child = Command::new(env!("CARGO_BIN_EXE_hooksctl"))
        .current_dir(integration_tests::workspace_root())
        .args([
            "up",
            "--port",
            "0",
            "--prefix",
            "e2e",
            "--sweep-interval-secs",
            "1",
            "--reconcile-interval-secs",
            "2",
            // EventBridge refuses the meeting events' first PutEvents calls: they arrive anyway.
            "--fail-put-events",
            "6",
        ])
        .arg("--emulator-port")
        .arg(free_port().to_string())
        .arg("--stack-file")
        .arg(&stack_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hooksctl up");
    let up = Up {
        child,
        stack_file: stack_file.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !stack_file.exists() {
        assert!(
            Instant::now() < deadline,
            "hooksctl up did not come up within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let info = StackInfo::read(&stack_file).expect("stack file");
    (up, info)
}

/// A read API call as the host application's backend makes it (stack.json's `readApi`).
async fn read_api(info: &StackInfo, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
    let api = info.read_api.as_ref().expect("stack.json has readApi");
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    let response = reqwest::Client::new()
        .get(format!("{}{path}?{query}", api.base_url))
        .header("authorization", &api.authorization)
        .send()
        .await
        .expect("read API answers");
    let status = response.status().as_u16();
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    assert_eq!(status, 200, "{path}: {body}");
    // Every real answer is what openapi.yaml says it is.
    integration_tests::contract::OpenApi::load()
        .check_response("GET", path, status, &body)
        .unwrap_or_else(|e| panic!("{e}"));
    body
}

/// `POST /v1/jaas/token` as the host application's backend calls it (stack.json's `jaasToken`):
/// the token verifies with the local key pair's public half and grants exactly what was asked;
/// without the caller token nothing is minted; `hooksctl jaas-token` with the same key mints
/// a token that verifies too.
async fn check_jaas_tokens(info: &StackInfo, stack_file: &PathBuf) {
    use meeting_hooks::providers::jaas::token;
    let jaas = info.jaas_token.as_ref().expect("stack.json has jaasToken");
    let public = std::fs::read_to_string(&jaas.public_key_path).expect("public key");
    let url = format!("{}{}", info.api_base_url, jaas.route);
    let request = serde_json::json!({
        "roomPrefix": "Team-A.",
        "user": {"id": "u-42", "name": "Ana", "email": "ana@example.com", "moderator": true},
        "features": {"recording": true, "transcription": true},
        "ttlSeconds": 900,
    });
    let client = reqwest::Client::new();
    let response = client
        .post(&url)
        .header("authorization", &jaas.authorization)
        .header("content-type", "application/json")
        .body(request.to_string())
        .send()
        .await
        .expect("token route answers");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON");
    integration_tests::contract::OpenApi::load()
        .check_response("POST", &jaas.route, 200, &body)
        .unwrap_or_else(|e| panic!("{e}"));
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("as shown")
            .as_secs(),
    )
    .expect("as shown");
    let verified =
        token::verify(body["token"].as_str().expect("as shown"), &public, now).expect("verifies");
    assert_eq!(verified.kid.as_deref(), Some(jaas.kid.as_str()));
    let claims = &verified.claims;
    assert_eq!(claims["room"], "^team%-a%..*");
    assert_eq!(claims["context"]["room"]["regex"], true);
    assert_eq!(claims["context"]["user"]["moderator"], "true");
    let granted: Vec<&str> = claims["context"]["features"]
        .as_object()
        .expect("as shown")
        .iter()
        .filter(|(_, v)| *v == "true")
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(granted, ["recording", "transcription"]);
    let refused = client
        .post(&url)
        .body(request.to_string())
        .send()
        .await
        .expect("as shown");
    assert_eq!(refused.status().as_u16(), 401);

    // The CLI signs with the same module; the local key is the stack's.
    let (app, key_id) = jaas.kid.split_once('/').expect("as shown");
    let private = std::path::Path::new(&jaas.public_key_path).with_file_name("jaas-private.pem");
    let out = hooksctl(
        stack_file,
        &[
            "jaas-token",
            "--private-key",
            private.to_str().expect("as shown"),
            "--app-id",
            app,
            "--key-id",
            key_id,
            "--room",
            "standup",
            "--user-id",
            "u-7",
            "--name",
            "Bo",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let verified = token::verify(&cli_token, &public, now).expect("CLI token verifies");
    assert_eq!(verified.claims["room"], "standup");
    assert_eq!(verified.claims["context"]["user"]["moderator"], "false");
}

/// A recording whose origin answers 503 while its link has an hour left: the local copier
/// hands the job back and flags it, and a subscriber receives `RecordingAtRisk`
/// (`link_expiring`) for it.
async fn check_recording_at_risk(info: &StackInfo) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    let nonce = hooksctl::demo::nonce();
    let session = format!("at-risk-{nonce}");
    let now = meeting_hooks::respond::now_ms();
    let body = serde_json::json!({
        "idempotencyKey": format!("{nonce}-rec"),
        "customerId": info.app_id.trim_start_matches("vpaas-magic-cookie-"),
        "appId": info.app_id,
        "eventType": "RECORDING_UPLOADED",
        "sessionId": session,
        "timestamp": now,
        "fqn": format!("{}/at-risk-room", info.app_id),
        "data": {
            "preAuthenticatedLink": format!("{origin}/rec.mp4?sig=secret"),
            "linkExpiration": now + 3_600_000,
        },
    })
    .to_string();
    let headers = [
        ("authorization", info.authorization.clone()),
        (
            "x-jaas-signature",
            meeting_hooks::jaas::signature::signature_header(
                &info.webhook_secret,
                now / 1000,
                body.as_bytes(),
            ),
        ),
    ];
    let answer = hooksctl::demo::deliver(
        &reqwest::Client::new(),
        &info.webhook_url(),
        "RECORDING_UPLOADED (origin down)",
        &headers,
        body,
        false,
    )
    .await
    .expect("delivered");
    assert_eq!(answer.status, 200, "{}", answer.answer);
    let published = meeting_events(info, &session, &[("RecordingAtRisk", "")], 0).await;
    let risk = published
        .values()
        .find(|e| {
            e["detail-type"] == "RecordingAtRisk" && e["detail"]["sessionId"] == session.as_str()
        })
        .expect("at risk");
    assert_eq!(risk["detail"]["cause"], "link_expiring", "{risk}");
    assert_eq!(
        risk["detail"]["linkExpiresAt"],
        meeting_hooks::time::iso(now + 3_600_000)
    );
    assert!(
        risk["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("503")),
        "{risk}"
    );
    assert!(!risk.to_string().contains("sig=secret"), "never the link");
    server.abort();
}

/// The meeting events a subscriber of the local bus received for `session`, deduplicated by
/// `detail.id` (delivery is at least once), each checked against `schemas/events/`. Waits until
/// `want` (detail-type, participant name or "") are all there.
async fn meeting_events(
    info: &StackInfo,
    session: &str,
    want: &[(&str, &str)],
    copied_files: usize,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let queue = &info
        .meeting_events
        .as_ref()
        .expect("stack.json has meetingEvents")
        .subscriber_queue_url;
    let sqs = aws_sdk_sqs::Client::new(&info.sdk_config().await);
    let mut seen: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive from the subscriber queue");
        for m in out.messages() {
            let event: serde_json::Value =
                serde_json::from_str(m.body().unwrap_or_default()).expect("an EventBridge event");
            assert_eq!(event["source"], "meeting-hooks");
            let kind = event["detail-type"]
                .as_str()
                .expect("detail-type")
                .to_owned();
            integration_tests::contract::check_schema_file(
                &format!("schemas/events/{kind}.json"),
                &event["detail"],
            )
            .unwrap_or_else(|e| panic!("{e}"));
            seen.insert(
                event["detail"]["id"].as_str().expect("id").to_owned(),
                event,
            );
        }
        let have = |(kind, name): &(&str, &str)| {
            seen.values().any(|e| {
                e["detail-type"] == *kind
                    && e["detail"]["sessionId"] == session
                    && (name.is_empty() || e["detail"]["participant"]["name"] == *name)
            })
        };
        let copied = seen
            .values()
            .filter(|e| {
                e["detail-type"] == "RecordingCopied" && e["detail"]["sessionId"] == session
            })
            .count();
        if want.iter().all(have) && copied >= copied_files {
            // The refused PutEvents calls (`up --fail-put-events`) were retried, not parked.
            let parked = sqs
                .receive_message()
                .queue_url(
                    &info
                        .meeting_events
                        .as_ref()
                        .expect("meetingEvents")
                        .dead_letter_queue_url,
                )
                .send()
                .await
                .expect("receive from the dead-letter queue");
            assert!(parked.messages().is_empty(), "events were parked");
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "meeting events for {session} missing: {:?}; seen {:?}",
            want.iter().filter(|w| !have(w)).collect::<Vec<_>>(),
            seen.values()
                .map(|e| (&e["detail-type"], &e["detail"]["sessionId"]))
                .collect::<Vec<_>>()
        );
    }
}

fn encoded(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// What the read API says of a played meeting: the room lists the session, attendance has
/// exactly `names` (bots left out), and every file in `files` (job id, SHA-256) is copied,
/// located in S3 and downloadable through its presigned URL, byte for byte.
async fn check_read_api(
    info: &StackInfo,
    session: &str,
    names: &[&str],
    files: &[(String, String)],
) -> serde_json::Value {
    let id = encoded(session);
    let attendance = read_api(info, &format!("/v1/sessions/{id}/attendance"), &[]).await;
    let mut got: Vec<&str> = attendance["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    got.sort_unstable();
    assert_eq!(got, names, "{session}: {attendance}");
    for p in attendance["participants"].as_array().expect("rows") {
        assert!(
            !p["intervals"].as_array().expect("intervals").is_empty(),
            "{p}"
        );
        assert!(p["totalSecs"].as_i64().is_some_and(|t| t >= 0), "{p}");
    }
    let room = attendance["session"]["roomKey"].as_str().expect("roomKey");
    let listed = read_api(info, "/v1/sessions", &[("room", room)]).await;
    assert!(
        listed["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .any(|s| s["id"] == session),
        "{room} lists {session}: {listed}"
    );
    let timeline = read_api(info, &format!("/v1/sessions/{id}/timeline"), &[]).await;
    let at: Vec<&str> = timeline["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["at"].as_str().expect("at"))
        .collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "event-time order");
    let answer = read_api(info, &format!("/v1/sessions/{id}/files"), &[]).await;
    let listed_files = answer["files"].as_array().expect("files");
    let mut jobs: Vec<&str> = listed_files
        .iter()
        .filter_map(|f| f["jobId"].as_str())
        .collect();
    jobs.sort_unstable();
    let all = jobs.len();
    jobs.dedup();
    assert_eq!(jobs.len(), all, "{session}: a file listed twice: {answer}");
    for (job, sha) in files {
        let f = listed_files
            .iter()
            .find(|f| f["jobId"] == job.as_str())
            .unwrap_or_else(|| panic!("{session}: {job} not in {answer}"));
        assert_eq!(f["state"], "copied", "{f}");
        assert_eq!(f["sha256"], sha.as_str(), "{f}");
        assert_eq!(f["s3"]["bucket"], info.bucket.as_str());
        let url = f["download"]["url"].as_str().expect("download url");
        let bytes = reqwest::get(url)
            .await
            .expect("download")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            *sha,
            "{job}: the presigned URL serves our copy"
        );
        assert_eq!(f["bytes"].as_u64(), Some(bytes.len() as u64));
    }
    attendance
}

#[tokio::test(flavor = "multi_thread")]
async fn up_demo_and_operator_commands_work_together() {
    let (up, info) = start_stack();
    assert!(
        info.aws_endpoint_url
            .as_deref()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:"))
    );

    check_jaas_tokens(&info, &up.stack_file).await;

    // The Daily meeting, through the same stack: every file byte for byte, one of them a
    // recording whose webhook was never sent, found by reconciliation.
    let daily = hooksctl::demo_daily::run(&info, Duration::from_secs(90), false)
        .await
        .expect("Daily demo runs");
    hooksctl::demo_daily::print_and_check(&daily).expect("all Daily files copied intact");
    let statuses: Vec<_> = daily.deliveries.iter().map(|d| d.status).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        daily.deliveries[0].answer.contains("\"ok\""),
        "the creation test"
    );
    assert!(
        daily
            .deliveries
            .iter()
            .any(|d| d.answer.contains("duplicate"))
    );
    let sdk = info.sdk_config().await;
    let events = meeting_hooks::aws::dynamodb(&sdk)
        .scan()
        .table_name(&info.tables.events)
        .send()
        .await
        .expect("scan events");
    let attr = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
                name: &str| {
        i.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let daily_types: Vec<String> = events
        .items()
        .iter()
        .filter(|i| attr(i, "provider") == "daily")
        .map(|i| attr(i, "eventType"))
        .collect();
    assert_eq!(
        daily_types
            .iter()
            .filter(|t| *t == "daily.reconciled")
            .count(),
        1,
        "the recording whose webhook never came, stored by reconciliation: {daily_types:?}"
    );
    assert_eq!(
        daily_types.len() - 1,
        9,
        "nine distinct Daily events: the repeat stored once, the creation test not at all"
    );
    // A forged Daily request stores nothing.
    let forged = reqwest::Client::new()
        .post(format!("{}/webhooks/daily", info.api_base_url))
        .header("x-webhook-signature", "AAAA")
        .header(
            "x-webhook-timestamp",
            (meeting_hooks::respond::now_ms() / 1000).to_string(),
        )
        .body(r#"{"type":"meeting.started","id":"forged","payload":{}}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status().as_u16(), 401);
    // The read API: nothing read without the token; the meeting's attendance (Bo's early
    // join delivered out of order, his leave twice) and its files (the recording named no
    // meeting: found under the room by time; the transcript named it).
    let refused = reqwest::Client::new()
        .get(format!("{}/v1/sessions?room=daily%3Ax", info.api_base_url))
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status().as_u16(), 401);
    // Every file, also the recording whose webhook never came: reconciliation stored it as
    // an event under the room, so the read API finds it in its meeting.
    let daily_files: Vec<(String, String)> = daily
        .files
        .iter()
        .map(|f| (f.job_id.clone(), f.sha256.clone()))
        .collect();
    assert!(daily.files.iter().any(|f| f.label.contains("never sent")));
    check_read_api(&info, &daily.meeting_id, &["Ana", "Bo"], &daily_files).await;

    // The VideoSDK meeting: signed with the key whose private half stack.json names, stored
    // once, the forged request refused, the recording copied byte for byte.
    let videosdk = hooksctl::demo_videosdk::run(&info, Duration::from_secs(60), false)
        .await
        .expect("VideoSDK demo runs");
    hooksctl::demo_videosdk::print_and_check(&videosdk).expect("VideoSDK meeting landed");
    let recording = read_api(
        &info,
        &format!("/v1/sessions/{}/files", encoded(&videosdk.session_id)),
        &[],
    )
    .await;
    let job = recording["files"][0]["jobId"]
        .as_str()
        .expect("a job")
        .to_owned();
    check_read_api(
        &info,
        &videosdk.session_id,
        &["Ana", "Bo"],
        &[(job, videosdk.recording_sha256.clone())],
    )
    .await;

    // A self-hosted Jitsi room, as Prosody's event module posts it: stored once each, the
    // retry deduplicated, requests without the token refused; Jibri's recorder marked.
    let prosody = hooksctl::demo_prosody::run(&info, false)
        .await
        .expect("Prosody demo runs");
    hooksctl::demo_prosody::print_and_check(&prosody).expect("Jitsi room landed");
    let room_items = meeting_hooks::aws::dynamodb(&info.sdk_config().await)
        .scan()
        .table_name(&info.tables.events)
        .send()
        .await
        .expect("scan events");
    let recorder_items = room_items
        .items()
        .iter()
        .filter(|i| i.get("sessionId").and_then(|v| v.as_s().ok()) == Some(&prosody.room_jid))
        .filter(|i| {
            i.get("participant")
                .and_then(|p| p.as_m().ok())
                .and_then(|p| p.get("role"))
                .and_then(|r| r.as_s().ok())
                .map(String::as_str)
                == Some("recorder")
        })
        .count();
    assert_eq!(
        recorder_items, 2,
        "the recorder's join and leave, marked as such"
    );
    // A Jibri host: jibri-finalize's library against the stack's providers.jitsi.uploadUrl
    // lands the recording byte for byte, with its copy state and event.
    let jitsi = info.providers.get("jitsi").expect("jitsi in stack.json");
    assert_eq!(jitsi.route, "/webhooks/jitsi");
    assert_eq!(
        jitsi.upload_url.as_deref(),
        Some(format!("{}/uploads/jitsi", info.api_base_url).as_str())
    );
    let jibri = hooksctl::demo_jitsi::run_jibri(
        &info,
        &prosody.meeting_url(),
        Duration::from_secs(60),
        false,
    )
    .await
    .expect("Jibri demo runs");
    hooksctl::demo_jitsi::print_and_check(&jibri).expect("Jibri recording landed");
    // The read API: Prosody names the room only; the session is the room's meeting, its
    // recorder left out of attendance unless asked for, and Jibri's upload is its file.
    let room_key = format!("jitsi:{}", prosody.room_jid);
    let sessions = read_api(&info, "/v1/sessions", &[("room", &room_key)]).await;
    let session = sessions["sessions"][0]["id"]
        .as_str()
        .expect("a session")
        .to_owned();
    assert!(
        session.starts_with(&format!("{}~", prosody.room_jid)),
        "{sessions}"
    );
    check_read_api(
        &info,
        &session,
        &["Ana", "Bo"],
        &[(jibri.job_id.clone(), jibri.sha256.clone())],
    )
    .await;
    let with_bots = read_api(
        &info,
        &format!("/v1/sessions/{}/attendance", encoded(&session)),
        &[("includeBots", "true")],
    )
    .await;
    assert!(
        with_bots["participants"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|p| p["role"] == "recorder"),
        "{with_bots}"
    );
    // The grant API refuses a request without the token, storing nothing.
    let refused = reqwest::Client::new()
        .post(jitsi.upload_url.clone().expect("url"))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status().as_u16(), 401);

    // The demo meeting lands every file in local S3, byte for byte.
    let report = hooksctl::demo::run(&info, Duration::from_secs(90), false)
        .await
        .expect("demo runs");
    hooksctl::demo::print_and_check(&report).expect("all files copied intact");
    let statuses: Vec<_> = report
        .deliveries
        .iter()
        .map(|d| (d.label.as_str(), d.status))
        .collect();
    assert!(statuses.iter().all(|(_, s)| *s == 200), "{statuses:?}");
    assert!(
        report
            .deliveries
            .iter()
            .any(|d| d.answer.contains("duplicate"))
    );
    // Out-of-order delivery, event-time order in storage.
    let order: Vec<_> = report
        .timeline
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(order.first(), Some(&"ROOM_CREATED"));
    assert_eq!(
        report.timeline.len(),
        10,
        "the repeated delivery is stored once"
    );
    let ts: Vec<_> = report.timeline.iter().map(|e| e.timestamp_ms).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));
    // The read API answers the JaaS meeting: Bob's early join came late, a delivery twice.
    let jaas_files: Vec<(String, String)> = report
        .jobs
        .iter()
        .filter_map(|j| Some((j.job_id.clone(), j.sha256.clone()?)))
        .collect();
    assert!(!jaas_files.is_empty());
    check_read_api(&info, &report.session_id, &["Alice", "Bob"], &jaas_files).await;
    // The same meeting on the bus, as a subscriber receives it.
    let published = meeting_events(
        &info,
        &report.session_id,
        &[
            ("ParticipantJoined", "Alice"),
            ("ParticipantJoined", "Bob"),
            ("ParticipantLeft", ""),
            ("MeetingEnded", ""),
            ("RecordingCopied", ""),
        ],
        jaas_files.len(),
    )
    .await;
    let copied: Vec<_> = published
        .values()
        .filter(|e| {
            e["detail-type"] == "RecordingCopied"
                && e["detail"]["sessionId"] == report.session_id.as_str()
        })
        .collect();
    assert_eq!(
        copied.len(),
        jaas_files.len(),
        "one RecordingCopied per copied file"
    );
    for e in copied {
        let job = e["detail"]["jobId"].as_str().expect("jobId");
        assert_eq!(
            e["detail"]["sha256"].as_str(),
            jaas_files
                .iter()
                .find(|(j, _)| j == job)
                .map(|(_, sha)| sha.as_str()),
            "{e}"
        );
    }
    check_recording_at_risk(&info).await;

    // The CLI calls the same use cases: sessions of the room, a presence chart, the files.
    let chart = hooksctl(
        &up.stack_file,
        &["attendance", "--session", &report.session_id],
    );
    let chart = String::from_utf8_lossy(&chart.stdout);
    assert!(
        chart.contains("2 participant(s)") && chart.contains("Alice |"),
        "{chart}"
    );
    assert!(chart.contains('█'), "{chart}");
    let files = hooksctl(&up.stack_file, &["files", "--session", &report.session_id]);
    let files = String::from_utf8_lossy(&files.stdout);
    assert!(
        files.contains("copied") && files.contains(&format!("s3://{}/", info.bucket)),
        "{files}"
    );

    // `events` prints the same timeline.
    let out = hooksctl(&up.stack_file, &["events", "--session", &report.session_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("10 event(s)"), "{text}");
    assert!(text.find("ROOM_CREATED") < text.find("ROOM_DESTROYED"));

    // `jobs` shows the copier's account: every file copied.
    let jobs = hooksctl(&up.stack_file, &["jobs", "--session", &report.session_id]);
    let jobs_text = String::from_utf8_lossy(&jobs.stdout);
    assert!(jobs_text.contains("3 file(s)"), "{jobs_text}");
    assert_eq!(jobs_text.matches(" copied").count(), 3, "{jobs_text}");

    // `recopy` refuses to redo a finished copy unless forced, then copies it again.
    let recording = report
        .timeline
        .iter()
        .find(|e| e.event_type == "RECORDING_UPLOADED")
        .expect("recording event")
        .key
        .clone();
    let refused = hooksctl(&up.stack_file, &["recopy", "--key", &recording]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already copied"));
    let forced = hooksctl(&up.stack_file, &["recopy", "--key", &recording, "--force"]);
    let forced_text = String::from_utf8_lossy(&forced.stdout);
    assert!(
        forced_text.contains("copy state copied reset"),
        "{forced_text}"
    );
    let target = hooksctl::ops::target::TargetArgs {
        stack_file: up.stack_file.clone(),
        ..Default::default()
    }
    .resolve()
    .await
    .expect("target");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = hooksctl::ops::jobs::session_jobs(&target, &report.session_id)
            .await
            .expect("jobs");
        let copied = rows
            .iter()
            .filter(|r| {
                matches!(
                    r.copy,
                    Some(meeting_hooks::copier::state::CopyStatus::Copied)
                )
            })
            .count();
        if copied == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the recopied recording never settled: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A job parked in the DLQ: dry run lists it and leaves it, redrive moves it back.
    let sqs = meeting_hooks::aws::sqs(&info.sdk_config().await);
    sqs.send_message()
        .queue_url(&info.dead_letter_queue_url)
        .message_body(r#"{"v":1,"jobId":"parked/recording","provider":"jaas","kind":"recording","link":"https://objectstorage.us-phoenix-1.oraclecloud.com/x","linkExpiresAt":0,"source":{"storedKey":"parked","eventType":"RECORDING_UPLOADED","timestamp":0}}"#)
        .send()
        .await
        .expect("park a job");
    let dry = hooksctl(&up.stack_file, &["redrive", "--dry-run"]);
    let dry_text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry_text.contains("parked/recording") && dry_text.contains("would move 1 job(s)"),
        "{dry_text}"
    );
    let moved = hooksctl(&up.stack_file, &["redrive"]);
    let moved_text = String::from_utf8_lossy(&moved.stdout);
    assert!(moved_text.contains("moved 1 job(s)"), "{moved_text}");
    let left = sqs
        .receive_message()
        .queue_url(&info.dead_letter_queue_url)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive");
    assert!(
        left.messages.unwrap_or_default().is_empty(),
        "the DLQ is empty after a redrive"
    );
    // A file event stored by an ingest that died before sending its job, and JaaS never
    // retries: the stack's sweeper queues it once the lease has run out.
    use meeting_hooks::ingest::ports::{EventRecord, EventStore, JobState, StoredPayload};
    let sdk = info.sdk_config().await;
    let store = meeting_hooks::aws::events::DynamoEventStore::new(
        meeting_hooks::aws::dynamodb(&sdk),
        &info.tables.events,
    );
    let job = format!(
        r#"{{"v":1,"jobId":"stuck-1/recording","provider":"jaas","kind":"recording","link":"{}/nothing-here.mp4","linkExpiresAt":9999999999999,"source":{{"storedKey":"stuck-1","eventType":"RECORDING_UPLOADED","timestamp":1}}}}"#,
        info.api_base_url
    );
    store
        .put_if_absent(&EventRecord {
            key: "stuck-1".into(),
            event_type: "RECORDING_UPLOADED".into(),
            session_id: Some("stuck-session".into()),
            provider: "jaas",
            room_key: None,
            room: None,
            tenant: None,
            account: None,
            participant: None,
            presence: None,
            timestamp_ms: 1,
            received_at_ms: 1,
            payload: StoredPayload::Inline(b"{}".to_vec()),
            payload_sha256: "0".repeat(64),
            indexes_room_session: false,
            data_error: None,
            link_error: None,
            notes: Vec::new(),
            conflict_of: None,
            job_ids: vec!["stuck-1/recording".into()],
            job_kinds: vec![meeting_hooks::jobs::FileKind::Recording],
            link_expires_at_ms: Some(9_999_999_999_999),
            job_state: Some(JobState::Sending { lease_until_ms: 1 }),
            job_message: Some(job),
            expires_at_secs: None,
            attempt: "crashed".into(),
        })
        .await
        .expect("write the stuck event");
    let ddb = meeting_hooks::aws::dynamodb(&sdk);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let item = ddb
            .get_item()
            .table_name(&info.tables.events)
            .key(
                meeting_hooks::schema::event_attr::KEY,
                aws_sdk_dynamodb::types::AttributeValue::S("stuck-1".into()),
            )
            .send()
            .await
            .expect("get item");
        let state = item
            .item()
            .and_then(|i| i.get(meeting_hooks::schema::event_attr::JOB_STATE))
            .and_then(|v| v.as_s().ok())
            .cloned();
        if state.as_deref() == Some("queued") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the local stack's sweeper never queued the stuck job ({state:?})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(up);
}
