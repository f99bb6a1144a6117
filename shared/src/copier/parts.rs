//! Part-size planning for S3 multipart uploads.
//!
//! S3 limits: at most 10,000 parts; every part but the last at least 5 MiB; at most 5 GiB a
//! part. Memory is bounded by `part size × (parts in flight + 1)`, so every part has the
//! configured size, whatever the origin announces: a Content-Length is the origin's claim, and
//! sizing buffers from it would let a hostile origin exhaust the copier's memory. A file larger
//! than 10,000 configured parts ([`PartPlan::max_file`]; 156 GiB with the template's 16 MiB,
//! far beyond a 6-hour recording) is refused rather than read into bigger parts.
//!
//! The plan depends only on the configured size, so a resumed copy recomputes exactly the same
//! part boundaries.

pub const MIB: u64 = 1024 * 1024;
/// S3's minimum size of every part but the last.
pub const S3_MIN_PART: u64 = 5 * MIB;
pub const S3_MAX_PART: u64 = 5 * 1024 * MIB;
pub const S3_MAX_PARTS: u64 = 10_000;

/// Part sizes for one file: every part this size except the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan(u64);

impl PartPlan {
    /// `part_size` is the configured size, kept within S3's limits.
    pub fn new(part_size: u64) -> Self {
        Self(part_size.clamp(S3_MIN_PART, S3_MAX_PART))
    }

    /// A plan of exactly `size` bytes a part (tests of the resume rules use tiny parts).
    pub const fn of_size(size: u64) -> Self {
        Self(size)
    }

    /// Size of part `number` (1-based).
    pub fn size_of(&self, _number: u32) -> u64 {
        self.0
    }

    /// The largest file this plan can carry: 10,000 parts.
    pub fn max_file(&self) -> u64 {
        self.0 * S3_MAX_PARTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_has_the_configured_size_within_s3_limits() {
        assert_eq!(PartPlan::new(8 * MIB).size_of(1), 8 * MIB);
        assert_eq!(PartPlan::new(8 * MIB).size_of(9_999), 8 * MIB);
        // Below the S3 minimum is raised to it, above the maximum lowered.
        assert_eq!(PartPlan::new(MIB).size_of(1), S3_MIN_PART);
        assert_eq!(PartPlan::new(u64::MAX).size_of(1), S3_MAX_PART);
    }

    #[test]
    fn a_six_hour_recording_fits_and_bigger_files_are_beyond_the_limit() {
        // 6 h at 8 Mbit/s is about 21 GiB.
        let plan = PartPlan::new(16 * MIB);
        assert!(plan.max_file() >= 21 * 1024 * MIB);
        assert_eq!(plan.max_file(), 16 * MIB * 10_000);
        assert_eq!(PartPlan::new(5 * MIB).max_file(), 50_000 * MIB);
    }
}
