//! `hooksctl settings` as operators run it: the built binary, configured only through the
//! environment (AWS_ENDPOINT_URL pointing at moto_server), checked on stdout, stderr and
//! exit status, and cross-checked against what the settings-provisioning handler answers.

use std::collections::HashMap;
use std::process::{Command, Output};

use integration_tests::{REGION, emulator};
use lambda_http::Body;
use meeting_hooks::aws::settings::DynamoSettingsStore;
use meeting_hooks::settings::{SettingsConfig, SettingsService, http};
use serde_json::{Value, json};

const APP: &str = "vpaas-magic-cookie-cli";

fn hooksctl(table: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hooksctl"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SETTINGS_TABLE", table)
        .env("AWS_ENDPOINT_URL", &emulator().endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hooksctl")
}

fn ok(table: &str, args: &[&str]) -> String {
    let out = hooksctl(table, args, &[]);
    assert!(
        out.status.success(),
        "hooksctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn ok_json(table: &str, args: &[&str]) -> Value {
    serde_json::from_str(ok(table, args).trim()).expect("JSON on stdout")
}

fn fails(table: &str, args: &[&str]) -> String {
    let out = hooksctl(table, args, &[]);
    assert!(!out.status.success(), "hooksctl {args:?} should fail");
    String::from_utf8(out.stderr).expect("utf-8")
}

#[tokio::test]
async fn set_get_unset_list_with_masked_passcodes() {
    let table = emulator().table(&meeting_hooks::schema::SETTINGS).await;
    let room = format!("{APP}/board");

    assert_eq!(
        ok_json(
            &table,
            &[
                "settings",
                "set",
                "--app",
                APP,
                "lobbyEnabled=true",
                "maxOccupants=50"
            ]
        ),
        json!({"lobbyEnabled": true, "maxOccupants": 50})
    );
    // Masked by default, even in the echo of the write.
    assert_eq!(
        ok_json(
            &table,
            &["settings", "set", "--room", &room, "passcode=0042"]
        ),
        json!({"passcode": "****"})
    );
    // A later set merges into the stored document.
    ok(
        &table,
        &[
            "settings",
            "set",
            "--room",
            &room,
            "--json",
            r#"{"maxOccupants": 8}"#,
        ],
    );
    assert_eq!(
        ok_json(&table, &["settings", "get", "--room", &room]),
        json!({"passcode": "****", "maxOccupants": 8})
    );
    assert_eq!(
        ok_json(
            &table,
            &["settings", "get", "--room", &room, "--show-passcode"]
        ),
        json!({"passcode": "0042", "maxOccupants": 8})
    );

    let listing = ok(&table, &["settings", "list"]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(
        lines,
        vec![
            format!(
                "app#{APP}\t{}",
                json!({"lobbyEnabled": true, "maxOccupants": 50})
            ),
            format!(
                "room#{room}\t{}",
                json!({"maxOccupants": 8, "passcode": "****"})
            ),
        ]
    );
    assert!(!listing.contains("0042"));
    assert_eq!(
        ok(
            &table,
            &["settings", "list", "--app", "vpaas-magic-cookie-x"]
        ),
        ""
    );

    assert_eq!(
        ok_json(&table, &["settings", "unset", "--room", &room, "passcode"]),
        json!({"maxOccupants": 8})
    );
    // Removing the last field removes the document.
    ok(
        &table,
        &["settings", "unset", "--room", &room, "maxOccupants"],
    );
    assert_eq!(
        ok_json(&table, &["settings", "get", "--room", &room]),
        json!({})
    );
    ok(&table, &["settings", "unset", "--app", APP, "--all"]);
    assert_eq!(ok(&table, &["settings", "list"]), "");
    assert!(emulator().scan(&table).await.is_empty());
}

#[tokio::test]
async fn invalid_settings_are_refused_before_anything_is_written() {
    let table = emulator().table(&meeting_hooks::schema::SETTINGS).await;
    let room = format!("{APP}/strict");
    ok(
        &table,
        &["settings", "set", "--room", &room, "maxOccupants=10"],
    );
    for (args, needle) in [
        (vec!["passcode=12ab"], "passcode: digits 0-9 only"),
        (
            vec!["maxOccupants=1"],
            "maxOccupants: must be between 2 and 500",
        ),
        (
            vec!["participantsSoftLimit=11"],
            "participantsSoftLimit (11) must not be above maxOccupants (10)",
        ),
        (
            vec!["lobbyType=SOON"],
            "lobbyType: one of WAIT_FOR_APPROVAL, WAIT_FOR_MODERATOR",
        ),
        (vec!["transcriberType=whisper"], "transcriberType: one of"),
        (
            vec!["lobbyEnabled=on"],
            "lobbyEnabled: must be true or false",
        ),
        (vec!["lobby=true"], "unknown setting \"lobby\""),
        (
            vec!["--json", r#"{"visitorsEnabled": "yes"}"#],
            "visitorsEnabled: must be true or false",
        ),
    ] {
        let mut full = vec!["settings", "set", "--room", &room];
        full.extend(args.iter().copied());
        let err = fails(&table, &full);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(
        fails(
            &table,
            &["settings", "set", "--room", "no-slash", "lobbyEnabled=true"]
        )
        .contains("--room")
    );
    assert!(fails(&table, &["settings", "get"]).contains("--app"));
    // Nothing but the first valid write reached the table.
    assert_eq!(
        ok_json(&table, &["settings", "get", "--room", &room]),
        json!({"maxOccupants": 10})
    );
    assert_eq!(emulator().scan(&table).await.len(), 1);
}

#[tokio::test]
async fn effective_prints_exactly_what_the_handler_answers() {
    let table = emulator().table(&meeting_hooks::schema::SETTINGS).await;
    let room = format!("{APP}/allhands");
    let global = r#"{"lobbyEnabled": false, "transcriberType": "GOOGLE"}"#;
    ok(
        &table,
        &[
            "settings",
            "set",
            "--app",
            APP,
            "lobbyEnabled=true",
            "participantsSoftLimit=40",
        ],
    );
    ok(
        &table,
        &[
            "settings",
            "set",
            "--room",
            &room,
            "passcode=777",
            "maxOccupants=30",
        ],
    );

    let env = [("SETTINGS_DEFAULT", global), ("ALLOWED_APP_IDS", APP)];
    let out = hooksctl(
        &table,
        &["settings", "effective", "--room", &room, "--show-passcode"],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("lowered"));

    // The same table through the real handler.
    let config: HashMap<String, String> = [
        ("SETTINGS_TABLE", table.as_str()),
        ("ALLOWED_APP_IDS", APP),
        ("SETTINGS_DEFAULT", global),
        ("ALLOW_INSECURE_NO_AUTH", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = SettingsConfig::from_env(&config).unwrap();
    let service = SettingsService::new(
        DynamoSettingsStore::new(emulator().dynamodb(), &table),
        &config,
    );
    let request = ::http::Request::builder()
        .method("POST")
        .body(Body::from(json!({ "fqn": room }).to_string()))
        .unwrap();
    let response = http::handle(&service, request).await;
    assert_eq!(response.status(), 200);
    let answered = std::str::from_utf8(response.body().as_ref()).unwrap();
    assert_eq!(printed.trim_end(), answered);
    assert_eq!(
        serde_json::from_str::<Value>(answered).unwrap(),
        json!({"lobbyEnabled": true, "participantsSoftLimit": 30, "passcode": "777",
               "maxOccupants": 30, "transcriberType": "GOOGLE"})
    );

    // Masked unless asked.
    let masked = hooksctl(&table, &["settings", "effective", "--room", &room], &env);
    assert!(!String::from_utf8_lossy(&masked.stdout).contains("777"));

    // An appId the function does not serve is reported as the 403 JaaS would get.
    let other = hooksctl(
        &table,
        &["settings", "effective", "--room", "vpaas-magic-cookie-x/r"],
        &env,
    );
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("403"));
}

#[tokio::test]
async fn missing_table_is_reported_with_the_variable_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_hooksctl"))
        .args(["settings", "list"])
        .env_remove("SETTINGS_TABLE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SETTINGS_TABLE"));
}
