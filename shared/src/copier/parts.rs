//! Part-size planning for S3 multipart uploads.
//!
//! S3 limits: at most 10,000 parts; every part but the last at least 5 MiB; at most 5 GiB a
//! part. Memory is bounded by `part size × (parts in flight + 1)`, so the part size stays at
//! the configured minimum unless the file needs bigger parts to fit in 10,000.
//!
//! The plan is a pure function of (configured size, total length), so a resumed copy
//! recomputes exactly the same part boundaries. When the origin sends no length, the size
//! doubles every 1,000 parts (8 MiB parts cover 8 GiB in the first 1,000 parts and more than
//! S3's 5 TiB object limit in 10,000), which keeps small unknown-length files at the minimum.

pub const MIB: u64 = 1024 * 1024;
/// S3's minimum size of every part but the last.
pub const S3_MIN_PART: u64 = 5 * MIB;
pub const S3_MAX_PART: u64 = 5 * 1024 * MIB;
pub const S3_MAX_PARTS: u64 = 10_000;

/// Part sizes for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartPlan {
    /// Known length: every part this size except the last.
    Fixed(u64),
    /// Unknown length: `base` doubling every 1,000 parts.
    Growing { base: u64 },
}

impl PartPlan {
    /// `min_part` is the configured size (already at least [`S3_MIN_PART`]).
    pub fn new(min_part: u64, total: Option<u64>) -> Self {
        let min_part = min_part.clamp(S3_MIN_PART, S3_MAX_PART);
        match total {
            Some(total) => {
                let needed = total.div_ceil(S3_MAX_PARTS);
                // Round up to whole MiB so part boundaries are readable in logs and state.
                let needed = needed.div_ceil(MIB) * MIB;
                Self::Fixed(min_part.max(needed).min(S3_MAX_PART))
            }
            None => Self::Growing { base: min_part },
        }
    }

    /// Size of part `number` (1-based).
    pub fn size_of(&self, number: u32) -> u64 {
        match *self {
            Self::Fixed(size) => size,
            Self::Growing { base } => {
                let doublings = (number.saturating_sub(1) / 1000).min(10);
                (base << doublings).min(S3_MAX_PART)
            }
        }
    }

    /// Largest part this plan can produce in the first `parts` parts (for memory estimates).
    pub fn largest(&self) -> u64 {
        self.size_of(S3_MAX_PARTS as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_medium_files_use_the_configured_size() {
        assert_eq!(PartPlan::new(8 * MIB, Some(0)), PartPlan::Fixed(8 * MIB));
        assert_eq!(
            PartPlan::new(8 * MIB, Some(50 * 1024 * MIB)),
            PartPlan::Fixed(8 * MIB)
        );
        // Below the S3 minimum is raised to it.
        assert_eq!(PartPlan::new(MIB, Some(100)), PartPlan::Fixed(S3_MIN_PART));
    }

    #[test]
    fn a_six_hour_recording_fits_in_ten_thousand_parts() {
        // 6 h at 8 Mbit/s is about 21 GiB; test a much larger 200 GiB file too.
        for total in [21 * 1024 * MIB, 200 * 1024 * MIB, 5 * 1024 * 1024 * MIB] {
            let plan = PartPlan::new(8 * MIB, Some(total));
            let size = plan.size_of(1);
            assert!(total.div_ceil(size) <= S3_MAX_PARTS, "{total}");
            assert!(size >= 8 * MIB && size.is_multiple_of(MIB));
        }
        assert_eq!(
            PartPlan::new(8 * MIB, Some(200 * 1024 * MIB)).size_of(1),
            21 * MIB
        );
    }

    #[test]
    fn unknown_length_grows_every_thousand_parts() {
        let plan = PartPlan::new(8 * MIB, None);
        assert_eq!(plan.size_of(1), 8 * MIB);
        assert_eq!(plan.size_of(1000), 8 * MIB);
        assert_eq!(plan.size_of(1001), 16 * MIB);
        let capacity: u64 = (1..=10_000).map(|n| plan.size_of(n)).sum();
        assert!(
            capacity > 5 * 1024 * 1024 * MIB,
            "covers S3's 5 TiB object limit"
        );
        assert!(plan.largest() <= S3_MAX_PART);
    }
}
