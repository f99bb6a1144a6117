//! The fault matrix's process-kill row, through the local stack as a user runs it: a copier
//! killed (SIGKILL) mid-copy, with one part uploaded and the next half-read, leaves a job whose
//! message is in flight (invisible for the queue's 5400 s) and whose copy lease is held by a
//! process that no longer exists. The stack started again over the same emulator recovers it by
//! itself: the sweeper re-sends the job once the lease runs out, the copier resumes from the
//! checkpoint, and the object lands once, verified, with no multipart upload left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hooksctl::stack::info::StackInfo;
use integration_tests::origin::{Route, TestOrigin};
use integration_tests::{emulator, unique};
use meeting_hooks::copier::state::CopyStatus;
use meeting_hooks::jaas::signature::signature_header;
use serde_json::json;
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;
/// The local stack's copy lease in this test (production: 120 s).
const LEASE_SECS: u64 = 6;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Stack {
    child: Child,
}

impl Stack {
    fn start(endpoint: &str, prefix: &str, stack_file: &Path) -> (Self, StackInfo) {
        let _ = std::fs::remove_file(stack_file);
        let child = Command::new(env!("CARGO_BIN_EXE_hooksctl"))
            .current_dir(integration_tests::workspace_root())
            .args([
                "up",
                "--port",
                "0",
                "--prefix",
                prefix,
                "--endpoint",
                endpoint,
            ])
            .arg("--stack-file")
            .arg(stack_file)
            .env("COPY_LEASE_SECONDS", LEASE_SECS.to_string())
            .env("COPY_PART_SIZE_MIB", "5")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hooksctl up");
        let mut stack = Self { child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stack_file.exists() {
            assert!(Instant::now() < deadline, "hooksctl up did not come up");
            if let Ok(Some(status)) = stack.child.try_wait() {
                panic!("hooksctl up exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let info = StackInfo::read(stack_file).expect("stack file");
        (stack, info)
    }

    /// SIGKILL: no cleanup, no lease release, the message stays in flight.
    fn kill(mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

async fn copy_item(
    info: &StackInfo,
    job_id: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let ddb = meeting_hooks::aws::dynamodb(&info.sdk_config().await);
    ddb.get_item()
        .table_name(&info.tables.copies)
        .key(
            meeting_hooks::schema::copy_attr::JOB_ID,
            aws_sdk_dynamodb::types::AttributeValue::S(job_id.to_owned()),
        )
        .consistent_read(true)
        .send()
        .await
        .ok()?
        .item
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copier_killed_mid_copy_is_resumed_by_the_restarted_stack_without_help() {
    let emu = emulator();
    let prefix = unique("crash");
    let dir = std::env::temp_dir().join(format!(
        "hooks-crash-{}-{}",
        std::process::id(),
        free_port()
    ));
    let stack_file: PathBuf = dir.join("stack.json");

    // 12 MiB in 5 MiB parts; an answer pauses after 9 MiB of its body: part 1 is uploaded and
    // checkpointed, part 2 half-read, when the process is killed. The resumed answer (7 MiB,
    // from byte 5 MiB) is shorter than that and never pauses.
    let bytes: Vec<u8> = (0..12 * MIB).map(|i| (i * 31 % 251) as u8).collect();
    let sha = hex::encode(Sha256::digest(&bytes));
    let origin = TestOrigin::start().await;
    let link = origin.route(
        "/killed.mp4",
        Route::file(bytes.clone()).stalled((9 * MIB) as u64, Duration::from_secs(600)),
    );

    let (first, info) = Stack::start(&emu.endpoint, &prefix, &stack_file);
    let key = unique("killed");
    let body = serde_json::to_vec(&json!({
        "idempotencyKey": key,
        "customerId": "c",
        "appId": info.app_id,
        "eventType": "RECORDING_UPLOADED",
        "sessionId": "crash-session",
        "timestamp": meeting_hooks::respond::now_ms(),
        "fqn": format!("{}/crash-room", info.app_id),
        "data": {"preAuthenticatedLink": link, "durationSec": 1}
    }))
    .expect("json");
    let t0 = Instant::now();
    let answer = reqwest::Client::new()
        .post(info.webhook_url())
        .header("authorization", &info.authorization)
        .header(
            "x-jaas-signature",
            signature_header(
                &info.webhook_secret,
                meeting_hooks::respond::now_ms() / 1000,
                &body,
            ),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("deliver");
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);

    // Wait for the first part's checkpoint, then kill the stack mid-part-2.
    let job_id = format!("{key}/recording");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let item = copy_item(&info, &job_id).await;
        let parts = item
            .as_ref()
            .and_then(|i| i.get(meeting_hooks::schema::copy_attr::DONE_PARTS))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0);
        if parts >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "part 1 never checkpointed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill();
    let killed_at = Instant::now();

    // Started again over the same emulator: nothing but the stack itself acts.
    let (_second, info) = Stack::start(&emu.endpoint, &prefix, &stack_file);
    let target = hooksctl::ops::target::TargetArgs {
        stack_file: stack_file.clone(),
        ..Default::default()
    }
    .resolve()
    .await
    .expect("target");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows = hooksctl::ops::jobs::session_jobs(&target, "crash-session")
            .await
            .expect("jobs");
        if rows
            .iter()
            .any(|r| matches!(r.copy, Some(CopyStatus::Copied)))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered within 120 s of the restart: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "fault matrix | copier killed mid-copy (local stack) | time to safety {:.1} s ({:.1} s after the kill, lease {LEASE_SECS} s)",
        t0.elapsed().as_secs_f64(),
        killed_at.elapsed().as_secs_f64()
    );

    // One object, the whole file, its tag; no upload left open.
    let s3 = emu.s3();
    let listed = s3
        .list_objects_v2()
        .bucket(&info.bucket)
        .send()
        .await
        .expect("list");
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .filter(|k| k.contains("crash-session"))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let object = s3
        .get_object()
        .bucket(&info.bucket)
        .key(&keys[0])
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(hex::encode(Sha256::digest(&object)), sha);
    let tags = s3
        .get_object_tagging()
        .bucket(&info.bucket)
        .key(&keys[0])
        .send()
        .await
        .expect("tags");
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "sha256" && t.value() == sha)
    );
    let uploads = s3
        .list_multipart_uploads()
        .bucket(&info.bucket)
        .send()
        .await
        .expect("uploads");
    assert!(uploads.uploads().is_empty(), "orphaned multipart upload");
    // Part 2 onward came from a range request: part 1 was not fetched again.
    let seen = origin.seen("/killed.mp4");
    assert!(
        seen.iter()
            .any(|s| s.range.as_deref() == Some("bytes=5242880-")),
        "{seen:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
