//! Any link: the source policy admits only https URLs whose host is listed (never an
//! internal address), and the host a log line names is the host the request goes to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meeting_hooks::copier::policy::{SourcePolicy, check_ip};
use meeting_hooks::jobs::Link;

fuzz_target!(|input: (&str, &str)| {
    let (raw, relative) = input;
    let policy = SourcePolicy::production_default();
    let redacted = Link::new(raw).redacted();
    if let Ok(url) = policy.check(raw, None) {
        assert_eq!(url.scheme(), "https");
        assert!(url.username().is_empty() && url.password().is_none());
        let host = url.host_str().expect("a host");
        assert!(policy.patterns().iter().any(|p| p.matches(host)));
        assert!(redacted.contains(host), "{redacted} vs {host}");
        // A redirect target is judged like a link, relative to where it came from.
        if let Ok(next) = policy.check(relative, Some(&url)) {
            assert_eq!(next.scheme(), "https");
            if let Some(url::Host::Ipv4(ip)) = next.host() {
                assert!(check_ip(ip.into()).is_ok());
            }
        }
    }
});
