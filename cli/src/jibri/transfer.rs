//! One entry's upload: digest, grant, parts, complete, and the clean-up that follows a
//! verified object. Every step persists what it learnt in the entry first, so a kill at any
//! point loses at most the part in flight.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use meeting_hooks::uploads::wire::{GrantAnswer, PartUrl, UploadRequest, status};
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};

use super::spool::{Entry, FileDigest};
use super::{Config, backoff};

/// S3's largest part count.
const MAX_PARTS: u64 = 10_000;
/// Grant/complete rounds in one run before leaving the rest to the next `--retry`.
const MAX_ROUNDS: u32 = 8;

/// Test hooks: stop after this many parts (as if the process were killed there).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub stop_after_parts: Option<usize>,
}

/// What a run of one entry came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In the bucket, its SHA-256 confirmed by the API; the entry is removed (and the local
    /// file unless kept).
    Uploaded {
        key: String,
        bytes: u64,
        sha256: String,
        /// Parts this run sent (a resumed upload sends only the missing ones).
        parts_sent: usize,
        local_deleted: bool,
    },
    /// Another process holds the entry.
    Busy,
    /// Finished by someone else meanwhile.
    Gone,
    /// Stopped by [`Hooks::stop_after_parts`].
    Interrupted,
}

/// Hashes the file once, streaming: its SHA-256 and every part's.
fn digest_file(path: &Path, part_size: u64) -> anyhow::Result<FileDigest> {
    let mut f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let size = f.metadata()?.len();
    if size == 0 {
        bail!("{} is empty", path.display());
    }
    // Raised (whole MiB) when the file would need more than 10,000 parts.
    let mib = 1024 * 1024;
    let part_size = part_size.max(size.div_ceil(MAX_PARTS).div_ceil(mib) * mib);
    let mut whole = Sha256::new();
    let mut part = Sha256::new();
    let mut in_part = 0u64;
    let mut parts = Vec::new();
    let mut buf = vec![0u8; mib as usize];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let take = (part_size - in_part).min(chunk.len() as u64) as usize;
            whole.update(&chunk[..take]);
            part.update(&chunk[..take]);
            in_part += take as u64;
            chunk = &chunk[take..];
            if in_part == part_size {
                parts.push(hex::encode(part.finalize_reset()));
                in_part = 0;
            }
        }
        total += n as u64;
    }
    if in_part > 0 {
        parts.push(hex::encode(part.finalize()));
    }
    if total != size {
        bail!("{} changed while it was read", path.display());
    }
    Ok(FileDigest {
        size,
        sha256: hex::encode(whole.finalize()),
        part_size,
        part_sha256: parts,
    })
}

/// Reads part `number` and checks it against the digest (a file changed since it was hashed
/// must not be uploaded under the old checksum).
fn read_part(path: &Path, d: &FileDigest, number: u32) -> anyhow::Result<Vec<u8>> {
    let start = u64::from(number.saturating_sub(1)) * d.part_size;
    let len = d.size.saturating_sub(start).min(d.part_size) as usize;
    let mut f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    f.seek(SeekFrom::Start(start))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)
        .with_context(|| format!("read part {number} of {}", path.display()))?;
    let want = d
        .part_sha256
        .get(number as usize - 1)
        .ok_or_else(|| anyhow!("no part {number}"))?;
    if hex::encode(Sha256::digest(&buf)) != *want {
        bail!("{} changed since it was hashed", path.display());
    }
    Ok(buf)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("worker failed: {e}"))?
}

/// An API answer that is not a success: status and the API's short reason.
#[derive(Debug)]
struct Refusal {
    status: u16,
    code: String,
    reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "API answered {} {}: {}",
            self.status, self.code, self.reason
        )
    }
}

struct Api<'a> {
    http: reqwest::Client,
    config: &'a Config,
}

impl Api<'_> {
    async fn call(
        &self,
        url: &str,
        req: &UploadRequest,
    ) -> anyhow::Result<Result<GrantAnswer, Refusal>> {
        let resp = self
            .http
            .post(url)
            .bearer_auth(self.config.token.expose_secret())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(req)?)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| anyhow!("{}", e.without_url()))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| anyhow!("{}", e.without_url()))?;
        if status == 200 {
            return Ok(Ok(
                serde_json::from_slice(&body).context("the API's answer")?
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let text = |k: &str| {
            v[k].as_str()
                .unwrap_or("")
                .chars()
                .take(300)
                .collect::<String>()
        };
        Ok(Err(Refusal {
            status,
            code: text("error"),
            reason: text("reason"),
        }))
    }

    /// PUTs one part to its presigned URL with exactly the headers it was signed with.
    async fn put(&self, part: &PartUrl, bytes: Vec<u8>) -> anyhow::Result<Result<(), u16>> {
        let mut req = self.http.put(&part.url).timeout(Duration::from_secs(600));
        for (name, value) in &part.headers {
            // The client sets these itself from the body and the URL.
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("host") {
                continue;
            }
            req = req.header(name, value);
        }
        let resp = req
            .body(bytes)
            .send()
            .await
            // Never the URL: it is a credential for minutes.
            .map_err(|e| anyhow!("part {}: {}", part.number, e.without_url()))?;
        let status = resp.status();
        Ok(if status.is_success() {
            Ok(())
        } else {
            Err(status.as_u16())
        })
    }
}

fn request(entry: &Entry, d: &FileDigest, config: &Config) -> UploadRequest {
    UploadRequest {
        muc_domain: config.muc_domain.clone(),
        session_id: entry.session_id.clone(),
        file_name: entry.file_name.clone(),
        size: d.size,
        sha256: d.sha256.clone(),
        part_size: d.part_size,
        part_sha256: d.part_sha256.clone(),
        upload_id: entry.upload_id.clone(),
        metadata: entry.metadata.clone(),
    }
}

pub(super) async fn run(path: &Path, config: &Config, hooks: &Hooks) -> anyhow::Result<Outcome> {
    let mut entry = Entry::load(path)?;
    entry.attempts = entry.attempts.saturating_add(1);
    entry.save(path)?;
    let result = upload(path, &mut entry, config, hooks).await;
    match &result {
        Ok(Outcome::Uploaded { .. }) => {
            std::fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
            let _ = std::fs::remove_file(path.with_extension("log"));
        }
        Ok(_) => {}
        Err(e) => {
            entry.last_error = Some(format!("{e:#}").chars().take(500).collect());
            entry.save(path)?;
        }
    }
    result
}

async fn upload(
    path: &Path,
    entry: &mut Entry,
    config: &Config,
    hooks: &Hooks,
) -> anyhow::Result<Outcome> {
    let label = format!("{}/{}", entry.session_id, entry.file_name);
    let api = Api {
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("HTTP client")?,
        config,
    };
    let complete_url = format!("{}/complete", config.upload_url);
    let mut parts_sent = 0usize;
    let mut mismatches = 0;
    for round in 0..MAX_ROUNDS {
        if round > 0 {
            tokio::time::sleep(backoff(round - 1)).await;
        }
        // The digest, once (and again when the file on disk no longer matches it).
        let size_now = std::fs::metadata(&entry.file)
            .with_context(|| format!("the recording {} is gone", entry.file.display()))?
            .len();
        let digest = match &entry.digest {
            Some(d) if d.size == size_now => d.clone(),
            _ => {
                let (file, part) = (entry.file.clone(), config.part_size);
                let d = blocking(move || digest_file(&file, part)).await?;
                entry.digest = Some(d.clone());
                entry.upload_id = None;
                entry.uploaded_parts.clear();
                entry.save(path)?;
                d
            }
        };
        let grant = match api
            .call(&config.upload_url, &request(entry, &digest, config))
            .await?
        {
            Ok(g) => g,
            Err(r) if r.status >= 500 || r.status == 429 => {
                eprintln!("jibri-finalize: {label}: {r}; retrying");
                continue;
            }
            Err(r) => bail!("{r}"),
        };
        if grant.status == status::ALREADY_UPLOADED {
            return finish(entry, config, &grant, &digest, parts_sent);
        }
        if grant.status != status::UPLOAD {
            bail!("unexpected grant status {:?}", grant.status);
        }
        if grant.upload_id != entry.upload_id {
            entry.upload_id = grant.upload_id.clone();
            entry.uploaded_parts.clear();
            entry.save(path)?;
        }
        let mut expired = false;
        for part in &grant.parts {
            if hooks.stop_after_parts.is_some_and(|n| parts_sent >= n) {
                return Ok(Outcome::Interrupted);
            }
            let (file, d, number) = (entry.file.clone(), digest.clone(), part.number);
            let bytes = match blocking(move || read_part(&file, &d, number)).await {
                Ok(b) => b,
                Err(e) => {
                    // Changed on disk: hash again and start over.
                    eprintln!("jibri-finalize: {label}: {e:#}; hashing again");
                    entry.digest = None;
                    entry.save(path)?;
                    expired = true;
                    break;
                }
            };
            match api.put(part, bytes).await? {
                Ok(()) => {
                    parts_sent += 1;
                    entry.uploaded_parts.insert(part.number);
                    entry.save(path)?;
                }
                // 403: the URL expired (or S3 refused the checksum): ask again.
                Err(status) => {
                    eprintln!(
                        "jibri-finalize: {label}: part {} answered {status}; asking for a new grant",
                        part.number
                    );
                    expired = true;
                    break;
                }
            }
        }
        if expired || grant.missing_parts as usize > grant.parts.len() {
            continue;
        }
        match api
            .call(&complete_url, &request(entry, &digest, config))
            .await?
        {
            Ok(done) if done.status == status::COMPLETED => {
                return finish(entry, config, &done, &digest, parts_sent);
            }
            Ok(other) => bail!("unexpected completion status {:?}", other.status),
            Err(r) if r.code == "parts_missing" => continue,
            Err(r) if r.code == "upload_unknown" => {
                entry.upload_id = None;
                entry.uploaded_parts.clear();
                entry.save(path)?;
            }
            Err(r) if r.status == 422 => {
                // What arrived is not this file: the API deleted it. Hash again (the file may
                // have changed) and upload again, a bounded number of times.
                mismatches += 1;
                eprintln!("jibri-finalize: {label}: {r}");
                if mismatches >= 2 {
                    bail!("{r} (twice; giving up until the next retry)");
                }
                entry.digest = None;
                entry.upload_id = None;
                entry.uploaded_parts.clear();
                entry.save(path)?;
            }
            Err(r) if r.status >= 500 || r.status == 429 => {
                // A long read back can outlast the gateway's 30 s: the function goes on, and
                // a later completion finds the result.
                eprintln!("jibri-finalize: {label}: {r}; retrying");
            }
            Err(r) => bail!("{r}"),
        }
    }
    bail!("not finished after {MAX_ROUNDS} rounds; the next --retry continues")
}

/// The API confirmed the object's SHA-256: only now may the local recording go.
fn finish(
    entry: &Entry,
    config: &Config,
    answer: &GrantAnswer,
    digest: &FileDigest,
    parts_sent: usize,
) -> anyhow::Result<Outcome> {
    if answer.sha256.as_deref() != Some(digest.sha256.as_str()) || answer.bytes != Some(digest.size)
    {
        bail!("the API confirmed another object than this file; keeping the file");
    }
    let mut local_deleted = false;
    if !config.keep_files {
        std::fs::remove_file(&entry.file)
            .with_context(|| format!("remove {}", entry.file.display()))?;
        local_deleted = true;
        // The directory goes with its last recording (metadata.json was uploaded with it).
        let recordings_left = std::fs::read_dir(&entry.recording_dir)
            .map(|d| {
                d.filter_map(Result::ok).any(|e| {
                    e.path()
                        .extension()
                        .is_some_and(|x| x.eq_ignore_ascii_case("mp4"))
                })
            })
            .unwrap_or(true);
        if !recordings_left {
            let _ = std::fs::remove_file(entry.recording_dir.join("metadata.json"));
            let _ = std::fs::remove_dir(&entry.recording_dir);
        }
    }
    eprintln!(
        "jibri-finalize: {}/{}: uploaded and verified ({} bytes, sha256 {}, {parts_sent} part(s) sent by this run){}",
        entry.session_id,
        entry.file_name,
        digest.size,
        digest.sha256,
        if local_deleted {
            "; local copy deleted"
        } else {
            ""
        }
    );
    Ok(Outcome::Uploaded {
        key: answer.key.clone(),
        bytes: digest.size,
        sha256: digest.sha256.clone(),
        parts_sent,
        local_deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_cuts_parts_like_the_api_expects() {
        let dir = std::env::temp_dir().join(format!("jibri-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("r.mp4");
        let mib = 1024 * 1024;
        let data: Vec<u8> = (0..(11 * mib + 5)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&file, &data).expect("write");
        let d = digest_file(&file, 5 * mib as u64).expect("digest");
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&data)));
        let want: Vec<String> = data
            .chunks(5 * mib)
            .map(|c| hex::encode(Sha256::digest(c)))
            .collect();
        assert_eq!(d.part_sha256, want);
        assert_eq!(read_part(&file, &d, 3).expect("part 3"), data[10 * mib..]);
        // A changed file is noticed before a part is sent.
        let mut changed = data.clone();
        changed[6 * mib] ^= 1;
        std::fs::write(&file, &changed).expect("write");
        assert!(read_part(&file, &d, 2).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
