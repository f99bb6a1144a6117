//! `hooksctl jobs --session <id>`: the copy state of every file a session's events carried:
//! one `Query` on the session index for the events with a job, one `BatchGetItem` (per 100) on
//! the copies table for their state.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use meeting_hooks::aws::copies::status_of;
use meeting_hooks::copier::state::CopyStatus;
use meeting_hooks::schema::copy_attr as c;

use super::events::timeline;
use super::target::Target;

/// One file's copy state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub job_id: String,
    pub event_type: String,
    /// `sending` / `queued` on the event (was the job put on the queue?).
    pub enqueue_state: Option<String>,
    /// Copy state; `None` while no copier has seen the job.
    pub copy: Option<CopyStatus>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    pub object_key: Option<String>,
    pub attempts: Option<u64>,
}

fn s(item: &HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<u64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads the copy state of a session's files.
pub async fn session_jobs(target: &Target, session_id: &str) -> anyhow::Result<Vec<JobRow>> {
    let events = timeline(target, session_id).await?;
    // One row per job: an event may have made several (Daily's raw tracks).
    let with_jobs: Vec<_> = events
        .into_iter()
        .flat_map(|e| {
            e.job_ids
                .iter()
                .map(|id| (id.clone(), e.event_type.clone(), e.job_state.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let ddb = meeting_hooks::aws::dynamodb(&target.sdk);
    let table = target.copies_table()?;
    let mut states: HashMap<String, HashMap<String, AttributeValue>> = HashMap::new();
    for chunk in with_jobs.chunks(100) {
        let mut keys = KeysAndAttributes::builder();
        for (id, _, _) in chunk {
            keys = keys.keys(HashMap::from([(
                c::JOB_ID.to_owned(),
                AttributeValue::S(id.clone()),
            )]));
        }
        let mut request = HashMap::from([(table.to_owned(), keys.build()?)]);
        // Unprocessed keys are asked for again (throttling), at most a few times.
        for _ in 0..5 {
            let out = ddb
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "read copy state: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    )
                })?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(table)
                .unwrap_or_default()
            {
                if let Some(id) = s(&item, c::JOB_ID) {
                    states.insert(id, item);
                }
            }
            match out.unprocessed_keys {
                Some(rest) if !rest.is_empty() => request = rest,
                _ => break,
            }
        }
    }
    Ok(with_jobs
        .into_iter()
        .map(|(job_id, event_type, enqueue_state)| {
            let item = states.get(&job_id);
            JobRow {
                event_type,
                enqueue_state,
                copy: item.and_then(status_of),
                bytes: item.and_then(|i| n(i, c::BYTES)),
                sha256: item.and_then(|i| s(i, c::SHA256)),
                object_key: item.and_then(|i| s(i, c::OBJECT_KEY)),
                attempts: item.and_then(|i| n(i, c::ATTEMPTS)),
                job_id,
            }
        })
        .collect())
}

/// Prints the rows.
pub fn print(
    out: &mut impl std::io::Write,
    session_id: &str,
    rows: &[JobRow],
) -> std::io::Result<()> {
    writeln!(out, "session {session_id}: {} file(s)", rows.len())?;
    for r in rows {
        let state = match &r.copy {
            None => format!(
                "not started (job {})",
                r.enqueue_state.as_deref().unwrap_or("?")
            ),
            Some(CopyStatus::Failed { permanent, reason }) => format!(
                "failed ({}): {reason}",
                if *permanent {
                    "permanent"
                } else {
                    "retries exhausted"
                }
            ),
            Some(other) => other.name().to_owned(),
        };
        writeln!(out, "  {:<50} {:<24} {state}", r.job_id, r.event_type)?;
        if let Some(key) = &r.object_key {
            writeln!(
                out,
                "      s3: {key}  {} bytes  sha256 {}  attempts {}",
                r.bytes.map_or("?".into(), |b| b.to_string()),
                r.sha256.as_deref().unwrap_or("?"),
                r.attempts.unwrap_or(0)
            )?;
        }
    }
    Ok(())
}
