//! Jibri recordings end to end against the emulator: the upload-grant API (the same wiring
//! as the Lambda, served through the local stack's router) and a real jibri-finalize (its
//! library, and its binary for the detached and `--retry` paths) uploading a generated
//! recording directory of ~12 MiB (three 5 MiB parts).
//!
//! What moto does not check (TOOLING.md): a presigned part's `x-amz-checksum-sha256` against
//! its bytes. The tests therefore check that every part URL *signs* that header (so S3 checks
//! it), and that a corrupted part is caught by the API's read back either way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hooksctl::jibri::{self, Config, Hooks, Outcome};
use hooksctl::stack::api::{Router, serve};
use integration_tests::{emulator, unique};
use lambda_http::Request;
use meeting_hooks::schema;
use meeting_hooks::uploads::wire::{GrantAnswer, UploadRequest};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

const TOKEN: &str = "jibri-test-token-0123456789";
const MIB: usize = 1024 * 1024;

struct Api {
    upload_url: String,
    events: String,
    copies: String,
    bucket: String,
    _server: tokio::task::JoinHandle<()>,
}

async fn api() -> Api {
    let emu = emulator();
    let events = emu.table(&schema::EVENTS).await;
    let copies = emu.table(&schema::COPIES).await;
    let bucket = emu.bucket().await;
    let env: HashMap<String, String> = [
        ("JITSI_TOKENS", TOKEN),
        ("EVENTS_TABLE", events.as_str()),
        ("COPIES_TABLE", copies.as_str()),
        ("RECORDINGS_BUCKET", bucket.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (service, _) = meeting_hooks::aws::wiring::uploads(&emu.sdk, &env).expect("wiring");
    let service = Arc::new(service);
    let mut router = Router::default();
    for route in [
        meeting_hooks::uploads::ROUTE,
        meeting_hooks::uploads::COMPLETE_ROUTE,
    ] {
        let service = Arc::clone(&service);
        router = router.route(
            route,
            Arc::new(move |req: Request| {
                let service = Arc::clone(&service);
                Box::pin(async move { meeting_hooks::uploads::http::handle(&service, req).await })
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let upload_url = format!(
        "http://{}{}",
        listener.local_addr().expect("addr"),
        meeting_hooks::uploads::ROUTE
    );
    Api {
        upload_url,
        events,
        copies,
        bucket,
        _server: tokio::spawn(serve(listener, router)),
    }
}

/// `<root>/recordings/<session>/` with metadata.json and a pseudo-random .mp4.
fn recording(root: &Path, session: &str, len: usize, seed: u64) -> (PathBuf, PathBuf, Vec<u8>) {
    let dir = root.join("recordings").join(session);
    std::fs::create_dir_all(&dir).expect("dir");
    let bytes = hooksctl::demo::pseudo_random(len, seed).to_vec();
    let file = dir.join("standup_2026-11-23-10-00-00.mp4");
    std::fs::write(&file, &bytes).expect("mp4");
    std::fs::write(
        dir.join("metadata.json"),
        serde_json::json!({
            "meeting_url": "https://meet.example.org/standup",
            "participants": [{"id": "alice"}, {"id": "bob"}],
            "team": "blue",
        })
        .to_string(),
    )
    .expect("metadata");
    (dir, file, bytes)
}

fn temp_root() -> PathBuf {
    let root = std::env::temp_dir().join(unique("jibri"));
    std::fs::create_dir_all(&root).expect("root");
    root
}

fn config(api: &Api, root: &Path, token: &str) -> Config {
    Config {
        upload_url: api.upload_url.clone(),
        token: SecretString::from(token.to_owned()),
        spool_dir: root.join("spool"),
        keep_files: false,
        part_size: 5 * MIB as u64,
        muc_domain: None,
    }
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn object(bucket: &str, key: &str) -> Option<Vec<u8>> {
    let s3 = emulator().s3();
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => Some(o.body.collect().await.expect("body").to_vec()),
        Err(_) => None,
    }
}

async fn tag(bucket: &str, key: &str) -> Option<String> {
    emulator()
        .s3()
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?
        .tag_set
        .into_iter()
        .find(|t| t.key == "sha256")
        .map(|t| t.value)
}

fn text(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().or_else(|_| v.as_n()).ok())
        .cloned()
        .unwrap_or_default()
}

/// The copy state and the event of a verified recording, as the copier's readers expect them.
async fn assert_recorded(api: &Api, key: &str, bytes: &[u8], session: &str) {
    let emu = emulator();
    let copies = emu.scan(&api.copies).await;
    assert_eq!(copies.len(), 1, "{copies:?}");
    let c = &copies[0];
    assert_eq!(
        text(c, "jobId"),
        format!("jitsi:recording:{session}/standup_2026-11-23-10-00-00.mp4")
    );
    assert_eq!(text(c, "state"), "copied");
    assert_eq!(text(c, "objectKey"), key);
    assert_eq!(text(c, "bytes"), bytes.len().to_string());
    assert_eq!(text(c, "sha256"), sha(bytes));
    let events = emu.scan(&api.events).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        text(e, "idempotencyKey"),
        format!("jitsi:recording-uploaded:{}", sha(bytes))
    );
    assert_eq!(text(e, "provider"), "jitsi");
    assert_eq!(text(e, "eventType"), "recording-uploaded");
    // Filed under the room Prosody's events name (the read API finds its meeting by time);
    // Jibri's session id is in the job id and the payload.
    assert!(!e.contains_key("sessionId"), "{e:?}");
    assert_eq!(text(e, "fqn"), "jitsi:standup@conference.meet.example.org");
    assert_eq!(
        text(e, "roomFqn"),
        "jitsi:standup@conference.meet.example.org"
    );
    assert_eq!(text(e, "room"), "standup");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_lands_byte_for_byte_with_its_copy_state_and_event() {
    let api = api().await;
    let root = temp_root();
    let session = "a1b2c3d4-e5f6_7890";
    let (dir, file, bytes) = recording(&root, session, 12 * MIB + 12_345, 7);
    let config = config(&api, &root, TOKEN);
    let entries = jibri::spool_recording(&dir, &config.spool_dir).expect("spool");
    assert_eq!(entries.len(), 1);
    let outcome = jibri::run_entry(&entries[0], &config, &Hooks::default())
        .await
        .expect("upload");
    let Outcome::Uploaded {
        key,
        bytes: n,
        sha256,
        parts_sent,
        local_deleted,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        (n, sha256.as_str(), parts_sent),
        (bytes.len() as u64, sha(&bytes).as_str(), 3)
    );
    assert!(key.starts_with(&format!(
        "jitsi/meet.example.org/standup/{session}/recording/"
    )));
    assert_eq!(object(&api.bucket, &key).await.as_deref(), Some(&bytes[..]));
    assert_eq!(tag(&api.bucket, &key).await, Some(sha(&bytes)));
    assert_recorded(&api, &key, &bytes, session).await;
    assert!(
        local_deleted && !file.exists() && !dir.exists(),
        "local recording removed"
    );
    assert!(!entries[0].exists(), "spool entry removed");

    // The same recording again (a re-run of Jibri's finalize): already uploaded, nothing sent.
    let (dir, _, _) = recording(&root, session, 12 * MIB + 12_345, 7);
    let entries = jibri::spool_recording(&dir, &config.spool_dir).expect("spool");
    let again = jibri::run_entry(&entries[0], &config, &Hooks::default())
        .await
        .expect("again");
    assert!(
        matches!(again, Outcome::Uploaded { parts_sent: 0, .. }),
        "{again:?}"
    );
    assert_recorded(&api, &key, &bytes, session).await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_with_its_own_muc_domain_files_recordings_under_prosodys_rooms() {
    let api = api().await;
    let root = temp_root();
    let (dir, _, _) = recording(&root, "muc-1", 1000, 8);
    let config = Config {
        muc_domain: Some("muc.meet.example.org".into()),
        ..config(&api, &root, TOKEN)
    };
    let entries = jibri::spool_recording(&dir, &config.spool_dir).expect("spool");
    let outcome = jibri::run_entry(&entries[0], &config, &Hooks::default())
        .await
        .expect("upload");
    assert!(matches!(outcome, Outcome::Uploaded { .. }), "{outcome:?}");
    let events = emulator().scan(&api.events).await;
    assert_eq!(events.len(), 1, "{events:?}");
    // The key Prosody's events give the room: `room@<its MUC domain>`.
    assert_eq!(
        text(&events[0], "fqn"),
        "jitsi:standup@muc.meet.example.org"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_upload_resumes_without_sending_finished_parts() {
    let api = api().await;
    let root = temp_root();
    let session = "resume_session";
    let (dir, file, bytes) = recording(&root, session, 12 * MIB + 1, 11);
    let config = config(&api, &root, TOKEN);
    let entry = jibri::spool_recording(&dir, &config.spool_dir).expect("spool")[0].clone();
    let stopped = jibri::run_entry(
        &entry,
        &config,
        &Hooks {
            stop_after_parts: Some(2),
        },
    )
    .await
    .expect("interrupted run");
    assert_eq!(stopped, Outcome::Interrupted);
    // Half-way: the file is kept, nothing is recorded, the progress is in the spool.
    assert!(file.exists());
    assert!(emulator().scan(&api.copies).await.is_empty());
    assert!(emulator().scan(&api.events).await.is_empty());
    let saved = jibri::Entry::load(&entry).expect("entry");
    assert_eq!(saved.uploaded_parts, [1, 2].into());
    let upload_id = saved.upload_id.clone().expect("upload id");
    let key = format!(
        "jitsi/meet.example.org/standup/{session}/recording/{}-standup_2026-11-23-10-00-00.mp4",
        &hex::encode(Sha256::digest(
            format!("jitsi:recording:{session}/standup_2026-11-23-10-00-00.mp4").as_bytes()
        ))[..12]
    );
    let listed = emulator()
        .s3()
        .list_parts()
        .bucket(&api.bucket)
        .key(&key)
        .upload_id(&upload_id)
        .send()
        .await
        .expect("list parts");
    assert_eq!(listed.parts().len(), 2);

    // What a timer runs: the binary, `--retry <entry>`. It sends only the third part.
    let out = Command::new(env!("CARGO_BIN_EXE_jibri-finalize"))
        .arg("--retry")
        .arg(&entry)
        .env("JIBRI_UPLOAD_URL", &api.upload_url)
        .env("JIBRI_UPLOAD_TOKEN", TOKEN)
        .env("JIBRI_SPOOL_DIR", &config.spool_dir)
        .env("JIBRI_PART_SIZE_MIB", "5")
        .output()
        .expect("run jibri-finalize --retry");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 part(s) sent by this run"), "{stderr}");
    assert!(
        !stderr.contains("X-Amz-Signature") && !stderr.contains(TOKEN),
        "{stderr}"
    );
    assert_eq!(object(&api.bucket, &key).await.as_deref(), Some(&bytes[..]));
    assert_recorded(&api, &key, &bytes, session).await;
    assert!(!file.exists() && !entry.exists());
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread")]
async fn finalize_returns_at_once_and_the_detached_upload_finishes() {
    let api = api().await;
    let root = temp_root();
    let session = "detached-1";
    let (dir, file, bytes) = recording(&root, session, 6 * MIB, 3);
    let spool = root.join("spool");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_jibri-finalize"))
        .arg(&dir)
        .env("JIBRI_UPLOAD_URL", &api.upload_url)
        .env("JIBRI_UPLOAD_TOKEN", TOKEN)
        .env("JIBRI_SPOOL_DIR", &spool)
        .env("JIBRI_PART_SIZE_MIB", "5")
        .output()
        .expect("run jibri-finalize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Jibri waits for the script: it returns before the upload (no hashing, no network).
    assert!(started.elapsed() < Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(60);
    while file.exists()
        || jibri::spool::entries(&spool)
            .map(|e| !e.is_empty())
            .unwrap_or(true)
    {
        assert!(
            Instant::now() < deadline,
            "the detached upload did not finish"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let copies = emulator().scan(&api.copies).await;
    let key = text(&copies[0], "objectKey");
    assert_eq!(object(&api.bucket, &key).await.as_deref(), Some(&bytes[..]));
    assert_recorded(&api, &key, &bytes, session).await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_stores_nothing_and_keeps_the_recording() {
    let api = api().await;
    let root = temp_root();
    let (dir, file, _) = recording(&root, "wrong-token", 6 * MIB, 5);
    let config = config(&api, &root, "not-the-token-0123456789");
    let entry = jibri::spool_recording(&dir, &config.spool_dir).expect("spool")[0].clone();
    let err = jibri::run_entry(&entry, &config, &Hooks::default())
        .await
        .expect_err("refused")
        .to_string();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("not-the-token"), "{err}");
    let s3 = emulator().s3();
    let objects = s3
        .list_objects_v2()
        .bucket(&api.bucket)
        .send()
        .await
        .expect("list");
    assert_eq!(objects.key_count(), Some(0));
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&api.bucket)
        .send()
        .await
        .expect("uploads");
    assert!(uploads.uploads().is_empty());
    assert!(emulator().scan(&api.copies).await.is_empty());
    assert!(emulator().scan(&api.events).await.is_empty());
    assert!(file.exists() && entry.exists(), "kept for a later retry");
    let saved = jibri::Entry::load(&entry).expect("entry");
    assert!(saved.last_error.is_some_and(|e| e.contains("401")));
    let _ = std::fs::remove_dir_all(&root);
}

/// The API driven by hand, to send what jibri-finalize never would.
async fn call(api: &Api, path: &str, req: &UploadRequest) -> (u16, serde_json::Value) {
    let url = format!(
        "{}{path}",
        api.upload_url
            .trim_end_matches(meeting_hooks::uploads::ROUTE)
    );
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(TOKEN)
        .body(serde_json::to_vec(req).expect("json"))
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

fn declare(bytes: &[u8], session: &str) -> UploadRequest {
    UploadRequest {
        muc_domain: None,
        session_id: session.into(),
        file_name: "standup_2026-11-23-10-00-00.mp4".into(),
        size: bytes.len() as u64,
        sha256: sha(bytes),
        part_size: 5 * MIB as u64,
        part_sha256: bytes.chunks(5 * MIB).map(sha).collect(),
        upload_id: None,
        metadata: Default::default(),
    }
}

async fn put_parts(grant: &GrantAnswer, parts: &[Vec<u8>]) -> Vec<u16> {
    let mut statuses = Vec::new();
    for p in &grant.parts {
        let mut req = reqwest::Client::new().put(&p.url);
        for (k, v) in &p.headers {
            if !k.eq_ignore_ascii_case("content-length") {
                req = req.header(k, v);
            }
        }
        let status = req
            .body(parts[p.number as usize - 1].clone())
            .send()
            .await
            .expect("put")
            .status()
            .as_u16();
        statuses.push(status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_declared_sha256_or_a_corrupted_part_never_ends_as_copied() {
    let api = api().await;
    let bytes = hooksctl::demo::pseudo_random(12 * MIB, 21).to_vec();
    let parts: Vec<Vec<u8>> = bytes.chunks(5 * MIB).map(<[u8]>::to_vec).collect();

    // 1. The parts are right, the declared whole-file SHA-256 is not.
    let mut req = declare(&bytes, "wrong-sha");
    req.sha256 = "0".repeat(64);
    let (status, grant) = call(&api, "/uploads/jitsi", &req).await;
    assert_eq!(status, 200, "{grant}");
    let grant: GrantAnswer = serde_json::from_value(grant).expect("grant");
    // Each part URL signs the part's checksum: real S3 refuses other bytes.
    for p in &grant.parts {
        let url = url::Url::parse(&p.url).expect("url");
        let signed = url
            .query_pairs()
            .find(|(k, _)| k == "X-Amz-SignedHeaders")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        assert!(signed.contains("x-amz-checksum-sha256"), "{signed}");
        let b64 = p
            .headers
            .iter()
            .find(|(k, _)| k == "x-amz-checksum-sha256")
            .map(|(_, v)| v.clone());
        use base64::Engine as _;
        let want = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(&parts[p.number as usize - 1]));
        assert_eq!(b64.as_deref(), Some(want.as_str()));
    }
    assert_eq!(put_parts(&grant, &parts).await, vec![200, 200, 200]);
    req.upload_id = grant.upload_id.clone();
    let (status, answer) = call(&api, "/uploads/jitsi/complete", &req).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("sha256_mismatch"))
    );
    assert_eq!(object(&api.bucket, &grant.key).await, None, "deleted");

    // 2. A part whose bytes differ from its declared checksum.
    let req = declare(&bytes, "corrupted-part");
    let (_, grant) = call(&api, "/uploads/jitsi", &req).await;
    let grant: GrantAnswer = serde_json::from_value(grant).expect("grant");
    let mut corrupted = parts.clone();
    corrupted[1][4242] ^= 0x10;
    let statuses = put_parts(&grant, &corrupted).await;
    if statuses[1] == 200 {
        // moto accepts it (it does not verify a given x-amz-checksum-sha256): the read back
        // after completion catches it.
        eprintln!("the emulator accepted a part whose bytes differ from its signed checksum");
        let mut req = req.clone();
        req.upload_id = grant.upload_id.clone();
        let (status, answer) = call(&api, "/uploads/jitsi/complete", &req).await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(object(&api.bucket, &grant.key).await, None, "deleted");
    } else {
        // An S3 that checks refuses the part; completing then reports it missing.
        eprintln!("the emulator refused a part whose bytes differ from its signed checksum");
        assert!((400..500).contains(&statuses[1]), "{statuses:?}");
    }
    assert!(emulator().scan(&api.copies).await.is_empty());
    assert!(emulator().scan(&api.events).await.is_empty());
}
