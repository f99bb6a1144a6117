//! An in-memory [`Requeue`]: records every visibility change and continuation, and can be told
//! to fail, so tests see exactly what the copier asked of its queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use meeting_hooks::copier::ports::{Requeue, RequeueError};

/// What the copier asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueCall {
    RetryAfter {
        receipt_handle: String,
        delay: Duration,
    },
    Continue {
        job_id: String,
        body: String,
        delay: Duration,
    },
    /// The heartbeat of a running copy.
    Hold {
        receipt_handle: String,
        hold: Duration,
    },
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<QueueCall>,
    fail_retry: bool,
    fail_continue: bool,
}

/// Cloneable handle: the test keeps one, the handler the other.
#[derive(Debug, Clone, Default)]
pub struct MemoryQueue {
    state: Arc<Mutex<State>>,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every backoff and continuation so far, in order (heartbeats left out: see [`Self::holds`]).
    pub fn calls(&self) -> Vec<QueueCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| !matches!(c, QueueCall::Hold { .. }))
            .cloned()
            .collect()
    }

    /// The heartbeat's visibility extensions so far.
    pub fn holds(&self) -> Vec<(String, Duration)> {
        self.lock()
            .calls
            .iter()
            .filter_map(|c| match c {
                QueueCall::Hold {
                    receipt_handle,
                    hold,
                } => Some((receipt_handle.clone(), *hold)),
                _ => None,
            })
            .collect()
    }

    /// ChangeMessageVisibility fails from now on.
    pub fn fail_retry(&self, fail: bool) {
        self.lock().fail_retry = fail;
    }

    /// SendMessage fails from now on.
    pub fn fail_continue(&self, fail: bool) {
        self.lock().fail_continue = fail;
    }
}

impl Requeue for MemoryQueue {
    async fn retry_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), RequeueError> {
        let mut st = self.lock();
        if st.fail_retry {
            return Err(RequeueError {
                operation: "ChangeMessageVisibility",
                source: "simulated SQS failure".into(),
            });
        }
        st.calls.push(QueueCall::RetryAfter {
            receipt_handle: receipt_handle.to_owned(),
            delay,
        });
        Ok(())
    }

    async fn hold(&self, receipt_handle: &str, hold: Duration) -> Result<(), RequeueError> {
        let mut st = self.lock();
        if st.fail_retry {
            return Err(RequeueError {
                operation: "ChangeMessageVisibility",
                source: "simulated SQS failure".into(),
            });
        }
        st.calls.push(QueueCall::Hold {
            receipt_handle: receipt_handle.to_owned(),
            hold,
        });
        Ok(())
    }

    async fn continue_job(
        &self,
        job_id: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), RequeueError> {
        let mut st = self.lock();
        if st.fail_continue {
            return Err(RequeueError {
                operation: "SendMessage",
                source: "simulated SQS failure".into(),
            });
        }
        st.calls.push(QueueCall::Continue {
            job_id: job_id.to_owned(),
            body: body.to_owned(),
            delay,
        });
        Ok(())
    }
}
