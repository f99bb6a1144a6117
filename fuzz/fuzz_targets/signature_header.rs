//! The `X-Jaas-Signature` header: any text parses or is refused, and verification of any
//! header against any body, at any clock, never panics and accepts only a real signature.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use meeting_hooks::jaas::signature::{
    JaasVerifier, SIGNATURE_HEADER, SignatureHeader, signature_header,
};

fuzz_target!(|input: (&str, &[u8], i64)| {
    let (raw, body, now) = input;
    let _ = SignatureHeader::parse(raw);
    let verifier = JaasVerifier::new(
        vec![secrecy::SecretString::from("whsec_fuzz".to_owned())],
        Duration::from_secs(300),
        None,
    );
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(raw) {
        headers.insert(SIGNATURE_HEADER, v);
    }
    if verifier.verify(&headers, body, now).is_ok() {
        // Only a header carrying the real signature of this body can pass.
        let parsed = SignatureHeader::parse(raw).expect("a verified header parses");
        let real = signature_header("whsec_fuzz", parsed.timestamp, body);
        let real = SignatureHeader::parse(&real).expect("ours parses");
        assert!(parsed.v1.iter().any(|s| real.v1.contains(s)));
    }
});
