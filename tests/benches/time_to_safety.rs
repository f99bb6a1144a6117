//! Time to safety (harness = false): a signed RECORDING_UPLOADED received by webhook-ingest
//! until the verified object is in S3, for a 256 MiB recording, first without faults, then with
//! the origin cutting the connection once half-way. Both runs use the production wiring
//! (`meeting_hooks::aws::wiring`) against moto, and a queue with the template's visibility
//! timeout consumed the way the SQS event source mapping does (successes deleted, failures left
//! to come back). The run without faults is the floor; the target is the cut run within 1.5× of it.
//!
//! ```text
//! ./dev bench time_to_safety          # = cargo bench -p integration-tests --bench time_to_safety [-- MiB]
//! ```
//!
//! A run that is not safe within 10× the floor (plus 60 s) is stopped and reported as such:
//! before the copier retried inside the invocation, the cut run waited the queue's 5400 s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use integration_tests::origin::{Route, TestOrigin};
use integration_tests::{emulator, unique};
use lambda_http::Body;
use meeting_hooks::aws::queue::lambda_event;
use meeting_hooks::aws::wiring;
use meeting_hooks::copier::sqs::{Invocation, handle_batch};
use meeting_hooks::ingest::http as ingest_http;
use meeting_hooks::jaas::signature::signature_header;
use meeting_hooks::respond::now_ms;
use meeting_hooks::schema::{self, JOBS_QUEUE};
use serde_json::json;
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;
const SECRET: &str = "whsec_time_to_safety";

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "benchmark skipped: run it with `cargo bench -p integration-tests --bench time_to_safety`"
        );
        return;
    }
    let mib: u64 = args[1..].iter().find_map(|a| a.parse().ok()).unwrap_or(256);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(mib));
}

/// A deterministic file on disk (never in the repository) and its SHA-256.
fn generate(mib: u64) -> (PathBuf, String) {
    use std::io::Write;
    let dir = PathBuf::from("/tmp/time-to-safety");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("{mib}.mp4"));
    let mut hasher = Sha256::new();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("file"));
    let mut block = vec![0u8; MIB as usize];
    for i in 0..mib {
        for (j, b) in block.iter_mut().enumerate() {
            *b = ((i as usize).wrapping_mul(131) ^ j.wrapping_mul(31)) as u8;
        }
        hasher.update(&block);
        out.write_all(&block).expect("write");
    }
    out.flush().expect("flush");
    (path, hex::encode(hasher.finalize()))
}

async fn run(mib: u64) {
    let (path, sha) = generate(mib);
    let origin = TestOrigin::start().await;
    let plain = Route::disk(path.clone(), mib * MIB);
    let floor = once("no fault", &origin, plain.clone(), &sha, None).await;
    let cut = once(
        "connection cut once half-way",
        &origin,
        plain.truncated(1, mib * MIB / 2),
        &sha,
        Some(floor * 10 + Duration::from_secs(60)),
    )
    .await;
    let ratio = cut.as_secs_f64() / floor.as_secs_f64();
    println!(
        "\ntime to safety, {mib} MiB: no fault {:.2} s (floor) | one cut {:.2} s | ratio {ratio:.2}× (target ≤ 1.5×) {}",
        floor.as_secs_f64(),
        cut.as_secs_f64(),
        if ratio <= 1.5 { "MET" } else { "NOT MET" }
    );
}

/// One meeting: returns the time from the webhook to the verified object.
async fn once(
    label: &str,
    origin: &TestOrigin,
    route: Route,
    sha: &str,
    cap: Option<Duration>,
) -> Duration {
    let emu = emulator();
    let events = emu.table(&schema::EVENTS).await;
    let copies = emu.table(&schema::COPIES).await;
    let bucket = emu.bucket().await;
    let payloads = emu.bucket().await;
    let sqs = emu.sqs();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("tts"))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            JOBS_QUEUE.visibility_timeout_secs.to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let (ingest, _) = wiring::ingest(
        &emu.sdk,
        &env(&[
            ("EVENTS_TABLE", &events),
            ("JOBS_QUEUE_URL", &queue_url),
            ("PAYLOAD_BUCKET", &payloads),
            ("JAAS_WEBHOOK_SECRETS", SECRET),
            // The test origin serves http on loopback (development policy, as the copier's).
            ("ALLOW_INSECURE_LOCAL_ORIGIN", "true"),
        ]),
    )
    .expect("ingest wiring");
    let (copier, config) = wiring::copier(
        &emu.sdk,
        &env(&[
            ("COPIES_TABLE", &copies),
            ("RECORDINGS_BUCKET", &bucket),
            ("JOBS_QUEUE_URL", &queue_url),
            ("ALLOW_INSECURE_LOCAL_ORIGIN", "true"),
        ]),
    )
    .expect("copier wiring");
    let link = origin.route(&format!("/{}.mp4", unique("rec")), route);
    let body = json!({
        "idempotencyKey": unique("tts"),
        "customerId": "c",
        "appId": "vpaas-magic-cookie-bench",
        "eventType": "RECORDING_UPLOADED",
        "sessionId": unique("session"),
        "timestamp": now_ms(),
        "fqn": "vpaas-magic-cookie-bench/room",
        "data": {"preAuthenticatedLink": link, "durationSec": 3600}
    })
    .to_string();

    let started = Instant::now();
    let request = ::http::Request::builder()
        .method("POST")
        .uri("/webhooks/jaas")
        .header(
            "x-jaas-signature",
            signature_header(SECRET, now_ms() / 1000, body.as_bytes()),
        )
        .body(Body::Text(body))
        .expect("request");
    let answer = ingest_http::handle(&ingest, request).await;
    assert_eq!(answer.status(), 200, "webhook stored");

    // The event source mapping: batch size 1, successes deleted, failures left in flight.
    let mut invocations = 0u32;
    let key = loop {
        if let Some(cap) = cap
            && started.elapsed() > cap
        {
            println!(
                "{label}: not safe after {:.0} s (stopped; the message waits the queue's {} s visibility timeout)",
                started.elapsed().as_secs_f64(),
                JOBS_QUEUE.visibility_timeout_secs
            );
            return started.elapsed();
        }
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let Some(m) = received.messages.unwrap_or_default().into_iter().next() else {
            continue;
        };
        invocations += 1;
        let event = lambda_event(std::slice::from_ref(&m), &queue_url);
        let invocation = Invocation::with_budget(
            format!("bench-{invocations}"),
            Duration::from_secs(u64::from(schema::COPIER_TIMEOUT_SECS)),
            config.deadline_margin,
        );
        let response = handle_batch(&copier, event, &invocation).await;
        if response.batch_item_failures.is_empty() {
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle.unwrap_or_default())
                .send()
                .await
                .expect("delete");
            let listed = emu
                .s3()
                .list_objects_v2()
                .bucket(&bucket)
                .send()
                .await
                .expect("list")
                .contents
                .unwrap_or_default();
            break listed[0].key.clone().expect("key");
        }
    };
    // Verified: the digest the copier computed while streaming, as tagged on the object.
    let tags = emu
        .s3()
        .get_object_tagging()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("tagging")
        .tag_set;
    let took = started.elapsed();
    assert!(
        tags.iter().any(|t| t.key == "sha256" && t.value == sha),
        "{label}: the object's SHA-256 matches the file"
    );
    println!(
        "{label}: safe after {:.2} s in {invocations} invocation(s)",
        took.as_secs_f64()
    );
    took
}
