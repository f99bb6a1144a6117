//! The upload grants against in-memory ports: a bucket that behaves like S3 for multipart
//! uploads (and, like the emulator, can be told not to check part checksums), a ledger and an
//! event store. Each test can fail: it checks what was stored, not only what was answered.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method};
use sha2::{Digest, Sha256};

use super::ports::{ObjectInfo, RecordingLedger, UploadBucket};
use super::wire::{PartUrl, UploadRequest, status};
use super::{UploadOutcome, UploadService, UploadsConfig};
use crate::copier::layout::ObjectMeta;
use crate::copier::ports::{SinkError, StateError};
use crate::copier::state::{CopyResult, ListedPart};
use crate::ingest::ports::{
    EventRecord, EventStore, ExistingEvent, PutOutcome, QuarantineRecord, StoreError,
};

const TOKEN: &str = "jibri-token-0123456789";
const MIB: usize = 1024 * 1024;

#[derive(Debug, Default)]
struct Upload {
    key: String,
    parts: BTreeMap<u32, (Vec<u8>, String)>,
}

/// An object's bytes and its `sha256` tag.
type Stored = (Vec<u8>, Option<String>);

#[derive(Debug, Default)]
struct MemoryBucket {
    objects: Mutex<HashMap<String, Stored>>,
    uploads: Mutex<HashMap<String, Upload>>,
    creates: AtomicU32,
    /// Like moto: a part whose bytes do not match its checksum is accepted.
    skip_part_checks: bool,
    fail: Mutex<Option<&'static str>>,
}

fn b64_sha(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryBucket {
    fn failing(&self, op: &'static str) -> Result<(), SinkError> {
        if *lock(&self.fail) == Some(op) {
            return Err(SinkError {
                operation: op,
                no_such_upload: false,
                source: "injected".into(),
            });
        }
        Ok(())
    }

    /// The client's PUT of a presigned URL: S3 refuses bytes that do not match the signed
    /// checksum (unless told to behave like the emulator).
    fn put(&self, url: &PartUrl, bytes: &[u8]) -> Result<(), String> {
        let (upload_id, rest) = url
            .url
            .strip_prefix("mem://")
            .and_then(|u| u.split_once('/'))
            .ok_or("bad url")?;
        let sha = url
            .headers
            .iter()
            .find(|(k, _)| k == "x-amz-checksum-sha256")
            .map(|(_, v)| v.clone())
            .ok_or("no checksum header")?;
        if !self.skip_part_checks && b64_sha(bytes) != sha {
            return Err("BadDigest".into());
        }
        let number: u32 = rest.parse().map_err(|_| "bad part")?;
        let mut uploads = lock(&self.uploads);
        let up = uploads.get_mut(upload_id).ok_or("NoSuchUpload")?;
        up.parts.insert(number, (bytes.to_vec(), sha));
        Ok(())
    }

    fn object_bytes(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.objects).get(key).map(|(b, _)| b.clone())
    }
}

impl UploadBucket for MemoryBucket {
    async fn object(&self, key: &str) -> Result<Option<ObjectInfo>, SinkError> {
        self.failing("HeadObject")?;
        Ok(lock(&self.objects).get(key).map(|(b, tag)| ObjectInfo {
            size: b.len() as u64,
            sha256: tag.clone(),
        }))
    }

    async fn create(&self, key: &str, _meta: &ObjectMeta) -> Result<String, SinkError> {
        self.failing("CreateMultipartUpload")?;
        let n = self.creates.fetch_add(1, Ordering::Relaxed);
        let id = format!("upload-{n}");
        lock(&self.uploads).insert(
            id.clone(),
            Upload {
                key: key.to_owned(),
                ..Default::default()
            },
        );
        Ok(id)
    }

    async fn parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<ListedPart>>, SinkError> {
        self.failing("ListParts")?;
        Ok(lock(&self.uploads)
            .get(upload_id)
            .filter(|u| u.key == key)
            .map(|u| {
                u.parts
                    .iter()
                    .map(|(n, (b, sha))| ListedPart {
                        number: *n,
                        etag: format!("etag-{n}"),
                        size: b.len() as u64,
                        sha256: Some(sha.clone()),
                    })
                    .collect()
            }))
    }

    async fn presign_part(
        &self,
        _key: &str,
        upload_id: &str,
        number: u32,
        len: u64,
        sha256_b64: &str,
        _ttl: Duration,
    ) -> Result<PartUrl, SinkError> {
        Ok(PartUrl {
            number,
            url: format!("mem://{upload_id}/{number}"),
            headers: vec![
                ("x-amz-checksum-sha256".into(), sha256_b64.into()),
                ("content-length".into(), len.to_string()),
            ],
        })
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[ListedPart],
    ) -> Result<(), SinkError> {
        self.failing("CompleteMultipartUpload")?;
        let up = lock(&self.uploads)
            .remove(upload_id)
            .ok_or_else(|| SinkError {
                operation: "CompleteMultipartUpload",
                no_such_upload: true,
                source: "NoSuchUpload".into(),
            })?;
        let mut body = Vec::new();
        for p in parts {
            body.extend_from_slice(&up.parts[&p.number].0);
        }
        lock(&self.objects).insert(key.to_owned(), (body, None));
        Ok(())
    }

    async fn digest(&self, key: &str) -> Result<(u64, String), SinkError> {
        self.failing("GetObject")?;
        let b = self.object_bytes(key).unwrap_or_default();
        Ok((b.len() as u64, hex::encode(Sha256::digest(&b))))
    }

    async fn tag_sha256(&self, key: &str, sha256_hex: &str) -> Result<(), SinkError> {
        if let Some(o) = lock(&self.objects).get_mut(key) {
            o.1 = Some(sha256_hex.to_owned());
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        lock(&self.objects).remove(key);
        Ok(())
    }
}

#[derive(Debug, Default)]
struct MemoryLedger(Mutex<HashMap<String, CopyResult>>);

impl RecordingLedger for MemoryLedger {
    async fn copied(&self, job_id: &str) -> Result<Option<CopyResult>, StateError> {
        Ok(lock(&self.0).get(job_id).cloned())
    }

    async fn record_copied(
        &self,
        job_id: &str,
        result: &CopyResult,
        _now_ms: i64,
        _expires_at_secs: i64,
    ) -> Result<(), StateError> {
        lock(&self.0).insert(job_id.to_owned(), result.clone());
        Ok(())
    }
}

#[derive(Debug, Default)]
struct MemoryEvents(Mutex<HashMap<String, EventRecord>>);

impl EventStore for MemoryEvents {
    async fn put_if_absent(&self, record: &EventRecord) -> Result<PutOutcome, StoreError> {
        let mut events = lock(&self.0);
        if let Some(old) = events.get(&record.key) {
            return Ok(PutOutcome::Exists(ExistingEvent {
                payload_sha256: Some(old.payload_sha256.clone()),
                job_state: None,
                attempt: Some(old.attempt.clone()),
            }));
        }
        events.insert(record.key.clone(), record.clone());
        Ok(PutOutcome::Created)
    }

    async fn claim_enqueue(&self, _: &str, _: &str, _: i64, _: i64) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn mark_queued(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn release_enqueue(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn put_quarantine(&self, _: &QuarantineRecord) -> Result<(), StoreError> {
        Ok(())
    }
}

type Service = UploadService<MemoryBucket, MemoryLedger, MemoryEvents>;

fn service(bucket: MemoryBucket) -> Service {
    let env: HashMap<String, String> = [
        ("JITSI_TOKENS", TOKEN),
        ("EVENTS_TABLE", "events"),
        ("COPIES_TABLE", "copies"),
        ("RECORDINGS_BUCKET", "recordings"),
        ("UPLOAD_URLS_PER_ANSWER", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = UploadsConfig::from_env(&env).expect("config");
    UploadService::new(
        bucket,
        MemoryLedger::default(),
        MemoryEvents::default(),
        &config,
    )
}

/// A 12 MiB recording in 5 MiB parts (3 parts), and its request.
fn recording() -> (Vec<u8>, UploadRequest) {
    let file: Vec<u8> = (0..12 * MIB).map(|i| (i * 7 % 251) as u8).collect();
    let part_size = 5 * MIB;
    let request = UploadRequest {
        muc_domain: None,
        session_id: "a1b2c3_session".into(),
        file_name: "standup_2026-03-04-10-11-12.mp4".into(),
        size: file.len() as u64,
        sha256: hex::encode(Sha256::digest(&file)),
        part_size: part_size as u64,
        part_sha256: file
            .chunks(part_size)
            .map(|c| hex::encode(Sha256::digest(c)))
            .collect(),
        upload_id: None,
        metadata: serde_json::json!({"meeting_url": "https://meet.example.org/standup", "participants": []})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    (file, request)
}

fn headers(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    h
}

async fn call(s: &Service, path: &str, req: &UploadRequest) -> UploadOutcome {
    let body = serde_json::to_vec(req).expect("json");
    s.handle(&Method::POST, path, &headers(TOKEN), &body, 1_000_000)
        .await
}

fn answer(o: UploadOutcome) -> super::wire::GrantAnswer {
    match o {
        UploadOutcome::Answer(a) => a,
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn part_bytes(file: &[u8], number: u32) -> &[u8] {
    let start = (number as usize - 1) * 5 * MIB;
    &file[start..(start + 5 * MIB).min(file.len())]
}

/// Asks for grants until nothing is missing, uploading every granted part; returns the id.
async fn upload_all(s: &Service, file: &[u8], req: &mut UploadRequest) -> String {
    loop {
        let a = answer(call(s, "/uploads/jitsi", req).await);
        assert_eq!(a.status, status::UPLOAD);
        req.upload_id = a.upload_id.clone();
        if a.parts.is_empty() {
            return a.upload_id.expect("id");
        }
        for p in &a.parts {
            s.bucket.put(p, part_bytes(file, p.number)).expect("part");
        }
    }
}

#[tokio::test]
async fn a_recording_is_granted_completed_verified_and_recorded_once() {
    let s = service(MemoryBucket::default());
    let (file, mut req) = recording();
    let first = answer(call(&s, "/uploads/jitsi", &req).await);
    assert_eq!(first.missing_parts, 3);
    assert_eq!(first.parts.len(), 2, "batched: UPLOAD_URLS_PER_ANSWER");
    assert!(
        first
            .key
            .starts_with("jitsi/meet.example.org/standup/a1b2c3_session/recording/")
    );
    upload_all(&s, &file, &mut req).await;
    let done = answer(call(&s, "/uploads/jitsi/complete", &req).await);
    assert_eq!(done.status, status::COMPLETED);
    assert_eq!(done.sha256.as_deref(), Some(req.sha256.as_str()));
    assert_eq!(
        s.bucket.object_bytes(&first.key).as_deref(),
        Some(&file[..])
    );
    let tag = lock(&s.bucket.objects)[&first.key].1.clone();
    assert_eq!(tag.as_deref(), Some(req.sha256.as_str()));
    let job = "jitsi:recording:a1b2c3_session/standup_2026-03-04-10-11-12.mp4";
    let state = lock(&s.ledger.0).get(job).cloned().expect("copy state");
    assert_eq!(
        (state.key.as_str(), state.bytes, state.sha256.as_str()),
        (first.key.as_str(), file.len() as u64, req.sha256.as_str())
    );
    {
        let events = lock(&s.events.0);
        assert_eq!(events.len(), 1);
        let e = &events[&format!("jitsi:recording-uploaded:{}", req.sha256)];
        assert_eq!(e.provider, "jitsi");
        assert_eq!(e.event_type, "recording-uploaded");
        // Filed under the room Prosody's events name, found by time (Jibri's session id
        // names the recording, not the meeting).
        assert_eq!(e.session_id, None);
        assert_eq!(
            e.room_key.as_deref(),
            Some("jitsi:standup@conference.meet.example.org")
        );
        assert!(e.indexes_room_session);
        assert_eq!(e.job_ids, vec![job.to_owned()]);
    }
    // Completing again answers the same and records nothing new.
    let again = answer(call(&s, "/uploads/jitsi/complete", &req).await);
    assert_eq!(again, done);
    assert_eq!(lock(&s.events.0).len(), 1);
    // Starting again: already uploaded, no new upload.
    let creates = s.bucket.creates.load(Ordering::Relaxed);
    req.upload_id = None;
    let already = answer(call(&s, "/uploads/jitsi", &req).await);
    assert_eq!(already.status, status::ALREADY_UPLOADED);
    assert!(already.parts.is_empty() && already.upload_id.is_none());
    assert_eq!(s.bucket.creates.load(Ordering::Relaxed), creates);
}

#[tokio::test]
async fn a_resumed_upload_is_granted_only_its_missing_parts() {
    let s = service(MemoryBucket::default());
    let (file, mut req) = recording();
    let first = answer(call(&s, "/uploads/jitsi", &req).await);
    let p1 = first.parts.iter().find(|p| p.number == 1).expect("part 1");
    s.bucket.put(p1, part_bytes(&file, 1)).expect("put");
    req.upload_id = first.upload_id.clone();
    // Completing now: part 2 and 3 are missing.
    match call(&s, "/uploads/jitsi/complete", &req).await {
        UploadOutcome::PartsMissing(m) => assert_eq!(m, vec![2, 3]),
        other => panic!("{other:?}"),
    }
    let resumed = answer(call(&s, "/uploads/jitsi", &req).await);
    assert_eq!(resumed.upload_id, first.upload_id, "same upload");
    assert_eq!(resumed.missing_parts, 2);
    let numbers: Vec<_> = resumed.parts.iter().map(|p| p.number).collect();
    assert_eq!(numbers, vec![2, 3]);
    assert_eq!(s.bucket.creates.load(Ordering::Relaxed), 1);
    // A stale upload id (aborted) starts a new upload.
    req.upload_id = Some("gone".into());
    let fresh = answer(call(&s, "/uploads/jitsi", &req).await);
    assert_ne!(fresh.upload_id.as_deref(), Some("gone"));
    assert_eq!(fresh.missing_parts, 3);
    match call(&s, "/uploads/jitsi/complete", &req).await {
        UploadOutcome::UnknownUpload => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_token_stores_nothing() {
    let s = service(MemoryBucket::default());
    let (_, req) = recording();
    let body = serde_json::to_vec(&req).expect("json");
    for h in [headers("jibri-token-0123456780"), HeaderMap::new()] {
        for path in ["/uploads/jitsi", "/uploads/jitsi/complete"] {
            let o = s.handle(&Method::POST, path, &h, &body, 0).await;
            assert!(matches!(o, UploadOutcome::Unauthorized(_)), "{o:?}");
            let r = super::http::response(&o);
            assert_eq!(r.status(), 401);
            let text = String::from_utf8_lossy(r.body().as_ref()).to_string();
            assert!(!text.contains("jibri-token"), "{text}");
        }
    }
    assert_eq!(s.bucket.creates.load(Ordering::Relaxed), 0);
    assert!(lock(&s.ledger.0).is_empty() && lock(&s.events.0).is_empty());
}

#[tokio::test]
async fn a_wrong_declared_sha256_never_ends_as_copied() {
    let s = service(MemoryBucket::default());
    let (file, mut req) = recording();
    req.sha256 = "0".repeat(64);
    upload_all(&s, &file, &mut req).await;
    let o = call(&s, "/uploads/jitsi/complete", &req).await;
    assert!(
        matches!(o, UploadOutcome::Mismatch("sha256_mismatch")),
        "{o:?}"
    );
    assert_eq!(super::http::response(&o).status(), 422);
    assert!(lock(&s.bucket.objects).is_empty(), "the object was deleted");
    assert!(lock(&s.ledger.0).is_empty() && lock(&s.events.0).is_empty());
}

#[tokio::test]
async fn a_corrupted_part_is_refused_by_s3_or_caught_by_the_read_back() {
    // S3 refuses a part whose bytes do not match the signed checksum.
    let s = service(MemoryBucket::default());
    let (file, req) = recording();
    let a = answer(call(&s, "/uploads/jitsi", &req).await);
    let mut bad = part_bytes(&file, 1).to_vec();
    bad[17] ^= 1;
    assert_eq!(s.bucket.put(&a.parts[0], &bad), Err("BadDigest".into()));

    // An emulator that does not check: the read back does, and nothing is recorded.
    let s = service(MemoryBucket {
        skip_part_checks: true,
        ..Default::default()
    });
    let (file, mut req) = recording();
    let mut corrupted = file.clone();
    corrupted[5 * MIB + 3] ^= 0x40;
    upload_all(&s, &corrupted, &mut req).await;
    let o = call(&s, "/uploads/jitsi/complete", &req).await;
    assert!(matches!(o, UploadOutcome::Mismatch(_)), "{o:?}");
    assert!(lock(&s.bucket.objects).is_empty());
    assert!(lock(&s.ledger.0).is_empty() && lock(&s.events.0).is_empty());
    drop(file);
}

#[tokio::test]
async fn refusals_are_statuses_with_reasons_never_panics() {
    let s = service(MemoryBucket::default());
    let (_, req) = recording();
    let body = serde_json::to_vec(&req).expect("json");
    let h = headers(TOKEN);
    let status_of = |o: &UploadOutcome| super::http::response(o).status().as_u16();
    let o = s.handle(&Method::GET, "/uploads/jitsi", &h, &body, 0).await;
    assert_eq!(status_of(&o), 405);
    let o = s
        .handle(&Method::POST, "/uploads/other", &h, &body, 0)
        .await;
    assert_eq!(status_of(&o), 404);
    let o = s
        .handle(&Method::POST, "/uploads/jitsi", &h, b"[]", 0)
        .await;
    assert_eq!(status_of(&o), 400);
    // Completing needs the upload id.
    let o = s
        .handle(&Method::POST, "/uploads/jitsi/complete", &h, &body, 0)
        .await;
    assert_eq!(status_of(&o), 400);
    // Larger than the deployment accepts.
    let mut huge = req.clone();
    huge.size = 200 * 1024 * 1024 * 1024;
    huge.part_size = 1024 * 1024 * 1024;
    huge.part_sha256 = vec!["a".repeat(64); 200];
    let o = call(&s, "/uploads/jitsi", &huge).await;
    assert_eq!(status_of(&o), 413);
    // Storage failures are 503 with the operation named, and nothing else.
    *lock(&s.bucket.fail) = Some("CreateMultipartUpload");
    let o = call(&s, "/uploads/jitsi", &req).await;
    assert_eq!(status_of(&o), 503);
    let text = String::from_utf8_lossy(super::http::response(&o).body().as_ref()).to_string();
    assert!(
        text.contains("CreateMultipartUpload") && !text.contains("injected"),
        "{text}"
    );
}

#[tokio::test]
async fn a_completion_cut_off_during_its_read_back_is_completed_again_without_a_new_upload() {
    let s = service(MemoryBucket::default());
    let (file, mut req) = recording();
    upload_all(&s, &file, &mut req).await;
    // The gateway gave up while the object was being read back (here: the read fails).
    *lock(&s.bucket.fail) = Some("GetObject");
    let o = call(&s, "/uploads/jitsi/complete", &req).await;
    assert!(
        matches!(o, UploadOutcome::Unavailable("GetObject")),
        "{o:?}"
    );
    *lock(&s.bucket.fail) = None;
    assert!(
        lock(&s.ledger.0).is_empty(),
        "nothing recorded before verification"
    );
    // The host asks again: no new upload, nothing to send, complete next.
    let creates = s.bucket.creates.load(Ordering::Relaxed);
    let again = answer(call(&s, "/uploads/jitsi", &req).await);
    assert_eq!(again.status, status::UPLOAD);
    assert_eq!((again.missing_parts, again.parts.len()), (0, 0));
    assert_eq!(again.upload_id, req.upload_id);
    assert_eq!(s.bucket.creates.load(Ordering::Relaxed), creates);
    let done = answer(call(&s, "/uploads/jitsi/complete", &req).await);
    assert_eq!(done.status, status::COMPLETED);
    assert_eq!(lock(&s.ledger.0).len(), 1);
    assert_eq!(lock(&s.events.0).len(), 1);
}
