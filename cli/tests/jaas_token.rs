//! `hooksctl jaas-token`: flags parsed by the real CLI definition, the token checked with the
//! public key (signature, aud, iss, nbf/exp) and its claims read back; the built binary keeps
//! stdout to the token alone. No emulator needed.

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use hooksctl::jaas_token::{self, JaasTokenArgs};
use meeting_hooks::providers::jaas::token::{self, KeyPairPem, generate_local_key_pair};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const APP: &str = "vpaas-magic-cookie-0123456789abcdef0123456789abcdef";
const NOW: i64 = 1_750_000_000;

struct KeyFile {
    pair: KeyPairPem,
    path: PathBuf,
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn key_file(name: &str) -> KeyFile {
    let pair = generate_local_key_pair().expect("a key pair");
    let path = std::env::temp_dir().join(format!(
        "hooksctl-jaas-token-{}-{name}.pem",
        std::process::id()
    ));
    std::fs::write(&path, pair.private_pem.expose_secret()).expect("write the key file");
    KeyFile { pair, path }
}

fn args(key: &KeyFile, extra: &[&str]) -> Result<JaasTokenArgs, clap::Error> {
    let mut argv = vec![
        "hooksctl",
        "jaas-token",
        "--private-key",
        key.path.to_str().expect("a UTF-8 temp path"),
        "--app-id",
        APP,
        "--key-id",
        "4f4910",
        "--user-id",
        "user-7",
        "--name",
        "Rui Costa",
    ];
    argv.extend_from_slice(extra);
    match hooksctl::Cli::try_parse_from(argv)?.command {
        hooksctl::Command::JaasToken(args) => Ok(args),
        other => panic!("parsed as {other:?}"),
    }
}

/// Runs the command at NOW; (stdout, stderr) or the error.
fn mint(args: &JaasTokenArgs) -> anyhow::Result<(String, String)> {
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    jaas_token::run(args, NOW, &mut out, &mut notes)?;
    Ok((String::from_utf8(out)?, String::from_utf8(notes)?))
}

#[test]
fn the_minted_token_verifies_with_the_public_key_and_grants_what_the_flags_say() {
    let key = key_file("grants");
    let args = args(
        &key,
        &[
            "--room",
            "board-meeting",
            "--email",
            "rui@example.com",
            "--moderator",
            "--feature",
            "recording",
            "--feature",
            "outbound-call",
            "--feature",
            "createPolls",
            "--ttl-seconds",
            "600",
            "--claims",
        ],
    )
    .unwrap();
    let (out, notes) = mint(&args).unwrap();
    let token = out.strip_suffix('\n').unwrap();
    assert!(
        !token.contains('\n') && token.split('.').count() == 3,
        "{out}"
    );

    let verified = token::verify(token, &key.pair.public_pem, NOW).unwrap();
    assert_eq!(
        verified.kid.as_deref(),
        Some(format!("{APP}/4f4910").as_str())
    );
    let c = &verified.claims;
    assert_eq!(
        (&c["aud"], &c["iss"], &c["sub"], &c["room"]),
        (
            &json!("jitsi"),
            &json!("chat"),
            &json!(APP),
            &json!("board-meeting")
        )
    );
    assert_eq!(
        (c["nbf"].as_i64(), c["exp"].as_i64()),
        (Some(NOW - 10), Some(NOW + 600))
    );
    assert_eq!(
        c["context"]["user"],
        json!({
            "id": "user-7", "name": "Rui Costa", "email": "rui@example.com",
            "moderator": "true", "hidden-from-recorder": false
        })
    );
    let features = c["context"]["features"].as_object().unwrap();
    assert_eq!(features.len(), 11);
    for (name, value) in features {
        let granted = ["recording", "outbound-call", "create-polls"].contains(&name.as_str());
        assert_eq!(value, if granted { "true" } else { "false" }, "{name}");
    }

    // --claims: the signed header and claims on the notes stream, never on stdout.
    let shown: Value = serde_json::from_str(&notes).unwrap();
    assert_eq!(shown["claims"], *c);
    assert_eq!(
        shown["header"],
        json!({"alg": "RS256", "typ": "JWT", "kid": format!("{APP}/4f4910")})
    );

    // Expired at exp, refused by another key.
    assert!(token::verify(token, &key.pair.public_pem, NOW + 600).is_err());
    let other = generate_local_key_pair().unwrap();
    assert!(token::verify(token, &other.public_pem, NOW).is_err());
}

#[test]
fn a_room_prefix_is_escaped_into_a_pattern() {
    let key = key_file("prefix");
    let args = args(&key, &["--room-prefix", "Sales-EU."]).unwrap();
    let (out, notes) = mint(&args).unwrap();
    assert!(notes.is_empty(), "no --claims, no notes: {notes}");
    let verified = token::verify(out.trim_end(), &key.pair.public_pem, NOW).unwrap();
    assert_eq!(verified.claims["room"], "^sales%-eu%..*");
    assert_eq!(verified.claims["context"]["room"], json!({"regex": true}));
    assert_eq!(verified.claims["exp"].as_i64(), Some(NOW + 7200));
}

#[test]
fn refusals_come_before_anything_is_printed() {
    let key = key_file("refusals");

    let args_ = args(&key, &["--room", "r", "--feature", "recording"]).unwrap();
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let err = jaas_token::run(&args_, NOW, &mut out, &mut notes).unwrap_err();
    assert!(
        format!("{err:#}").contains("need user.moderator"),
        "{err:#}"
    );
    assert!(out.is_empty() && notes.is_empty());

    let err = mint(&args(&key, &["--room", "r", "--ttl-seconds", "90000"]).unwrap()).unwrap_err();
    assert!(format!("{err:#}").contains("ttlSeconds"), "{err:#}");

    // clap: one of --room / --room-prefix, known features only.
    assert!(args(&key, &[]).is_err());
    assert!(args(&key, &["--room", "a", "--room-prefix", "b"]).is_err());
    let err = args(&key, &["--room", "a", "--feature", "teleport"]).unwrap_err();
    assert!(err.to_string().contains("unknown feature"), "{err}");

    // A public key in the key file: a clear error that does not quote the file.
    std::fs::write(&key.path, &key.pair.public_pem).unwrap();
    let err = mint(&args(&key, &["--room", "r"]).unwrap()).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("is a public key"), "{text}");
    let body_line = key.pair.public_pem.lines().nth(2).unwrap();
    assert!(!text.contains(body_line), "{text}");

    let missing = key.path.with_extension("missing");
    let mut a = args(&key, &["--room", "r"]).unwrap();
    a.private_key = missing.clone();
    let err = mint(&a).unwrap_err();
    assert!(
        format!("{err:#}").contains(missing.to_str().unwrap()),
        "{err:#}"
    );
}

#[test]
fn the_binary_prints_only_the_token_on_stdout() {
    let key = key_file("binary");
    let output = Command::new(env!("CARGO_BIN_EXE_hooksctl"))
        .args(["jaas-token", "--private-key"])
        .arg(&key.path)
        .args([
            "--app-id",
            APP,
            "--key-id",
            &format!("{APP}/4f4910"),
            "--room",
            "*",
            "--user-id",
            "u1",
            "--name",
            "Ana",
            "--claims",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').unwrap();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let verified = token::verify(token, &key.pair.public_pem, now).unwrap();
    assert_eq!(verified.claims["room"], "*");
    let shown: Value = serde_json::from_slice(&output.stderr).unwrap();
    assert_eq!(shown["claims"], verified.claims);
}
