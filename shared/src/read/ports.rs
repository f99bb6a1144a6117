//! The capabilities the read API needs, one trait each; `crate::aws::read` implements them
//! with DynamoDB and S3, `super::memory` in memory for the use-case tests.

use std::collections::HashMap;
use std::future::Future;

use super::model::{CopyView, Order, Page, Position, TimeRange};

/// A read failed (the store, not the request): the caller may retry.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed")]
pub struct ReadError {
    pub operation: &'static str,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A session's events (the `bySession` index), in event-time order.
pub trait SessionIndex: Send + Sync {
    /// One page of `session_id`'s events at or after `from_ms` (all when `None`), resuming
    /// after `after`.
    fn session_page(
        &self,
        session_id: &str,
        from_ms: Option<i64>,
        after: Option<&Position>,
    ) -> impl Future<Output = Result<Page, ReadError>> + Send;
}

/// A room's session boundaries and the file events that name no session (the sparse
/// `byRoom` index).
pub trait RoomIndex: Send + Sync {
    /// One page of `room_key`'s indexed events in `range`, resuming after `after`, at most
    /// `limit` items when given.
    fn room_page(
        &self,
        room_key: &str,
        range: TimeRange,
        order: Order,
        after: Option<&Position>,
        limit: Option<u32>,
    ) -> impl Future<Output = Result<Page, ReadError>> + Send;
}

/// Copy states by job id (the copies table): jobs with no state yet are absent.
pub trait CopyStates: Send + Sync {
    fn copy_states(
        &self,
        job_ids: &[String],
    ) -> impl Future<Output = Result<HashMap<String, CopyView>, ReadError>> + Send;
}

/// Short-lived download links to our own copies.
pub trait Presigner: Send + Sync {
    /// A GET URL of `key` in the recordings bucket, valid for `ttl_secs`.
    fn presign_get(
        &self,
        key: &str,
        ttl_secs: u64,
    ) -> impl Future<Output = Result<String, ReadError>> + Send;
}
