//! Operator commands that work against the local stack and real AWS alike.

pub mod events;
pub mod jobs;
pub mod meeting_events;
pub mod read;
pub mod recopy;
pub mod redrive;
pub mod target;
