//! `hooksctl demo --provider jitsi`: plays a self-hosted Jibri host against the running local
//! stack. It writes a recording directory as Jibri leaves it (`metadata.json` and a
//! `<callName>_<yyyy-MM-dd-HH-mm-ss>.mp4` of a few MiB, several parts), runs jibri-finalize's
//! library on it with the stack's `providers.jitsi.uploadUrl` and token, and checks that the
//! object in local S3 is the file byte for byte, that its copy state is `copied` and its
//! event stored, and that the local recording is gone.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::demo::{pseudo_random, read_object};
use crate::jibri::{self, Config, Hooks, Outcome};
use crate::stack::info::StackInfo;

/// What the Jibri demo found.
#[derive(Debug, Clone)]
pub struct JibriReport {
    pub session_id: String,
    /// The recording's copy job.
    pub job_id: String,
    pub key: String,
    pub bytes: u64,
    pub sha256: String,
    /// The object read back from the bucket is the recording, byte for byte.
    pub object_matches: bool,
    /// The copies table's state of the recording's job (`copied`).
    pub copy_state: Option<String>,
    /// The `recording-uploaded` event is in the events table.
    pub event_stored: bool,
    pub local_deleted: bool,
}

/// Plays the Jibri host recording the meeting at `meeting_url` (the Prosody demo's room, so
/// the read API files the recording under that meeting); `wait` bounds the whole upload.
pub async fn run_jibri(
    info: &StackInfo,
    meeting_url: &str,
    wait: Duration,
    verbose: bool,
) -> anyhow::Result<JibriReport> {
    let jitsi = info
        .providers
        .get(meeting_hooks::providers::jitsi::NAME)
        .context("the stack serves no jitsi provider (restart `hooksctl up`)")?;
    let upload_url = jitsi
        .upload_url
        .clone()
        .context("stack.json has no providers.jitsi.uploadUrl (restart `hooksctl up`)")?;
    let token = jitsi
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .context("stack.json has no providers.jitsi.authorization")?
        .to_owned();
    let now = meeting_hooks::respond::now_ms();
    let session_id = format!("demo-jibri-{now}");
    let root: PathBuf = std::env::temp_dir().join(format!("hooks-demo-{session_id}"));
    let dir = root.join("recordings").join(&session_id);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    // 12 MiB and a bit: three 5 MiB parts, the last short.
    let recording = pseudo_random(12 * 1024 * 1024 + 4321, now as u64);
    let file = dir.join("demo-room_2026-11-23-10-00-00.mp4");
    std::fs::write(&file, &recording)?;
    std::fs::write(
        dir.join("metadata.json"),
        serde_json::json!({
            "meeting_url": meeting_url,
            "participants": [{"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}],
            "demo": true,
        })
        .to_string(),
    )?;
    let config = Config {
        upload_url,
        token: SecretString::from(token),
        spool_dir: root.join("spool"),
        keep_files: false,
        part_size: 5 * 1024 * 1024,
        // The demo's Prosody rooms are on `conference.<host>`, the default.
        muc_domain: None,
    };
    if verbose {
        eprintln!("recording {} ({} bytes)", file.display(), recording.len());
    }
    let entries = jibri::spool_recording(&dir, &config.spool_dir)?;
    let entry = entries.first().context("no recording spooled")?;
    let deadline = Instant::now() + wait;
    let outcome = loop {
        match jibri::run_entry(entry, &config, &Hooks::default()).await {
            Ok(o @ Outcome::Uploaded { .. }) => break o,
            Ok(other) => bail!("jibri-finalize stopped: {other:?}"),
            Err(e) if Instant::now() < deadline => {
                if verbose {
                    eprintln!("upload not finished yet ({e:#}); retrying");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e.context("jibri-finalize did not finish")),
        }
    };
    let Outcome::Uploaded {
        key,
        bytes,
        sha256,
        local_deleted,
        ..
    } = outcome
    else {
        bail!("unreachable outcome");
    };
    let sdk = info.sdk_config().await;
    let object = read_object(&meeting_hooks::aws::s3(&sdk), &info.bucket, &key).await?;
    let dynamo = meeting_hooks::aws::dynamodb(&sdk);
    let job_id = format!("jitsi:recording:{session_id}/demo-room_2026-11-23-10-00-00.mp4");
    let copy_state = dynamo
        .get_item()
        .table_name(&info.tables.copies)
        .key("jobId", AttributeValue::S(job_id.clone()))
        .consistent_read(true)
        .send()
        .await
        .context("read the copy state")?
        .item
        .and_then(|i| i.get("state").and_then(|v| v.as_s().ok()).cloned());
    let event_stored = dynamo
        .get_item()
        .table_name(&info.tables.events)
        .key(
            "idempotencyKey",
            AttributeValue::S(format!("jitsi:recording-uploaded:{sha256}")),
        )
        .consistent_read(true)
        .send()
        .await
        .context("read the event")?
        .item
        .is_some();
    let _ = std::fs::remove_dir_all(&root);
    Ok(JibriReport {
        session_id,
        job_id,
        object_matches: object == recording && hex::encode(Sha256::digest(&object)) == sha256,
        key,
        bytes,
        sha256,
        copy_state,
        event_stored,
        local_deleted,
    })
}

/// Prints the report; fails unless every check held.
pub fn print_and_check(report: &JibriReport) -> anyhow::Result<()> {
    println!("\nJibri session {}:", report.session_id);
    println!(
        "  recording {} bytes, sha256 {}  {}",
        report.bytes,
        if report.object_matches {
            "matches the local file"
        } else {
            "DIFFERS from the local file"
        },
        report.key
    );
    println!(
        "  copy state: {}; event: {}; local recording {}",
        report.copy_state.as_deref().unwrap_or("none"),
        if report.event_stored {
            "stored"
        } else {
            "missing"
        },
        if report.local_deleted {
            "deleted"
        } else {
            "kept"
        }
    );
    if !report.object_matches {
        bail!("the object in S3 is not the recording");
    }
    if report.copy_state.as_deref() != Some("copied") {
        bail!("the recording's copy state is not copied");
    }
    if !report.event_stored {
        bail!("the recording-uploaded event is missing");
    }
    if !report.local_deleted {
        bail!("the local recording was not deleted after verification");
    }
    Ok(())
}
