//! Minting checked by decoding with jsonwebtoken's own verifier and the public key, against the
//! shape PROVIDERS.md documents.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use proptest::prelude::*;
use secrecy::ExposeSecret;

use super::*;

const APP: &str = "vpaas-magic-cookie-0123456789abcdef0123456789abcdef";
const KEY_ID: &str = "4f4910";

/// Key generation is slow in debug builds: one pair for all tests, one more as "the wrong key".
fn pair() -> &'static KeyPairPem {
    static PAIR: OnceLock<KeyPairPem> = OnceLock::new();
    PAIR.get_or_init(|| generate_local_key_pair().unwrap())
}

fn other_pair() -> &'static KeyPairPem {
    static PAIR: OnceLock<KeyPairPem> = OnceLock::new();
    PAIR.get_or_init(|| generate_local_key_pair().unwrap())
}

fn key() -> SigningKey {
    SigningKey::new(APP, KEY_ID, pair().private_pem.expose_secret()).unwrap()
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap()
}

fn request(room: &str) -> TokenRequest {
    TokenRequest {
        room: Some(room.to_owned()),
        user: UserRequest {
            id: "user-42".into(),
            name: "Ana Lima".into(),
            ..UserRequest::default()
        },
        ..TokenRequest::default()
    }
}

fn moderator_request(room: &str, features: &[Feature]) -> TokenRequest {
    let mut r = request(room);
    r.user.moderator = true;
    for f in features {
        r.features.set(*f, true);
    }
    r
}

/// jsonwebtoken's decoder, as a JaaS-like verifier would configure it (system clock).
fn decode_with(public_pem: &str, token: &str) -> jsonwebtoken::errors::Result<Value> {
    let key = DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["jitsi"]);
    v.set_issuer(&["chat"]);
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    v.validate_nbf = true;
    v.leeway = 0;
    jsonwebtoken::decode::<Value>(token, &key, &v).map(|d| d.claims)
}

fn all_features(value: &str) -> Value {
    Feature::ALL
        .into_iter()
        .map(|f| (f.claim_name().to_owned(), Value::from(value)))
        .collect::<Map<_, _>>()
        .into()
}

#[test]
fn a_minted_token_verifies_and_has_exactly_the_documented_shape() {
    let now = now();
    let mut req = moderator_request("Daily-Standup", &[Feature::Recording]);
    req.user.email = Some("ana@example.com".into());
    req.user.avatar = Some("https://example.com/ana.png".into());
    let minted = mint(&key(), &req, now).unwrap();

    let header = jsonwebtoken::decode_header(&minted.token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(
        header.kid.as_deref(),
        Some(format!("{APP}/{KEY_ID}").as_str())
    );
    // The raw header carries nothing else.
    let raw_header = minted.token.split('.').next().unwrap();
    let raw_header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw_header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(raw_header, minted.header);
    assert_eq!(
        raw_header,
        json!({"alg": "RS256", "typ": "JWT", "kid": format!("{APP}/{KEY_ID}")})
    );

    let claims = decode_with(&pair().public_pem, &minted.token).unwrap();
    let mut features = all_features("false");
    features["recording"] = "true".into();
    let expected = json!({
        "aud": "jitsi",
        "iss": "chat",
        "sub": APP,
        "room": "Daily-Standup",
        "exp": now + 7200,
        "nbf": now - 10,
        "context": {
            "user": {
                "id": "user-42",
                "name": "Ana Lima",
                "email": "ana@example.com",
                "avatar": "https://example.com/ana.png",
                "moderator": "true",
                "hidden-from-recorder": false,
            },
            "features": features,
        },
    });
    assert_eq!(claims, expected);
    assert_eq!(minted.claims, expected);
    assert_eq!(minted.expires_at, now + 7200);
    assert_eq!(minted.not_before, now - 10);
}

#[test]
fn every_documented_feature_is_written_as_a_string() {
    let names: BTreeSet<&str> = Feature::ALL.iter().map(|f| f.claim_name()).collect();
    let documented: BTreeSet<&str> = [
        "livestreaming",
        "recording",
        "transcription",
        "sip-inbound-call",
        "sip-outbound-call",
        "inbound-call",
        "outbound-call",
        "file-upload",
        "list-visitors",
        "send-groupchat",
        "create-polls",
    ]
    .into();
    assert_eq!(names, documented);

    let minted = mint(&key(), &request("r"), now()).unwrap();
    assert_eq!(minted.claims["context"]["features"], all_features("false"));
    assert_eq!(minted.claims["context"]["user"]["moderator"], "false");
}

#[test]
fn a_moderator_gets_exactly_the_features_asked_for() {
    let asked = [
        Feature::Transcription,
        Feature::SipOutboundCall,
        Feature::CreatePolls,
    ];
    let minted = mint(&key(), &moderator_request("r", &asked), now()).unwrap();
    let claims = decode_with(&pair().public_pem, &minted.token).unwrap();
    for f in Feature::ALL {
        let want = if asked.contains(&f) { "true" } else { "false" };
        assert_eq!(claims["context"]["features"][f.claim_name()], want, "{f}");
    }
    assert_eq!(claims["context"]["user"]["moderator"], "true");

    // A moderator without features is fine too.
    let minted = mint(&key(), &moderator_request("r", &[]), now()).unwrap();
    assert_eq!(minted.claims["context"]["features"], all_features("false"));
}

#[test]
fn features_without_moderator_are_refused() {
    let mut req = request("r");
    req.features.recording = true;
    req.features.outbound_call = true;
    let err = mint(&key(), &req, now()).unwrap_err();
    match &err {
        TokenError::FeaturesNeedModerator { features } => {
            assert_eq!(features, &["recording", "outboundCall"]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.is_request_error());
    assert_eq!(err.code(), "features_need_moderator");
    assert!(err.to_string().contains("recording, outboundCall"), "{err}");
}

#[test]
fn lua_magic_characters_are_escaped() {
    assert_eq!(lua_escape("team-a.b"), "team%-a%.b");
    assert_eq!(lua_escape("^$()%.[]*+-?"), "%^%$%(%)%%%.%[%]%*%+%-%?");
    assert_eq!(lua_escape("plain_room 7"), "plain_room 7");
    assert_eq!(prefix_pattern("Team-A."), "^team%-a%..*");
}

#[test]
fn a_room_prefix_becomes_an_anchored_pattern_with_regex_on() {
    let mut req = request("unused");
    req.room = None;
    req.room_prefix = Some("Acme-Sales.".into());
    let minted = mint(&key(), &req, now()).unwrap();
    let claims = decode_with(&pair().public_pem, &minted.token).unwrap();
    assert_eq!(claims["room"], "^acme%-sales%..*");
    assert_eq!(claims["context"]["room"], json!({"regex": true}));

    // An exact room and `*` are no patterns.
    for room in ["acme-sales.q3", "*"] {
        let minted = mint(&key(), &request(room), now()).unwrap();
        assert_eq!(minted.claims["room"], room);
        assert!(minted.claims["context"].get("room").is_none(), "{room}");
    }
    assert_eq!(request("*").room_scope().unwrap(), RoomScope::Any);
}

#[test]
fn exactly_one_of_room_and_room_prefix() {
    let mut both = request("a");
    both.room_prefix = Some("b".into());
    let mut neither = request("a");
    neither.room = None;
    for req in [both, neither] {
        assert!(matches!(
            mint(&key(), &req, now()),
            Err(TokenError::RoomChoice)
        ));
    }
}

#[test]
fn bad_rooms_are_refused_with_the_field_named() {
    let long = "r".repeat(MAX_ROOM_LEN + 1);
    let cases = [
        ("", "field_empty"),
        ("  ", "field_empty"),
        ("a\nb", "field_control_characters"),
        ("app/room", "field_invalid"),
    ];
    for (room, code) in cases {
        let err = mint(&key(), &request(room), now()).unwrap_err();
        assert_eq!(err.code(), code, "{room:?}: {err:?}");
        assert!(err.to_string().starts_with("room "), "{err}");
        assert!(err.is_request_error());
    }
    let err = mint(&key(), &request(&long), now()).unwrap_err();
    assert!(matches!(
        err,
        TokenError::TooLong {
            field: "room",
            max: 512
        }
    ));
    let fits = "r".repeat(MAX_ROOM_LEN);
    mint(&key(), &request(&fits), now()).unwrap();

    let mut req = request("x");
    req.room = None;
    req.room_prefix = Some("a\u{7}".into());
    let err = mint(&key(), &req, now()).unwrap_err();
    assert!(matches!(
        err,
        TokenError::ControlCharacters {
            field: "roomPrefix"
        }
    ));
}

#[test]
fn bad_user_fields_are_refused_without_echoing_them() {
    let check = |edit: fn(&mut UserRequest), field: &str| {
        let mut req = request("r");
        edit(&mut req.user);
        let err = mint(&key(), &req, now()).unwrap_err();
        assert!(err.to_string().starts_with(field), "{field}: {err}");
        assert!(err.is_request_error());
    };
    check(|u| u.id = String::new(), "user.id");
    check(|u| u.name = " ".into(), "user.name");
    check(|u| u.name = "n".repeat(MAX_TEXT_LEN + 1), "user.name");
    check(|u| u.name = "bell\u{7}".into(), "user.name");
    check(|u| u.email = Some("not-an-address".into()), "user.email");
    check(|u| u.email = Some("a b@example.com".into()), "user.email");
    check(
        |u| u.avatar = Some("javascript:alert(1)".into()),
        "user.avatar",
    );
    check(|u| u.avatar = Some("/relative.png".into()), "user.avatar");

    let mut req = request("r");
    req.user.email = Some("secret-looking@example.com".into());
    req.user.name = "x".repeat(MAX_TEXT_LEN + 1);
    let err = mint(&key(), &req, now()).unwrap_err();
    assert!(!err.to_string().contains("xxxx"), "{err}");
}

#[test]
fn hidden_from_recorder_is_carried() {
    let mut req = request("r");
    req.user.hidden_from_recorder = true;
    let minted = mint(&key(), &req, now()).unwrap();
    assert_eq!(
        minted.claims["context"]["user"]["hidden-from-recorder"],
        true
    );
}

#[test]
fn ttl_is_bounded_and_times_are_checked() {
    let now = 1_700_000_000;
    let with_ttl = |ttl: Option<u64>| {
        let mut req = request("r");
        req.ttl_seconds = ttl;
        mint(&key(), &req, now)
    };
    let m = with_ttl(None).unwrap();
    assert_eq!((m.not_before, m.expires_at), (now - 10, now + 7200));
    assert_eq!(with_ttl(Some(60)).unwrap().expires_at, now + 60);
    assert_eq!(with_ttl(Some(86_400)).unwrap().expires_at, now + 86_400);
    for bad in [0, 59, 86_401, u64::MAX] {
        let err = with_ttl(Some(bad)).unwrap_err();
        assert!(matches!(err, TokenError::Ttl(t) if t == bad), "{bad}");
        assert_eq!(err.code(), "ttl_out_of_range");
    }

    // A clock that cannot carry a token's times is the service's fault, never a panic.
    for clock in [i64::MAX - 100, i64::MIN, 5] {
        let err = mint(&key(), &request("r"), clock).unwrap_err();
        assert!(matches!(err, TokenError::Clock(c) if c == clock), "{clock}");
        assert!(!err.is_request_error());
    }
}

#[test]
fn verify_checks_signature_audience_and_times() {
    let now = now();
    let minted = mint(&key(), &request("r"), now).unwrap();
    let public = &pair().public_pem;

    let ok = verify(&minted.token, public, now).unwrap();
    assert_eq!(ok.kid.as_deref(), Some(key().kid()));
    assert_eq!(ok.claims, minted.claims);
    verify(&minted.token, public, minted.not_before).unwrap();
    assert!(matches!(
        verify(&minted.token, public, minted.not_before - 1),
        Err(VerifyError::NotYetValid)
    ));
    assert!(matches!(
        verify(&minted.token, public, minted.expires_at),
        Err(VerifyError::Expired)
    ));
    assert!(verify(&minted.token, public, minted.expires_at - 1).is_ok());
}

#[test]
fn a_wrong_key_or_a_changed_token_fails_verification() {
    let minted = mint(&key(), &request("r"), now()).unwrap();
    let err = decode_with(&other_pair().public_pem, &minted.token).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidSignature);
    assert!(matches!(
        verify(&minted.token, &other_pair().public_pem, now()),
        Err(VerifyError::Refused(_))
    ));

    // Another room spliced into the signed claims.
    let mut parts: Vec<String> = minted.token.split('.').map(str::to_owned).collect();
    let mut claims = minted.claims.clone();
    claims["room"] = "*".into();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).unwrap());
    let forged = parts.join(".");
    let err = decode_with(&pair().public_pem, &forged).unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidSignature);
}

#[test]
fn debug_output_never_shows_the_key_or_the_token() {
    let pem = pair().private_pem.expose_secret();
    let body_line = pem.lines().nth(3).unwrap();
    let key = key();
    let shown = format!("{key:?}");
    assert!(!shown.contains(body_line), "{shown}");
    assert!(
        shown.contains("[redacted]") && shown.contains(key.kid()),
        "{shown}"
    );
    assert_eq!(key.bits(), 2048);

    let minted = mint(&key, &request("r"), now()).unwrap();
    let shown = format!("{minted:?}");
    let signature = minted.token.rsplit('.').next().unwrap();
    assert!(!shown.contains(signature), "{shown}");
    assert!(!shown.contains(&minted.token), "{shown}");
    assert!(!format!("{:?}", pair()).contains(body_line));
}

#[test]
fn key_ids_are_checked_and_the_kid_is_app_slash_key() {
    let pem = pair().private_pem.expose_secret();
    let full = SigningKey::new(APP, &format!("{APP}/{KEY_ID}"), pem).unwrap();
    assert_eq!(full.kid(), format!("{APP}/{KEY_ID}"));
    assert_eq!(full.app_id(), APP);

    assert!(matches!(
        SigningKey::new("", KEY_ID, pem),
        Err(KeyError::AppId(_))
    ));
    assert!(matches!(
        SigningKey::new("app id", KEY_ID, pem),
        Err(KeyError::AppId(_))
    ));
    assert!(matches!(
        SigningKey::new(APP, "", pem),
        Err(KeyError::KeyId(_))
    ));
    assert!(matches!(
        SigningKey::new(APP, &format!("{APP}/"), pem),
        Err(KeyError::KeyId(_))
    ));
    assert!(matches!(
        SigningKey::new(APP, "a/b/c", pem),
        Err(KeyError::KidAppMismatch { .. })
    ));
    assert!(matches!(
        SigningKey::new(APP, "vpaas-magic-cookie-other/4f4910", pem),
        Err(KeyError::KidAppMismatch { .. })
    ));
    assert!(matches!(
        SigningKey::new(APP, &"k".repeat(MAX_ID_LEN + 1), pem),
        Err(KeyError::KeyId(_))
    ));
}

#[test]
fn unusable_private_keys_get_a_clear_error_that_does_not_quote_them() {
    let public = &pair().public_pem;
    let err = SigningKey::new(APP, KEY_ID, public).unwrap_err();
    assert!(matches!(err, KeyError::PublicKeyGiven), "{err:?}");

    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(matches!(
        SigningKey::new(APP, KEY_ID, encrypted),
        Err(KeyError::Encrypted)
    ));

    let garbage = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-MATERIAL\n-----END PRIVATE KEY-----\n";
    let err = SigningKey::new(APP, KEY_ID, garbage).unwrap_err();
    assert!(matches!(err, KeyError::Pem(_)), "{err:?}");
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&s.to_string());
        source = s.source();
    }
    assert!(!chain.contains("TOP-SECRET"), "{chain}");

    // Well-formed base64 that is no RSA key: aws-lc rejects it at construction.
    let not_rsa = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode([0x30, 0x03, 0x02, 0x01, 0x00])
    );
    let err = SigningKey::new(APP, KEY_ID, &not_rsa).unwrap_err();
    assert!(
        matches!(err, KeyError::Rejected(_) | KeyError::Pem(_)),
        "{err:?}"
    );
    assert!(matches!(
        SigningKey::new(APP, KEY_ID, "no pem at all"),
        Err(KeyError::Pem(_))
    ));
}

#[test]
fn a_pkcs1_private_key_signs_as_well() {
    // PKCS#8 for RSA is SEQUENCE { INTEGER 0, AlgorithmIdentifier rsaEncryption,
    // OCTET STRING { RSAPrivateKey } }; for a 2048-bit key the wrapper is 26 bytes.
    let pem = pair().private_pem.expose_secret();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(
        der[4..22],
        [
            0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
            0x01, 0x01, 0x05, 0x00
        ]
    );
    assert_eq!(der[22], 0x04);
    let pkcs1 = &der[26..];
    let pkcs1_pem = pem_for_test("RSA PRIVATE KEY", pkcs1);
    let key = SigningKey::new(APP, KEY_ID, &pkcs1_pem).unwrap();
    let minted = mint(&key, &request("r"), now()).unwrap();
    decode_with(&pair().public_pem, &minted.token).unwrap();
}

fn pem_for_test(label: &str, der: &[u8]) -> String {
    crate::rsa_pem::pem(label, der)
}

#[test]
fn the_request_body_is_camel_case_and_strict() {
    let body = json!({
        "roomPrefix": "acme-",
        "user": {
            "id": "u1", "name": "Ana", "email": "ana@example.com",
            "avatar": "https://example.com/a.png", "moderator": true, "hiddenFromRecorder": true
        },
        "features": { "recording": true, "sipOutboundCall": true, "sendGroupchat": false },
        "ttlSeconds": 600
    });
    let req: TokenRequest = serde_json::from_value(body).unwrap();
    assert_eq!(req.room_scope().unwrap(), RoomScope::Prefix("acme-".into()));
    assert!(req.user.moderator && req.user.hidden_from_recorder);
    assert_eq!(
        req.features.granted(),
        [Feature::Recording, Feature::SipOutboundCall]
    );
    assert_eq!(req.ttl().unwrap(), 600);

    let minimal: TokenRequest =
        serde_json::from_value(json!({"room": "r", "user": {"id": "u", "name": "n"}})).unwrap();
    assert_eq!(minimal.features, Features::default());
    assert_eq!(minimal.ttl().unwrap(), DEFAULT_TTL_SECS);

    for bad in [
        json!({"room": "r", "user": {"id": "u", "name": "n"}, "admin": true}),
        json!({"room": "r", "user": {"id": "u", "name": "n", "role": "owner"}}),
        json!({"room": "r", "user": {"id": "u", "name": "n"}, "features": {"recordings": true}}),
        json!({"room": "r", "user": {"id": "u", "name": "n"}, "features": {"sip-outbound-call": true}}),
        json!({"room": "r", "user": {"id": "u", "name": "n"}, "ttlSeconds": -5}),
        json!({"room": "r", "user": {"id": "u", "name": "n", "moderator": "true"}}),
        json!({"room": "r"}),
    ] {
        assert!(
            serde_json::from_value::<TokenRequest>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn features_are_named_either_way() {
    for f in Feature::ALL {
        assert_eq!(Feature::parse(f.claim_name()), Some(f));
        assert_eq!(Feature::parse(f.request_name()), Some(f));
        let mut set = Features::default();
        set.set(f, true);
        assert_eq!(set.granted(), [f]);
        // The request name is the serde name.
        let v = serde_json::to_value(set).unwrap();
        assert_eq!(v[f.request_name()], true, "{f}");
    }
    assert_eq!(Feature::parse("admin"), None);
}

/// What Lua's `string.match` would make of the patterns we build, for the only constructs
/// they may contain: `^` first, `.*` last, and literal characters, written plainly or as `%x`
/// with `x` non-alphanumeric. Anything else (an unescaped magic character, a class like
/// `%a`) is an error, so an escaping slip cannot pass unnoticed.
/// The magic characters as the Lua 5.x manual lists them (§6.4.1), kept apart from the
/// module's own list so that a character missing there is caught here.
const LUA_MANUAL_MAGIC: &str = "^$()%.[]*+-?";

fn literal_of_prefix_pattern(pattern: &str) -> Result<String, String> {
    let body = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix(".*"))
        .ok_or("not ^...*")?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some(x) if !x.is_alphanumeric() => out.push(x),
                other => return Err(format!("bad escape %{other:?}")),
            },
            c if LUA_MANUAL_MAGIC.contains(c) => return Err(format!("unescaped {c:?}")),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[test]
fn the_reference_reader_catches_escaping_slips() {
    assert!(literal_of_prefix_pattern("^team-a.*").is_err());
    assert!(literal_of_prefix_pattern("^team%a.*").is_err());
    assert!(literal_of_prefix_pattern("^a.b.*").is_err());
    assert_eq!(literal_of_prefix_pattern("^a%.b.*").unwrap(), "a.b");
}

proptest! {
    /// Any prefix, magic characters and non-ASCII included, comes back as the same literal.
    #[test]
    fn any_prefix_round_trips_as_a_literal(prefix in "[a-zA-Z0-9 ^$()%.\\[\\]*+?_~\\-é中]{1,40}") {
        let pattern = prefix_pattern(&prefix);
        prop_assert_eq!(literal_of_prefix_pattern(&pattern), Ok(prefix.to_ascii_lowercase()));
    }

    #[test]
    fn any_text_escapes_reversibly(text in any::<String>()) {
        let escaped = lua_escape(&text);
        let back = literal_of_prefix_pattern(&format!("^{escaped}.*"));
        prop_assert_eq!(back, Ok(text));
    }
}
