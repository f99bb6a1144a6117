//! The copy state of one job and its transitions. Pure: the DynamoDB adapter stores these
//! types and enforces the same transitions with condition expressions; [`claim_decision`] is
//! the single statement of the rules both follow.
//!
//! ```text
//!            claim (absent | pending | copying with lease run out | failed, not permanent)
//!  pending ───────────────────────────────────────────────▶ copying(owner, leaseUntil)
//!     ▲   release (deadline near, retryable error)            │  parts recorded (lease renewed)
//!     └───────────────────────────────────────────────────────┤
//!                                                             ├──▶ copied   (terminal)
//!                                                             └──▶ failed   (permanent: terminal;
//!                                                                  retries exhausted: claimable)
//! ```
//! Every write after the claim is conditional on `owner = me AND state = copying`, so a copier
//! whose lease was taken over can no longer change the record.

/// One uploaded part, persisted as soon as S3 accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub number: u32,
    pub etag: String,
    /// Base64 SHA-256 of the part, as sent in `ChecksumSHA256`.
    pub sha256: String,
    /// Byte offset of the part in the file.
    pub offset: u64,
    pub len: u64,
    /// The whole-file SHA-256 state after this part (serialized hasher), so a resumed copy
    /// continues the full-object checksum without reading the finished bytes again.
    pub hash_state: Vec<u8>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadProgress {
    pub upload_id: String,
    pub key: String,
    /// Total length as the origin announced it, when known.
    pub total: Option<u64>,
    pub parts: Vec<PartRecord>,
}

impl UploadProgress {
    /// The parts 1..=n that are all present and contiguous in bytes: what a resume keeps.
    /// Parts after a gap are uploaded again (same number, same bytes: S3 keeps the last).
    pub fn contiguous_prefix(&self) -> Vec<PartRecord> {
        let mut parts = self.parts.clone();
        parts.sort_by_key(|p| p.number);
        let mut out: Vec<PartRecord> = Vec::new();
        for p in parts {
            let expected_offset = out.last().map_or(0, |l| l.offset + l.len);
            if p.number as usize == out.len() + 1 && p.offset == expected_offset {
                out.push(p);
            } else {
                break;
            }
        }
        out
    }
}

/// The lifecycle state of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyStatus {
    /// Not being worked on; may hold progress from an interrupted attempt.
    Pending,
    Copying {
        owner: String,
        lease_until_ms: i64,
    },
    Copied,
    Failed {
        permanent: bool,
        reason: String,
    },
}

impl CopyStatus {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Copying { .. } => "copying",
            Self::Copied => "copied",
            Self::Failed { .. } => "failed",
        }
    }
}

/// What a copier may do with a job given its stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    Take,
    AlreadyCopied,
    /// Permanently failed before: acknowledge without work.
    AlreadyFailed {
        reason: String,
    },
    /// Another copier holds a live lease: come back later.
    Busy {
        lease_until_ms: i64,
    },
}

/// The claim rule (mirrored by the DynamoDB condition in `aws::copies`).
pub fn claim_decision(stored: Option<&CopyStatus>, now_ms: i64) -> ClaimDecision {
    match stored {
        None | Some(CopyStatus::Pending) => ClaimDecision::Take,
        Some(CopyStatus::Copying { lease_until_ms, .. }) if *lease_until_ms < now_ms => {
            ClaimDecision::Take
        }
        Some(CopyStatus::Copying { lease_until_ms, .. }) => ClaimDecision::Busy {
            lease_until_ms: *lease_until_ms,
        },
        Some(CopyStatus::Copied) => ClaimDecision::AlreadyCopied,
        Some(CopyStatus::Failed {
            permanent: true,
            reason,
        }) => ClaimDecision::AlreadyFailed {
            reason: reason.clone(),
        },
        Some(CopyStatus::Failed {
            permanent: false, ..
        }) => ClaimDecision::Take,
    }
}

/// The result of a claim attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// We hold the lease; the progress of earlier attempts, if any.
    Claimed {
        progress: Option<UploadProgress>,
        screenshots_done: usize,
        attempt: u32,
    },
    AlreadyCopied,
    AlreadyFailed {
        reason: String,
    },
    Busy {
        lease_until_ms: i64,
    },
}

/// What a finished copy recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResult {
    /// The object key (the first screenshot's directory for screenshot jobs).
    pub key: String,
    pub bytes: u64,
    /// Hex SHA-256 of the whole file (of the last screenshot for screenshot jobs: each
    /// screenshot object carries its own tag).
    pub sha256: String,
    pub objects: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, offset: u64, len: u64) -> PartRecord {
        PartRecord {
            number,
            etag: format!("e{number}"),
            sha256: String::new(),
            offset,
            len,
            hash_state: Vec::new(),
        }
    }

    #[test]
    fn claims_follow_the_state_machine() {
        let now = 1_000;
        assert_eq!(claim_decision(None, now), ClaimDecision::Take);
        assert_eq!(
            claim_decision(Some(&CopyStatus::Pending), now),
            ClaimDecision::Take
        );
        let live = CopyStatus::Copying {
            owner: "a".into(),
            lease_until_ms: now + 1,
        };
        assert_eq!(
            claim_decision(Some(&live), now),
            ClaimDecision::Busy {
                lease_until_ms: now + 1
            }
        );
        let expired = CopyStatus::Copying {
            owner: "a".into(),
            lease_until_ms: now - 1,
        };
        assert_eq!(claim_decision(Some(&expired), now), ClaimDecision::Take);
        assert_eq!(
            claim_decision(Some(&CopyStatus::Copied), now),
            ClaimDecision::AlreadyCopied
        );
        let perm = CopyStatus::Failed {
            permanent: true,
            reason: "origin answered 403".into(),
        };
        assert!(matches!(
            claim_decision(Some(&perm), now),
            ClaimDecision::AlreadyFailed { .. }
        ));
        let exhausted = CopyStatus::Failed {
            permanent: false,
            reason: "retries exhausted".into(),
        };
        assert_eq!(claim_decision(Some(&exhausted), now), ClaimDecision::Take);
    }

    #[test]
    fn resume_keeps_only_the_contiguous_prefix() {
        let progress = UploadProgress {
            parts: vec![part(2, 10, 10), part(1, 0, 10), part(4, 30, 10)],
            ..UploadProgress::default()
        };
        let prefix = progress.contiguous_prefix();
        assert_eq!(
            prefix.iter().map(|p| p.number).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let gap_in_bytes = UploadProgress {
            parts: vec![part(1, 0, 10), part(2, 11, 10)],
            ..UploadProgress::default()
        };
        assert_eq!(gap_in_bytes.contiguous_prefix().len(), 1);
    }
}
