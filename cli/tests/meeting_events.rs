//! Meeting events through the real adapters on the emulator, with EventBridge refusing
//! PutEvents for a while: facts stored in the tables (events by the ingest's attribute names, a
//! copy through the copier's own state store) reach a subscriber of the bus, each once after
//! deduplication by `detail.id`, with nothing lost, and each matches its JSON Schema. A copy
//! flagged at risk (as the sweeper flags a job never queued) yields its `RecordingAtRisk`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use hooksctl::stack::resources::{self, Names};
use integration_tests::faults::{Fault, Faults};
use integration_tests::{emulator, unique};
use meeting_hooks::aws::copies::DynamoCopyStore;
use meeting_hooks::copier::ports::{AtRiskFlags, CopyStateStore};
use meeting_hooks::copier::state::CopyResult;
use meeting_hooks::jobs::{AtRisk, FileAbout, RiskCause};
use meeting_hooks::schema::{self, event_attr as a};

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An events-table item as ingest writes a presence event.
fn event_item(key: &str, presence: &str, name: &str, at: i64) -> HashMap<String, AttributeValue> {
    let mut item: HashMap<String, AttributeValue> = [
        (a::KEY, s(key)),
        (a::PROVIDER, s("daily")),
        (a::EVENT_TYPE, s("participant.joined")),
        (a::TIMESTAMP, n(at)),
        (a::RECEIVED_AT, n(at)),
        (a::SESSION_ID, s("mtg-events")),
        (a::FQN, s("daily:standup")),
        (a::ROOM, s("standup")),
        (a::PRESENCE, s(presence)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if !name.is_empty() {
        item.insert(
            a::PARTICIPANT.to_owned(),
            AttributeValue::M(
                [
                    ("participantId".to_owned(), s(&format!("p-{name}"))),
                    ("userId".to_owned(), s(&format!("u-{name}"))),
                    ("name".to_owned(), s(name)),
                    ("moderator".to_owned(), AttributeValue::Bool(false)),
                ]
                .into(),
            ),
        );
    }
    item
}

#[tokio::test(flavor = "multi_thread")]
async fn events_reach_the_subscriber_once_each_also_when_put_events_fails_for_a_while() {
    let emu = emulator();
    let faults = Faults::new();
    let sdk = faults.sdk(&emu.endpoint, "us-east-1");
    let prefix = unique("events");
    let names = Names::with_prefix(&prefix);
    let ddb = emu.dynamodb();
    for (spec, name) in [
        (&schema::EVENTS, &names.tables.events),
        (&schema::COPIES, &names.tables.copies),
    ] {
        spec.create(&ddb, name).await.expect("table");
    }
    let bus = resources::create_meeting_events(&emu.sdk, &names, &prefix)
        .await
        .expect("bus, rule, queues");
    let env: HashMap<String, String> = [
        ("EVENTS_TABLE", names.tables.events.as_str()),
        ("COPIES_TABLE", names.tables.copies.as_str()),
        ("RECORDINGS_BUCKET", "recordings"),
        ("EVENT_BUS_NAME", bus.bus_name.as_str()),
        ("MEETING_EVENTS_DLQ_URL", bus.dead_letter_queue_url.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    // The bus refuses (503) the first 12 PutEvents calls, the SDK's own retries included.
    faults.inject("events:PutEvents", Fault::Status(503), Some(12));
    let (publisher, config) =
        meeting_hooks::aws::wiring::meeting_events(&sdk, &env).expect("wiring");

    // What the meeting stored: Ana and Bo join, Bo leaves, the meeting ends, a recording is copied.
    for (key, presence, name, at) in [
        ("k-ana", "joined", "Ana", 1_000),
        ("k-bo", "joined", "Bo", 2_000),
        ("k-bo-left", "left", "Bo", 3_000),
        ("k-end", "session-ended", "", 4_000),
    ] {
        ddb.put_item()
            .table_name(&names.tables.events)
            .set_item(Some(event_item(key, presence, name, at)))
            .send()
            .await
            .expect("event stored");
    }
    let copies = DynamoCopyStore::new(ddb.clone(), &names.tables.copies);
    let now = meeting_hooks::respond::now_ms();
    copies
        .claim(
            "job-rec",
            "copier-1",
            now,
            now + 60_000,
            now / 1000 + 86_400,
        )
        .await
        .expect("claimed");
    let about = FileAbout {
        provider: "daily".into(),
        kind: "recording".into(),
        session_id: Some("mtg-events".into()),
        room_key: Some("daily:standup".into()),
        room: Some("standup".into()),
        tenant: None,
        event_key: Some("k-rec".into()),
    };
    copies
        .mark_copied(
            "job-rec",
            "copier-1",
            &CopyResult {
                key: "daily/standup/mtg-events/recording/rec.mp4".into(),
                bytes: 1234,
                sha256: "ab".repeat(32),
                objects: 1,
                about: Some(Box::new(about.clone())),
            },
            now,
        )
        .await
        .expect("copied");
    // A job the copier never saw, flagged with its link dying in 30 min (a new item), and
    // flagged again; a copied job is never flagged.
    let flag = |job_id: &str| AtRisk {
        job_id: job_id.into(),
        cause: RiskCause::LinkExpiring,
        reason: "never queued: found unsent by the sweeper".into(),
        link_expires_at_ms: now + 1_800_000,
        about: FileAbout {
            kind: "transcription".into(),
            ..about.clone()
        },
        at_ms: now,
    };
    assert!(copies.flag_at_risk(&flag("job-late")).await.expect("flag"));
    assert!(!copies.flag_at_risk(&flag("job-late")).await.expect("flag"));
    assert!(!copies.flag_at_risk(&flag("job-rec")).await.expect("flag"));

    // The local stand-in for the stream event source mappings, with the faulty bus.
    let follower = tokio::spawn({
        let streams = aws_sdk_dynamodbstreams::Client::new(&emu.sdk);
        let arns = bus.stream_arns.clone();
        async move {
            meeting_hooks::aws::meeting_events::follow_streams(
                streams,
                arns,
                &publisher,
                &config,
                Duration::from_millis(200),
            )
            .await;
        }
    });

    let sqs = emu.sqs();
    let mut received = 0;
    let mut by_id: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while by_id.len() < 6 {
        assert!(
            Instant::now() < deadline,
            "only {:?} arrived",
            by_id
                .values()
                .map(|e| &e["detail-type"])
                .collect::<Vec<_>>()
        );
        let out = sqs
            .receive_message()
            .queue_url(&bus.subscriber_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            received += 1;
            let event: serde_json::Value =
                serde_json::from_str(m.body().unwrap_or_default()).expect("event");
            let kind = event["detail-type"].as_str().expect("type").to_owned();
            integration_tests::contract::check_schema_file(
                &format!("schemas/events/{kind}.json"),
                &event["detail"],
            )
            .unwrap_or_else(|e| panic!("{e}"));
            by_id.insert(
                event["detail"]["id"].as_str().expect("id").to_owned(),
                event,
            );
        }
    }
    follower.abort();
    assert!(
        faults.count("events:PutEvents") > 12,
        "the bus really refused for a while"
    );
    let mut kinds: Vec<String> = by_id
        .values()
        .map(|e| e["detail-type"].as_str().unwrap_or_default().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "MeetingEnded",
            "ParticipantJoined",
            "ParticipantJoined",
            "ParticipantLeft",
            "RecordingAtRisk",
            "RecordingCopied"
        ]
    );
    assert!(received >= 6);
    let risk = by_id
        .values()
        .find(|e| e["detail-type"] == "RecordingAtRisk")
        .expect("at risk");
    assert_eq!(risk["detail"]["cause"], "link_expiring");
    assert_eq!(risk["detail"]["jobId"], "job-late");
    assert_eq!(risk["detail"]["kind"], "transcription");
    assert_eq!(
        risk["detail"]["linkExpiresAt"],
        meeting_hooks::time::iso(now + 1_800_000)
    );
    let copied = by_id
        .values()
        .find(|e| e["detail-type"] == "RecordingCopied")
        .expect("copied");
    assert_eq!(copied["detail"]["bytes"], 1234);
    assert_eq!(copied["detail"]["s3"]["bucket"], "recordings");
    assert_eq!(copied["detail"]["sessionId"], "mtg-events");
    // Nothing parked: the refusals were temporary.
    let parked = sqs
        .receive_message()
        .queue_url(&bus.dead_letter_queue_url)
        .wait_time_seconds(0)
        .send()
        .await
        .expect("receive");
    assert!(parked.messages().is_empty());

    // An operator's redrive: an event parked in the dead-letter queue is published again with
    // its id, and `tail-events` prints it as the subscriber receives it.
    let parked = meeting_hooks::meeting_events::MeetingEvent {
        id: "0123456789abcdef0123456789abcdef".into(),
        detail_type: "MeetingEnded",
        time_ms: now,
        detail: serde_json::json!({"id": "0123456789abcdef0123456789abcdef", "provider": "daily",
            "tenant": null, "room": "standup", "roomKey": "daily:standup", "sessionId": "mtg-parked",
            "occurredAt": meeting_hooks::time::iso(now), "eventKey": "k-parked"}),
    };
    use meeting_hooks::meeting_events::DeadLetters as _;
    meeting_hooks::aws::meeting_events::SqsDeadLetters::new(
        sqs.clone(),
        &bus.dead_letter_queue_url,
    )
    .park(&parked, "ValidationException")
    .await
    .expect("parked");
    let done =
        hooksctl::ops::meeting_events::redrive(&emu.sdk, &bus.dead_letter_queue_url, &bus.bus_name)
            .await
            .expect("redrive");
    assert_eq!((done.published, done.refused), (1, 0));
    let mut printed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&printed).contains("mtg-parked") {
        assert!(
            Instant::now() < deadline,
            "the redriven event never arrived"
        );
        hooksctl::ops::meeting_events::tail(
            &emu.sdk,
            &bus.subscriber_queue_url,
            false,
            false,
            &mut printed,
        )
        .await
        .expect("tail");
    }
    let line = String::from_utf8_lossy(&printed)
        .lines()
        .find(|l| l.contains("mtg-parked"))
        .expect("line")
        .to_owned();
    let event: serde_json::Value = serde_json::from_str(&line).expect("one JSON event per line");
    assert_eq!(event["detail"]["id"], parked.id.as_str());
}
