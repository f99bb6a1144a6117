//! Read API benchmark: `./dev bench read` (`cargo bench -p integration-tests --bench read`).
//!
//! One JaaS meeting of 1,000 participants is written through the real ingest path (the real
//! DynamoDB, SQS and S3 adapters against moto_server), as signed deliveries: a ROOM_CREATED,
//! for each participant a join, a leave, a join again and (for nine in ten) a leave, a
//! RECORDING_UPLOADED and a ROOM_DESTROYED, in a fixed-seed shuffled order with one delivery
//! in ten sent twice (the same body and idempotency key: a true repeat). Then:
//!
//! 1. Attendance handler time: `read::http::answer` for `GET /v1/sessions/{id}/attendance`
//!    (authorization, routing, the real `DynamoReadIndex`, attendance, the JSON answer), p50
//!    and p99 over `BENCH_ROUNDS` rounds (default 30) after 3 warm-up rounds. Every answer is
//!    checked: 200 with 1,000 rows.
//! 2. Its floor in the same rounds: a bare paginated `Query` with a plain SDK client of the
//!    same items (the `bySession` index, the same key condition), every attribute, all pages,
//!    nothing done with them; and the same bare `Query` with the read's own projection.
//!    Beside them, the same `answer` over the same pages held in memory: the handler's own
//!    work (attendance and the JSON answer) without the emulator.
//! 3. Bytes read: the DynamoDB response bodies' bytes of each, counted by an SDK interceptor.
//! 4. AWS calls per answer (room's sessions, timeline, attendance, files), counted by the same
//!    interceptor on the read API's clients, with each `Query` page and its item count, beside
//!    the floor the issue states: one `Query` page sequence per answer, plus one
//!    `BatchGetItem` for files (and one room `Query` sequence for a provider whose file events
//!    name no session). The recording's copy state is written as the copier leaves a copied
//!    file, so that the files answer also presigns its download link (locally: no call).
//!
//! Every figure printed is measured in the run that prints it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method};
use integration_tests::emulator;
use meeting_hooks::auth::BearerTokens;
use meeting_hooks::aws::read::{DynamoCopyReader, DynamoReadIndex, EVENT_FIELDS, S3Presigner};
use meeting_hooks::aws::{blobs::S3BlobStore, events::DynamoEventStore, queue::SqsJobQueue};
use meeting_hooks::ingest::{IngestConfig, IngestOutcome, IngestService};
use meeting_hooks::jaas::catalogue;
use meeting_hooks::jaas::signature::signature_header;
use meeting_hooks::read::http::{ReadApi, answer};
use meeting_hooks::read::model::{Order, Page, Position, TimeRange};
use meeting_hooks::read::ports::{ReadError, RoomIndex, SessionIndex};
use meeting_hooks::read::service::ReadService;
use meeting_hooks::schema::{self, EVENTS_BY_SESSION, copy_attr as c, event_attr as a};
use serde_json::Value;

const JAAS_SECRET: &str = "whsec_read_benchmark";
const READ_TOKEN: &str = "read-benchmark-token-0123456789";
const PARTICIPANTS: usize = 1_000;
/// One participant in this many leaves no final leave (its end is the meeting's end).
const NO_FINAL_LEAVE_EVERY: usize = 10;
/// One delivery in this many is sent twice.
const REPEAT_EVERY: usize = 10;
const SEED: u64 = 0x5eed_0fa7_7e4d_a9b1;
/// Deliveries in flight at once while writing the meeting.
const INGEST_CONCURRENCY: usize = 8;
const WARM_UP: usize = 3;
const SESSION_ID: &str = "6f1d2c3b-4a59-4e8d-9c7b-0a1b2c3d4e5f";
/// The meeting starts here (2023-11-14T22:13:20Z); the data is the same in every run.
const START_MS: i64 = 1_700_000_000_000;

fn rounds() -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(30)
}

/// xorshift64: a fixed-seed order and choice of repeats, the same in every run.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).expect("index");
            v.swap(i, j);
        }
    }
}

/// The catalogue's example of `event_type`, as this meeting's event `key` at `at_ms`.
fn jaas_event(event_type: &str, key: &str, at_ms: i64) -> Value {
    let mut v: Value =
        serde_json::from_str(&catalogue::example(event_type).body).expect("catalogue JSON");
    let app = v["appId"].as_str().expect("appId").to_owned();
    v["idempotencyKey"] = key.into();
    v["sessionId"] = SESSION_ID.into();
    v["timestamp"] = at_ms.into();
    v["fqn"] = format!("{app}/read-bench").into();
    if let Some(data) = v["data"].as_object_mut() {
        data.remove("isBreakout");
        data.remove("breakoutRoomId");
        if data.contains_key("conference") {
            data.insert(
                "conference".into(),
                format!("read-bench@conference.{app}.8x8.vc").into(),
            );
        }
    }
    v
}

fn presence(event_type: &str, key: &str, at_ms: i64, p: usize) -> String {
    let mut v = jaas_event(event_type, key, at_ms);
    let data = v["data"].as_object_mut().expect("participant data");
    let pid = format!("{:08x}", 0x1000_0000 + p);
    data.insert("name".into(), format!("Participant {p:04}").into());
    data.insert("id".into(), format!("user-{p:04}").into());
    data.insert(
        "email".into(),
        format!("participant{p:04}@example.com").into(),
    );
    data.insert("participantId".into(), pid.clone().into());
    data.insert(
        "participantJid".into(),
        format!("{pid}-0000-4000-8000-000000000000@stage.8x8.vc").into(),
    );
    data.insert(
        "moderator".into(),
        if p == 0 { "true" } else { "false" }.into(),
    );
    v.to_string()
}

/// The meeting's events, one body each (unique idempotency keys).
fn meeting(rng: &mut XorShift) -> Vec<String> {
    const MIN: i64 = 60_000;
    let mut bodies = vec![jaas_event("ROOM_CREATED", "rb-room-created", START_MS).to_string()];
    let mut last = START_MS;
    for p in 0..PARTICIPANTS {
        let r = |rng: &mut XorShift, spread_min: u64| {
            MIN + i64::try_from(rng.below(spread_min * 60_000)).expect("ms")
        };
        let join = START_MS + r(rng, 60);
        let leave = join + r(rng, 30);
        // Back after more than the rejoin gap (10 s): a second interval.
        let rejoin = leave + r(rng, 10);
        bodies.push(presence(
            "PARTICIPANT_JOINED",
            &format!("rb-{p}-j1"),
            join,
            p,
        ));
        bodies.push(presence(
            "PARTICIPANT_LEFT",
            &format!("rb-{p}-l1"),
            leave,
            p,
        ));
        bodies.push(presence(
            "PARTICIPANT_JOINED",
            &format!("rb-{p}-j2"),
            rejoin,
            p,
        ));
        last = last.max(rejoin);
        if p % NO_FINAL_LEAVE_EVERY != NO_FINAL_LEAVE_EVERY - 1 {
            let leave2 = rejoin + r(rng, 30);
            bodies.push(presence(
                "PARTICIPANT_LEFT",
                &format!("rb-{p}-l2"),
                leave2,
                p,
            ));
            last = last.max(leave2);
        }
    }
    bodies.push(jaas_event("RECORDING_UPLOADED", "rb-recording", last + MIN).to_string());
    bodies.push(jaas_event("ROOM_DESTROYED", "rb-room-destroyed", last + 2 * MIN).to_string());
    bodies
}

/// What the interceptor saw since the last `take`.
#[derive(Debug, Default)]
struct Tally {
    /// Requests the service answered (each attempt), by `service.Operation`. Counted after
    /// transmit: presigning runs the interceptors up to transmit but sends nothing.
    calls: BTreeMap<String, u32>,
    /// DynamoDB response body bytes.
    bytes: u64,
    /// Each `Query` page: its item count and whether another page followed.
    pages: Vec<(i32, bool)>,
    /// Items `BatchGetItem` returned.
    batch_items: usize,
}

impl Tally {
    fn calls(&self) -> String {
        if self.calls.is_empty() {
            return "none".into();
        }
        self.calls
            .iter()
            .map(|(k, v)| format!("{v}x {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn items(&self) -> i64 {
        self.pages.iter().map(|(n, _)| i64::from(*n)).sum()
    }

    /// Page sequences: each ends with a page that has no next key, or where the reader
    /// stopped.
    fn sequences(&self) -> usize {
        self.pages.iter().filter(|(_, more)| !more).count()
            + usize::from(self.pages.last().is_some_and(|(_, more)| *more))
    }

    fn page_list(&self) -> String {
        let sizes: Vec<String> = self.pages.iter().map(|(n, _)| n.to_string()).collect();
        format!("{} ({} items)", self.pages.len(), sizes.join("+"))
    }
}

/// Counts calls, response bytes, `Query` pages and items: an SDK interceptor on the clients.
#[derive(Debug, Default, Clone)]
struct Meter(Arc<Mutex<Tally>>);

impl Meter {
    fn take(&self) -> Tally {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "read-meter"
    }

    fn read_after_transmit(
        &self,
        _ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            *self
                .0
                .lock()
                .expect("lock")
                .calls
                .entry(format!("{}.{}", m.service(), m.name()))
                .or_default() += 1;
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        ctx: &AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The body is in memory by now (read whole before a non-streaming deserialization).
        let response = ctx.response();
        let bytes = response.body().bytes().map_or_else(
            || {
                response
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            },
            |b| b.len() as u64,
        );
        let mut t = self.0.lock().expect("lock");
        t.bytes += bytes;
        if let Ok(out) = ctx.output_or_error() {
            if let Some(q) = out.downcast_ref::<QueryOutput>() {
                t.pages.push((q.count(), q.last_evaluated_key().is_some()));
            } else if let Some(b) = out.downcast_ref::<BatchGetItemOutput>() {
                t.batch_items += b.responses().map_or(0, |r| r.values().map(Vec::len).sum());
            }
        }
        Ok(())
    }
}

/// The session's pages as `DynamoReadIndex` gave them, served again from memory (cloned, as
/// a read builds them anew): the handler's work without the emulator.
#[derive(Debug)]
struct Replay(Vec<Page>);

impl SessionIndex for Replay {
    async fn session_page(
        &self,
        _session_id: &str,
        _from_ms: Option<i64>,
        after: Option<&Position>,
    ) -> Result<Page, ReadError> {
        let i = match after {
            None => 0,
            Some(p) => {
                1 + self
                    .0
                    .iter()
                    .position(|page| page.next.as_ref() == Some(p))
                    .expect("a position this index gave")
            }
        };
        Ok(self.0[i].clone())
    }
}

impl RoomIndex for Replay {
    async fn room_page(
        &self,
        _room_key: &str,
        _range: TimeRange,
        _order: Order,
        _after: Option<&Position>,
        _limit: Option<u32>,
    ) -> Result<Page, ReadError> {
        // Attendance reads no room.
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (p50, p99) in ms.
fn percentiles(times: &[Duration]) -> (f64, f64) {
    let mut t = times.to_vec();
    t.sort_unstable();
    let pct = |p: f64| {
        let i = ((t.len() as f64 * p).ceil() as usize).clamp(1, t.len()) - 1;
        ms(t[i])
    };
    (pct(0.50), pct(0.99))
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

/// The bare floor: every page of the session's items from the `bySession` index with the
/// read's key condition, nothing done with them (with the read's projection when asked).
async fn bare_query(ddb: &aws_sdk_dynamodb::Client, table: &str, projected: bool) -> usize {
    let mut items = 0;
    let mut start = None;
    loop {
        let mut q = ddb
            .query()
            .table_name(table)
            .index_name(EVENTS_BY_SESSION)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", a::SESSION_ID)
            .expression_attribute_values(":s", AttributeValue::S(SESSION_ID.to_owned()))
            .set_exclusive_start_key(start);
        if projected {
            let mut names = Vec::new();
            for (i, field) in EVENT_FIELDS.iter().enumerate() {
                let alias = format!("#f{i}");
                q = q.expression_attribute_names(&alias, *field);
                names.push(alias);
            }
            q = q.projection_expression(names.join(", "));
        }
        let out = q.send().await.expect("bare Query");
        items += out.items().len();
        start = out.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// One signed delivery of the meeting, as the ingest bench signs JaaS's.
fn signed(body: &str, now_ms: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    let sig = signature_header(JAAS_SECRET, now_ms / 1000, body.as_bytes());
    h.insert(
        "x-jaas-signature",
        HeaderValue::from_str(&sig).expect("header"),
    );
    h
}

fn accepted(o: &IngestOutcome) -> Option<&'static str> {
    match o {
        IngestOutcome::Stored | IngestOutcome::StoredWithNotes { .. } => Some("stored"),
        IngestOutcome::Duplicate => Some("repeat"),
        _ => None,
    }
}

/// Writes the meeting through the real ingest path; returns the number of unique events.
async fn write_meeting(emu: &integration_tests::Emulator, table: &str) -> usize {
    let queue = emu.queue().await;
    let payloads = emu.bucket().await;
    let env: std::collections::HashMap<String, String> = [
        ("JAAS_WEBHOOK_SECRETS", JAAS_SECRET),
        ("EVENTS_TABLE", table),
        ("JOBS_QUEUE_URL", &queue),
        ("PAYLOAD_BUCKET", &payloads),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let config = IngestConfig::from_env(&env).expect("ingest config");
    let ingest = IngestService::new(
        DynamoEventStore::new(emu.dynamodb(), table),
        SqsJobQueue::new(emu.sqs(), &queue),
        S3BlobStore::new(emu.s3(), &payloads),
        &config,
    );
    let mut rng = XorShift(SEED);
    let bodies = meeting(&mut rng);
    let unique = bodies.len();
    let mut picks: Vec<usize> = (0..unique).collect();
    rng.shuffle(&mut picks);
    let mut deliveries: Vec<&str> = bodies.iter().map(String::as_str).collect();
    deliveries.extend(
        picks[..unique / REPEAT_EVERY]
            .iter()
            .map(|&i| bodies[i].as_str()),
    );
    rng.shuffle(&mut deliveries);

    let started = Instant::now();
    let ingest = &ingest;
    let outcomes: Vec<(&str, IngestOutcome)> = futures::stream::iter(deliveries.iter())
        .map(|body| async move {
            let now = meeting_hooks::respond::now_ms();
            let outcome = ingest
                .handle(
                    "jaas",
                    &Method::POST,
                    &signed(body, now),
                    body.as_bytes(),
                    now,
                )
                .await;
            (*body, outcome)
        })
        .buffer_unordered(INGEST_CONCURRENCY)
        .collect()
        .await;
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    let mut retried = 0;
    for (body, outcome) in outcomes {
        let mut outcome = outcome;
        // A repeat racing its first delivery may be told to come back (JaaS retries).
        let mut tries = 0;
        while accepted(&outcome).is_none() {
            tries += 1;
            assert!(tries <= 5, "delivery not accepted: {outcome:?}");
            retried += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = meeting_hooks::respond::now_ms();
            outcome = ingest
                .handle(
                    "jaas",
                    &Method::POST,
                    &signed(body, now),
                    body.as_bytes(),
                    now,
                )
                .await;
        }
        *tally
            .entry(accepted(&outcome).expect("accepted"))
            .or_default() += 1;
    }
    println!(
        "ingest: {} deliveries ({unique} events, {} sent twice), shuffled (seed {SEED:#x}), {INGEST_CONCURRENCY} in flight: {} stored, {} repeats, {retried} retried, {:.1} s",
        deliveries.len(),
        deliveries.len() - unique,
        tally.get("stored").copied().unwrap_or(0),
        tally.get("repeat").copied().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        tally.get("stored").copied(),
        Some(unique),
        "every event stored once"
    );
    unique
}

/// The read API on the real adapters (host-api's read half).
type Read = ReadApi<
    meeting_hooks::aws::read::DynamoReadIndex,
    meeting_hooks::aws::read::DynamoCopyReader,
    meeting_hooks::aws::read::S3Presigner,
>;

async fn get(api: &Read, path: &str, query: &str, headers: &HeaderMap) -> (u16, Value, usize) {
    let resp = answer(
        api,
        &Method::GET,
        path,
        query,
        headers,
        meeting_hooks::respond::now_ms(),
    )
    .await;
    let body: &[u8] = resp.body().as_ref();
    let v = serde_json::from_slice(body).unwrap_or(Value::Null);
    (resp.status().as_u16(), v, body.len())
}

fn attendance_rows(status: u16, v: &Value) -> usize {
    assert_eq!(status, 200, "attendance answered {status}: {v}");
    let rows = v["participants"].as_array().map_or(0, Vec::len);
    assert_eq!(rows, PARTICIPANTS, "attendance rows");
    rows
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is only a build check.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark skipped: run it with `cargo bench -p integration-tests --bench read`");
        return;
    }
    let emu = emulator();
    println!("== read API against moto_server at {}", emu.endpoint);
    let events = emu.table(&schema::EVENTS).await;
    let copies = emu.table(&schema::COPIES).await;
    let recordings = emu.bucket().await;
    let unique = write_meeting(emu, &events).await;

    // The read API as `aws::wiring::read_service` builds it, its clients carrying the meter.
    let meter = Meter::default();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&emu.sdk)
            .interceptor(meter.clone())
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&emu.sdk)
            .force_path_style(true)
            .interceptor(meter.clone())
            .build(),
    );
    let api: Read = ReadApi {
        service: ReadService::new(
            DynamoReadIndex::new(ddb.clone(), &events),
            DynamoCopyReader::new(ddb.clone(), &copies),
            S3Presigner::new(s3.clone(), &recordings),
            &recordings,
            300,
        ),
        tokens: BearerTokens::new(vec![READ_TOKEN.into()]),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {READ_TOKEN}")).expect("header"),
    );
    // The floor's client: the plain SDK client, the same meter.
    let floor = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&emu.sdk)
            .interceptor(meter.clone())
            .build(),
    );

    // The session as the room's list names it.
    let room_key = {
        let (status, v, _) = get(
            &api,
            &format!("/v1/sessions/{SESSION_ID}/timeline"),
            "",
            &headers,
        )
        .await;
        assert_eq!(status, 200, "timeline: {v}");
        v["session"]["roomKey"]
            .as_str()
            .expect("roomKey")
            .to_owned()
    };
    let room_query = format!("room={}", url_encode(&room_key));
    let (status, list, _) = get(&api, "/v1/sessions", &room_query, &headers).await;
    assert_eq!(status, 200, "sessions: {list}");
    let id = list["sessions"][0]["id"]
        .as_str()
        .expect("the session is listed")
        .to_owned();
    assert_eq!(id, SESSION_ID, "a JaaS session's API id is its session id");
    let attendance_path = format!("/v1/sessions/{id}/attendance");
    // The recording as the copier leaves it once copied, so that the files answer also
    // presigns a download (computed locally: no call).
    let (status, files, _) = get(&api, &format!("/v1/sessions/{id}/files"), "", &headers).await;
    assert_eq!(status, 200, "files: {files}");
    let job_id = files["files"][0]["jobId"]
        .as_str()
        .expect("the recording's job");
    emu.dynamodb()
        .put_item()
        .table_name(&copies)
        .item(c::JOB_ID, AttributeValue::S(job_id.to_owned()))
        .item(c::STATE, AttributeValue::S("copied".into()))
        .item(
            c::OBJECT_KEY,
            AttributeValue::S(format!("recordings/{job_id}.mp4")),
        )
        .item(c::BYTES, AttributeValue::N("73400320".into()))
        .send()
        .await
        .expect("copy state");
    // The same read API over the session's pages held in memory.
    let mut pages = Vec::new();
    let index = DynamoReadIndex::new(ddb.clone(), &events);
    loop {
        let after = pages.last().and_then(|p: &Page| p.next.clone());
        if !pages.is_empty() && after.is_none() {
            break;
        }
        let page = index
            .session_page(SESSION_ID, None, after.as_ref())
            .await
            .expect("a page");
        pages.push(page);
    }
    let replay = ReadApi {
        service: ReadService::new(
            Replay(pages),
            DynamoCopyReader::new(ddb.clone(), &copies),
            S3Presigner::new(s3, &recordings),
            &recordings,
            300,
        ),
        tokens: BearerTokens::new(vec![READ_TOKEN.into()]),
    };
    meter.take();

    // 1-3: attendance vs the floors, interleaved so both see the same machine.
    let n = rounds();
    let (mut ours, mut full, mut proj, mut cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ours_b, mut full_b, mut proj_b) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_pages, mut full_pages, mut proj_pages) =
        (Tally::default(), Tally::default(), Tally::default());
    let mut answer_bytes = 0;
    for round in 0..WARM_UP + n {
        let measured = round >= WARM_UP;
        for step in 0..4 {
            // Rotate which goes first.
            match (step + round) % 4 {
                0 => {
                    let started = Instant::now();
                    let resp = answer(
                        &api,
                        &Method::GET,
                        &attendance_path,
                        "",
                        &headers,
                        meeting_hooks::respond::now_ms(),
                    )
                    .await;
                    let took = started.elapsed();
                    let t = meter.take();
                    let body: &[u8] = resp.body().as_ref();
                    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                    attendance_rows(resp.status().as_u16(), &v);
                    answer_bytes = body.len();
                    if measured {
                        ours.push(took);
                        ours_b.push(t.bytes);
                        ours_pages = t;
                    }
                }
                which @ (1 | 2) => {
                    // 1: every attribute (the floor); 2: our projection.
                    let projected = which == 2;
                    let started = Instant::now();
                    let items = bare_query(&floor, &events, projected).await;
                    let took = started.elapsed();
                    let t = meter.take();
                    assert_eq!(items, unique, "the floor reads the session's items");
                    if measured {
                        let (times, bytes, pages) = if projected {
                            (&mut proj, &mut proj_b, &mut proj_pages)
                        } else {
                            (&mut full, &mut full_b, &mut full_pages)
                        };
                        times.push(took);
                        bytes.push(t.bytes);
                        *pages = t;
                    }
                }
                _ => {
                    let started = Instant::now();
                    let resp = answer(
                        &replay,
                        &Method::GET,
                        &attendance_path,
                        "",
                        &headers,
                        meeting_hooks::respond::now_ms(),
                    )
                    .await;
                    let took = started.elapsed();
                    let v: Value =
                        serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null);
                    attendance_rows(resp.status().as_u16(), &v);
                    if measured {
                        cpu.push(took);
                    }
                }
            }
        }
    }
    assert_eq!(ours_pages.items(), unique as i64, "ours reads every event");
    let (o50, o99) = percentiles(&ours);
    let (f50, f99) = percentiles(&full);
    let (p50, p99) = percentiles(&proj);
    let (c50, c99) = percentiles(&cpu);
    println!(
        "\n== attendance of {PARTICIPANTS} participants ({unique} events), n={n} rounds after {WARM_UP} warm-up, interleaved"
    );
    println!(
        "{:<44} {:>9} {:>9} {:>12}  Query pages",
        "", "p50 ms", "p99 ms", "bytes read"
    );
    let row = |label: &str, p50: f64, p99: f64, bytes: u64, t: &Tally| {
        println!(
            "{label:<44} {p50:>9.1} {p99:>9.1} {bytes:>12}  {}",
            t.page_list()
        );
    };
    row(
        "ours: answer(GET …/attendance), 200",
        o50,
        o99,
        median(&ours_b),
        &ours_pages,
    );
    row(
        "floor: bare Query, every attribute",
        f50,
        f99,
        median(&full_b),
        &full_pages,
    );
    row(
        "bare Query, our projection",
        p50,
        p99,
        median(&proj_b),
        &proj_pages,
    );
    println!(
        "{:<44} {c50:>9.1} {c99:>9.1} {:>12}  (no call)",
        "ours without the emulator: same pages, memory", "-"
    );
    println!(
        "ours / floor: p50 {:.2}x, p99 {:.2}x (target <= 1.5x); ours / projected Query: p50 {:.2}x, p99 {:.2}x",
        o50 / f50,
        o99 / f99,
        o50 / p50,
        o99 / p99
    );
    println!(
        "the handler's own work (the same answer over the same pages in memory) is {c50:.1} ms of ours' {o50:.1} ms at p50 ({:.1}%); the rest is the emulator answering the Query",
        100.0 * c50 / o50
    );
    println!(
        "ours asks for the {} attributes the answers use (a projection, never the payload): it reads {:.0}% of the floor's bytes; the answer is {answer_bytes} bytes of JSON",
        EVENT_FIELDS.len(),
        100.0 * median(&ours_b) as f64 / median(&full_b) as f64
    );

    // 4: AWS calls per answer.
    let files_floor = if meeting_hooks::providers::files_without_session("jaas") {
        "1 Query sequence + 1 room Query sequence + 1 BatchGetItem"
    } else {
        "1 Query sequence + 1 BatchGetItem"
    };
    println!("\n== AWS calls per answer (counted by an SDK interceptor on the read API's clients)");
    println!(
        "{:<11} {:>6}  {:<44} {:<32} floor",
        "answer", "status", "calls", "Query pages (items)"
    );
    let views: [(&str, String, String, &str); 4] = [
        (
            "sessions",
            "/v1/sessions".into(),
            room_query.clone(),
            "1 Query sequence",
        ),
        (
            "timeline",
            format!("/v1/sessions/{id}/timeline"),
            String::new(),
            "1 Query sequence",
        ),
        (
            "attendance",
            attendance_path.clone(),
            String::new(),
            "1 Query sequence",
        ),
        (
            "files",
            format!("/v1/sessions/{id}/files"),
            String::new(),
            files_floor,
        ),
    ];
    let mut files_note = String::new();
    for (name, path, query, floor_text) in views {
        meter.take();
        let (status, v, _) = get(&api, &path, &query, &headers).await;
        let t = meter.take();
        assert_eq!(status, 200, "{name}: {v}");
        let batches = t
            .calls
            .iter()
            .filter(|(k, _)| k.ends_with(".BatchGetItem"))
            .map(|(_, n)| *n)
            .sum::<u32>();
        let others = t
            .calls
            .keys()
            .filter(|k| !k.ends_with(".Query") && !k.ends_with(".BatchGetItem"))
            .count();
        let allowed_sequences = if name == "files" && files_floor.contains("room") {
            2
        } else {
            1
        };
        let within = t.sequences() <= allowed_sequences
            && batches <= u32::from(name == "files")
            && others == 0;
        if name == "files" {
            let links = v["files"].as_array().map_or(0, |f| {
                f.iter().filter(|f| f["download"].is_object()).count()
            });
            files_note = format!(
                "files: the BatchGetItem read {} copy state(s); {links} download link(s) presigned locally (no call)",
                t.batch_items
            );
        }
        println!(
            "{name:<11} {status:>6}  {:<44} {:<32} {floor_text}: {}",
            t.calls(),
            t.page_list(),
            if within {
                format!("{} sequence(s), within", t.sequences())
            } else {
                format!("{} sequence(s), ABOVE", t.sequences())
            }
        );
    }
    println!("{files_note}");
}

/// Percent-encodes a query value (the room key holds `/`).
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
