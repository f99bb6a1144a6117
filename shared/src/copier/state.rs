//! The copy state of one job and its transitions. Pure: the DynamoDB adapter stores these
//! types and enforces the same transitions with condition expressions; [`claim_decision`] is
//! the single statement of the rules both follow.
//!
//! ```text
//!            claim (absent | pending | copying with lease run out | failed, not permanent)
//!  pending ───────────────────────────────────────────────▶ copying(owner, leaseUntil)
//!     ▲   release (deadline near, retryable error)            │  checkpoint (lease renewed)
//!     └───────────────────────────────────────────────────────┤
//!                                                             ├──▶ copied   (terminal)
//!                                                             └──▶ failed   (permanent: terminal;
//!                                                                  retries exhausted: claimable)
//! ```
//! Every write after the claim is conditional on `owner = me AND state = copying`, so a copier
//! whose lease was taken over can no longer change the record.

use super::parts::PartPlan;

/// One uploaded part. Parts are not stored in the copy state (a 6-hour recording has
/// thousands, and a DynamoDB item holds 400 KB): a resume lists them from the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub number: u32,
    pub etag: String,
    /// Base64 SHA-256 of the part as sent in `ChecksumSHA256` (`None` when a listing of the
    /// store did not return it).
    pub sha256: Option<String>,
    /// Byte offset of the part in the file.
    pub offset: u64,
    pub len: u64,
    /// The whole-file SHA-256 state after this part (serialized hasher); empty for listed parts.
    pub hash_state: Vec<u8>,
}

/// A part as the object store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
    pub sha256: Option<String>,
}

/// How far a copy got: parts `1..=parts` (bytes `0..bytes`) are uploaded, and the whole-file
/// hasher state after them, so a resume continues the digest without re-reading those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub parts: u32,
    pub bytes: u64,
    pub hash_state: Vec<u8>,
}

/// A multipart upload in progress, as persisted: constant size whatever the file size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadProgress {
    pub upload_id: String,
    pub key: String,
    /// Total length as the origin announced it, when known.
    pub total: Option<u64>,
    /// The origin's validator of the file the parts come from (a strong ETag, else
    /// Last-Modified; see [`super::ports::if_range_validator`]), sent as `If-Range` on a resume.
    /// `None`: the copy cannot be resumed safely and restarts from byte 0.
    pub validator: Option<String>,
    pub checkpoint: Option<Checkpoint>,
}

/// The parts a resume keeps: `1..=checkpoint.parts` as listed, each of its planned size and
/// contiguous, summing to `checkpoint.bytes`. `None` when the listing does not match (the
/// copy then restarts from byte 0 with a new upload).
pub fn resumable_prefix(
    listed: &[ListedPart],
    checkpoint: &Checkpoint,
    plan: &PartPlan,
) -> Option<Vec<PartRecord>> {
    let mut out = Vec::with_capacity(checkpoint.parts as usize);
    let mut offset = 0;
    for number in 1..=checkpoint.parts {
        let p = listed.iter().find(|p| p.number == number)?;
        if p.size != plan.size_of(number) {
            return None;
        }
        out.push(PartRecord {
            number,
            etag: p.etag.clone(),
            sha256: p.sha256.clone(),
            offset,
            len: p.size,
            hash_state: Vec::new(),
        });
        offset += p.size;
    }
    (offset == checkpoint.bytes).then_some(out)
}

/// The highest `n >= committed` such that parts `1..=n` are all done.
pub fn contiguous_after(committed: u32, done: &std::collections::BTreeMap<u32, PartRecord>) -> u32 {
    let mut n = committed;
    while done.contains_key(&(n + 1)) {
        n += 1;
    }
    n
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

/// The claim rule (mirrored by the DynamoDB condition in `aws::copies`). A job `owner`
/// already holds is taken again: its own claim, applied, whose answer was lost and retried.
pub fn claim_decision(stored: Option<&CopyStatus>, owner: &str, now_ms: i64) -> ClaimDecision {
    match stored {
        None | Some(CopyStatus::Pending) => ClaimDecision::Take,
        Some(CopyStatus::Copying { lease_until_ms, .. }) if *lease_until_ms < now_ms => {
            ClaimDecision::Take
        }
        Some(CopyStatus::Copying { owner: holder, .. }) if holder == owner => ClaimDecision::Take,
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
    /// What the file belongs to (stored beside the state; see [`crate::jobs::FileAbout`]).
    pub about: Option<Box<crate::jobs::FileAbout>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(number: u32, size: u64) -> ListedPart {
        ListedPart {
            number,
            etag: format!("e{number}"),
            size,
            sha256: None,
        }
    }

    #[test]
    fn claims_follow_the_state_machine() {
        let now = 1_000;
        assert_eq!(claim_decision(None, "me", now), ClaimDecision::Take);
        assert_eq!(
            claim_decision(Some(&CopyStatus::Pending), "me", now),
            ClaimDecision::Take
        );
        let live = CopyStatus::Copying {
            owner: "a".into(),
            lease_until_ms: now + 1,
        };
        assert_eq!(
            claim_decision(Some(&live), "me", now),
            ClaimDecision::Busy {
                lease_until_ms: now + 1
            }
        );
        let expired = CopyStatus::Copying {
            owner: "a".into(),
            lease_until_ms: now - 1,
        };
        assert_eq!(
            claim_decision(Some(&expired), "me", now),
            ClaimDecision::Take
        );
        // Our own live lease (our claim applied, its answer lost): ours again.
        assert_eq!(claim_decision(Some(&live), "a", now), ClaimDecision::Take);
        assert_eq!(
            claim_decision(Some(&CopyStatus::Copied), "me", now),
            ClaimDecision::AlreadyCopied
        );
        let perm = CopyStatus::Failed {
            permanent: true,
            reason: "origin answered 403".into(),
        };
        assert!(matches!(
            claim_decision(Some(&perm), "me", now),
            ClaimDecision::AlreadyFailed { .. }
        ));
        let exhausted = CopyStatus::Failed {
            permanent: false,
            reason: "retries exhausted".into(),
        };
        assert_eq!(
            claim_decision(Some(&exhausted), "me", now),
            ClaimDecision::Take
        );
    }

    #[test]
    fn resume_keeps_the_checkpointed_parts_when_the_listing_matches() {
        let plan = PartPlan::of_size(10);
        let cp = Checkpoint {
            parts: 2,
            bytes: 20,
            hash_state: vec![1],
        };
        let parts = vec![listed(3, 10), listed(1, 10), listed(2, 10)];
        let kept = resumable_prefix(&parts, &cp, &plan).expect("matches");
        assert_eq!(
            kept.iter()
                .map(|p| (p.number, p.offset))
                .collect::<Vec<_>>(),
            vec![(1, 0), (2, 10)]
        );
        // A missing part, a part of the wrong size, or a byte count that disagrees: restart.
        assert!(resumable_prefix(&[listed(1, 10)], &cp, &plan).is_none());
        assert!(resumable_prefix(&[listed(1, 10), listed(2, 9)], &cp, &plan).is_none());
        let wrong = Checkpoint { bytes: 21, ..cp };
        assert!(resumable_prefix(&parts, &wrong, &plan).is_none());
    }

    #[test]
    fn the_checkpoint_advances_only_over_contiguous_parts() {
        let rec = |number| PartRecord {
            number,
            etag: String::new(),
            sha256: None,
            offset: 0,
            len: 0,
            hash_state: Vec::new(),
        };
        let mut done = std::collections::BTreeMap::new();
        done.insert(2, rec(2));
        assert_eq!(contiguous_after(0, &done), 0);
        done.insert(1, rec(1));
        done.insert(4, rec(4));
        assert_eq!(contiguous_after(0, &done), 2);
        done.insert(3, rec(3));
        assert_eq!(contiguous_after(2, &done), 4);
    }
}
