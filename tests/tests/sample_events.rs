//! The sample events in `events/`: committed files equal what the generator makes, every JaaS
//! event type has one, and the webhook samples go through the real ingest handler against the
//! emulator (each stored exactly once; the queued jobs are the ones in the SQS samples).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use integration_tests::sample_events::{
    self, JOBS_QUEUE_ARN, SAMPLE_AUTHORIZATION, SAMPLE_SECRET, SAMPLE_T, SETTINGS_PATH,
    WEBHOOK_PATH,
};
use integration_tests::{emulator, workspace_root};
use meeting_hooks::aws::{blobs::S3BlobStore, events::DynamoEventStore, queue::SqsJobQueue};
use meeting_hooks::ingest::{IngestConfig, IngestService, http};
use meeting_hooks::jaas::{EventType, JaasVerifier, catalogue};
use meeting_hooks::jobs::{CopyJob, decode_job};
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
    for dir in ["webhooks", "settings", "copier"] {
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

#[tokio::test]
async fn webhook_samples_are_stored_exactly_once_by_the_ingest_handler() {
    let emu = emulator();
    let table = emu.table(&EVENTS).await;
    let queue = emu.queue().await;
    let bucket = emu.bucket().await;
    let env = |tolerance: i64| {
        [
            ("EVENTS_TABLE", table.clone()),
            ("JOBS_QUEUE_URL", queue.clone()),
            ("PAYLOAD_BUCKET", bucket.clone()),
            ("JAAS_WEBHOOK_SECRETS", SAMPLE_SECRET.to_owned()),
            ("JAAS_AUTHORIZATION", SAMPLE_AUTHORIZATION.to_owned()),
            ("SIGNATURE_TOLERANCE_SECONDS", tolerance.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect::<std::collections::HashMap<_, _>>()
    };
    let service = |tolerance: i64| {
        let config = IngestConfig::from_env(&env(tolerance)).expect("config");
        IngestService::new(
            DynamoEventStore::new(emu.dynamodb(), &table),
            SqsJobQueue::new(emu.sqs(), &queue),
            S3BlobStore::new(emu.s3(), &bucket),
            &config,
        )
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

    let items = emu.scan(&table).await;
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
        .drain(&queue)
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

#[tokio::test]
async fn copier_samples_go_through_the_copier_handler() {
    use meeting_hooks::aws::{copies::DynamoCopyStore, objects::S3MultipartSink};
    use meeting_hooks::copier::CopierConfig;
    use meeting_hooks::copier::service::CopyService;
    use meeting_hooks::copier::sqs::{Invocation, JobHandler, handle_batch};

    // Production configuration (no development origin). The catalogue's links expired long
    // ago, so each job is refused permanently before any request is made: acknowledged (no
    // batch item failure, no DLQ), and recorded as failed with the reason.
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
    let config = CopierConfig::from_env(&env).expect("copier config");
    let service = CopyService::new(
        DynamoCopyStore::new(emu.dynamodb(), &table),
        S3MultipartSink::new(emu.s3(), &bucket),
        config.origin().expect("origin"),
        config.settings(),
    );
    let service = JobHandler::new(
        service,
        meeting_hooks::aws::queue::SqsJobQueue::new(emu.sqs(), &queue_url),
        config.retry_backoff,
    );
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
    let invocation = Invocation {
        request_id: "sample".into(),
        stop_at: tokio::time::Instant::now() + Duration::from_secs(60),
    };
    let response = handle_batch(&service, event, &invocation).await;
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
