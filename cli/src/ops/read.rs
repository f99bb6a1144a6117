//! `hooksctl sessions --room`, `attendance --session` and `files --session`: the read API's
//! use cases (`meeting_hooks::read`, wired by `aws::wiring::read_service`), called directly
//! against the deployment's tables instead of over HTTP, and printed for a terminal.

use meeting_hooks::aws::wiring;
use meeting_hooks::read::attendance::{Options, Row};
use meeting_hooks::read::model::TimeRange;
use meeting_hooks::read::service::{FileEntry, Session};
use meeting_hooks::read::sessions::SessionSummary;
use meeting_hooks::time::utc;

use super::target::Target;

/// Width of the presence chart's time axis, in characters.
pub const CHART_WIDTH: usize = 60;

fn service(target: &Target) -> anyhow::Result<wiring::ReadService> {
    Ok(wiring::read_service(
        &target.sdk,
        target.events_table()?,
        target.copies_table()?,
        target.bucket()?,
        300,
    ))
}

/// A room's sessions, newest first (every page).
pub async fn sessions(
    target: &Target,
    room: &str,
    range: TimeRange,
    limit: usize,
) -> anyhow::Result<Vec<SessionSummary>> {
    let service = service(target)?;
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = service
            .sessions(room, range, limit.min(200), after)
            .await
            .map_err(|e| anyhow::anyhow!("{}", meeting_hooks::telemetry::chain(&e)))?;
        out.extend(page.sessions);
        if out.len() >= limit || page.next.is_none() {
            out.truncate(limit);
            return Ok(out);
        }
        after = page.next;
    }
}

async fn session(service: &wiring::ReadService, id: &str) -> anyhow::Result<Session> {
    service
        .session(id)
        .await
        .map_err(|e| anyhow::anyhow!("{}", meeting_hooks::telemetry::chain(&e)))?
        .ok_or_else(|| anyhow::anyhow!("no events are stored for session {id}"))
}

/// A session and its attendance.
pub async fn attendance(
    target: &Target,
    id: &str,
    include_bots: bool,
) -> anyhow::Result<(Session, Vec<Row>)> {
    let service = service(target)?;
    let session = session(&service, id).await?;
    let rows = wiring::ReadService::attendance(
        &session,
        Options {
            include_bots,
            ..Options::default()
        },
    );
    Ok((session, rows))
}

/// A session and its files.
pub async fn files(target: &Target, id: &str) -> anyhow::Result<(Session, Vec<FileEntry>)> {
    let service = service(target)?;
    let session = session(&service, id).await?;
    let files = service
        .files(&session, meeting_hooks::respond::now_ms())
        .await
        .map_err(|e| anyhow::anyhow!("{}", meeting_hooks::telemetry::chain(&e)))?;
    Ok((session, files))
}

fn or_dash(v: Option<i64>) -> String {
    v.map(utc).unwrap_or_else(|| "-".into())
}

pub fn print_sessions(
    out: &mut impl std::io::Write,
    room: &str,
    sessions: &[SessionSummary],
) -> std::io::Result<()> {
    writeln!(
        out,
        "room {room}: {} session(s), newest first",
        sessions.len()
    )?;
    writeln!(
        out,
        "{:<25} {:<25} {:>8}  {:<9} id",
        "started (UTC)", "ended", "minutes", "provider"
    )?;
    for s in sessions {
        let minutes = match (s.started_at_ms, s.ended_at_ms) {
            (Some(a), Some(b)) => format!("{:.1}", (b.saturating_sub(a)) as f64 / 60_000.0),
            _ => "-".into(),
        };
        writeln!(
            out,
            "{:<25} {:<25} {:>8}  {:<9} {}",
            or_dash(s.started_at_ms),
            or_dash(s.ended_at_ms),
            minutes,
            s.provider,
            s.id
        )?;
    }
    Ok(())
}

/// The presence chart's bar of one participant: `█` present, `▒` present with an inferred
/// edge, `·` absent; the axis runs from `from` to `to` (Unix ms).
pub fn bar(row: &Row, from: i64, to: i64, width: usize) -> String {
    let span = to.saturating_sub(from).max(1);
    let column = |t: i64| -> usize {
        let offset = t.clamp(from, to).saturating_sub(from);
        usize::try_from(i128::from(offset) * (width as i128) / i128::from(span))
            .unwrap_or(0)
            .min(width)
    };
    let mut cells = vec!['·'; width];
    for i in &row.intervals {
        let start = column(i.from_ms);
        let end = column(i.to_ms.unwrap_or(to)).max(start + 1).min(width);
        let mark = if i.inferred_start || i.inferred_end {
            '▒'
        } else {
            '█'
        };
        for c in cells.iter_mut().take(end).skip(start) {
            *c = mark;
        }
    }
    cells.into_iter().collect()
}

pub fn print_attendance(
    out: &mut impl std::io::Write,
    session: &Session,
    rows: &[Row],
) -> std::io::Result<()> {
    let from = session
        .summary
        .started_at_ms
        .or_else(|| rows.iter().map(|r| r.first_join_ms).min())
        .unwrap_or(0);
    let to = session
        .summary
        .ended_at_ms
        .or_else(|| rows.iter().filter_map(|r| r.last_leave_ms).max())
        .unwrap_or_else(meeting_hooks::respond::now_ms)
        .max(from + 1);
    writeln!(
        out,
        "session {} ({}, room {}): {} participant(s)",
        session.summary.id,
        session.summary.provider,
        session.summary.room.as_deref().unwrap_or("-"),
        rows.len()
    )?;
    writeln!(
        out,
        "axis {} .. {} UTC; █ present, ▒ inferred edge",
        utc(from),
        utc(to)
    )?;
    let name_width = rows
        .iter()
        .map(|r| r.name.as_deref().unwrap_or(&r.identity).chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 24);
    for r in rows {
        let name: String = r
            .name
            .as_deref()
            .unwrap_or(&r.identity)
            .chars()
            .take(name_width)
            .collect();
        let tags = [r.moderator.then_some("moderator"), r.role.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(",");
        writeln!(
            out,
            "{name:<name_width$} |{}| {:>6}s{}{}",
            bar(r, from, to, CHART_WIDTH),
            r.total_secs,
            r.lobby_secs
                .map(|l| format!(" lobby {l}s"))
                .unwrap_or_default(),
            if tags.is_empty() {
                String::new()
            } else {
                format!(" ({tags})")
            }
        )?;
    }
    Ok(())
}

pub fn print_files(
    out: &mut impl std::io::Write,
    session: &Session,
    bucket: &str,
    files: &[FileEntry],
) -> std::io::Result<()> {
    writeln!(
        out,
        "session {}: {} file(s)",
        session.summary.id,
        files.len()
    )?;
    for f in files {
        let copy = f.copy.as_ref();
        writeln!(
            out,
            "{:<13} {:<10} {:>12} {}  {}",
            f.job
                .as_ref()
                .and_then(|j| j.kind.as_deref())
                .unwrap_or("-"),
            f.state,
            copy.and_then(|c| c.bytes)
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            copy.and_then(|c| c.sha256.as_deref()).unwrap_or("-"),
            match copy.and_then(|c| c.object_key.as_deref()) {
                Some(key) if f.state == "copied" => format!("s3://{bucket}/{key}"),
                _ => f
                    .link_error
                    .clone()
                    .or_else(|| copy.and_then(|c| c.reason.clone()))
                    .or_else(|| f.job.as_ref().map(|j| j.id.clone()))
                    .unwrap_or_default(),
            }
        )?;
    }
    Ok(())
}
