//! A session's timeline: its stored events in event-time order, with repeats marked.
//!
//! Each delivery is stored once per key, so a repeat delivery of the same event is never a
//! second item. What can still be there twice: the same fact under two keys (a provider that
//! resends an event with a new id, or a body that differs only in bytes that do not matter,
//! for providers keyed by the body's hash), marked `duplicate_of` the first; and a key that
//! came back with other content, stored as a conflict copy (`conflict_of`).

use std::collections::HashMap;

use super::model::StoredEvent;

/// One line of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub event: StoredEvent,
    /// The key of an earlier item that states the same fact.
    pub duplicate_of: Option<String>,
}

/// What makes two items the same fact: type, time, presence, who, and which files. The
/// meeting events derive their ids from it too, so a consumer deduplicating by id also drops
/// the same fact stored under two keys.
pub(crate) fn fingerprint(e: &StoredEvent) -> String {
    let who = e
        .participant
        .as_ref()
        .map(|p| {
            format!(
                "{}|{}",
                p.participant_id.as_deref().unwrap_or(""),
                p.user_id.as_deref().unwrap_or("")
            )
        })
        .unwrap_or_default();
    let jobs: Vec<&str> = e.jobs.iter().map(|j| j.id.as_str()).collect();
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{who}\u{1f}{}",
        e.event_type,
        e.at_ms,
        e.presence.map(|p| p.as_str()).unwrap_or(""),
        jobs.join("\u{1e}")
    )
}

/// Orders `events` by event time (then receive time, then key, so the order is the same on
/// every read) and marks repeats.
pub fn timeline(mut events: Vec<StoredEvent>) -> Vec<Entry> {
    events.sort_by(|a, b| {
        a.at_ms
            .cmp(&b.at_ms)
            .then(a.received_at_ms.cmp(&b.received_at_ms))
            .then_with(|| a.key.cmp(&b.key))
    });
    let mut first: HashMap<String, String> = HashMap::new();
    events
        .into_iter()
        .map(|event| {
            let duplicate_of = if event.conflict_of.is_some() {
                None
            } else {
                match first.entry(fingerprint(&event)) {
                    std::collections::hash_map::Entry::Occupied(o) => Some(o.get().clone()),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(event.key.clone());
                        None
                    }
                }
            };
            Entry {
                event,
                duplicate_of,
            }
        })
        .collect()
}
