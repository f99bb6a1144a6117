//! The copier's ports in memory, for the use case's own tests ([`use_case_tests`]): the copy
//! state ([`MemStore`], the rules of `aws::copies`), the bucket ([`MemSink`], the multipart
//! semantics of `aws::objects`), the download ([`MemOrigin`], ranges, validators and scripted
//! failures) and the provider API ([`MemResolver`], a fresh link per call).
//!
//! Each port keeps what a test needs to assert (records, objects, open uploads, fetches seen)
//! behind a mutex; the ports are implemented for `&T`, so a test lends them to a
//! [`super::service::CopyService`] and still inspects them afterwards.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use sha2::{Digest, Sha256};

use super::layout::ObjectMeta;
use super::parts::S3_MIN_PART;
use super::ports::{
    AtRiskFlags, BodyStream, ContentRange, CopyStateStore, MultipartSink, Origin, OriginError,
    OriginResponse, SinkError, StateError,
};
use super::state::{
    Checkpoint, Claim, ClaimDecision, CopyResult, CopyStatus, ListedPart, PartRecord,
    UploadProgress, claim_decision,
};
use crate::facts::{ProviderObject, ResolveError, ResolvedLink, SourceResolver};
use crate::jobs::{AtRisk, Link};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes one scripted failure of `operation`, if any is left.
fn take_fault(faults: &Mutex<HashMap<&'static str, u32>>, operation: &'static str) -> bool {
    match lock(faults).get_mut(operation) {
        Some(left) if *left > 0 => {
            *left -= 1;
            true
        }
        _ => false,
    }
}

// ---- Copy state ----------------------------------------------------------------------------

/// One job's stored state: what the copies table holds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) status: CopyStatus,
    pub(crate) progress: Option<UploadProgress>,
    pub(crate) screenshots_done: usize,
    pub(crate) attempts: u32,
    /// What `mark_copied` recorded.
    pub(crate) result: Option<CopyResult>,
    pub(crate) expires_at_secs: i64,
}

/// [`CopyStateStore`] in memory. Claims follow [`claim_decision`]; every write after the claim
/// is conditional on `owner = me AND state = copying` and fails with `lease_lost` otherwise,
/// exactly like the conditional writes of `aws::copies`.
#[derive(Debug, Default)]
pub(crate) struct MemStore {
    records: Mutex<HashMap<String, Record>>,
    /// What [`AtRiskFlags`] recorded, per job (the table keeps it beside the state).
    at_risk: Mutex<HashMap<String, AtRisk>>,
    faults: Mutex<HashMap<&'static str, u32>>,
}

impl MemStore {
    pub(crate) fn record(&self, job_id: &str) -> Option<Record> {
        lock(&self.records).get(job_id).cloned()
    }

    pub(crate) fn status(&self, job_id: &str) -> Option<CopyStatus> {
        self.record(job_id).map(|r| r.status)
    }

    pub(crate) fn at_risk(&self, job_id: &str) -> Option<AtRisk> {
        lock(&self.at_risk).get(job_id).cloned()
    }

    /// Puts `job_id` in `status` (a test's starting point).
    pub(crate) fn set_status(&self, job_id: &str, status: CopyStatus) {
        lock(&self.records).insert(
            job_id.to_owned(),
            Record {
                status,
                progress: None,
                screenshots_done: 0,
                attempts: 1,
                result: None,
                expires_at_secs: 0,
            },
        );
    }

    /// Makes the next `times` calls of `operation` (a method name, e.g. `"mark_copied"`) fail
    /// as a store outage would: nothing written, not a lost lease.
    pub(crate) fn fail(&self, operation: &'static str, times: u32) {
        lock(&self.faults).insert(operation, times);
    }

    fn injected(&self, operation: &'static str) -> Result<(), StateError> {
        if take_fault(&self.faults, operation) {
            return Err(StateError {
                operation,
                lease_lost: false,
                source: Some("injected store outage".into()),
            });
        }
        Ok(())
    }

    /// A write only the lease holder may make.
    fn owned(
        &self,
        operation: &'static str,
        job_id: &str,
        owner: &str,
        write: impl FnOnce(&mut Record),
    ) -> Result<(), StateError> {
        self.injected(operation)?;
        let mut records = lock(&self.records);
        match records.get_mut(job_id) {
            Some(r) if matches!(&r.status, CopyStatus::Copying { owner: o, .. } if o == owner) => {
                write(r);
                Ok(())
            }
            _ => Err(StateError {
                operation,
                lease_lost: true,
                source: None,
            }),
        }
    }
}

fn renew(r: &mut Record, until: i64) {
    if let CopyStatus::Copying { lease_until_ms, .. } = &mut r.status {
        *lease_until_ms = until;
    }
}

impl AtRiskFlags for &MemStore {
    async fn flag_at_risk(&self, flag: &AtRisk) -> Result<bool, StateError> {
        self.injected("flag_at_risk")?;
        // Checked and written under the records' lock, as the table's condition is one write.
        let records = lock(&self.records);
        if records
            .get(&flag.job_id)
            .is_some_and(|r| r.status == CopyStatus::Copied)
        {
            return Ok(false);
        }
        let mut flags = lock(&self.at_risk);
        if flags.contains_key(&flag.job_id) {
            return Ok(false);
        }
        flags.insert(flag.job_id.clone(), flag.clone());
        Ok(true)
    }
}

/// The states as the read API's view of the copies table shows them.
impl crate::read::ports::CopyStates for &MemStore {
    async fn copy_states(
        &self,
        job_ids: &[String],
    ) -> Result<HashMap<String, crate::read::model::CopyView>, crate::read::ports::ReadError> {
        let records = lock(&self.records);
        Ok(job_ids
            .iter()
            .filter_map(|id| {
                let r = records.get(id)?;
                let (permanent, reason) = match &r.status {
                    CopyStatus::Failed { permanent, reason } => (*permanent, Some(reason.clone())),
                    _ => (false, None),
                };
                Some((
                    id.clone(),
                    crate::read::model::CopyView {
                        state: r.status.name().to_owned(),
                        permanent,
                        reason,
                        ..crate::read::model::CopyView::default()
                    },
                ))
            })
            .collect())
    }
}

impl CopyStateStore for &MemStore {
    async fn claim(
        &self,
        job_id: &str,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        expires_at_secs: i64,
    ) -> Result<Claim, StateError> {
        self.injected("claim")?;
        let mut records = lock(&self.records);
        let stored = records.get(job_id).map(|r| &r.status);
        match claim_decision(stored, owner, now_ms) {
            ClaimDecision::Take => {
                let r = records.entry(job_id.to_owned()).or_insert(Record {
                    status: CopyStatus::Pending,
                    progress: None,
                    screenshots_done: 0,
                    attempts: 0,
                    result: None,
                    expires_at_secs,
                });
                r.status = CopyStatus::Copying {
                    owner: owner.to_owned(),
                    lease_until_ms,
                };
                r.attempts += 1;
                r.expires_at_secs = expires_at_secs;
                Ok(Claim::Claimed {
                    progress: r.progress.clone(),
                    screenshots_done: r.screenshots_done,
                    attempt: r.attempts,
                })
            }
            ClaimDecision::AlreadyCopied => Ok(Claim::AlreadyCopied),
            ClaimDecision::AlreadyFailed { reason } => Ok(Claim::AlreadyFailed { reason }),
            ClaimDecision::Busy { lease_until_ms } => Ok(Claim::Busy { lease_until_ms }),
        }
    }

    async fn start_upload(
        &self,
        job_id: &str,
        owner: &str,
        upload: &UploadProgress,
        lease_until_ms: i64,
    ) -> Result<(), StateError> {
        self.owned("start_upload", job_id, owner, |r| {
            // A new upload replaces the old one and its checkpoint.
            r.progress = Some(UploadProgress {
                checkpoint: None,
                ..upload.clone()
            });
            renew(r, lease_until_ms);
        })
    }

    async fn record_checkpoint(
        &self,
        job_id: &str,
        owner: &str,
        checkpoint: &Checkpoint,
        lease_until_ms: i64,
    ) -> Result<(), StateError> {
        self.owned("record_checkpoint", job_id, owner, |r| {
            // Without an upload the table's item has no progress to read back either.
            if let Some(p) = r.progress.as_mut() {
                p.checkpoint = Some(checkpoint.clone());
            }
            renew(r, lease_until_ms);
        })
    }

    async fn record_screenshots(
        &self,
        job_id: &str,
        owner: &str,
        done: usize,
        lease_until_ms: i64,
    ) -> Result<(), StateError> {
        self.owned("record_screenshots", job_id, owner, |r| {
            r.screenshots_done = done;
            renew(r, lease_until_ms);
        })
    }

    async fn renew_lease(
        &self,
        job_id: &str,
        owner: &str,
        lease_until_ms: i64,
    ) -> Result<(), StateError> {
        self.owned("renew_lease", job_id, owner, |r| renew(r, lease_until_ms))
    }

    async fn release(&self, job_id: &str, owner: &str) -> Result<(), StateError> {
        self.owned("release", job_id, owner, |r| r.status = CopyStatus::Pending)
    }

    async fn mark_copied(
        &self,
        job_id: &str,
        owner: &str,
        result: &CopyResult,
        _now_ms: i64,
    ) -> Result<(), StateError> {
        self.injected("mark_copied")?;
        let mut records = lock(&self.records);
        let Some(r) = records.get_mut(job_id) else {
            return Err(StateError {
                operation: "mark_copied",
                lease_lost: true,
                source: None,
            });
        };
        // Ours while copying; or already copied with this very result (our own write again).
        let ours = matches!(&r.status, CopyStatus::Copying { owner: o, .. } if o == owner);
        let same = r.status == CopyStatus::Copied
            && r.result.as_ref().is_some_and(|c| c.sha256 == result.sha256);
        if !(ours || same) {
            return Err(StateError {
                operation: "mark_copied",
                lease_lost: true,
                source: None,
            });
        }
        r.status = CopyStatus::Copied;
        r.result = Some(result.clone());
        r.progress = None;
        Ok(())
    }

    async fn mark_failed(
        &self,
        job_id: &str,
        owner: &str,
        reason: &str,
        permanent: bool,
        _about: &crate::jobs::FileAbout,
        _now_ms: i64,
    ) -> Result<(), StateError> {
        self.owned("mark_failed", job_id, owner, |r| {
            r.status = CopyStatus::Failed {
                permanent,
                reason: reason.to_owned(),
            };
            r.progress = None;
        })
    }

    async fn reject(
        &self,
        job_id: &str,
        reason: &str,
        _now_ms: i64,
        expires_at_secs: i64,
    ) -> Result<(), StateError> {
        self.injected("reject")?;
        let mut records = lock(&self.records);
        let r = records.entry(job_id.to_owned()).or_insert(Record {
            status: CopyStatus::Failed {
                permanent: true,
                reason: String::new(),
            },
            progress: None,
            screenshots_done: 0,
            attempts: 0,
            result: None,
            expires_at_secs,
        });
        // Copied or in progress under a valid version: that record is left alone.
        if let CopyStatus::Failed { .. } = r.status {
            r.status = CopyStatus::Failed {
                permanent: true,
                reason: reason.to_owned(),
            };
            r.expires_at_secs = expires_at_secs;
        }
        Ok(())
    }
}

// ---- Object store --------------------------------------------------------------------------

/// A finished object: its bytes, the metadata its upload was created with, and its tag.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub(crate) bytes: Bytes,
    pub(crate) meta: ObjectMeta,
    pub(crate) sha256_tag: Option<String>,
}

#[derive(Debug, Clone)]
struct Part {
    bytes: Bytes,
    etag: String,
    sha256_b64: String,
}

#[derive(Debug)]
struct Upload {
    key: String,
    meta: ObjectMeta,
    parts: BTreeMap<u32, Part>,
}

#[derive(Debug, Default)]
struct Bucket {
    next_id: u64,
    uploads: HashMap<String, Upload>,
    objects: HashMap<String, Object>,
    /// Part numbers of every successful `upload_part`, in call order.
    uploaded: Vec<u32>,
    creates: u32,
}

/// [`MultipartSink`] in memory, with S3's rules: an unknown (aborted, completed) upload id is
/// `no_such_upload`; a part's SHA-256 is verified; completion takes the listed parts in
/// ascending order, each matching its ETag and checksum, every one but the last at least
/// 5 MiB, and concatenates them; abort of an unknown upload succeeds.
#[derive(Debug, Default)]
pub(crate) struct MemSink {
    bucket: Mutex<Bucket>,
}

fn sink_error(operation: &'static str, no_such_upload: bool, why: &str) -> SinkError {
    SinkError {
        operation,
        no_such_upload,
        source: why.into(),
    }
}

fn b64_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

impl MemSink {
    pub(crate) fn object(&self, key: &str) -> Option<Object> {
        lock(&self.bucket).objects.get(key).cloned()
    }

    pub(crate) fn open_uploads(&self) -> usize {
        lock(&self.bucket).uploads.len()
    }

    pub(crate) fn creates(&self) -> u32 {
        lock(&self.bucket).creates
    }

    /// The part numbers uploaded since the last call, sorted.
    pub(crate) fn take_parts(&self) -> Vec<u32> {
        let mut parts = std::mem::take(&mut lock(&self.bucket).uploaded);
        parts.sort_unstable();
        parts
    }
}

impl Bucket {
    fn upload(
        &mut self,
        operation: &'static str,
        key: &str,
        upload_id: &str,
    ) -> Result<&mut Upload, SinkError> {
        match self.uploads.get_mut(upload_id) {
            Some(u) if u.key == key => Ok(u),
            _ => Err(sink_error(
                operation,
                true,
                "NoSuchUpload: the upload does not exist (aborted or completed)",
            )),
        }
    }
}

impl MultipartSink for &MemSink {
    async fn create(&self, key: &str, meta: &ObjectMeta) -> Result<String, SinkError> {
        let mut bucket = lock(&self.bucket);
        bucket.next_id += 1;
        bucket.creates += 1;
        let id = format!("upload-{}", bucket.next_id);
        bucket.uploads.insert(
            id.clone(),
            Upload {
                key: key.to_owned(),
                meta: meta.clone(),
                parts: BTreeMap::new(),
            },
        );
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
        sha256_b64: &str,
    ) -> Result<String, SinkError> {
        if !(1..=10_000).contains(&number) {
            return Err(sink_error(
                "UploadPart",
                false,
                "InvalidArgument: part number",
            ));
        }
        if b64_sha256(&body) != sha256_b64 {
            return Err(sink_error(
                "UploadPart",
                false,
                "BadDigest: the part does not match its ChecksumSHA256",
            ));
        }
        let mut bucket = lock(&self.bucket);
        let upload = bucket.upload("UploadPart", key, upload_id)?;
        let etag = format!("\"{upload_id}-{number}-{}\"", &sha256_b64[..8]);
        // Uploading a part number again replaces it, as in S3.
        upload.parts.insert(
            number,
            Part {
                bytes: body,
                etag: etag.clone(),
                sha256_b64: sha256_b64.to_owned(),
            },
        );
        bucket.uploaded.push(number);
        Ok(etag)
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartRecord],
    ) -> Result<(), SinkError> {
        const OP: &str = "CompleteMultipartUpload";
        let mut bucket = lock(&self.bucket);
        let upload = bucket.upload(OP, key, upload_id)?;
        if parts.is_empty() {
            return Err(sink_error(OP, false, "MalformedXML: no parts"));
        }
        if parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(sink_error(OP, false, "InvalidPartOrder"));
        }
        let mut chosen = Vec::with_capacity(parts.len());
        for p in parts {
            let stored = upload
                .parts
                .get(&p.number)
                .filter(|s| s.etag == p.etag)
                .filter(|s| p.sha256.as_ref().is_none_or(|c| *c == s.sha256_b64))
                .ok_or_else(|| sink_error(OP, false, "InvalidPart: missing or different"))?;
            chosen.push(stored.bytes.clone());
        }
        if chosen[..chosen.len() - 1]
            .iter()
            .any(|b| (b.len() as u64) < S3_MIN_PART)
        {
            return Err(sink_error(OP, false, "EntityTooSmall: a part below 5 MiB"));
        }
        let mut whole = Vec::with_capacity(chosen.iter().map(Bytes::len).sum());
        for b in &chosen {
            whole.extend_from_slice(b);
        }
        let meta = upload.meta.clone();
        bucket.uploads.remove(upload_id);
        bucket.objects.insert(
            key.to_owned(),
            Object {
                bytes: whole.into(),
                meta,
                sha256_tag: None,
            },
        );
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), SinkError> {
        let mut bucket = lock(&self.bucket);
        // Already gone: nothing left to clean up (the S3 adapter maps NoSuchUpload to Ok).
        if bucket
            .upload("AbortMultipartUpload", key, upload_id)
            .is_ok()
        {
            bucket.uploads.remove(upload_id);
        }
        Ok(())
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, SinkError> {
        let mut bucket = lock(&self.bucket);
        let upload = bucket.upload("ListParts", key, upload_id)?;
        Ok(upload
            .parts
            .iter()
            .map(|(number, p)| ListedPart {
                number: *number,
                etag: p.etag.clone(),
                size: p.bytes.len() as u64,
                sha256: Some(p.sha256_b64.clone()),
            })
            .collect())
    }

    async fn tag_sha256(&self, key: &str, sha256_hex: &str) -> Result<(), SinkError> {
        let mut bucket = lock(&self.bucket);
        let object = bucket
            .objects
            .get_mut(key)
            .ok_or_else(|| sink_error("PutObjectTagging", false, "NoSuchKey"))?;
        object.sha256_tag = Some(sha256_hex.to_owned());
        Ok(())
    }

    async fn existing(&self, key: &str) -> Result<Option<(u64, Option<String>)>, SinkError> {
        Ok(lock(&self.bucket)
            .objects
            .get(key)
            .map(|o| (o.bytes.len() as u64, o.sha256_tag.clone())))
    }
}

// ---- Origin --------------------------------------------------------------------------------

/// A scripted misbehaviour of one answer (each is used once, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer this HTTP status instead of the file.
    Status(u16),
    /// Announce the full length but end the body with an error after this many bytes.
    Cut(u64),
    /// Send this many bytes, then nothing ever again (the deadline or a crash ends it).
    Stall(u64),
}

/// How one link answers.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    bytes: Bytes,
    /// `ETag`/`Last-Modified` as [`super::ports::if_range_validator`] would pick it.
    validator: Option<String>,
    content_type: Option<String>,
    ranges: bool,
    faults: VecDeque<Fault>,
}

/// A strong ETag no other version of any file has.
fn fresh_etag() -> String {
    static VERSIONS: AtomicU32 = AtomicU32::new(1);
    format!("\"v{}\"", VERSIONS.fetch_add(1, Ordering::SeqCst))
}

impl Served {
    /// The file, with a strong ETag, honouring `Range` and `If-Range`.
    pub(crate) fn file(bytes: Bytes) -> Self {
        Self {
            validator: Some(fresh_etag()),
            bytes,
            content_type: None,
            ranges: true,
            faults: VecDeque::new(),
        }
    }

    pub(crate) fn content_type(mut self, t: &str) -> Self {
        self.content_type = Some(t.to_owned());
        self
    }

    /// No strong ETag nor Last-Modified: nothing a resume could send as `If-Range`.
    pub(crate) fn without_validator(mut self) -> Self {
        self.validator = None;
        self
    }

    /// Always the whole file with 200, whatever `Range` asks.
    pub(crate) fn without_ranges(mut self) -> Self {
        self.ranges = false;
        self
    }

    /// The next answers misbehave as `faults` say, in order.
    pub(crate) fn then(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.faults.extend(faults);
        self
    }
}

/// One request the origin answered (or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetch {
    pub(crate) provider: String,
    pub(crate) link: String,
    pub(crate) from: u64,
    pub(crate) if_range: Option<String>,
}

/// [`Origin`] in memory: serves registered bytes per link (its query, the credential, is not
/// part of the route), with `Range` (206 and its `Content-Range`) and `If-Range` like an
/// HTTP origin, and the scripted [`Fault`]s of each route.
#[derive(Debug, Default)]
pub(crate) struct MemOrigin {
    routes: Mutex<HashMap<String, Served>>,
    seen: Mutex<Vec<Fetch>>,
}

/// Bodies arrive in chunks of this size, like a network read.
const CHUNK: usize = 256 * 1024;

fn route_of(link: &str) -> &str {
    link.split_once('?').map_or(link, |(route, _)| route)
}

impl MemOrigin {
    pub(crate) fn serve(&self, link: &str, served: Served) {
        lock(&self.routes).insert(route_of(link).to_owned(), served);
    }

    /// The file behind `link` becomes `bytes`, with a new validator (if it had one).
    pub(crate) fn replace(&self, link: &str, bytes: Bytes) {
        if let Some(s) = lock(&self.routes).get_mut(route_of(link)) {
            s.validator = s.validator.as_ref().map(|_| fresh_etag());
            s.bytes = bytes;
        }
    }

    /// The validator `link` answers with now.
    pub(crate) fn validator(&self, link: &str) -> Option<String> {
        lock(&self.routes)
            .get(route_of(link))
            .and_then(|s| s.validator.clone())
    }

    pub(crate) fn seen(&self) -> Vec<Fetch> {
        lock(&self.seen).clone()
    }
}

fn body(bytes: Bytes, fault: Option<Fault>) -> BodyStream {
    let (sent, tail): (usize, BodyStream) = match fault {
        Some(Fault::Cut(at)) => (
            (at as usize).min(bytes.len()),
            Box::pin(stream::once(async {
                Err(OriginError::Body(
                    "connection closed before the announced length".into(),
                ))
            })),
        ),
        Some(Fault::Stall(at)) => ((at as usize).min(bytes.len()), Box::pin(stream::pending())),
        _ => (bytes.len(), Box::pin(stream::empty())),
    };
    let head = bytes.slice(..sent);
    let chunks: Vec<Result<Bytes, OriginError>> = (0..sent)
        .step_by(CHUNK)
        .map(|at| Ok(head.slice(at..(at + CHUNK).min(sent))))
        .collect();
    Box::pin(stream::iter(chunks).chain(tail))
}

impl Origin for &MemOrigin {
    async fn fetch(
        &self,
        provider: &str,
        link: &str,
        from: u64,
        if_range: Option<&str>,
    ) -> Result<OriginResponse, OriginError> {
        lock(&self.seen).push(Fetch {
            provider: provider.to_owned(),
            link: link.to_owned(),
            from,
            if_range: if_range.map(str::to_owned),
        });
        let (served, fault) = {
            let mut routes = lock(&self.routes);
            let served = routes
                .get_mut(route_of(link))
                .ok_or(OriginError::Status(404))?;
            let fault = served.faults.pop_front();
            (served.clone(), fault)
        };
        if let Some(Fault::Status(s)) = fault {
            return Err(OriginError::Status(s));
        }
        let len = served.bytes.len() as u64;
        // If-Range: the range applies only to the version it names; else the whole file.
        let partial = from > 0
            && served.ranges
            && if_range.is_none_or(|v| served.validator.as_deref() == Some(v));
        let (range, bytes) = if partial {
            if from >= len {
                return Err(OriginError::Status(416));
            }
            let range = ContentRange {
                start: from,
                end: len - 1,
                total: Some(len),
            };
            (Some(range), served.bytes.slice(from as usize..))
        } else {
            (None, served.bytes.clone())
        };
        Ok(OriginResponse {
            range,
            content_length: Some(bytes.len() as u64),
            content_type: served.content_type.clone(),
            validator: served.validator.clone(),
            host: url::Url::parse(link)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
            body: body(bytes, fault),
        })
    }
}

// ---- Provider objects ----------------------------------------------------------------------

/// [`SourceResolver`] in memory: every call hands out a fresh link
/// (`<`[`MemResolver::route`]`>?token=<call number>`) unless a scripted failure comes first.
#[derive(Debug, Default)]
pub(crate) struct MemResolver {
    calls: AtomicU32,
    /// Scripted failures, in order: `true` for a permanent one.
    failures: Mutex<VecDeque<bool>>,
}

impl MemResolver {
    /// The route (link without its query) the links of `object` point at.
    pub(crate) fn route(object: &ProviderObject) -> String {
        format!("https://objects.test/{}/{}", object.object, object.id)
    }

    /// The next calls fail, one per entry (`true`: permanently).
    pub(crate) fn failing(self, permanent: impl IntoIterator<Item = bool>) -> Self {
        lock(&self.failures).extend(permanent);
        self
    }

    pub(crate) fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl SourceResolver for MemResolver {
    fn resolve<'a>(
        &'a self,
        provider: &'a str,
        object: &'a ProviderObject,
    ) -> BoxFuture<'a, Result<ResolvedLink, ResolveError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(permanent) = lock(&self.failures).pop_front() {
                return Err(ResolveError {
                    provider: provider.to_owned(),
                    object: object.object.clone(),
                    reason: format!("scripted failure of call {n}"),
                    permanent,
                    source: None,
                });
            }
            Ok(ResolvedLink {
                link: Link::new(format!("{}?token={n}", Self::route(object))),
                expires_at_ms: None,
            })
        })
    }
}

/// The in-memory store keeps the rules of the DynamoDB one, or the use-case tests prove nothing.
mod port_tests {
    use super::*;
    use crate::respond::now_ms;

    fn lost(r: Result<(), StateError>) -> bool {
        matches!(
            r,
            Err(StateError {
                lease_lost: true,
                ..
            })
        )
    }

    #[tokio::test]
    async fn the_store_refuses_every_write_of_a_copier_whose_lease_was_taken_over() {
        let store = MemStore::default();
        let s = &store;
        let now = now_ms();
        let upload = UploadProgress {
            upload_id: "u".into(),
            key: "k".into(),
            total: Some(10),
            validator: None,
            checkpoint: None,
        };
        // A's lease has run out (its claim was long ago): B takes the job over.
        assert!(matches!(
            s.claim("j", "a", now, now - 1, 0).await,
            Ok(Claim::Claimed { attempt: 1, .. })
        ));
        s.start_upload("j", "a", &upload, now - 1)
            .await
            .expect("a still holds it");
        assert!(matches!(
            s.claim("j", "b", now, now + 60_000, 0).await,
            Ok(Claim::Claimed {
                attempt: 2,
                progress: Some(_),
                ..
            })
        ));
        let taken = store.record("j");

        let cp = Checkpoint {
            parts: 1,
            bytes: 10,
            hash_state: Vec::new(),
        };
        let result = CopyResult {
            key: "k".into(),
            bytes: 10,
            sha256: "00".into(),
            objects: 1,
            about: None,
        };
        assert!(lost(s.start_upload("j", "a", &upload, now).await));
        assert!(lost(s.record_checkpoint("j", "a", &cp, now).await));
        assert!(lost(s.record_screenshots("j", "a", 1, now).await));
        assert!(lost(s.renew_lease("j", "a", now).await));
        assert!(lost(s.release("j", "a").await));
        assert!(lost(s.mark_copied("j", "a", &result, now).await));
        assert!(lost(
            s.mark_failed("j", "a", "late", true, &Default::default(), now)
                .await
        ));
        s.reject("j", "unsupported version", now, 0)
            .await
            .expect("a job in progress is left alone");
        assert_eq!(store.record("j"), taken, "nothing changed");
        assert!(matches!(
            s.claim("j", "c", now, now + 1, 0).await,
            Ok(Claim::Busy { lease_until_ms }) if lease_until_ms == now + 60_000
        ));

        s.mark_copied("j", "b", &result, now).await.expect("holder");
        s.mark_copied("j", "b", &result, now)
            .await
            .expect("the same result again (a retried write)");
        assert_eq!(
            s.claim("j", "c", now, now + 1, 0).await.ok(),
            Some(Claim::AlreadyCopied)
        );
    }
}
