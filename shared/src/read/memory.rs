//! In-memory ports for the read use-case tests: the two indexes over one list of stored
//! events (sorted and paged as DynamoDB does), copy states in a map, and a presigner that
//! makes a recognisable URL. Every read is counted, so a test can say nothing was read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::model::{CopyView, Order, Page, Position, StoredEvent, TimeRange};
use super::ports::{CopyStates, Presigner, ReadError, RoomIndex, SessionIndex};
use crate::aws::events::time_sort;
use crate::schema::limits;

#[derive(Debug, Default)]
pub struct Memory {
    pub events: Mutex<Vec<StoredEvent>>,
    pub copies: Mutex<HashMap<String, CopyView>>,
    pub reads: AtomicUsize,
    /// Items per index page (DynamoDB pages by 1 MB; small here to exercise paging).
    pub page: usize,
}

impl Memory {
    pub fn new(page: usize) -> Self {
        Self {
            page,
            ..Self::default()
        }
    }

    /// Stores an event as ingest would (indexes keyed as `aws::events` keys them).
    pub fn store(&self, e: StoredEvent) {
        let mut events = self.events.lock().expect("lock");
        if events.iter().any(|x| x.key == e.key) {
            return;
        }
        events.push(e);
    }

    fn page_of(
        &self,
        mut items: Vec<(String, StoredEvent)>,
        after: Option<&Position>,
        desc: bool,
        limit: Option<u32>,
    ) -> Page {
        self.reads.fetch_add(1, Ordering::Relaxed);
        items.sort_by(|a, b| (&a.0, &a.1.key).cmp(&(&b.0, &b.1.key)));
        if desc {
            items.reverse();
        }
        if let Some(p) = after {
            let at = (&p.sort, &p.key);
            items.retain(|(s, e)| {
                if desc {
                    (s, &e.key) < at
                } else {
                    (s, &e.key) > at
                }
            });
        }
        let size = limit
            .map_or(self.page, |l| (l as usize).min(self.page))
            .max(1);
        let more = items.len() > size;
        items.truncate(size);
        let next = more.then(|| {
            let (s, e) = items.last().expect("a full page");
            Position {
                key: e.key.clone(),
                sort: s.clone(),
            }
        });
        Page {
            items: items
                .into_iter()
                .map(|(s, mut e)| {
                    e.sort = s;
                    e
                })
                .collect(),
            next,
        }
    }
}

fn room_indexed(e: &StoredEvent) -> bool {
    e.room_key
        .as_ref()
        .is_some_and(|k| k.len() <= limits::PARTITION_KEY_BYTES)
        && (matches!(
            e.presence,
            Some(crate::facts::Presence::SessionStarted | crate::facts::Presence::SessionEnded)
        ) || (e.session_id.is_none() && !e.jobs.is_empty()))
}

impl SessionIndex for Memory {
    async fn session_page(
        &self,
        session_id: &str,
        from_ms: Option<i64>,
        after: Option<&Position>,
    ) -> Result<Page, ReadError> {
        let from = from_ms.map(|f| format!("{f:013}"));
        let items = self
            .events
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e.session_id.as_deref() == Some(session_id))
            .map(|e| (time_sort(e.at_ms, &e.key), e.clone()))
            .filter(|(s, _)| from.as_ref().is_none_or(|f| s >= f))
            .collect();
        Ok(self.page_of(items, after, false, None))
    }
}

impl RoomIndex for Memory {
    async fn room_page(
        &self,
        room_key: &str,
        range: TimeRange,
        order: Order,
        after: Option<&Position>,
        limit: Option<u32>,
    ) -> Result<Page, ReadError> {
        let items = self
            .events
            .lock()
            .expect("lock")
            .iter()
            .filter(|e| e.room_key.as_deref() == Some(room_key) && room_indexed(e))
            .filter(|e| range.from_ms.is_none_or(|f| e.at_ms >= f))
            .filter(|e| range.to_ms.is_none_or(|t| e.at_ms < t))
            .map(|e| {
                (
                    time_sort(e.at_ms, e.session_id.as_deref().unwrap_or("-")),
                    e.clone(),
                )
            })
            .collect();
        Ok(self.page_of(items, after, order == Order::NewestFirst, limit))
    }
}

impl CopyStates for Memory {
    async fn copy_states(
        &self,
        job_ids: &[String],
    ) -> Result<HashMap<String, CopyView>, ReadError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let copies = self.copies.lock().expect("lock");
        Ok(job_ids
            .iter()
            .filter_map(|id| copies.get(id).map(|c| (id.clone(), c.clone())))
            .collect())
    }
}

impl Presigner for Memory {
    async fn presign_get(&self, key: &str, ttl_secs: u64) -> Result<String, ReadError> {
        Ok(format!("https://bucket.example/{key}?ttl={ttl_secs}"))
    }
}

impl SessionIndex for &Memory {
    async fn session_page(
        &self,
        session_id: &str,
        from_ms: Option<i64>,
        after: Option<&Position>,
    ) -> Result<Page, ReadError> {
        (**self).session_page(session_id, from_ms, after).await
    }
}

impl RoomIndex for &Memory {
    async fn room_page(
        &self,
        room_key: &str,
        range: TimeRange,
        order: Order,
        after: Option<&Position>,
        limit: Option<u32>,
    ) -> Result<Page, ReadError> {
        (**self)
            .room_page(room_key, range, order, after, limit)
            .await
    }
}

impl CopyStates for &Memory {
    async fn copy_states(
        &self,
        job_ids: &[String],
    ) -> Result<HashMap<String, CopyView>, ReadError> {
        (**self).copy_states(job_ids).await
    }
}

impl Presigner for &Memory {
    async fn presign_get(&self, key: &str, ttl_secs: u64) -> Result<String, ReadError> {
        (**self).presign_get(key, ttl_secs).await
    }
}
