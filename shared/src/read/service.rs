//! The read use cases over the index, copy-state and presigning ports: a room's sessions, a
//! session's timeline, attendance and files. Each answer costs one page sequence of one
//! index (plus, for files, one batch read of copy states, and one room read for providers
//! whose file events name no session).

use std::collections::HashMap;

use super::attendance::{self, PresenceEvent};
use super::model::{CopyView, JobRef, Order, Page, Position, StoredEvent, TimeRange};
use super::ports::{CopyStates, Presigner, ReadError, RoomIndex, SessionIndex};
use super::sessions::{SessionLister, SessionRef, SessionSummary};
use super::timeline::{self, Entry};
use crate::facts::Presence;
use crate::providers;

/// Sessions per page unless asked otherwise, and at most.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 200;
/// Items asked of the room index per page while listing sessions (a session is two).
const ROOM_PAGE_ITEMS: u32 = 100;

/// A page of a room's sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsPage {
    pub sessions: Vec<SessionSummary>,
    /// Pass back to get the next page; `None` on the last.
    pub next: Option<Position>,
}

/// A session's stored events and what they say about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// What the events say about the session (as a room's list shows it).
    pub summary: SessionSummary,
    pub events: Vec<StoredEvent>,
}

/// One file of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// `None` for a file event whose link was unusable (nothing to copy).
    pub job: Option<JobRef>,
    pub event_key: String,
    pub event_type: String,
    pub at_ms: i64,
    /// `queued` (no copy attempt yet), `pending`, `copying`, `copied`, `failed`, or
    /// `unavailable` (the provider sent no usable link).
    pub state: String,
    pub copy: Option<CopyView>,
    /// Why the provider's link was unusable (never the link).
    pub link_error: Option<String>,
    /// A short-lived GET URL of our copy, for copied files.
    pub download: Option<Download>,
}

/// A presigned GET URL of our copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub url: String,
    pub expires_at_ms: i64,
}

/// The read use cases.
#[derive(Debug)]
pub struct ReadService<I, C, P> {
    index: I,
    copies: C,
    presigner: P,
    bucket: String,
    url_ttl_secs: u64,
}

impl<I: SessionIndex + RoomIndex, C: CopyStates, P: Presigner> ReadService<I, C, P> {
    pub fn new(index: I, copies: C, presigner: P, bucket: &str, url_ttl_secs: u64) -> Self {
        Self {
            index,
            copies,
            presigner,
            bucket: bucket.to_owned(),
            url_ttl_secs,
        }
    }

    /// The recordings bucket our copies are in.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A room's sessions that started in `range`, newest first, `limit` per page.
    pub async fn sessions(
        &self,
        room_key: &str,
        range: TimeRange,
        limit: usize,
        after: Option<Position>,
    ) -> Result<SessionsPage, ReadError> {
        let mut lister = SessionLister::new(limit.clamp(1, MAX_PAGE));
        let mut after = after;
        loop {
            let page = self
                .index
                .room_page(
                    room_key,
                    range,
                    Order::NewestFirst,
                    after.as_ref(),
                    Some(ROOM_PAGE_ITEMS),
                )
                .await?;
            for item in &page.items {
                if lister.push(item) {
                    return Ok(SessionsPage {
                        sessions: lister.finish(false),
                        next: Some(Position {
                            key: item.key.clone(),
                            sort: item.sort.clone(),
                        }),
                    });
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => {
                    return Ok(SessionsPage {
                        sessions: lister.finish(true),
                        next: None,
                    });
                }
            }
        }
    }

    /// A session's events (`None`: nothing is stored under that id).
    pub async fn session(&self, id: &str) -> Result<Option<Session>, ReadError> {
        let wanted = SessionRef::parse(id);
        let mut events = self.session_events(&wanted).await?;
        if events.is_empty() && wanted.from_ms.is_some() {
            events = self.session_events(&SessionRef::literal(id)).await?;
        }
        let Some(first) = events.first() else {
            return Ok(None);
        };
        let boundary = |p: Presence| {
            events
                .iter()
                .filter(move |e| e.presence == Some(p) && e.conflict_of.is_none())
                .map(|e| e.at_ms)
        };
        let started_at_ms = boundary(Presence::SessionStarted).min();
        let ended_at_ms = boundary(Presence::SessionEnded).max();
        let named = |f: fn(&StoredEvent) -> Option<&String>| events.iter().find_map(f).cloned();
        let session_id = first.session_id.clone().unwrap_or_default();
        let provider = first.provider.clone();
        Ok(Some(Session {
            summary: SessionSummary {
                id: SessionRef::api_id(&provider, &session_id, started_at_ms),
                session_id,
                provider,
                room: named(|e| e.room.as_ref()),
                room_key: named(|e| e.room_key.as_ref()),
                tenant: named(|e| e.tenant.as_ref()),
                started_at_ms,
                ended_at_ms,
            },
            events,
        }))
    }

    /// Reads one session's events: all of them, or for a reused id the meeting that starts
    /// at `from_ms` (up to its end, or to the next start when its end was lost).
    async fn session_events(&self, r: &SessionRef) -> Result<Vec<StoredEvent>, ReadError> {
        let mut out = Vec::new();
        let mut after = None;
        let mut started = false;
        loop {
            let page: Page = self
                .index
                .session_page(&r.session_id, r.from_ms, after.as_ref())
                .await?;
            for item in page.items {
                if r.from_ms.is_some() && item.conflict_of.is_none() {
                    match item.presence {
                        Some(Presence::SessionStarted) if started => return Ok(out),
                        Some(Presence::SessionStarted) => started = true,
                        Some(Presence::SessionEnded) if started => {
                            out.push(item);
                            return Ok(out);
                        }
                        _ => {}
                    }
                }
                out.push(item);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// The session's timeline.
    pub fn timeline(session: &Session) -> Vec<Entry> {
        timeline::timeline(session.events.clone())
    }

    /// The session's attendance.
    pub fn attendance(session: &Session, options: attendance::Options) -> Vec<attendance::Row> {
        let presence: Vec<PresenceEvent> = session
            .events
            .iter()
            .filter_map(|e| {
                Some(PresenceEvent {
                    key: e.key.clone(),
                    at_ms: e.at_ms,
                    presence: e.presence?,
                    participant: e.participant.clone(),
                })
            })
            .collect();
        attendance::attendance(&presence, options)
    }

    /// The session's files: its own file events and, for providers whose file events name
    /// no session, those filed under its room from its start to the room's next session.
    pub async fn files(&self, session: &Session, now_ms: i64) -> Result<Vec<FileEntry>, ReadError> {
        let mut file_events: Vec<StoredEvent> = session
            .events
            .iter()
            .filter(|e| !e.jobs.is_empty() || e.link_error.is_some())
            .cloned()
            .collect();
        if providers::files_without_session(&session.summary.provider)
            && let (Some(room), Some(start)) =
                (&session.summary.room_key, session.summary.started_at_ms)
        {
            file_events.extend(self.room_files(room, start, session).await?);
        }
        file_events.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then_with(|| a.key.cmp(&b.key)));
        file_events.dedup_by(|a, b| a.key == b.key);
        let job_ids: Vec<String> = file_events
            .iter()
            .flat_map(|e| e.jobs.iter().map(|j| j.id.clone()))
            .collect();
        let mut states = if job_ids.is_empty() {
            HashMap::new()
        } else {
            self.copies.copy_states(&job_ids).await?
        };
        let mut out = Vec::new();
        // A file is listed once, under the first event that announced it: a provider that
        // resent its webhook under a new id, or a webhook that came after reconciliation
        // found the file, names the same job again.
        let mut listed = std::collections::HashSet::new();
        for e in &file_events {
            if e.jobs.is_empty() {
                out.push(FileEntry {
                    job: None,
                    event_key: e.key.clone(),
                    event_type: e.event_type.clone(),
                    at_ms: e.at_ms,
                    state: "unavailable".into(),
                    copy: None,
                    link_error: e.link_error.clone(),
                    download: None,
                });
                continue;
            }
            for job in &e.jobs {
                if !listed.insert(job.id.clone()) {
                    continue;
                }
                let copy = states.remove(&job.id);
                let state = copy
                    .as_ref()
                    .map_or_else(|| "queued".to_owned(), |c| c.state.clone());
                let download = match copy.as_ref() {
                    Some(c) if c.state == "copied" => match &c.object_key {
                        Some(key) => Some(Download {
                            url: self.presigner.presign_get(key, self.url_ttl_secs).await?,
                            expires_at_ms: now_ms.saturating_add(
                                i64::try_from(self.url_ttl_secs)
                                    .unwrap_or(i64::MAX)
                                    .saturating_mul(1000),
                            ),
                        }),
                        None => None,
                    },
                    _ => None,
                };
                out.push(FileEntry {
                    job: Some(job.clone()),
                    event_key: e.key.clone(),
                    event_type: e.event_type.clone(),
                    at_ms: e.at_ms,
                    state,
                    copy,
                    link_error: None,
                    download,
                });
            }
        }
        Ok(out)
    }

    /// File events of `room` that name no session, from `start` until another session of the
    /// room starts.
    async fn room_files(
        &self,
        room: &str,
        start: i64,
        session: &Session,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        let range = TimeRange {
            from_ms: Some(start),
            to_ms: None,
        };
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .index
                .room_page(room, range, Order::OldestFirst, after.as_ref(), None)
                .await?;
            for item in page.items {
                let other_start = item.presence == Some(Presence::SessionStarted)
                    && item.conflict_of.is_none()
                    && (item.session_id.as_deref() != Some(session.summary.session_id.as_str())
                        || item.at_ms > start);
                if other_start {
                    return Ok(out);
                }
                if item.session_id.is_none() && !item.jobs.is_empty() {
                    out.push(item);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }
}
