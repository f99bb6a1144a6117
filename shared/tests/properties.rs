//! Property tests of the pure parts: the signature header and its verification, the JaaS
//! payload parser and job planning, settings bodies, the source URL policy and
//! `Content-Range`. Each property holds for every input proptest generates (256 cases per
//! property in the normal suite; `PROPTEST_CASES=100000 cargo test -p meeting-hooks --test
//! properties` for a longer run). The coverage-guided fuzz targets (`./dev fuzz`) drive the same
//! entry points with arbitrary bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use meeting_hooks::copier::policy::{HostPattern, SourcePolicy, check_ip};
use meeting_hooks::copier::ports::ContentRange;
use meeting_hooks::jaas::model::JaasEvent;
use meeting_hooks::jaas::plan_job;
use meeting_hooks::jaas::signature::{
    JaasVerifier, SIGNATURE_HEADER, SignatureError, SignatureHeader, signature_header,
};
use meeting_hooks::jobs::{Link, MAX_TIME_MS};
use meeting_hooks::settings::model::Settings;
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::{Value, json};

/// Any JSON value, nested a few levels: what a payload field may turn out to be.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn verifier(secret: &str) -> JaasVerifier {
    JaasVerifier::new(
        vec![SecretString::from(secret.to_owned())],
        Duration::from_secs(300),
        None,
    )
}

fn signed(header: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(header) {
        h.insert(SIGNATURE_HEADER, v);
    }
    h
}

const FILE_EVENTS: [&str; 4] = [
    "RECORDING_UPLOADED",
    "TRANSCRIPTION_UPLOADED",
    "CHAT_UPLOADED",
    "VIDEO_SEGMENT_UPLOADED",
];

proptest! {
    // --- signature header -------------------------------------------------------------

    #[test]
    fn signature_header_parsing_never_panics(raw in ".{0,200}") {
        let _ = SignatureHeader::parse(&raw);
    }

    #[test]
    fn a_body_signed_with_the_secret_verifies_and_any_change_does_not(
        secret in "[ -~]{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..512),
        t in 1_600_000_000i64..2_000_000_000,
        skew in -300i64..=300,
        flip in any::<prop::sample::Index>(),
    ) {
        let v = verifier(&secret);
        let header = signature_header(&secret, t, &body);
        prop_assert!(v.verify(&signed(&header), &body, t + skew).is_ok());
        if !body.is_empty() {
            let mut changed = body.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            prop_assert_eq!(
                v.verify(&signed(&header), &changed, t).unwrap_err(),
                SignatureError::Mismatch
            );
        }
        let other = signature_header(&format!("{secret}x"), t, &body);
        prop_assert_eq!(
            v.verify(&signed(&other), &body, t).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn any_timestamp_and_clock_are_judged_without_overflow(
        t in any::<i64>(),
        now in any::<i64>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let v = verifier("s");
        let result = v.verify(&signed(&signature_header("s", t, &body)), &body, now);
        prop_assert_eq!(result.is_ok(), now.abs_diff(t) <= 300);
    }

    // --- JaaS payloads and job planning -------------------------------------------------

    #[test]
    fn payload_parsing_never_panics(body in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(event) = JaasEvent::parse(&body) {
            let _ = plan_job(&event, "k", 0);
        }
    }

    #[test]
    fn any_json_envelope_parses_or_is_refused_without_panicking(
        value in any_json(),
        received in any::<i64>(),
    ) {
        let body = serde_json::to_vec(&value).expect("serialisable");
        if let Ok(event) = JaasEvent::parse(&body) {
            let _ = plan_job(&event, "k", received);
        }
    }

    /// The first point: whatever shape the other `data` fields have, a file event
    /// with a link in its place gets a job for exactly that link, and numbers never overflow.
    #[test]
    fn a_file_event_with_a_link_always_gets_its_job_whatever_its_siblings(
        kind in prop::sample::select(FILE_EVENTS.to_vec()),
        siblings in prop::collection::btree_map(
            prop::sample::select(vec![
                "participants", "durationSec", "recordingSessionId", "startTimestamp",
                "endTimestamp", "linkExpiration", "initiatorId", "fileName", "fileSize", "x",
            ]),
            any_json(),
            0..6,
        ),
        timestamp in prop_oneof![any::<i64>().prop_map(|t| json!(t)), any_json()],
        received in any::<i64>(),
        path in "[a-z0-9/]{1,30}",
    ) {
        let link = format!("https://8x8.vc/{path}?X-Sig=s");
        let mut data: serde_json::Map<String, Value> = siblings.into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        data.insert("preAuthenticatedLink".into(), json!(link));
        let body = json!({
            "eventType": kind,
            "idempotencyKey": "k",
            "sessionId": "s",
            "timestamp": timestamp,
            "fqn": "app/room",
            "data": data,
        });
        let event = JaasEvent::parse(&serde_json::to_vec(&body).expect("json")).expect("parses");
        let job = plan_job(&event, "k", received)
            .expect("a link is present")
            .expect("a file event plans a job");
        prop_assert_eq!(job.url().expect("url").expose(), link.as_str());
        prop_assert!((0..=MAX_TIME_MS).contains(&job.link_expires_at));
        // A segment's duration is computed (end - start): never negative, never wrapped.
        if kind == "VIDEO_SEGMENT_UPLOADED" && let Some(d) = job.meta.duration_sec {
            prop_assert!(d >= 0);
        }
    }

    // --- settings bodies ---------------------------------------------------------------

    #[test]
    fn settings_bodies_parse_or_are_refused_and_round_trip(value in any_json()) {
        let _ = Settings::from_json_str(&value.to_string());
        if let Ok(settings) = Settings::from_json(&value) {
            let again = Settings::from_json(&settings.to_json()).expect("our own output parses");
            prop_assert_eq!(again, settings);
        }
    }

    #[test]
    fn settings_of_known_fields_with_any_values_never_panic(
        fields in prop::collection::btree_map(
            prop::sample::select(vec![
                "lobbyEnabled", "passcode", "maxOccupants", "visitorsEnabled",
                "hideDisplayName", "autoAudioRecording", "autoVideoRecording",
                "autoTranscriptions", "outboundPhoneNo", "visitorsLive", "lobbyType",
                "participantsSoftLimit",
            ]),
            any_json(),
            0..6,
        ),
    ) {
        let value = Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        if let Ok(settings) = Settings::from_json(&value) {
            prop_assert!(settings.validate().is_ok());
            let masked = settings.to_json_masked();
            if let Some(Value::String(p)) = value.get("passcode") && !p.is_empty() {
                prop_assert_eq!(masked.get("passcode"), Some(&json!("****")));
            }
        }
    }

    // --- URL policy ---------------------------------------------------------------------

    #[test]
    fn the_policy_never_panics_and_what_it_admits_is_listed_https(raw in ".{0,120}") {
        let policy = SourcePolicy::production_default();
        if let Ok(url) = policy.check(&raw, None) {
            prop_assert_eq!(url.scheme(), "https");
            let host = url.host_str().expect("a host");
            prop_assert!(policy.patterns().iter().any(|p| p.matches(host)), "{}", host);
            // The host logged is the host requested.
            prop_assert!(Link::new(raw.as_str()).redacted().contains(host));
        }
    }

    #[test]
    fn built_urls_are_judged_by_the_host_the_parser_sees(
        user in prop::option::of("[a-z]{1,6}"),
        host in prop::sample::select(vec![
            "8x8.vc", "evil.example", "bucket.s3.amazonaws.com", "127.0.0.1", "[::1]",
            "169.254.169.254", "10.0.0.1", "[64:ff9b:1::1]",
        ]),
        sep in prop::sample::select(vec!["/", "\\", "@", "#", "?", "%2F", ""]),
        tail in "[a-z0-9./@:]{0,20}",
    ) {
        let raw = match &user {
            Some(u) => format!("https://{u}@{host}{sep}{tail}"),
            None => format!("https://{host}{sep}{tail}"),
        };
        let policy = SourcePolicy::production_default();
        if let Ok(url) = policy.check(&raw, None) {
            prop_assert!(url.username().is_empty() && url.password().is_none());
            let seen = url.host_str().expect("a host");
            prop_assert!(policy.patterns().iter().any(|p| p.matches(seen)), "{}", seen);
        }
    }

    #[test]
    fn internal_addresses_are_refused_even_when_listed(
        ip in prop_oneof![
            (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| IpAddr::V4(Ipv4Addr::new(10, a, b, c))),
            (16u8..32, any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| IpAddr::V4(Ipv4Addr::new(172, a, b, c))),
            (any::<u8>(), any::<u8>()).prop_map(|(b, c)| IpAddr::V4(Ipv4Addr::new(192, 168, b, c))),
            (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| IpAddr::V4(Ipv4Addr::new(127, a, b, c))),
            (any::<u8>(), any::<u8>()).prop_map(|(b, c)| IpAddr::V4(Ipv4Addr::new(169, 254, b, c))),
            any::<u16>().prop_map(|x| IpAddr::V6(Ipv6Addr::new(0xfd00, x, 0, 0, 0, 0, 0, 1))),
            any::<u16>().prop_map(|x| IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, x, 1))),
            (any::<u8>(), any::<u8>()).prop_map(|(b, c)| IpAddr::V6(Ipv4Addr::new(10, 0, b, c).to_ipv6_mapped())),
            any::<u16>().prop_map(|x| IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, x, 1))),
        ],
    ) {
        prop_assert!(check_ip(ip).is_err(), "{ip} admitted");
        let literal = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        // An IPv4 address can be listed as a pattern; patterns cannot spell IPv6 addresses.
        let listed = match ip {
            IpAddr::V4(v4) => SourcePolicy::new(
                vec![HostPattern::parse(&v4.to_string()).expect("an address is a pattern")],
                false,
            ),
            IpAddr::V6(_) => SourcePolicy::production_default(),
        };
        let url = format!("https://{literal}/rec.mp4");
        prop_assert!(listed.check(&url, None).is_err());
    }

    // --- Content-Range --------------------------------------------------------------------

    #[test]
    fn content_range_parsing_never_panics_and_what_it_accepts_is_consistent(raw in ".{0,60}") {
        if let Some(r) = ContentRange::parse(&raw) {
            prop_assert!(r.start <= r.end);
            prop_assert!(r.total.is_none_or(|t| r.end < t));
        }
    }

    #[test]
    fn content_ranges_round_trip(
        start in any::<u64>(),
        len in any::<u64>(),
        extra in any::<u64>(),
        star in any::<bool>(),
    ) {
        let end = start.saturating_add(len);
        let total = end.checked_add(1).map(|t| t.saturating_add(extra));
        let text = match (star, total) {
            (false, Some(t)) => format!("bytes {start}-{end}/{t}"),
            _ => format!("bytes {start}-{end}/*"),
        };
        let parsed = ContentRange::parse(&text).expect("a well-formed range parses");
        prop_assert_eq!((parsed.start, parsed.end), (start, end));
        prop_assert_eq!(parsed.total, if star { None } else { total });
        // An end before the start, or at or past the total, is refused.
        if start > 0 {
            let backwards = format!("bytes {start}-{}/*", start - 1);
            prop_assert!(ContentRange::parse(&backwards).is_none());
        }
        let at_total = format!("bytes {start}-{end}/{end}");
        prop_assert!(ContentRange::parse(&at_total).is_none());
    }
}
