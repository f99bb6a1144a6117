//! `hooksctl events --session <id>`: a session's timeline in event-time order, from one
//! paginated `Query` on the `bySession` index.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use meeting_hooks::schema::{EVENTS_BY_SESSION, event_attr as a};

use super::target::Target;
use meeting_hooks::time::utc;

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub timestamp_ms: i64,
    pub event_type: String,
    pub key: String,
    /// The copy jobs the event made (several for Daily's raw tracks).
    pub job_ids: Vec<String>,
    pub job_state: Option<String>,
    pub conflict_of: Option<String>,
    pub data_error: Option<String>,
}

fn s(item: &HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

/// Reads a session's events in timestamp order.
pub async fn timeline(target: &Target, session_id: &str) -> anyhow::Result<Vec<TimelineEntry>> {
    let ddb = meeting_hooks::aws::dynamodb(&target.sdk);
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = ddb
            .query()
            .table_name(target.events_table()?)
            .index_name(EVENTS_BY_SESSION)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", a::SESSION_ID)
            .expression_attribute_values(":s", AttributeValue::S(session_id.to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "query session {session_id}: {}",
                    aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                )
            })?;
        for item in page.items() {
            out.push(TimelineEntry {
                timestamp_ms: item
                    .get(a::TIMESTAMP)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                event_type: s(item, a::EVENT_TYPE).unwrap_or_default(),
                key: s(item, a::KEY).unwrap_or_default(),
                job_ids: meeting_hooks::aws::events::job_ids_of(item),
                job_state: s(item, a::JOB_STATE),
                conflict_of: s(item, a::CONFLICT_OF),
                data_error: s(item, a::DATA_ERROR),
            });
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(out);
        }
    }
}

/// Prints a timeline as a table.
pub fn print(
    out: &mut impl std::io::Write,
    session_id: &str,
    entries: &[TimelineEntry],
) -> std::io::Result<()> {
    writeln!(
        out,
        "session {session_id}: {} event(s), event-time order (UTC)",
        entries.len()
    )?;
    for e in entries {
        let mut notes = Vec::new();
        if !e.job_ids.is_empty() {
            notes.push(format!(
                "job {} {}",
                e.job_ids.join(" "),
                e.job_state.as_deref().unwrap_or("?")
            ));
        }
        if let Some(c) = &e.conflict_of {
            notes.push(format!("CONFLICT with key {c}"));
        }
        if e.data_error.is_some() {
            notes.push("data did not match its documented shape".to_owned());
        }
        writeln!(
            out,
            "  {}  {:<30} {}{}",
            utc(e.timestamp_ms),
            e.event_type,
            e.key,
            if notes.is_empty() {
                String::new()
            } else {
                format!("  [{}]", notes.join("; "))
            }
        )?;
    }
    Ok(())
}
