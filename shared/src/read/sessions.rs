//! A room's sessions from its session boundaries, and the session ids the API hands out.
//!
//! The room index holds each session's start and end (and file events that name no
//! session). Read newest first, an end is met before its start; a session is listed when its
//! start is met, so a page never splits one (sessions of one room follow each other in event
//! time). Self-hosted Jitsi names no meeting, only the room: the same session id comes back
//! for every meeting in a room, so those sessions are told apart by their start
//! ([`SessionRef`]: `<id>~<start ms>`).

use std::collections::{HashMap, HashSet};

use super::model::StoredEvent;
use crate::facts::Presence;
use crate::providers;

/// A session in a room's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The id to ask the session routes with ([`SessionRef`]).
    pub id: String,
    /// The stored session id.
    pub session_id: String,
    pub provider: String,
    pub room: Option<String>,
    pub room_key: Option<String>,
    pub tenant: Option<String>,
    /// `None` when the start was not stored (lost, or before the listed range).
    pub started_at_ms: Option<i64>,
    /// `None` while the session runs (or when its end was lost).
    pub ended_at_ms: Option<i64>,
}

/// A session as the API's routes name it: a stored session id, and for providers that reuse
/// one id for successive meetings, the start that picks one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub session_id: String,
    pub from_ms: Option<i64>,
}

impl SessionRef {
    /// The API id of a session.
    pub fn api_id(provider: &str, session_id: &str, started_at_ms: Option<i64>) -> String {
        match started_at_ms {
            Some(at) if providers::reuses_session_ids(provider) => format!("{session_id}~{at}"),
            _ => session_id.to_owned(),
        }
    }

    /// Reads an API id: `<id>~<start ms>` picks one meeting of a reused id.
    pub fn parse(id: &str) -> Self {
        if let Some((session, at)) = id.rsplit_once('~')
            && !session.is_empty()
            && !at.is_empty()
            && at.bytes().all(|b| b.is_ascii_digit())
            && let Ok(from) = at.parse::<i64>()
        {
            return Self {
                session_id: session.to_owned(),
                from_ms: Some(from),
            };
        }
        Self {
            session_id: id.to_owned(),
            from_ms: None,
        }
    }

    /// The same id read literally (when the windowed reading found nothing).
    pub fn literal(id: &str) -> Self {
        Self {
            session_id: id.to_owned(),
            from_ms: None,
        }
    }
}

/// Builds a page of sessions from a room's boundaries, read newest first.
#[derive(Debug)]
pub struct SessionLister {
    limit: usize,
    /// Ends met whose start is not met yet, per session id (a stack: with a reused id the
    /// latest pushed, the oldest in time, belongs to the next start met).
    open_ends: HashMap<String, Vec<StoredEvent>>,
    listed: Vec<SessionSummary>,
    /// Session ids listed (ids that are not reused are listed once).
    seen: HashSet<String>,
}

impl SessionLister {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            open_ends: HashMap::new(),
            listed: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Takes the next item (newest first). `true` when the page is full: the next page
    /// resumes after this item.
    pub fn push(&mut self, e: &StoredEvent) -> bool {
        let Some(session) = e.session_id.as_deref() else {
            return false;
        };
        // A conflict copy is another content under a key already stored: not a boundary.
        if e.conflict_of.is_some() {
            return false;
        }
        let reused = providers::reuses_session_ids(&e.provider);
        match e.presence {
            Some(Presence::SessionEnded) => {
                if reused || !self.seen.contains(session) {
                    self.open_ends
                        .entry(session.to_owned())
                        .or_default()
                        .push(e.clone());
                }
                false
            }
            Some(Presence::SessionStarted) => {
                if !reused && self.seen.contains(session) {
                    // A second start of a listed session: the earlier one counts.
                    if let Some(s) = self.listed.iter_mut().find(|s| s.session_id == session) {
                        s.started_at_ms = Some(s.started_at_ms.map_or(e.at_ms, |t| t.min(e.at_ms)));
                    }
                    return false;
                }
                let end = self.open_ends.get_mut(session).and_then(Vec::pop);
                self.list(e, Some(e.at_ms), end.map(|x| x.at_ms));
                self.listed.len() >= self.limit
            }
            _ => false,
        }
    }

    fn list(&mut self, e: &StoredEvent, started: Option<i64>, ended: Option<i64>) {
        let session = e.session_id.clone().unwrap_or_default();
        self.seen.insert(session.clone());
        self.listed.push(SessionSummary {
            id: SessionRef::api_id(&e.provider, &session, started),
            session_id: session,
            provider: e.provider.clone(),
            room: e.room.clone(),
            room_key: e.room_key.clone(),
            tenant: e.tenant.clone(),
            started_at_ms: started,
            ended_at_ms: ended,
        });
    }

    /// The page. At the end of the room's items (`exhausted`), sessions whose end was met
    /// but not their start are listed too, newest first, with no start.
    pub fn finish(mut self, exhausted: bool) -> Vec<SessionSummary> {
        if exhausted {
            let mut orphans: Vec<StoredEvent> = std::mem::take(&mut self.open_ends)
                .into_values()
                .flatten()
                .collect();
            orphans.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| a.key.cmp(&b.key)));
            for end in orphans {
                self.list(&end, None, Some(end.at_ms));
            }
        }
        self.listed
    }
}
