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

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<QueueCall> {
        self.lock().calls.clone()
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
