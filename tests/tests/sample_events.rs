//! The sample events in `events/`: committed files equal what the generator makes, every JaaS
//! event type has one, and the webhook samples go through the real ingest handler against the
//! emulator (each stored exactly once; the queued jobs are the ones in the SQS samples).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use integration_tests::sample_events::{
    self, DAILY_COPIER_FILE, DAILY_SAMPLE_SECRET, DAILY_TEST_BODY, DAILY_WEBHOOK_PATH,
    JITSI_SAMPLE_TOKEN, JOBS_QUEUE_ARN, SAMPLE_AUTHORIZATION, SAMPLE_SECRET, SAMPLE_T,
    SETTINGS_PATH, VIDEOSDK_COPIER_FILE, VIDEOSDK_SAMPLE_KEY, VIDEOSDK_WEBHOOK_PATH, WEBHOOK_PATH,
};
use integration_tests::{emulator, workspace_root};
use meeting_hooks::aws::{blobs::S3BlobStore, events::DynamoEventStore, queue::SqsJobQueue};
use meeting_hooks::ingest::{IngestConfig, IngestService, http};
use meeting_hooks::jaas::{EventType, JaasVerifier, catalogue};
use meeting_hooks::jobs::{CopyJob, decode_job};
use meeting_hooks::providers::daily::{self, DailyVerifier};
use meeting_hooks::schema::{EVENTS, event_attr};
use secrecy::SecretString;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn events_dir() -> PathBuf {
    workspace_root().join("events")
}

fn read(rel: &str) -> String {
    let path = events_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn request(rel: &str) -> lambda_http::Request {
    lambda_http::request::from_str(&read(rel))
        .unwrap_or_else(|e| panic!("{rel} is not an API Gateway request event: {e}"))
}

fn sqs(rel: &str) -> SqsEvent {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not an SQS event: {e}"))
}

fn now_secs() -> i64 {
    meeting_hooks::respond::now_ms() / 1000
}

#[test]
fn committed_samples_are_what_the_generator_makes() {
    let files = sample_events::generate();
    let mut stale = Vec::new();
    for f in &files {
        let on_disk = std::fs::read_to_string(events_dir().join(&f.path)).unwrap_or_default();
        if on_disk != f.contents {
            stale.push(f.path.clone());
        }
    }
    // And nothing the generator no longer makes.
    let wanted: HashSet<_> = files.iter().map(|f| f.path.clone()).collect();
    for dir in sample_events::DIRS {
        for entry in std::fs::read_dir(events_dir().join(dir)).expect("events subdirectory") {
            let path = entry.expect("dir entry").path();
            let rel = format!(
                "{dir}/{}",
                path.file_name().expect("name").to_string_lossy()
            );
            if path.extension().is_some_and(|e| e == "json") && !wanted.contains(&rel) {
                stale.push(rel);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "events/ is out of date ({stale:?}); run `cargo run -p integration-tests --example gen-events`"
    );
}

#[test]
fn every_event_type_has_a_signed_webhook_sample_wrapping_its_catalogue_example() {
    assert_eq!(EventType::ALL.len(), 35);
    let verifier = JaasVerifier::new(
        vec![SecretString::from(SAMPLE_SECRET)],
        Duration::from_secs(0),
        Some(SecretString::from(SAMPLE_AUTHORIZATION)),
    );
    for t in EventType::ALL {
        let rel = sample_events::webhook_file(t.as_str());
        let req = request(&rel);
        assert_eq!(req.method(), ::http::Method::POST, "{rel}");
        assert_eq!(req.uri().path(), WEBHOOK_PATH, "{rel}");
        let body = meeting_hooks::respond::body_bytes(req.body());
        assert_eq!(
            body,
            catalogue::example(t.as_str()).body.as_bytes(),
            "{rel}: body is not the catalogue example byte for byte"
        );
        // Signed with the documented sample secret at the documented fixed time.
        verifier
            .verify(req.headers(), body, SAMPLE_T)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let other = JaasVerifier::new(
            vec![SecretString::from("whsec_some_other_secret")],
            Duration::from_secs(0),
            None,
        );
        assert!(
            other.verify(req.headers(), body, SAMPLE_T).is_err(),
            "{rel}"
        );
    }
}

/// Fresh events table, queue and payload bucket on the emulator.
struct Tables {
    table: String,
    queue: String,
    bucket: String,
}

impl Tables {
    async fn new() -> Self {
        let emu = emulator();
        Self {
            table: emu.table(&EVENTS).await,
            queue: emu.queue().await,
            bucket: emu.bucket().await,
        }
    }

    /// The ingest use case over these tables, configured by `provider_env` as a deployment is.
    fn service(
        &self,
        provider_env: &[(&str, String)],
    ) -> IngestService<DynamoEventStore, SqsJobQueue, S3BlobStore> {
        let emu = emulator();
        let env: std::collections::HashMap<String, String> = [
            ("EVENTS_TABLE", self.table.clone()),
            ("JOBS_QUEUE_URL", self.queue.clone()),
            ("PAYLOAD_BUCKET", self.bucket.clone()),
        ]
        .iter()
        .chain(provider_env)
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
        let config = IngestConfig::from_env(&env).expect("config");
        IngestService::new(
            DynamoEventStore::new(emu.dynamodb(), &self.table),
            SqsJobQueue::new(emu.sqs(), &self.queue),
            S3BlobStore::new(emu.s3(), &self.bucket),
            &config,
        )
    }
}

#[tokio::test]
async fn webhook_samples_are_stored_exactly_once_by_the_ingest_handler() {
    let emu = emulator();
    let tables = Tables::new().await;
    let (table, queue) = (&tables.table, &tables.queue);
    let service = |tolerance: i64| {
        tables.service(&[
            ("JAAS_WEBHOOK_SECRETS", SAMPLE_SECRET.to_owned()),
            ("JAAS_AUTHORIZATION", SAMPLE_AUTHORIZATION.to_owned()),
            ("SIGNATURE_TOLERANCE_SECONDS", tolerance.to_string()),
        ])
    };

    // With the default tolerance the fixed `t` is long stale: the samples are refused, so the
    // tolerance below is what lets them in.
    let strict = service(JaasVerifier::DEFAULT_TOLERANCE_SECS as i64);
    let resp = http::handle(
        &strict,
        request(&sample_events::webhook_file("ROOM_CREATED")),
    )
    .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json(&resp)["error"], "signature_stale");

    // The samples' `t` plus an hour of slack.
    let service = service(now_secs() - SAMPLE_T + 3600);
    let examples = catalogue::examples();
    let mut shas = BTreeSet::new();
    let mut first_keys = HashSet::new();
    // Catalogue order: it decides which of two events sharing a key is the conflict.
    for ex in &examples {
        let rel = sample_events::webhook_file(&ex.section);
        let resp = http::handle(&service, request(&rel)).await;
        let body = json(&resp);
        assert_eq!(resp.status(), 200, "{rel}: {body}");
        let key: Value =
            serde_json::from_str::<Value>(&ex.body).expect("json")["idempotencyKey"].clone();
        let expected = if first_keys.insert(key) {
            "stored"
        } else {
            "conflict"
        };
        assert_eq!(body["status"], expected, "{rel}");
        shas.insert(hex::encode(Sha256::digest(ex.body.as_bytes())));
    }
    // A second delivery of every sample is a duplicate: nothing new is stored or queued.
    for ex in &examples {
        let rel = sample_events::webhook_file(&ex.section);
        let resp = http::handle(&service, request(&rel)).await;
        assert_eq!(json(&resp)["status"], "duplicate", "{rel}");
    }

    let items = emu.scan(table).await;
    assert_eq!(items.len(), examples.len(), "one item per sample");
    let stored: BTreeSet<String> = items
        .iter()
        .map(|i| {
            i[event_attr::PAYLOAD_SHA256]
                .as_s()
                .expect("payload hash is a string")
                .clone()
        })
        .collect();
    assert_eq!(stored, shas, "every sample's exact bytes stored once");

    // The queued jobs are exactly the ones in the copier samples.
    let queued: BTreeSet<String> = emu
        .drain(queue)
        .await
        .iter()
        .map(|b| decode_job(b).expect("queued job decodes").to_json())
        .collect();
    let samples: BTreeSet<String> = sqs("copier/all-kinds.json")
        .records
        .iter()
        .map(|r| {
            decode_job(r.body.as_deref().expect("body"))
                .expect("sample job decodes")
                .to_json()
        })
        .collect();
    assert_eq!(queued.len(), 7, "one job per file-carrying event type");
    assert_eq!(queued, samples);
}

#[test]
fn settings_samples_carry_what_the_settings_handler_reads() {
    let expected_body = sample_events::settings_request_body();
    let fqn: Value = serde_json::from_str(&expected_body).expect("catalogue body is JSON");
    assert_eq!(fqn["fqn"], "AppID/roomName");
    for (rel, signed) in [
        ("settings/request.json", false),
        ("settings/request-signed.json", true),
    ] {
        let req = request(rel);
        assert_eq!(req.method(), ::http::Method::POST, "{rel}");
        assert_eq!(req.uri().path(), SETTINGS_PATH, "{rel}");
        let body = meeting_hooks::respond::body_bytes(req.body());
        assert_eq!(body, expected_body.as_bytes(), "{rel}");
        assert_eq!(
            req.headers().get("authorization").map(|v| v.as_bytes()),
            Some(SAMPLE_AUTHORIZATION.as_bytes()),
            "{rel}"
        );
        assert_eq!(
            req.headers().contains_key("x-jaas-signature"),
            signed,
            "{rel}"
        );
        let verifier = JaasVerifier::new(
            vec![SecretString::from(SAMPLE_SECRET)],
            Duration::from_secs(0),
            Some(SecretString::from(SAMPLE_AUTHORIZATION)),
        );
        verifier
            .verify_if_signed(req.headers(), body, SAMPLE_T)
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        let wrong_token = JaasVerifier::new(
            vec![SecretString::from(SAMPLE_SECRET)],
            Duration::from_secs(0),
            Some(SecretString::from("Bearer something else")),
        );
        assert!(
            wrong_token
                .verify_if_signed(req.headers(), body, SAMPLE_T)
                .is_err()
        );
    }
}

#[test]
fn copier_samples_are_sqs_events_with_decodable_jobs() {
    let all = sqs("copier/all-kinds.json");
    assert_eq!(all.records.len(), 7);
    let mut kinds = BTreeSet::new();
    let mut message_ids = HashSet::new();
    for record in &all.records {
        let job: CopyJob = decode_job(record.body.as_deref().expect("body")).expect("job");
        assert!(kinds.insert(job.kind.as_str()), "one job per kind");
        assert!(message_ids.insert(record.message_id.clone().expect("messageId")));
        assert_eq!(
            record.message_attributes["jobId"].string_value.as_deref(),
            Some(job.job_id.as_str())
        );
        assert_eq!(record.event_source_arn.as_deref(), Some(JOBS_QUEUE_ARN));
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert!(
            job.url().expect("url").expose().starts_with("https://"),
            "{}",
            job.job_id
        );
        assert!(job.job_id.ends_with(&format!("/{}", job.kind.as_str())));
        // The per-kind file carries the same single job.
        let single = sqs(&sample_events::copier_file(job.kind.as_str()));
        assert_eq!(single.records.len(), 1);
        assert_eq!(single.records[0].body, record.body);
    }
    assert_eq!(
        kinds,
        BTreeSet::from([
            "chat",
            "document",
            "recording",
            "rtcstats",
            "screenshots",
            "transcription",
            "video_segment"
        ])
    );
}

fn json(resp: &lambda_http::Response<lambda_http::Body>) -> Value {
    serde_json::from_slice(resp.body().as_ref()).expect("JSON response")
}

/// The copier as deployed (`wiring::copier`, production configuration: no development
/// origin, no provider API configured) over fresh tables: its handler, copies table and bucket.
async fn deployed_copier() -> (meeting_hooks::aws::wiring::Copier, String, String) {
    let emu = emulator();
    let table = emu.table(&meeting_hooks::schema::COPIES).await;
    let bucket = emu.bucket().await;
    let queue_url = emu.queue().await;
    let env: std::collections::HashMap<String, String> = [
        ("COPIES_TABLE", table.as_str()),
        ("RECORDINGS_BUCKET", bucket.as_str()),
        ("JOBS_QUEUE_URL", queue_url.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (handler, _) = meeting_hooks::aws::wiring::copier(&emu.sdk, &env).expect("wiring");
    (handler, table, bucket)
}

fn invocation() -> meeting_hooks::copier::sqs::Invocation {
    meeting_hooks::copier::sqs::Invocation {
        request_id: "sample".into(),
        stop_at: tokio::time::Instant::now() + Duration::from_secs(60),
    }
}

#[tokio::test]
async fn copier_samples_go_through_the_copier_handler() {
    use meeting_hooks::copier::sqs::handle_batch;

    // The catalogue's links expired long ago, so each job is refused permanently before any
    // request is made: acknowledged (no batch item failure, no DLQ), and recorded as failed
    // with the reason.
    let emu = emulator();
    let (service, table, bucket) = deployed_copier().await;
    let event = sqs("copier/all-kinds.json");
    let ids: Vec<String> = event
        .records
        .iter()
        .map(|r| {
            decode_job(r.body.as_deref().unwrap_or_default())
                .expect("job")
                .job_id
        })
        .collect();
    let response = handle_batch(&service, event, &invocation()).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    let items = emu.scan(&table).await;
    assert_eq!(items.len(), ids.len());
    for id in &ids {
        let item = items
            .iter()
            .find(|i| i.get("jobId").and_then(|v| v.as_s().ok()) == Some(id))
            .unwrap_or_else(|| panic!("no copy state for {id}"));
        let state = meeting_hooks::aws::copies::status_of(item).expect("state");
        assert!(
            matches!(&state, meeting_hooks::copier::state::CopyStatus::Failed { permanent: true, reason } if reason.contains("expired")),
            "{id}: {state:?}"
        );
    }
    let listed = emu
        .s3()
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.key_count(), Some(0), "nothing was fetched");
}

/// Delivers every sample in `files` twice through `service`: each is stored the first time
/// and a duplicate the second.
async fn deliver_twice(
    service: &IngestService<DynamoEventStore, SqsJobQueue, S3BlobStore>,
    files: &[String],
) {
    for round in ["stored", "duplicate"] {
        for rel in files {
            let resp = http::handle(service, request(rel)).await;
            let body = json(&resp);
            assert_eq!(resp.status(), 200, "{rel}: {body}");
            assert_eq!(body["status"], round, "{rel}");
        }
    }
}

// ---- Daily ----

#[test]
fn every_daily_type_has_a_signed_sample_wrapping_its_catalogue_example() {
    let examples = daily::catalogue::examples();
    assert_eq!(examples.len(), daily::TYPES.len());
    let verifier = DailyVerifier::new(
        &[SecretString::from(DAILY_SAMPLE_SECRET)],
        Duration::from_secs(0),
        None,
    )
    .expect("base64 secret");
    let other = DailyVerifier::new(
        &[SecretString::from("c29tZSBvdGhlciBzZWNyZXQ=")],
        Duration::from_secs(0),
        None,
    )
    .expect("base64 secret");
    let with_test = examples
        .iter()
        .map(|(t, b)| (*t, b.clone()))
        .chain([("test", DAILY_TEST_BODY.to_owned())]);
    for (event_type, body) in with_test {
        let rel = sample_events::daily_webhook_file(event_type);
        let req = request(&rel);
        assert_eq!(req.uri().path(), DAILY_WEBHOOK_PATH, "{rel}");
        let got = meeting_hooks::respond::body_bytes(req.body());
        assert_eq!(got, body.as_bytes(), "{rel}: not the example byte for byte");
        verifier
            .verify(req.headers(), got, SAMPLE_T)
            .unwrap_or_else(|e| panic!("{rel}: {e:?}"));
        assert!(other.verify(req.headers(), got, SAMPLE_T).is_err(), "{rel}");
    }
}

#[tokio::test]
async fn daily_samples_are_stored_exactly_once_and_make_the_copier_samples_jobs() {
    let emu = emulator();
    let tables = Tables::new().await;
    let service = |tolerance: i64| {
        tables.service(&[
            ("DAILY_WEBHOOK_SECRETS", DAILY_SAMPLE_SECRET.to_owned()),
            ("DAILY_SIGNATURE_TOLERANCE_SECONDS", tolerance.to_string()),
        ])
    };
    let test_sample = sample_events::daily_webhook_file("test");

    // The samples' time is long past the default tolerance: refused (401), nothing stored.
    let strict = service(DailyVerifier::DEFAULT_TOLERANCE_SECS as i64);
    let resp = http::handle(&strict, request(&test_sample)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json(&resp)["error"], "signature_stale");

    let service = service(now_secs() - SAMPLE_T + 3600);
    // Daily's creation test: 200, not an event.
    let resp = http::handle(&service, request(&test_sample)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(json(&resp)["status"], "ok");
    assert!(
        emu.scan(&tables.table).await.is_empty(),
        "the test is not stored"
    );

    let examples = daily::catalogue::examples();
    let files: Vec<String> = examples
        .iter()
        .map(|(t, _)| sample_events::daily_webhook_file(t))
        .collect();
    deliver_twice(&service, &files).await;
    let items = emu.scan(&tables.table).await;
    assert_eq!(items.len(), examples.len(), "one item per sample");
    let stored: BTreeSet<String> = items
        .iter()
        .map(|i| i[event_attr::KEY].as_s().expect("key").clone())
        .collect();
    let expected: BTreeSet<String> = (0..examples.len())
        .map(|i| format!("daily:ev-{i:02}"))
        .collect();
    assert_eq!(stored, expected, "keys namespaced by provider");
    assert!(
        items
            .iter()
            .all(|i| i[event_attr::PROVIDER].as_s().ok().map(String::as_str) == Some("daily"))
    );

    let queued: BTreeSet<String> = emu
        .drain(&tables.queue)
        .await
        .iter()
        .map(|b| decode_job(b).expect("queued job decodes").to_json())
        .collect();
    let samples: BTreeSet<String> = sqs(DAILY_COPIER_FILE)
        .records
        .iter()
        .map(|r| {
            decode_job(r.body.as_deref().expect("body"))
                .expect("job")
                .to_json()
        })
        .collect();
    assert_eq!(queued.len(), 2, "the recording and the transcript");
    assert_eq!(queued, samples);
}

#[tokio::test]
async fn daily_copier_samples_wait_for_an_api_key_rather_than_fail() {
    use meeting_hooks::copier::sqs::handle_batch;

    // No Daily API key configured: every job fails retryably (kept in the queue, the DLQ after
    // the last attempt), never acknowledged as failed for good, and nothing is fetched. The
    // samples' recordings are from 2024 and long gone from Daily: here they are a day old.
    let emu = emulator();
    let (service, table, bucket) = deployed_copier().await;
    let mut event = sqs(DAILY_COPIER_FILE);
    for record in &mut event.records {
        let mut job = decode_job(record.body.as_deref().expect("body")).expect("job");
        job.link_expires_at = meeting_hooks::respond::now_ms() + 86_400_000;
        record.body = Some(job.to_json());
    }
    let records = event.records.len();
    let response = handle_batch(&service, event, &invocation()).await;
    assert_eq!(
        response.batch_item_failures.len(),
        records,
        "every record kept"
    );
    for item in emu.scan(&table).await {
        let state = meeting_hooks::aws::copies::status_of(&item).expect("state");
        assert!(
            !matches!(
                state,
                meeting_hooks::copier::state::CopyStatus::Failed {
                    permanent: true,
                    ..
                }
            ),
            "{state:?}"
        );
    }
    let listed = emu
        .s3()
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.key_count(), Some(0));
}

// ---- VideoSDK ----

fn videosdk_public_key() -> String {
    meeting_hooks::providers::videosdk::keys::public_pem_of(VIDEOSDK_SAMPLE_KEY)
        .expect("public half")
}

#[test]
fn every_videosdk_sample_is_signed_over_its_raw_bytes() {
    use meeting_hooks::providers::videosdk::{VideoSdkVerifier, keys};
    let verifier =
        VideoSdkVerifier::new(keys::public_keys_in(&videosdk_public_key()).expect("key"));
    let (other, _) = keys::generate_pem_pair().expect("pair");
    let other = VideoSdkVerifier::new(
        keys::public_keys_in(&keys::public_pem_of(&other).expect("public")).expect("key"),
    );
    let bodies = sample_events::videosdk_bodies();
    assert_eq!(
        bodies.len(),
        meeting_hooks::providers::videosdk::TYPES.len() + 1
    );
    for (name, body) in bodies {
        let rel = sample_events::videosdk_webhook_file(&name);
        let req = request(&rel);
        assert_eq!(req.uri().path(), VIDEOSDK_WEBHOOK_PATH, "{rel}");
        let got = meeting_hooks::respond::body_bytes(req.body());
        assert_eq!(got, body.as_bytes(), "{rel}: not the example byte for byte");
        verifier
            .verify(req.headers(), got)
            .unwrap_or_else(|e| panic!("{rel}: {e:?}"));
        assert!(other.verify(req.headers(), got).is_err(), "{rel}");
    }
}

#[tokio::test]
async fn videosdk_samples_are_stored_exactly_once_and_make_the_copier_samples_jobs() {
    let emu = emulator();
    let tables = Tables::new().await;
    let service = tables.service(&[("VIDEOSDK_PUBLIC_KEYS", videosdk_public_key())]);
    let bodies = sample_events::videosdk_bodies();
    let files: Vec<String> = bodies
        .iter()
        .map(|(n, _)| sample_events::videosdk_webhook_file(n))
        .collect();
    deliver_twice(&service, &files).await;
    let items = emu.scan(&tables.table).await;
    assert_eq!(items.len(), bodies.len(), "one item per sample");
    for item in &items {
        let key = item[event_attr::KEY].as_s().expect("key");
        assert!(key.starts_with("videosdk:sha256:"), "{key}");
        assert_eq!(
            item[event_attr::PROVIDER].as_s().map(String::as_str),
            Ok("videosdk")
        );
    }
    // VideoSDK's events carry no time: the receive time stands in, so the samples (made at
    // SAMPLE_T) and what ingest makes now differ there and only there.
    let timeless = |b: &str| {
        let mut job = decode_job(b).expect("job decodes");
        assert_eq!(
            job.link_expires_at - job.source.timestamp,
            meeting_hooks::providers::videosdk::LINK_VALIDITY_MS
        );
        job.link_expires_at = 0;
        job.source.timestamp = 0;
        job.to_json()
    };
    let queued: BTreeSet<String> = emu
        .drain(&tables.queue)
        .await
        .iter()
        .map(|b| timeless(b))
        .collect();
    let samples: BTreeSet<String> = sqs(VIDEOSDK_COPIER_FILE)
        .records
        .iter()
        .map(|r| timeless(r.body.as_deref().expect("body")))
        .collect();
    assert_eq!(
        queued.len(),
        2,
        "the recording, from the catalogue and as documented"
    );
    assert_eq!(queued, samples);
    let ids: BTreeSet<String> = samples
        .iter()
        .map(|j| decode_job(j).expect("job").job_id)
        .collect();
    assert_eq!(ids.len(), 1, "one file: one copy job id");
}

// ---- Self-hosted Jitsi (Prosody's events) ----

#[tokio::test]
async fn jitsi_samples_carry_the_token_and_are_stored_exactly_once() {
    let emu = emulator();
    let tables = Tables::new().await;
    let service = tables.service(&[("JITSI_TOKENS", JITSI_SAMPLE_TOKEN.to_owned())]);
    let examples = meeting_hooks::providers::jitsi::catalogue::examples();
    for (name, body) in &examples {
        let rel = sample_events::jitsi_webhook_file(name);
        let req = request(&rel);
        assert_eq!(req.uri().path(), sample_events::jitsi_path(name), "{rel}");
        assert!(
            req.uri().path().starts_with("/webhooks/jitsi/events/"),
            "{rel}"
        );
        assert_eq!(
            meeting_hooks::respond::body_bytes(req.body()),
            body.as_bytes(),
            "{rel}"
        );
    }
    // Another token: refused, nothing stored.
    let mut forged = request(&sample_events::jitsi_webhook_file(examples[0].0));
    forged.headers_mut().insert(
        "authorization",
        ::http::HeaderValue::from_static("Bearer someone-elses-token-123"),
    );
    let resp = http::handle(&service, forged).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json(&resp)["error"], "authorization_mismatch");
    let files: Vec<String> = examples
        .iter()
        .map(|(n, _)| sample_events::jitsi_webhook_file(n))
        .collect();
    deliver_twice(&service, &files).await;
    let items = emu.scan(&tables.table).await;
    assert_eq!(items.len(), examples.len(), "one item per sample");
    assert!(items.iter().all(|i| {
        i[event_attr::KEY]
            .as_s()
            .is_ok_and(|k| k.starts_with("jitsi:sha256:"))
    }));
    // Presence in provider-neutral words, stored with each item.
    let presences: BTreeSet<&str> = items
        .iter()
        .filter_map(|i| i.get(event_attr::PRESENCE).and_then(|v| v.as_s().ok()))
        .map(String::as_str)
        .collect();
    assert_eq!(
        presences,
        BTreeSet::from(["joined", "left", "session-ended", "session-started"])
    );
    assert!(
        emu.drain(&tables.queue).await.is_empty(),
        "no files in Prosody's events"
    );
}
