//! The in-memory answer cache of one Lambda instance, keyed by fqn.
//!
//! JaaS asks before every meeting and gives up after about 3 s, so warm answers come from
//! memory. An entry is *fresh* for the TTL; after that it is only used when storage fails
//! (a stale answer keeps a room's lobby and passcode, an error would open it). The size is
//! bounded: when full, the entry inserted longest ago goes first (first in, first out), which
//! for a TTL cache is close to least-recently-fetched without bookkeeping on every hit.
//! Time is passed in (Unix ms) so tests can age entries without sleeping.

use std::collections::{HashMap, VecDeque};

use super::model::{Fqn, Settings};

#[derive(Debug)]
struct Entry {
    settings: Settings,
    fetched_at_ms: i64,
}

/// A cached answer and whether it is still within its TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub settings: Settings,
    pub fresh: bool,
    pub age_ms: i64,
}

/// Bounded map from fqn to its last resolved answer.
#[derive(Debug)]
pub struct AnswerCache {
    ttl_ms: i64,
    capacity: usize,
    entries: HashMap<Fqn, Entry>,
    order: VecDeque<Fqn>,
}

impl AnswerCache {
    /// `capacity` 0 disables caching entirely (not even stale answers are kept).
    pub fn new(ttl_ms: i64, capacity: usize) -> Self {
        Self {
            ttl_ms: ttl_ms.max(0),
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The entry for `fqn`, fresh or stale. A clock that went backwards counts as age 0.
    pub fn get(&self, fqn: &Fqn, now_ms: i64) -> Option<Cached> {
        self.entries.get(fqn).map(|e| {
            let age_ms = now_ms.saturating_sub(e.fetched_at_ms).max(0);
            Cached {
                settings: e.settings.clone(),
                fresh: age_ms < self.ttl_ms,
                age_ms,
            }
        })
    }

    /// Stores a freshly resolved answer.
    pub fn insert(&mut self, fqn: &Fqn, settings: Settings, now_ms: i64) {
        if self.capacity == 0 {
            return;
        }
        if let Some(e) = self.entries.get_mut(fqn) {
            e.settings = settings;
            e.fetched_at_ms = now_ms;
            return;
        }
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.order.push_back(fqn.clone());
        self.entries.insert(
            fqn.clone(),
            Entry {
                settings,
                fetched_at_ms: now_ms,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fqn(room: &str) -> Fqn {
        Fqn::parse(&format!("app/{room}")).unwrap()
    }

    fn settings(n: u64) -> Settings {
        Settings::from_json(&json!({ "maxOccupants": n })).unwrap()
    }

    #[test]
    fn fresh_within_ttl_then_stale_but_kept() {
        let mut c = AnswerCache::new(1_000, 10);
        assert_eq!(c.get(&fqn("r"), 0), None);
        c.insert(&fqn("r"), settings(5), 10_000);
        let hit = c.get(&fqn("r"), 10_999).unwrap();
        assert!(hit.fresh);
        assert_eq!(hit.settings, settings(5));
        let stale = c.get(&fqn("r"), 11_000).unwrap();
        assert!(!stale.fresh);
        assert_eq!(stale.age_ms, 1_000);
        assert!(c.get(&fqn("r"), 1_000_000_000).is_some());
        // A clock step backwards does not make an entry look older.
        assert!(c.get(&fqn("r"), 0).unwrap().fresh);
    }

    #[test]
    fn refresh_replaces_and_restarts_ttl() {
        let mut c = AnswerCache::new(1_000, 10);
        c.insert(&fqn("r"), settings(5), 0);
        c.insert(&fqn("r"), settings(6), 5_000);
        let hit = c.get(&fqn("r"), 5_500).unwrap();
        assert!(hit.fresh);
        assert_eq!(hit.settings, settings(6));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn ttl_zero_is_never_fresh() {
        let mut c = AnswerCache::new(0, 10);
        c.insert(&fqn("r"), settings(5), 0);
        assert!(!c.get(&fqn("r"), 0).unwrap().fresh);
    }

    #[test]
    fn bounded_first_in_first_out() {
        let mut c = AnswerCache::new(1_000, 3);
        for (i, r) in ["a", "b", "c", "d"].iter().enumerate() {
            c.insert(&fqn(r), settings(10 + i as u64), i as i64);
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&fqn("a"), 0).is_none());
        for r in ["b", "c", "d"] {
            assert!(c.get(&fqn(r), 0).is_some(), "{r}");
        }
        let mut off = AnswerCache::new(1_000, 0);
        off.insert(&fqn("a"), settings(5), 0);
        assert!(off.is_empty());
    }
}
