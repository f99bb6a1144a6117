//! Any settings body: parsed or refused with a reason; what parses round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meeting_hooks::settings::model::Settings;

fuzz_target!(|text: &str| {
    if let Ok(settings) = Settings::from_json_str(text) {
        let again = Settings::from_json(&settings.to_json()).expect("our own output parses");
        assert_eq!(again, settings);
        let _ = settings.to_json_masked();
    }
});
