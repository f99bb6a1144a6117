//! Attendance of one session from its stored presence events. Pure: the same events give the
//! same answer in any order and with any repeats, as webhooks arrive out of order and twice.
//!
//! - One row per participant identity: the provider's stable user id when it has one, else
//!   its participant id.
//! - Join/leave intervals in event time. A join without a leave is closed by the session's end
//!   and marked inferred (still open while the session runs); a leave without a join opens
//!   at the session's start, marked inferred.
//! - A move between the meeting's rooms (JaaS `switch_room`) is presence; a leave followed by
//!   a join within [`Options::rejoin_gap_ms`] (Prosody's breakout moves, a reconnect) is one
//!   continuous interval.
//! - Lobby (waiting-room) time where the provider reports it.
//! - Recorder and transcriber bots are left out unless asked for.

use std::collections::{BTreeMap, HashSet};

use crate::facts::{ParticipantFacts, Presence};

/// One stored event, as attendance needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEvent {
    /// The stored key (dedup: the same key counts once).
    pub key: String,
    pub at_ms: i64,
    pub presence: Presence,
    pub participant: Option<ParticipantFacts>,
}

/// How attendance is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Include recorder and transcriber bots.
    pub include_bots: bool,
    /// A leave and a join of the same identity this close together are one interval.
    pub rejoin_gap_ms: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            include_bots: false,
            rejoin_gap_ms: 10_000,
        }
    }
}

/// A stretch of presence, Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub from_ms: i64,
    /// `None` while the participant is still present and the session has not ended.
    pub to_ms: Option<i64>,
    /// The start was not reported (a leave without a join): the session's start stands in.
    pub inferred_start: bool,
    /// The end was not reported (a join without a leave): the session's end stands in.
    pub inferred_end: bool,
}

/// One participant's attendance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The user id, else the participant id.
    pub identity: String,
    pub name: Option<String>,
    pub moderator: bool,
    /// `recorder` / `transcriber` for bots (only listed with [`Options::include_bots`]).
    pub role: Option<String>,
    pub intervals: Vec<Interval>,
    /// Seconds present over closed intervals (saturating).
    pub total_secs: i64,
    pub first_join_ms: i64,
    /// `None` while still present.
    pub last_leave_ms: Option<i64>,
    /// Seconds in the lobby, where the provider reports lobby entry and exit.
    pub lobby_secs: Option<i64>,
}

fn identity(p: &ParticipantFacts) -> Option<String> {
    p.user_id
        .clone()
        .or_else(|| p.participant_id.clone())
        .filter(|s| !s.is_empty())
}

/// The order of events at the same millisecond: leaves before joins, so a move that arrives
/// as a leave and a join with one timestamp stays continuous.
fn rank(p: Presence) -> u8 {
    match p {
        Presence::SessionStarted => 0,
        Presence::Left => 1,
        Presence::LobbyLeft => 2,
        Presence::Moved => 3,
        Presence::LobbyJoined => 4,
        Presence::Joined => 5,
        Presence::SessionEnded => 6,
    }
}

#[derive(Default)]
struct Person {
    name: Option<String>,
    moderator: bool,
    role: Option<String>,
    events: Vec<(i64, Presence)>,
}

/// The session's attendance, one row per identity, ordered by first join.
pub fn attendance(events: &[PresenceEvent], options: Options) -> Vec<Row> {
    let mut seen = HashSet::new();
    let unique: Vec<&PresenceEvent> = events
        .iter()
        .filter(|e| seen.insert(e.key.as_str()))
        .collect();
    let start = unique
        .iter()
        .filter(|e| e.presence == Presence::SessionStarted)
        .map(|e| e.at_ms)
        .min();
    let end = unique
        .iter()
        .filter(|e| e.presence == Presence::SessionEnded)
        .map(|e| e.at_ms)
        .max();
    let mut people: BTreeMap<String, Person> = BTreeMap::new();
    let mut timed: Vec<&PresenceEvent> = unique;
    // Event time, then leaves before joins, then the key: one order whatever the arrival.
    timed.sort_by(|a, b| {
        (a.at_ms, rank(a.presence), &a.key).cmp(&(b.at_ms, rank(b.presence), &b.key))
    });
    for e in timed {
        let Some(p) = &e.participant else { continue };
        let Some(id) = identity(p) else { continue };
        if p.role.is_some() && !options.include_bots {
            continue;
        }
        let person = people.entry(id).or_default();
        if p.name.as_deref().is_some_and(|n| !n.is_empty()) {
            person.name = p.name.clone();
        }
        person.moderator |= p.moderator == Some(true);
        if p.role.is_some() {
            person.role = p.role.clone();
        }
        // A repeat of the same fact (a conflict copy, a re-sent leave) changes nothing.
        if person.events.last() != Some(&(e.at_ms, e.presence)) {
            person.events.push((e.at_ms, e.presence));
        }
    }
    let mut rows: Vec<Row> = people
        .into_iter()
        .filter_map(|(identity, person)| row(identity, person, start, end, options))
        .collect();
    rows.sort_by(|a, b| (a.first_join_ms, &a.identity).cmp(&(b.first_join_ms, &b.identity)));
    rows
}

fn row(
    identity: String,
    person: Person,
    start: Option<i64>,
    end: Option<i64>,
    options: Options,
) -> Option<Row> {
    let mut intervals: Vec<Interval> = Vec::new();
    let mut open: Option<(i64, bool)> = None;
    let mut lobby_open: Option<i64> = None;
    let mut lobby: Option<i64> = None;
    let close = |intervals: &mut Vec<Interval>, from: i64, inferred_start: bool, to: i64| {
        match intervals.last_mut() {
            // Back within the gap: the same stretch of presence.
            Some(last)
                if last
                    .to_ms
                    .is_some_and(|t| from.saturating_sub(t) <= options.rejoin_gap_ms) =>
            {
                last.to_ms = Some(to.max(last.to_ms.unwrap_or(to)));
                last.inferred_end = false;
            }
            _ => intervals.push(Interval {
                from_ms: from,
                to_ms: Some(to),
                inferred_start,
                inferred_end: false,
            }),
        }
    };
    for &(at, presence) in &person.events {
        match presence {
            Presence::Joined | Presence::Moved => {
                if open.is_none() {
                    open = Some((at, false));
                }
            }
            Presence::Left => match open.take() {
                Some((from, inferred)) => close(&mut intervals, from, inferred, at),
                // A leave without a join: present since the session's start.
                None => {
                    if let Some(s) = start.filter(|s| *s <= at && intervals.is_empty()) {
                        close(&mut intervals, s, true, at);
                    }
                }
            },
            Presence::LobbyJoined => {
                lobby_open.get_or_insert(at);
            }
            Presence::LobbyLeft => {
                if let Some(from) = lobby_open.take() {
                    let secs = at.saturating_sub(from) / 1000;
                    lobby = Some(lobby.unwrap_or(0).saturating_add(secs));
                }
            }
            Presence::SessionStarted | Presence::SessionEnded => {}
        }
    }
    if let Some((from, inferred_start)) = open {
        match end.filter(|e| *e >= from) {
            Some(e) => {
                close(&mut intervals, from, inferred_start, e);
                if let Some(last) = intervals.last_mut() {
                    last.inferred_end = last.to_ms == Some(e);
                }
            }
            None => intervals.push(Interval {
                from_ms: from,
                to_ms: None,
                inferred_start,
                inferred_end: false,
            }),
        }
    }
    let first_join_ms = intervals.first()?.from_ms;
    let last_leave_ms = intervals.last().and_then(|i| i.to_ms);
    let total_ms = intervals.iter().fold(0i64, |sum, i| {
        sum.saturating_add(i.to_ms.map_or(0, |t| t.saturating_sub(i.from_ms)))
    });
    Some(Row {
        identity,
        name: person.name,
        moderator: person.moderator,
        role: person.role,
        intervals,
        total_secs: total_ms / 1000,
        first_join_ms,
        last_leave_ms,
        lobby_secs: lobby,
    })
}

#[cfg(test)]
mod tests;
