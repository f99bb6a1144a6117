//! Any body: the JaaS envelope parses or is refused, and a parsed event plans its job (or says
//! why not) without panicking or overflowing, whatever the numbers in it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meeting_hooks::jaas::model::JaasEvent;
use meeting_hooks::jaas::plan_job;
use meeting_hooks::jobs::MAX_TIME_MS;

fuzz_target!(|input: (&[u8], i64)| {
    let (body, received) = input;
    let Ok(event) = JaasEvent::parse(body) else {
        return;
    };
    if let Ok(Some(job)) = plan_job(&event, "k", received) {
        assert!((0..=MAX_TIME_MS).contains(&job.link_expires_at));
        // The job message always encodes (it is what goes on the queue).
        let text = serde_json::to_string(&job).expect("encodes");
        assert!(!text.is_empty());
    }
});
