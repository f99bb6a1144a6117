//! The sample Lambda events in `events/`, generated from the JaaS catalogue.
//!
//! `cargo run -p integration-tests --example gen-events` writes them;
//! `tests/tests/sample_events.rs` regenerates them in memory, fails when the committed files
//! differ, and pushes them through the real handlers. So the files that
//! `sam local invoke -e` and `cargo lambda invoke --data-file` use can never go stale.
//!
//! - `events/webhooks/<event_type>.json`: API Gateway HTTP API (payload 2.0) requests to
//!   `POST /webhooks/jaas`, one per catalogue example, the body byte for byte as documented,
//!   signed with [`SAMPLE_SECRET`] at the fixed time [`SAMPLE_T`] and carrying
//!   [`SAMPLE_AUTHORIZATION`].
//! - `events/settings/request.json` (Authorization only, as JaaS documents it) and
//!   `request-signed.json` (also signed): `POST /settings/jaas` with the catalogue's body.
//! - `events/copier/<kind>.json` and `all-kinds.json`: SQS events carrying the copy jobs that
//!   webhook-ingest enqueues when the catalogue's events arrive in catalogue order.
//! - `events/daily/webhooks/<type>.json`: `POST /webhooks/daily`, one per documented Daily
//!   type (the Daily catalogue's example bodies), signed with [`DAILY_SAMPLE_SECRET`] at
//!   [`SAMPLE_T`]; `events/daily/webhooks/test.json` is the creation test Daily sends.
//! - `events/daily/copier/all-files.json`: the jobs those samples make (provider objects,
//!   resolved at copy time through Daily's REST API).
//! - `events/videosdk/webhooks/<type>.json`: `POST /webhooks/videosdk`, one per documented
//!   VideoSDK type, plus `recording-stopped-as-documented.json` (the documentation's sample
//!   byte for byte, trailing commas included), each signed with the sample key
//!   (`shared/testdata/videosdk-sample-key.pem`, [`VIDEOSDK_SAMPLE_KEY`]);
//!   `events/videosdk/copier/all-files.json`: the jobs they make.
//! - `events/jitsi/webhooks/<name>.json`: Prosody's `mod_event_sync_component` requests
//!   (`POST /webhooks/jitsi/events/room/created`, …) for each example of the Jitsi catalogue,
//!   with the `Authorization: Bearer` [`JITSI_SAMPLE_TOKEN`].
//!
//! Nothing here is secret: the sample secret and token are for local runs only.

use std::collections::HashSet;

use meeting_hooks::jaas::catalogue::{self, CATALOGUE};
use meeting_hooks::jaas::plan_job;
use meeting_hooks::jaas::{JaasEvent, signature};
use meeting_hooks::jobs::{CopyJob, job_from_plan};
use meeting_hooks::providers::{Interpretation, NotAnEvent, daily, jitsi, videosdk};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Webhook secret the samples are signed with (local development only).
pub const SAMPLE_SECRET: &str = "whsec_local_development_only";
/// Authorization header value the samples carry (local development only).
pub const SAMPLE_AUTHORIZATION: &str = "Bearer local_development_only";
/// Signature time `t` of every sample: 2023-11-14T22:13:20Z. Fixed so the files are stable;
/// whoever replays them sets `SIGNATURE_TOLERANCE_SECONDS` large enough.
pub const SAMPLE_T: i64 = 1_700_000_000;

const API_ID: &str = "sample0api";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
/// One of JaaS's documented webhook source addresses.
const JAAS_SOURCE_IP: &str = "52.26.201.32";
/// Daily publishes no source addresses: one from TEST-NET-3 (RFC 5737).
const DAILY_SOURCE_IP: &str = "203.0.113.10";
pub const WEBHOOK_PATH: &str = "/webhooks/jaas";
pub const DAILY_WEBHOOK_PATH: &str = "/webhooks/daily";
/// Daily webhook secret of the samples, base64 as Daily shows an `hmac` (local development
/// only; the local stack uses the same one).
pub const DAILY_SAMPLE_SECRET: &str = "ZGFpbHlfbG9jYWxfZGV2ZWxvcG1lbnRfb25seQ==";
/// The private half of the VideoSDK sample key (local development only; its public half is
/// derived from it).
pub const VIDEOSDK_SAMPLE_KEY: &str = include_str!("../../shared/testdata/videosdk-sample-key.pem");
pub const VIDEOSDK_WEBHOOK_PATH: &str = "/webhooks/videosdk";
/// VideoSDK publishes no source addresses: one from TEST-NET-3 (RFC 5737).
const VIDEOSDK_SOURCE_IP: &str = "203.0.113.20";
/// The VideoSDK copier sample.
pub const VIDEOSDK_COPIER_FILE: &str = "videosdk/copier/all-files.json";

/// The file name of the VideoSDK webhook sample for a type.
pub fn videosdk_webhook_file(name: &str) -> String {
    format!("videosdk/webhooks/{name}.json")
}

/// The VideoSDK samples: (file name, body), the catalogue's then the documentation's own.
pub fn videosdk_bodies() -> Vec<(String, String)> {
    videosdk::catalogue::examples()
        .into_iter()
        .map(|(t, b)| (t.to_owned(), b))
        .chain([(
            "recording-stopped-as-documented".to_owned(),
            videosdk::catalogue::DOCUMENTED_RECORDING_STOPPED.to_owned(),
        )])
        .collect()
}

/// The bearer token of the Jitsi samples (local development only).
pub const JITSI_SAMPLE_TOKEN: &str = "jitsi_local_development_only";
/// Prosody's module runs beside the Jitsi deployment: an address from TEST-NET-3 (RFC 5737).
const JITSI_SOURCE_IP: &str = "203.0.113.30";

/// The file name of the Jitsi sample of a catalogue example.
pub fn jitsi_webhook_file(name: &str) -> String {
    format!("jitsi/webhooks/{name}.json")
}

/// The path a Jitsi example is posted to.
pub fn jitsi_path(name: &str) -> String {
    format!("/webhooks/jitsi{}", jitsi::catalogue::route_of(name))
}

/// The body of Daily's creation test.
pub const DAILY_TEST_BODY: &str = r#"{"test":"test"}"#;
pub const SETTINGS_PATH: &str = "/settings/jaas";
/// Queue ARN in the SQS samples.
pub const JOBS_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:meeting-hooks-jobs";

/// The folders of `events/` the generator writes (and removes stale files from).
pub const DIRS: [&str; 8] = [
    "webhooks",
    "settings",
    "copier",
    "daily/webhooks",
    "daily/copier",
    "videosdk/webhooks",
    "videosdk/copier",
    "jitsi/webhooks",
];

/// One file under `events/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleFile {
    /// Path relative to `events/`, `/`-separated.
    pub path: String,
    pub contents: String,
}

/// The file name of the webhook sample for an event type (`ROOM_CREATED` -> `room_created.json`).
pub fn webhook_file(event_type: &str) -> String {
    format!("webhooks/{}.json", event_type.to_ascii_lowercase())
}

/// The file name of the SQS sample for a job kind.
pub fn copier_file(kind: &str) -> String {
    format!("copier/{kind}.json")
}

/// The file name of the Daily webhook sample for a type (`meeting.started.json`).
pub fn daily_webhook_file(event_type: &str) -> String {
    format!("daily/webhooks/{event_type}.json")
}

/// The Daily copier sample.
pub const DAILY_COPIER_FILE: &str = "daily/copier/all-files.json";

/// Every sample file, in a stable order.
pub fn generate() -> Vec<SampleFile> {
    let mut files = Vec::new();
    for ex in catalogue::examples() {
        let request = jaas_request(WEBHOOK_PATH, &ex.body, true, &ex.section);
        files.push(file(webhook_file(&ex.section), &request));
    }
    let body = settings_request_body();
    files.push(file(
        "settings/request.json".into(),
        &jaas_request(SETTINGS_PATH, &body, false, "settings"),
    ));
    files.push(file(
        "settings/request-signed.json".into(),
        &jaas_request(SETTINGS_PATH, &body, true, "settings-signed"),
    ));
    let jobs = catalogue_jobs();
    for job in &jobs {
        files.push(file(
            copier_file(job.kind.as_str()),
            &sqs_event(std::slice::from_ref(job)),
        ));
    }
    files.push(file("copier/all-kinds.json".into(), &sqs_event(&jobs)));
    for (event_type, body) in daily::catalogue::examples() {
        files.push(file(
            daily_webhook_file(event_type),
            &daily_request(&body, &format!("daily-{event_type}")),
        ));
    }
    files.push(file(
        daily_webhook_file("test"),
        &daily_request(DAILY_TEST_BODY, "daily-test"),
    ));
    files.push(file(DAILY_COPIER_FILE.into(), &sqs_event(&daily_jobs())));
    for (name, body) in videosdk_bodies() {
        let signature = videosdk::keys::sign(VIDEOSDK_SAMPLE_KEY, body.as_bytes())
            .expect("the sample key signs");
        files.push(file(
            videosdk_webhook_file(&name),
            &http_request(
                VIDEOSDK_WEBHOOK_PATH,
                &body,
                &[(videosdk::SIGNATURE_HEADER, signature)],
                VIDEOSDK_SOURCE_IP,
                &format!("videosdk-{name}"),
            ),
        ));
    }
    files.push(file(
        VIDEOSDK_COPIER_FILE.into(),
        &sqs_event(&videosdk_jobs()),
    ));
    for (name, body) in jitsi::catalogue::examples() {
        files.push(file(
            jitsi_webhook_file(name),
            &http_request(
                &jitsi_path(name),
                &body,
                &[("authorization", format!("Bearer {JITSI_SAMPLE_TOKEN}"))],
                JITSI_SOURCE_IP,
                &format!("jitsi-{name}"),
            ),
        ));
    }
    files
}

/// The jobs webhook-ingest makes of `bodies` delivered once each, in order: the provider's
/// own interpretation, keyed the way ingest keys it ([`meeting_hooks::ingest::storage_key`]).
fn jobs_of(
    provider: &str,
    bodies: impl IntoIterator<Item = String>,
    interpret: impl Fn(&[u8]) -> Result<Interpretation, NotAnEvent>,
) -> Vec<CopyJob> {
    let received = SAMPLE_T * 1000;
    let mut jobs = Vec::new();
    for body in bodies {
        let interpreted = match interpret(body.as_bytes()) {
            Ok(Interpretation::Event(e)) => e,
            other => panic!("{provider} example is not an event: {other:?}"),
        };
        let sha = hex::encode(Sha256::digest(body.as_bytes()));
        let key = meeting_hooks::ingest::storage_key(
            provider,
            interpreted.facts.event_id.as_deref(),
            &sha,
            &mut Vec::new(),
        );
        let plans = interpreted
            .files
            .clone()
            .unwrap_or_else(|e| panic!("{provider} example: {e}"));
        for plan in plans {
            jobs.push(job_from_plan(
                provider,
                &interpreted.facts,
                &key,
                received,
                plan,
            ));
        }
    }
    jobs
}

/// The copy jobs webhook-ingest enqueues when every Daily sample is delivered once.
pub fn daily_jobs() -> Vec<CopyJob> {
    jobs_of(
        daily::NAME,
        daily::catalogue::examples().into_iter().map(|(_, b)| b),
        |b| daily::interpret(b, SAMPLE_T * 1000),
    )
}

/// The copy jobs webhook-ingest enqueues when every VideoSDK sample is delivered once: the
/// catalogue's recording and the documentation's (the same file: one job id, two messages).
pub fn videosdk_jobs() -> Vec<CopyJob> {
    jobs_of(
        videosdk::NAME,
        videosdk_bodies().into_iter().map(|(_, b)| b),
        |b| {
            videosdk::interpret(
                b,
                SAMPLE_T * 1000,
                meeting_hooks::jobs::LinkPolicy::HttpsOnly,
            )
        },
    )
}

fn jaas_request(path: &str, body: &str, signed: bool, request_id: &str) -> Value {
    let mut headers = vec![("authorization", SAMPLE_AUTHORIZATION.to_owned())];
    if signed {
        headers.push((
            "x-jaas-signature",
            signature::signature_header(SAMPLE_SECRET, SAMPLE_T, body.as_bytes()),
        ));
    }
    http_request(path, body, &headers, JAAS_SOURCE_IP, request_id)
}

fn daily_request(body: &str, request_id: &str) -> Value {
    let t = SAMPLE_T.to_string();
    let headers = [
        (
            daily::SIGNATURE_HEADER,
            daily::sign(DAILY_SAMPLE_SECRET, &t, body.as_bytes()),
        ),
        (daily::TIMESTAMP_HEADER, t),
    ];
    http_request(
        DAILY_WEBHOOK_PATH,
        body,
        &headers,
        DAILY_SOURCE_IP,
        request_id,
    )
}

fn file(path: String, value: &Value) -> SampleFile {
    let mut contents = serde_json::to_string_pretty(value).expect("JSON values serialize");
    contents.push('\n');
    SampleFile { path, contents }
}

/// The body of the catalogue's SETTINGS_PROVISIONING request (its first JSON block; the
/// second is the expected response).
pub fn settings_request_body() -> String {
    let mut in_section = false;
    let mut lines = CATALOGUE.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("## ") {
            in_section = rest.contains("SETTINGS_PROVISIONING");
            continue;
        }
        if in_section && line.trim() == "```json" {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    return body;
                }
                body.push_str(l);
                body.push('\n');
            }
        }
    }
    panic!("the catalogue has no SETTINGS_PROVISIONING request example")
}

/// The copy jobs webhook-ingest enqueues when every catalogue example is delivered once, in
/// catalogue order. Mirrors ingest's keys: the first event with an idempotencyKey is stored
/// under it; a later, different event reusing that key (the catalogue does this) is stored
/// under `<key>#conflict#<sha256>`; an event without a key under `sha256:<sha256>`. The
/// sample-events test checks these against what the real ingest handler enqueues.
pub fn catalogue_jobs() -> Vec<CopyJob> {
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for ex in catalogue::examples() {
        let event = JaasEvent::parse(ex.body.as_bytes())
            .unwrap_or_else(|e| panic!("catalogue example {} does not parse: {e}", ex.section));
        let sha = hex::encode(Sha256::digest(ex.body.as_bytes()));
        let key = match &event.idempotency_key {
            Some(k) if seen.insert(k.clone()) => k.clone(),
            Some(k) => format!("{k}#conflict#{sha}"),
            None => format!("sha256:{sha}"),
        };
        if let Ok(Some(job)) = plan_job(&event, &key, SAMPLE_T * 1000) {
            jobs.push(job);
        }
    }
    jobs
}

/// The HTTP API route a path arrives on, and its path parameters: JaaS's and the settings
/// route are literal, other providers come through `/webhooks/{provider}` and the routes below
/// it through `/webhooks/{provider}/{proxy+}`.
fn route_of(path: &str) -> (String, Value) {
    let rest = path
        .strip_prefix("/webhooks/")
        .filter(|_| path != WEBHOOK_PATH);
    match rest.map(|r| r.split_once('/').unwrap_or((r, ""))) {
        None => (path.to_owned(), Value::Null),
        Some((provider, "")) => (
            "/webhooks/{provider}".to_owned(),
            json!({ "provider": provider }),
        ),
        Some((provider, proxy)) => (
            "/webhooks/{provider}/{proxy+}".to_owned(),
            json!({ "provider": provider, "proxy": proxy }),
        ),
    }
}

/// An API Gateway HTTP API (payload 2.0) `POST` of `body` to `path` from `source_ip`, with
/// the provider's `headers` beside the ones API Gateway adds.
fn http_request(
    path: &str,
    body: &str,
    provider_headers: &[(&str, String)],
    source_ip: &str,
    request_id: &str,
) -> Value {
    let method = "POST";
    let host = format!("{API_ID}.execute-api.{REGION}.amazonaws.com");
    let (template, parameters) = route_of(path);
    let route = format!("{method} {template}");
    let mut headers = json!({
        "content-length": body.len().to_string(),
        "content-type": "application/json",
        "host": host,
        "x-forwarded-for": source_ip,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    });
    for (name, value) in provider_headers {
        headers[*name] = Value::from(value.as_str());
    }
    let mut request = json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
            },
            "requestId": format!("sample-{}", request_id.to_ascii_lowercase()),
            "routeKey": route,
            "stage": "$default",
            "time": "14/Nov/2023:22:13:20 +0000",
            "timeEpoch": SAMPLE_T * 1000,
        },
        "body": body,
        "isBase64Encoded": false,
    });
    if !parameters.is_null() {
        request["pathParameters"] = parameters;
    }
    request
}

fn sqs_event(jobs: &[CopyJob]) -> Value {
    let records: Vec<Value> = jobs
        .iter()
        .map(|job| {
            // A stable, UUID-shaped message id derived from the job id.
            let h = hex::encode(Sha256::digest(job.job_id.as_bytes()));
            let message_id = format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            );
            let sent = (SAMPLE_T * 1000).to_string();
            json!({
                "messageId": message_id,
                "receiptHandle": format!("sample-receipt-{}", &h[0..16]),
                "body": job.to_json(),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": sent,
                    "SenderId": "AROAEXAMPLE:webhook-ingest",
                    "ApproximateFirstReceiveTimestamp": sent,
                },
                "messageAttributes": {
                    "jobId": {
                        "stringValue": job.job_id,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": "String",
                    }
                },
                "eventSource": "aws:sqs",
                "eventSourceARN": JOBS_QUEUE_ARN,
                "awsRegion": REGION,
            })
        })
        .collect();
    json!({ "Records": records })
}
