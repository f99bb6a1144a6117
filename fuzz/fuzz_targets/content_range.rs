//! Any `Content-Range` value: parsed only when it is a consistent byte range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meeting_hooks::copier::ports::ContentRange;

fuzz_target!(|raw: &str| {
    if let Some(r) = ContentRange::parse(raw) {
        assert!(r.start <= r.end);
        assert!(r.total.is_none_or(|t| r.end < t));
        let total = r.total.map_or("*".to_owned(), |t| t.to_string());
        let again = ContentRange::parse(&format!("bytes {}-{}/{total}", r.start, r.end));
        assert_eq!(again, Some(r));
    }
});
