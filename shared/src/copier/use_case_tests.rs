//! The copy use case against the ports above: what the emulator tests (tests/tests/copier.rs)
//! prove of the service's logic, without the emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use tokio::time::Instant;

use super::memory::*;
use crate::copier::layout;
use crate::copier::parts::MIB;
use crate::copier::ports::{CopyStateStore, StateError};
use crate::copier::service::{Attempt, CopyFailure, CopyService, CopySettings, Done, FailureClass};
use crate::copier::state::{Checkpoint, CopyResult, CopyStatus};
use crate::facts::{FileSource, ProviderObject};
use crate::jobs::{CopyJob, FileKind, FileMeta, JOB_VERSION, Link, RiskCause, SourceEvent};
use crate::respond::now_ms;

const PART: u64 = 5 * MIB;
const LINK: &str = "https://files.test/rec/meeting.mp4?sig=secret";

/// Deterministic, incompressible test bytes.
fn data(len: u64, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len as usize + 8);
    while out.len() < len as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len as usize);
    out.into()
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn settings(inline_retries: u32) -> CopySettings {
    CopySettings {
        part_size: PART,
        max_parts_in_flight: 2,
        lease: Duration::from_secs(60),
        max_attempts: None,
        inline_retries,
        at_risk_window: Duration::from_secs(crate::jobs::DEFAULT_AT_RISK_SECS),
    }
}

/// A lease short enough for a test to wait it out.
fn short_lease() -> CopySettings {
    CopySettings {
        lease: Duration::from_millis(500),
        ..settings(0)
    }
}

fn job(link: &str) -> CopyJob {
    let now = now_ms();
    CopyJob {
        v: JOB_VERSION,
        job_id: "event-1/recording".into(),
        provider: "jaas".into(),
        kind: FileKind::Recording,
        file: FileSource::Url(Link::new(link)),
        link_expires_at: now + 3_600_000,
        source: SourceEvent {
            stored_key: "event-1".into(),
            event_type: "RECORDING_UPLOADED".into(),
            timestamp: now,
        },
        session_id: Some("session-1".into()),
        fqn: Some("app-1/room-1".into()),
        room: Some("room-1".into()),
        app_id: Some("app-1".into()),
        customer_id: None,
        meta: FileMeta::default(),
    }
}

fn attempt_for(time: Duration) -> Attempt {
    static OWNERS: AtomicU32 = AtomicU32::new(0);
    Attempt {
        owner: format!("copier-{}", OWNERS.fetch_add(1, Ordering::SeqCst)),
        stop_at: Instant::now() + time,
        receive_count: 1,
    }
}

fn attempt() -> Attempt {
    attempt_for(Duration::from_secs(60))
}

/// The three ports of one copier deployment.
#[derive(Debug, Default)]
struct Mem {
    store: MemStore,
    sink: MemSink,
    origin: MemOrigin,
}

type Service<'a> = CopyService<&'a MemStore, &'a MemSink, &'a MemOrigin>;

impl Mem {
    fn service(&self, settings: CopySettings) -> Service<'_> {
        CopyService::new(&self.store, &self.sink, &self.origin, settings)
    }

    fn object(&self, job: &CopyJob) -> Option<Object> {
        self.sink.object(&layout::object_key(job))
    }

    fn checkpoint(&self, job: &CopyJob) -> Option<Checkpoint> {
        self.store
            .record(&job.job_id)
            .and_then(|r| r.progress)
            .and_then(|p| p.checkpoint)
    }

    fn froms(&self) -> Vec<u64> {
        self.origin.seen().iter().map(|f| f.from).collect()
    }
}

fn copied(r: Result<Done, CopyFailure>) -> CopyResult {
    match r {
        Ok(Done::Copied(result)) => result,
        other => panic!("expected a copy, got {other:?}"),
    }
}

fn expect_failure(r: Result<Done, CopyFailure>, class: FailureClass) -> CopyFailure {
    match r {
        Err(f) if f.class == class => f,
        other => panic!("expected a {class:?} failure, got {other:?}"),
    }
}

/// The object holds exactly `bytes`, tagged with their SHA-256.
fn assert_stored(mem: &Mem, job: &CopyJob, bytes: &Bytes) {
    let object = mem.object(job).expect("object exists");
    assert!(
        object.bytes == *bytes,
        "object differs from the origin's bytes"
    );
    assert_eq!(object.sha256_tag, Some(sha_hex(bytes)), "sha256 tag");
    assert_eq!(mem.sink.open_uploads(), 0, "no multipart upload left");
}

#[tokio::test]
async fn a_file_of_several_parts_is_copied_byte_for_byte_and_only_once() {
    let mem = Mem::default();
    let bytes = data(2 * PART + 123_457, 1);
    mem.origin
        .serve(LINK, Served::file(bytes.clone()).content_type("video/mp4"));
    let job = job(LINK);
    let service = mem.service(settings(0));

    let result = copied(service.process(&job, &attempt()).await);
    let key = layout::object_key(&job);
    assert!(key.ends_with("-meeting.mp4"), "{key}");
    assert_eq!(
        result,
        CopyResult {
            key,
            bytes: bytes.len() as u64,
            sha256: sha_hex(&bytes),
            objects: 1,
            // What the meeting event `RecordingCopied` says comes with the state.
            about: Some(Box::new(crate::jobs::FileAbout::of(&job))),
        }
    );
    assert_eq!(mem.sink.take_parts(), vec![1, 2, 3]);
    assert_stored(&mem, &job, &bytes);
    let meta = mem.object(&job).expect("object").meta;
    assert_eq!(meta.content_type, "video/mp4");
    let has = |k: &str, v: &str| meta.metadata.contains(&(k.to_owned(), v.to_owned()));
    assert!(has("job-id", &job.job_id) && has("source-host", "files.test"));
    let record = mem.store.record(&job.job_id).expect("record");
    assert_eq!(record.status, CopyStatus::Copied);
    assert_eq!(record.result, Some(result));
    assert_eq!(record.progress, None, "progress removed once copied");

    // A redelivery does no work.
    assert_eq!(
        service.process(&job, &attempt()).await.expect("redelivery"),
        Done::AlreadyCopied
    );
    assert_eq!(mem.origin.seen().len(), 1);
    assert_eq!(mem.sink.creates(), 1);
    assert!(mem.sink.take_parts().is_empty());
}

#[tokio::test]
async fn a_body_cut_mid_way_is_resumed_inline_from_the_checkpoint() {
    let mem = Mem::default();
    let bytes = data(PART + 1000, 2);
    // Cut after part 1 and half of part 2.
    mem.origin.serve(
        LINK,
        Served::file(bytes.clone()).then([Fault::Cut(PART + 500)]),
    );
    let job = job(LINK);
    let service = mem.service(settings(4));

    let result = copied(service.process(&job, &attempt()).await);
    assert_eq!(
        (result.bytes, result.sha256.as_str()),
        (bytes.len() as u64, sha_hex(&bytes).as_str())
    );
    assert_eq!(mem.froms(), vec![0, PART], "resumed at the checkpoint");
    let seen = mem.origin.seen();
    assert_eq!(seen[0].if_range, None);
    assert_eq!(
        seen[1].if_range,
        mem.origin.validator(LINK),
        "the resume names the file its parts came from"
    );
    assert_eq!(mem.sink.take_parts(), vec![1, 2], "part 1 not sent again");
    assert_eq!(mem.sink.creates(), 1, "one upload across the retry");
    assert_stored(&mem, &job, &bytes);
    assert_eq!(mem.store.status(&job.job_id), Some(CopyStatus::Copied));
}

#[tokio::test]
async fn a_permanent_origin_failure_aborts_the_upload_and_is_never_retried() {
    let mem = Mem::default();
    let bytes = data(PART + 1000, 3);
    // The first answer is cut after a part; then the link is refused for good.
    mem.origin.serve(
        LINK,
        Served::file(bytes).then([Fault::Cut(PART + 500), Fault::Status(403)]),
    );
    let job = job(LINK);
    let service = mem.service(settings(0));

    let first = expect_failure(
        service.process(&job, &attempt()).await,
        FailureClass::Retryable,
    );
    assert!(!first.class.acknowledged());
    assert_eq!(mem.store.status(&job.job_id), Some(CopyStatus::Pending));
    assert_eq!(mem.sink.open_uploads(), 1, "upload kept for the resume");

    let failure = expect_failure(
        service.process(&job, &attempt()).await,
        FailureClass::Permanent,
    );
    assert!(failure.class.acknowledged());
    assert!(failure.reason.contains("403"), "{}", failure.reason);
    assert!(!failure.reason.contains("secret"), "{}", failure.reason);
    assert_eq!(mem.sink.open_uploads(), 0, "the upload was aborted");
    let record = mem.store.record(&job.job_id).expect("record");
    assert!(
        matches!(&record.status, CopyStatus::Failed { permanent: true, reason } if reason.contains("403")),
        "{:?}",
        record.status
    );
    assert_eq!(record.progress, None);

    // A redelivery does nothing.
    let again = service
        .process(&job, &attempt())
        .await
        .expect("acknowledged");
    assert!(matches!(again, Done::AlreadyFailed { .. }), "{again:?}");
    assert_eq!(mem.froms(), vec![0, PART], "no fetch after the 403");
    assert!(mem.object(&job).is_none());
    assert_eq!(mem.sink.take_parts(), vec![1]);
}

fn object_job(id: &str) -> (CopyJob, ProviderObject) {
    let object = ProviderObject {
        object: "recording".into(),
        id: id.into(),
        part: None,
    };
    let job = CopyJob {
        provider: "daily".into(),
        job_id: format!("daily:recording:{id}"),
        file: FileSource::Object(object.clone()),
        ..job("https://unused.test/")
    };
    (job, object)
}

#[tokio::test]
async fn a_provider_object_gets_a_fresh_link_on_every_attempt() {
    let mem = Mem::default();
    let bytes = data(PART + 999, 4);
    let (job, object) = object_job("rec-1");
    let route = MemResolver::route(&object);
    // The provider fails once, then the file fails once: three links, two fetches.
    mem.origin.serve(
        &route,
        Served::file(bytes.clone()).then([Fault::Status(503)]),
    );
    let resolver = Arc::new(MemResolver::default().failing([false]));
    let service = mem.service(settings(4)).with_resolver(resolver.clone());

    copied(service.process(&job, &attempt()).await);
    assert_eq!(resolver.calls(), 3, "a link per attempt");
    let seen = mem.origin.seen();
    assert_eq!(
        seen.iter().map(|f| f.link.clone()).collect::<Vec<_>>(),
        vec![format!("{route}?token=2"), format!("{route}?token=3")],
        "each fetch with the link of its own attempt"
    );
    assert!(seen.iter().all(|f| f.provider == "daily" && f.from == 0));
    assert_stored(&mem, &job, &bytes);
    assert_eq!(mem.store.status(&job.job_id), Some(CopyStatus::Copied));
}

#[tokio::test]
async fn a_provider_object_that_is_gone_fails_for_good_without_a_fetch() {
    let mem = Mem::default();
    let (job, _) = object_job("rec-gone");
    let resolver = Arc::new(MemResolver::default().failing([true]));
    let service = mem.service(settings(4)).with_resolver(resolver.clone());

    expect_failure(
        service.process(&job, &attempt()).await,
        FailureClass::Permanent,
    );
    assert_eq!(resolver.calls(), 1, "never retried");
    assert!(mem.origin.seen().is_empty());
    assert!(matches!(
        mem.store.status(&job.job_id),
        Some(CopyStatus::Failed {
            permanent: true,
            ..
        })
    ));
}

#[tokio::test]
async fn a_leased_job_is_busy_for_others_until_the_lease_runs_out() {
    let mem = Mem::default();
    let bytes = data(PART + 10, 5);
    mem.origin.serve(
        LINK,
        Served::file(bytes.clone()).then([Fault::Stall(PART + 5)]),
    );
    let job = job(LINK);
    let service = mem.service(short_lease());

    // The first copier hangs after part 1 and is dropped: a crash, nothing released.
    let crashed = attempt();
    let checkpointed = async {
        while mem.checkpoint(&job).is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        r = service.process(&job, &crashed) => panic!("the stalled copy ended: {r:?}"),
        () = checkpointed => {}
    }
    assert!(matches!(
        mem.store.status(&job.job_id),
        Some(CopyStatus::Copying { owner, .. }) if owner == crashed.owner
    ));

    // While its lease lives, another copier finds the job busy and leaves it alone.
    let busy = expect_failure(service.process(&job, &attempt()).await, FailureClass::Busy);
    assert!(
        !busy.class.acknowledged(),
        "returned to the queue, not dropped"
    );
    let left = busy.lease_left.expect("lease left");
    assert!(left <= Duration::from_millis(500), "{left:?}");
    assert_eq!(mem.origin.seen().len(), 1, "no fetch while busy");

    // Once it runs out, the next copier takes over and resumes after part 1.
    tokio::time::sleep(Duration::from_millis(600)).await;
    copied(service.process(&job, &attempt()).await);
    assert_eq!(mem.froms(), vec![0, PART]);
    assert_eq!(mem.sink.take_parts(), vec![1, 2]);
    assert_stored(&mem, &job, &bytes);

    // The crashed copier can no longer change the record.
    let late = (&mem.store).release(&job.job_id, &crashed.owner).await;
    assert!(
        matches!(
            late,
            Err(StateError {
                lease_lost: true,
                ..
            })
        ),
        "{late:?}"
    );
    assert_eq!(mem.store.status(&job.job_id), Some(CopyStatus::Copied));
}

/// Copies `served` while `mark_copied` fails once: the object is complete, the record not.
async fn completed_but_unrecorded(mem: &Mem, served: Served, bytes: &Bytes) -> CopyJob {
    mem.origin.serve(LINK, served);
    mem.store.fail("mark_copied", 1);
    let job = job(LINK);
    let service = mem.service(short_lease());
    let failure = expect_failure(
        service.process(&job, &attempt()).await,
        FailureClass::Retryable,
    );
    assert!(failure.reason.contains("mark_copied"), "{}", failure.reason);
    assert_stored(mem, &job, bytes);
    // The failure is returned without settling: the job stays leased, every part recorded.
    let record = mem.store.record(&job.job_id).expect("record");
    assert!(
        matches!(record.status, CopyStatus::Copying { .. }),
        "{record:?}"
    );
    let cp = mem.checkpoint(&job).expect("checkpoint");
    assert_eq!((cp.parts, cp.bytes), (2, bytes.len() as u64));
    expect_failure(service.process(&job, &attempt()).await, FailureClass::Busy);
    tokio::time::sleep(Duration::from_millis(600)).await;
    job
}

#[tokio::test]
async fn a_completed_upload_whose_record_failed_is_marked_copied_without_a_new_download() {
    let mem = Mem::default();
    let bytes = data(PART + 4321, 6);
    let job = completed_but_unrecorded(&mem, Served::file(bytes.clone()), &bytes).await;
    assert_eq!(mem.sink.take_parts(), vec![1, 2]);

    let result = copied(mem.service(short_lease()).process(&job, &attempt()).await);
    assert_eq!(
        (result.bytes, result.sha256.as_str()),
        (bytes.len() as u64, sha_hex(&bytes).as_str())
    );
    assert_eq!(mem.origin.seen().len(), 1, "not downloaded again");
    assert_eq!(mem.sink.creates(), 1, "no new upload");
    assert!(mem.sink.take_parts().is_empty());
    assert_stored(&mem, &job, &bytes);
    let record = mem.store.record(&job.job_id).expect("record");
    assert_eq!(record.status, CopyStatus::Copied);
    assert_eq!(record.result, Some(result));
}

/// The same recovery needs no origin validator: the completed object is found before the
/// stored upload would be discarded for want of one, so nothing is fetched again.
#[tokio::test]
async fn without_a_validator_a_completed_but_unrecorded_copy_is_not_downloaded_again() {
    let mem = Mem::default();
    let bytes = data(PART + 4321, 7);
    let served = Served::file(bytes.clone()).without_validator();
    let job = completed_but_unrecorded(&mem, served, &bytes).await;

    let result = copied(mem.service(short_lease()).process(&job, &attempt()).await);
    assert_eq!(result.sha256, sha_hex(&bytes));
    assert_eq!(mem.froms(), vec![0], "fetched once, never again");
    assert_eq!(mem.sink.creates(), 1);
    assert_stored(&mem, &job, &bytes);
    assert_eq!(mem.store.status(&job.job_id), Some(CopyStatus::Copied));
}

/// A copy completed before its link died, whose record failed, is copied, not "failed for
/// good": the link is not needed to see that the object is whole.
#[tokio::test]
async fn a_completed_copy_is_recorded_as_copied_even_after_its_link_expired() {
    let mem = Mem::default();
    let bytes = data(PART + 99, 8);
    let mut job = completed_but_unrecorded(&mem, Served::file(bytes.clone()), &bytes).await;
    job.link_expires_at = now_ms() - 1;

    let result = copied(mem.service(short_lease()).process(&job, &attempt()).await);
    assert_eq!(result.sha256, sha_hex(&bytes));
    assert_eq!(mem.origin.seen().len(), 1, "no request after the expiry");
    assert_eq!(mem.store.status(&job.job_id), Some(CopyStatus::Copied));
}

#[tokio::test]
async fn a_copy_stopped_at_the_deadline_resumes_without_uploading_finished_parts() {
    let mem = Mem::default();
    let bytes = data(PART + 77, 8);
    mem.origin.serve(
        LINK,
        Served::file(bytes.clone()).then([Fault::Stall(PART + 10)]),
    );
    let job = job(LINK);
    let service = mem.service(settings(4));

    let failure = expect_failure(
        service
            .process(&job, &attempt_for(Duration::from_millis(300)))
            .await,
        FailureClass::Interrupted,
    );
    assert!(failure.progressed && !failure.class.acknowledged());
    assert_eq!(mem.sink.take_parts(), vec![1]);
    assert_eq!(
        mem.store.status(&job.job_id),
        Some(CopyStatus::Pending),
        "released"
    );
    let cp = mem.checkpoint(&job).expect("checkpoint");
    assert_eq!((cp.parts, cp.bytes), (1, PART));

    copied(service.process(&job, &attempt()).await);
    assert_eq!(mem.sink.take_parts(), vec![2], "only the missing part");
    assert_eq!(mem.froms(), vec![0, PART]);
    assert_stored(&mem, &job, &bytes);
}

#[tokio::test]
async fn inline_retries_stop_at_their_limit_and_release_the_job() {
    let mem = Mem::default();
    mem.origin.serve(
        LINK,
        Served::file(data(1000, 9)).then([Fault::Status(503); 5]),
    );
    let job = job(LINK);
    let failure = expect_failure(
        mem.service(settings(2)).process(&job, &attempt()).await,
        FailureClass::Retryable,
    );
    assert!(failure.reason.contains("503"), "{}", failure.reason);
    assert_eq!(mem.origin.seen().len(), 3, "1 try + 2 retries");
    assert_eq!(mem.store.status(&job.job_id), Some(CopyStatus::Pending));
}

#[tokio::test]
async fn an_origin_ignoring_ranges_restarts_from_zero_without_orphans() {
    let mem = Mem::default();
    let bytes = data(PART + 10, 10);
    mem.origin.serve(
        LINK,
        Served::file(bytes.clone())
            .without_ranges()
            .then([Fault::Cut(PART + 5)]),
    );
    let job = job(LINK);
    let service = mem.service(settings(0));
    expect_failure(
        service.process(&job, &attempt()).await,
        FailureClass::Retryable,
    );
    assert_eq!(mem.sink.take_parts(), vec![1]);

    copied(service.process(&job, &attempt()).await);
    assert_eq!(mem.sink.take_parts(), vec![1, 2], "whole file again");
    assert_eq!(mem.sink.creates(), 2, "into a new upload");
    assert_stored(&mem, &job, &bytes);
}

#[tokio::test]
async fn the_last_delivery_aborts_the_upload_and_a_redrive_copies_anew() {
    let mem = Mem::default();
    let bytes = data(PART + 10, 11);
    mem.origin.serve(
        LINK,
        Served::file(bytes.clone()).then([Fault::Cut(PART + 5)]),
    );
    let job = job(LINK);
    let service = mem.service(CopySettings {
        max_attempts: Some(2),
        ..settings(0)
    });
    let last = Attempt {
        receive_count: 2,
        ..attempt()
    };
    let failure = expect_failure(service.process(&job, &last).await, FailureClass::Retryable);
    assert!(
        failure.reason.contains("retries exhausted"),
        "{}",
        failure.reason
    );
    assert!(matches!(
        mem.store.status(&job.job_id),
        Some(CopyStatus::Failed {
            permanent: false,
            ..
        })
    ));
    assert_eq!(mem.sink.open_uploads(), 0, "no orphaned parts");

    // Redriven from the dead-letter queue: not a permanent failure, so copied from scratch.
    copied(service.process(&job, &attempt()).await);
    assert_eq!(mem.froms(), vec![0, 0]);
    assert_stored(&mem, &job, &bytes);
}

#[tokio::test]
async fn a_file_changed_between_attempts_is_copied_anew_never_spliced() {
    let mem = Mem::default();
    let old = data(PART + 77, 12);
    let new = data(PART + 77, 13);
    mem.origin
        .serve(LINK, Served::file(old).then([Fault::Cut(PART + 10)]));
    let job = job(LINK);
    let service = mem.service(settings(0));
    expect_failure(
        service.process(&job, &attempt()).await,
        FailureClass::Retryable,
    );
    let old_validator = mem.origin.validator(LINK);
    mem.origin.replace(LINK, new.clone());

    copied(service.process(&job, &attempt()).await);
    let seen = mem.origin.seen();
    assert_eq!(mem.froms(), vec![0, PART]);
    assert_eq!(seen[1].if_range, old_validator);
    assert_stored(&mem, &job, &new);
    assert_eq!(mem.sink.creates(), 2);
}

#[tokio::test]
async fn an_expired_link_fails_for_good_without_a_request() {
    let mem = Mem::default();
    mem.origin.serve(LINK, Served::file(data(10, 14)));
    let job = CopyJob {
        link_expires_at: now_ms() - 1,
        ..job(LINK)
    };
    let failure = expect_failure(
        mem.service(settings(4)).process(&job, &attempt()).await,
        FailureClass::Permanent,
    );
    assert!(failure.reason.contains("expired"), "{}", failure.reason);
    assert!(mem.origin.seen().is_empty());
    // Failed for good: its state says so (`copy_failed`), no at-risk flag besides.
    assert!(mem.store.at_risk(&job.job_id).is_none());
}

const HOUR_MS: i64 = 3_600_000;

#[tokio::test]
async fn a_job_handed_back_with_its_link_dying_soon_is_flagged_at_risk_once() {
    let mem = Mem::default();
    mem.origin.serve(
        LINK,
        Served::file(data(1000, 15)).then([Fault::Status(503); 3]),
    );
    let service = mem.service(settings(0));
    // Twelve hours left: handed back, not at risk.
    let early = CopyJob {
        link_expires_at: now_ms() + 12 * HOUR_MS,
        ..job(LINK)
    };
    expect_failure(
        service.process(&early, &attempt()).await,
        FailureClass::Retryable,
    );
    assert!(mem.store.at_risk(&early.job_id).is_none());

    // One hour left (inside the 6 h window): flagged, once. The first flag write fails (a
    // store outage): the next hand-back writes it.
    let late = job(LINK);
    mem.store.fail("flag_at_risk", 1);
    expect_failure(
        service.process(&late, &attempt()).await,
        FailureClass::Retryable,
    );
    assert!(
        mem.store.at_risk(&late.job_id).is_none(),
        "the write failed"
    );
    expect_failure(
        service.process(&late, &attempt()).await,
        FailureClass::Retryable,
    );
    let flag = mem.store.at_risk(&late.job_id).expect("flagged");
    assert_eq!(flag.cause, RiskCause::LinkExpiring);
    assert_eq!(flag.link_expires_at_ms, late.link_expires_at);
    assert!(flag.reason.contains("503"), "{}", flag.reason);
    assert!(!flag.reason.contains("secret"), "{}", flag.reason);
    assert_eq!(flag.about.session_id.as_deref(), Some("session-1"));
    assert_eq!(mem.store.status(&late.job_id), Some(CopyStatus::Pending));

    // The copy then succeeds: the flag stays what it was (one event per job).
    copied(service.process(&late, &attempt()).await);
    assert_eq!(mem.store.at_risk(&late.job_id), Some(flag));
}

#[tokio::test]
async fn a_job_the_copier_gives_up_retrying_is_flagged_whatever_its_link_has_left() {
    let mem = Mem::default();
    mem.origin.serve(
        LINK,
        Served::file(data(1000, 16)).then([Fault::Status(503)]),
    );
    let job = CopyJob {
        link_expires_at: now_ms() + 20 * HOUR_MS,
        ..job(LINK)
    };
    let service = mem.service(CopySettings {
        max_attempts: Some(1),
        ..settings(0)
    });
    expect_failure(
        service.process(&job, &attempt()).await,
        FailureClass::Retryable,
    );
    let flag = mem.store.at_risk(&job.job_id).expect("flagged");
    assert_eq!(flag.cause, RiskCause::RetriesExhausted);
    assert!(flag.reason.contains("retries exhausted"), "{}", flag.reason);
}
