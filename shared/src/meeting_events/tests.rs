//! The publisher over in-memory ports: what each change means, stable ids, a bus that
//! throttles for a while, refuses for good, or is down.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::facts::ParticipantFacts;

/// A bus that answers from a script (then accepts), keeping what it accepted.
#[derive(Default)]
struct Bus {
    script: Mutex<VecDeque<Result<Option<PutFailure>, ()>>>,
    accepted: Mutex<Vec<MeetingEvent>>,
    calls: Mutex<usize>,
}

impl Bus {
    fn scripted(script: Vec<Result<Option<PutFailure>, ()>>) -> Self {
        Self {
            script: Mutex::new(script.into()),
            ..Self::default()
        }
    }
}

fn throttled() -> Result<Option<PutFailure>, ()> {
    Ok(Some(PutFailure {
        code: "ThrottlingException".into(),
        retryable: true,
    }))
}

impl EventBus for Bus {
    async fn put(&self, events: &[MeetingEvent]) -> Result<Vec<Option<PutFailure>>, BusError> {
        *self.calls.lock().unwrap() += 1;
        let answers: Vec<_> = {
            let mut script = self.script.lock().unwrap();
            events
                .iter()
                .map(|_| script.pop_front().unwrap_or(Ok(None)))
                .collect()
        };
        // A call that fails as a whole took nothing.
        if answers.iter().any(Result::is_err) {
            return Err(BusError {
                operation: "PutEvents",
                source: "connection refused".into(),
            });
        }
        let mut out = Vec::new();
        for (e, answer) in events.iter().zip(answers) {
            match answer {
                Err(()) => unreachable!("checked above"),
                Ok(None) => {
                    self.accepted.lock().unwrap().push(e.clone());
                    out.push(None);
                }
                Ok(Some(f)) => out.push(Some(f)),
            }
        }
        Ok(out)
    }
}

#[derive(Default)]
struct Dead {
    parked: Mutex<Vec<(MeetingEvent, String)>>,
    down: bool,
}

impl DeadLetters for Dead {
    async fn park(&self, event: &MeetingEvent, why: &str) -> Result<(), BusError> {
        if self.down {
            return Err(BusError {
                operation: "SendMessage",
                source: "down".into(),
            });
        }
        self.parked
            .lock()
            .unwrap()
            .push((event.clone(), why.to_owned()));
        Ok(())
    }
}

fn config() -> PublishConfig {
    PublishConfig {
        attempts: 3,
        backoff: Duration::from_millis(1),
        ..PublishConfig::new("recordings")
    }
}

fn presence(key: &str, p: Presence, at: i64) -> StreamRecord {
    StreamRecord {
        id: format!("seq-{key}"),
        written_at_ms: at,
        change: Change::EventStored(Box::new(StoredEvent {
            key: key.into(),
            provider: "daily".into(),
            event_type: "participant.joined".into(),
            at_ms: at,
            session_id: Some("mtg-1".into()),
            room_key: Some("daily:standup".into()),
            room: Some("standup".into()),
            presence: Some(p),
            participant: Some(ParticipantFacts {
                participant_id: Some("p1".into()),
                user_id: Some("u1".into()),
                name: Some("Ana".into()),
                moderator: Some(true),
                role: None,
            }),
            ..StoredEvent::default()
        })),
    }
}

fn copied(job: &str, old: Option<&str>) -> StreamRecord {
    StreamRecord {
        id: format!("seq-{job}"),
        written_at_ms: 1_000,
        change: Change::CopyChanged(Box::new(CopyChange {
            job_id: job.into(),
            old_state: old.map(str::to_owned),
            copy: CopyView {
                state: "copied".into(),
                object_key: Some("daily/standup/rec.mp4".into()),
                bytes: Some(42),
                sha256: Some("ab".repeat(32)),
                objects: Some(1),
                ..CopyView::default()
            },
            at_ms: 1_000,
            about: Some(FileAbout {
                provider: "daily".into(),
                kind: "recording".into(),
                session_id: Some("mtg-1".into()),
                room_key: Some("daily:standup".into()),
                room: Some("standup".into()),
                tenant: None,
                event_key: Some("k-rec".into()),
            }),
            at_risk: None,
            was_at_risk: false,
        })),
    }
}

#[test]
fn each_change_means_its_events_with_stable_ids() {
    let joined = events_of(&presence("k1", Presence::Joined, 5).change, "b");
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].detail_type, PARTICIPANT_JOINED);
    assert_eq!(joined[0].detail["participant"]["userId"], "u1");
    assert_eq!(joined[0].detail["id"], joined[0].id.as_str());
    // The same fact again (a redelivered record): the same id.
    assert_eq!(
        events_of(&presence("k1", Presence::Joined, 5).change, "b")[0].id,
        joined[0].id
    );
    assert_eq!(
        events_of(&presence("k2", Presence::Left, 6).change, "b")[0].detail_type,
        PARTICIPANT_LEFT
    );
    // The same fact stored under another key (a provider resending it with a new id): the
    // same id, so a consumer deduplicating by id sees it once.
    assert_eq!(
        events_of(&presence("k1-resent", Presence::Joined, 5).change, "b")[0].id,
        joined[0].id
    );
    // Another time, or another participant, is another fact; anonymous ones keep their keys.
    assert_ne!(
        events_of(&presence("k1", Presence::Joined, 6).change, "b")[0].id,
        joined[0].id
    );
    let anonymous = |key: &str| {
        let mut r = presence(key, Presence::Joined, 5);
        if let Change::EventStored(e) = &mut r.change {
            e.participant = Some(ParticipantFacts {
                name: Some("Guest".into()),
                ..ParticipantFacts::default()
            });
        }
        events_of(&r.change, "b")[0].id.clone()
    };
    assert_ne!(anonymous("g1"), anonymous("g2"), "two guests stay two");
    assert_eq!(anonymous("g1"), anonymous("g1"));
    let ended = events_of(&presence("k3", Presence::SessionEnded, 7).change, "b");
    assert_eq!(ended[0].detail_type, MEETING_ENDED);
    assert!(ended[0].detail.get("participant").is_none());
    assert!(events_of(&presence("k4", Presence::LobbyJoined, 8).change, "b").is_empty());

    let rec = events_of(&copied("j1", Some("copying")).change, "recordings");
    assert_eq!(rec[0].detail_type, RECORDING_COPIED);
    assert_eq!(rec[0].detail["s3"]["bucket"], "recordings");
    assert_eq!(rec[0].detail["bytes"], 42);
    assert_eq!(rec[0].detail["kind"], "recording");
    // An already-copied item written again (Jibri's idempotent complete) is no new fact.
    assert!(events_of(&copied("j1", Some("copied")).change, "b").is_empty());

    let mut failed = copied("j2", Some("copying"));
    if let Change::CopyChanged(c) = &mut failed.change {
        c.copy.state = "failed".into();
        c.copy.permanent = true;
        c.copy.reason = Some("link expired".into());
    }
    let risk = events_of(&failed.change, "b");
    assert_eq!(risk[0].detail_type, RECORDING_AT_RISK);
    assert_eq!(risk[0].detail["reason"], "link expired");
    if let Change::CopyChanged(c) = &mut failed.change {
        c.copy.permanent = false;
    }
    assert!(
        events_of(&failed.change, "b").is_empty(),
        "a retryable failure is retried, not at risk yet"
    );
}

#[test]
fn a_new_at_risk_flag_means_one_recording_at_risk_with_its_own_id() {
    let flag = RiskFlag {
        cause: RiskCause::LinkExpiring,
        reason: Some("origin answered HTTP 503".into()),
        at_ms: 2_000,
        link_expires_at_ms: Some(3_600_000),
    };
    // The flag written on a pending copy (the state unchanged).
    let mut flagged = copied("j3", Some("pending"));
    if let Change::CopyChanged(c) = &mut flagged.change {
        c.copy = CopyView {
            state: "pending".into(),
            ..CopyView::default()
        };
        c.at_risk = Some(flag.clone());
    }
    let risk = events_of(&flagged.change, "b");
    assert_eq!(risk.len(), 1);
    assert_eq!(risk[0].detail_type, RECORDING_AT_RISK);
    assert_eq!(risk[0].detail["cause"], "link_expiring");
    assert_eq!(risk[0].detail["reason"], "origin answered HTTP 503");
    assert_eq!(risk[0].detail["linkExpiresAt"], "1970-01-01T01:00:00.000Z");
    assert_eq!(risk[0].detail["occurredAt"], "1970-01-01T00:00:02.000Z");
    assert_eq!(risk[0].detail["sessionId"], "mtg-1");
    assert_eq!(risk[0].time_ms, 2_000);
    // Redelivered: the same id. Another write of a flagged item (a claim, a checkpoint):
    // nothing new.
    assert_eq!(events_of(&flagged.change, "b")[0].id, risk[0].id);
    if let Change::CopyChanged(c) = &mut flagged.change {
        c.was_at_risk = true;
    }
    assert!(events_of(&flagged.change, "b").is_empty());

    // The same job failing for good later is another fact, with another id; and the copy
    // that does succeed is still published.
    let mut failed = flagged.clone();
    if let Change::CopyChanged(c) = &mut failed.change {
        c.old_state = Some("copying".into());
        c.copy.state = "failed".into();
        c.copy.permanent = true;
    }
    let later = events_of(&failed.change, "b");
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].detail["cause"], "copy_failed");
    assert!(later[0].detail["linkExpiresAt"].is_null());
    assert_ne!(later[0].id, risk[0].id);
    let mut done = copied("j3", Some("copying"));
    if let Change::CopyChanged(c) = &mut done.change {
        c.at_risk = Some(flag);
        c.was_at_risk = true;
    }
    let done = events_of(&done.change, "b");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].detail_type, RECORDING_COPIED);
}

#[tokio::test]
async fn a_throttling_bus_is_retried_in_the_call() {
    let bus = Bus::scripted(vec![throttled(), Ok(None), throttled()]);
    let publisher = Publisher::new(bus, Dead::default(), config());
    let records = vec![
        presence("a", Presence::Joined, 1),
        presence("b", Presence::Left, 2),
    ];
    let outcome = publisher.publish(&records, 10).await;
    assert_eq!(outcome.retry_from, None);
    assert_eq!(outcome.published, 2);
    let ids: Vec<_> = publisher
        .bus()
        .accepted
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(ids.len(), 2);
}

#[tokio::test]
async fn a_bus_down_for_longer_hands_the_batch_back_from_the_first_unpublished_record() {
    // b is throttled on every attempt of the call; a and j go through.
    let script = vec![Ok(None), throttled(), Ok(None), throttled(), throttled()];
    let publisher = Publisher::new(Bus::scripted(script), Dead::default(), config());
    let records = vec![
        presence("a", Presence::Joined, 1),
        presence("b", Presence::Joined, 2),
        copied("j", Some("copying")),
    ];
    let outcome = publisher.publish(&records, 10).await;
    assert_eq!(outcome.retry_from.as_deref(), Some("seq-b"));
    assert_eq!((outcome.published, outcome.parked), (2, 0));
    // The stream delivers b and j again; the bus is back: each once more, same ids.
    let again = publisher.publish(&records[1..], 20).await;
    assert_eq!(again.retry_from, None);
    let accepted = publisher.bus().accepted.lock().unwrap();
    let mut ids: Vec<_> = accepted.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every event published, deduplicated by id");
}

#[tokio::test]
async fn a_bus_that_cannot_be_reached_hands_back_the_whole_batch() {
    let publisher = Publisher::new(
        Bus::scripted(std::iter::repeat_n(Err(()), 30).collect()),
        Dead::default(),
        config(),
    );
    let records = vec![presence("a", Presence::Joined, 1), copied("j", None)];
    let outcome = publisher.publish(&records, 10).await;
    assert_eq!(outcome.retry_from.as_deref(), Some("seq-a"));
    assert_eq!((outcome.published, outcome.parked), (0, 0));
    assert_eq!(*publisher.bus().calls.lock().unwrap(), 3, "3 attempts");
}

#[tokio::test]
async fn refused_for_good_or_too_old_goes_to_the_dead_letters_whole() {
    let refused = Ok(Some(PutFailure {
        code: "ValidationException".into(),
        retryable: false,
    }));
    let publisher = Publisher::new(Bus::scripted(vec![refused]), Dead::default(), config());
    let outcome = publisher
        .publish(&[presence("a", Presence::Joined, 1)], 10)
        .await;
    assert_eq!((outcome.parked, outcome.retry_from), (1, None));
    let parked = publisher.dead().parked.lock().unwrap().clone();
    assert_eq!(parked[0].0.detail["participant"]["name"], "Ana");
    assert_eq!(parked[0].1, "ValidationException");

    // Throttled on every attempt, and the record is two hours old: parked, not handed back.
    let publisher = Publisher::new(
        Bus::scripted(std::iter::repeat_n(throttled(), 10).collect()),
        Dead::default(),
        config(),
    );
    let outcome = publisher
        .publish(&[presence("a", Presence::Joined, 0)], 7_200_000)
        .await;
    assert_eq!((outcome.parked, outcome.retry_from), (1, None));

    // ... unless the dead-letter queue is down too: then the stream keeps it.
    let publisher = Publisher::new(
        Bus::scripted(std::iter::repeat_n(throttled(), 10).collect()),
        Dead {
            down: true,
            ..Dead::default()
        },
        config(),
    );
    let outcome = publisher
        .publish(&[presence("a", Presence::Joined, 0)], 7_200_000)
        .await;
    assert_eq!(outcome.retry_from.as_deref(), Some("seq-a"));
}

#[tokio::test]
async fn batches_go_in_entries_of_ten_and_redrive_keeps_ids() {
    let publisher = Publisher::new(Bus::default(), Dead::default(), config());
    let records: Vec<_> = (0..23)
        .map(|i| presence(&format!("k{i}"), Presence::Joined, i))
        .collect();
    let outcome = publisher.publish(&records, 100).await;
    assert_eq!(outcome.published, 23);
    assert_eq!(*publisher.bus().calls.lock().unwrap(), 3);
    let first = publisher.bus().accepted.lock().unwrap()[0].clone();
    let taken = publisher
        .redrive(std::slice::from_ref(&first))
        .await
        .unwrap();
    assert_eq!(taken, [true]);
    assert_eq!(
        publisher.bus().accepted.lock().unwrap().last().unwrap().id,
        first.id
    );
}
