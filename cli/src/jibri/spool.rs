//! The spool: one JSON file per recording file still to upload, written before Jibri's
//! finalize run returns, updated after every uploaded part, removed once the API confirmed the
//! object's SHA-256. A lock file next to it (created with `O_EXCL`) keeps two processes (the
//! detached upload and a timer's `--retry`) off one entry; a lock whose process is gone, or
//! older than [`STALE_LOCK`], is taken over.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// A lock older than this is stale whatever its process (a hung upload of a 6-hour recording
/// takes far less).
pub const STALE_LOCK: Duration = Duration::from_secs(12 * 3600);

/// The file's size and checksums, computed once (streaming) and kept with the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDigest {
    pub size: u64,
    pub sha256: String,
    pub part_size: u64,
    pub part_sha256: Vec<String>,
}

/// One recording file to upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub version: u32,
    pub recording_dir: PathBuf,
    pub file: PathBuf,
    pub session_id: String,
    pub file_name: String,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<FileDigest>,
    /// The multipart upload the API created for this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// Parts of `upload_id` this host sent and S3 accepted (the API's listing is the truth;
    /// this is what a report shows).
    #[serde(default)]
    pub uploaded_parts: BTreeSet<u32>,
    #[serde(default)]
    pub attempts: u32,
    /// The last failure, for the operator (never a URL or token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl Entry {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let raw = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        serde_json::from_slice(&raw).with_context(|| format!("parse {}", path.display()))
    }

    /// Written to a temporary file, synced and renamed: a crash leaves the old or the new
    /// entry, never half of one.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("json.tmp");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
    }
}

/// The entry file of a recording file: `<session>--<file name>.json` (both already limited to
/// safe characters by the caller).
pub fn entry_path(spool: &Path, session_id: &str, file_name: &str) -> PathBuf {
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    spool.join(format!("{session_id}--{safe}.json"))
}

/// Every entry of the spool, oldest name first.
pub fn entries(spool: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let dir = match std::fs::read_dir(spool) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("list {}", spool.display())),
    };
    for item in dir {
        let path = item?.path();
        if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Holds an entry's lock file until dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn process_alive(pid: u32) -> bool {
    // Linux: a running (or zombie) process has a /proc entry. Jibri runs on Linux.
    Path::new(&format!("/proc/{pid}")).exists()
}

fn stale(path: &Path) -> bool {
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let pid = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
    match pid {
        Some(pid) => !process_alive(pid) || age > STALE_LOCK,
        // Being written right now, or garbage: stale only once old.
        None => age > Duration::from_secs(60),
    }
}

/// Takes the entry's lock; `None` when another live process holds it.
pub fn lock(entry: &Path) -> anyhow::Result<Option<Lock>> {
    let path = entry.with_extension("lock");
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                writeln!(f, "{}", std::process::id())?;
                f.sync_all()?;
                return Ok(Some(Lock { path }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !stale(&path) {
                    return Ok(None);
                }
                // Taken over: the holder is gone. A racing taker's O_EXCL create decides.
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_dead_holders_are_taken_over() {
        let dir = std::env::temp_dir().join(format!("jibri-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let entry = dir.join("s--f.json");
        let held = lock(&entry).expect("lock").expect("free");
        assert!(
            lock(&entry).expect("lock").is_none(),
            "held by a live process"
        );
        drop(held);
        let again = lock(&entry).expect("lock").expect("released");
        drop(again);
        // A lock left by a process that is gone (PID far beyond pid_max).
        std::fs::write(entry.with_extension("lock"), "4999999\n").expect("write");
        assert!(
            lock(&entry).expect("lock").is_some(),
            "stale lock taken over"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn entries_round_trip_and_names_are_safe() {
        let dir = std::env::temp_dir().join(format!("jibri-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = entry_path(&dir, "abc-1", "a b/../c.mp4");
        assert_eq!(path.parent(), Some(dir.as_path()));
        assert!(
            path.ends_with("abc-1--a_b_.._c.mp4.json"),
            "{}",
            path.display()
        );
        let e = Entry {
            version: 1,
            recording_dir: dir.clone(),
            file: dir.join("c.mp4"),
            session_id: "abc-1".into(),
            file_name: "c.mp4".into(),
            metadata: Default::default(),
            digest: None,
            upload_id: Some("u".into()),
            uploaded_parts: [1, 2].into(),
            attempts: 3,
            last_error: None,
        };
        e.save(&path).expect("save");
        assert_eq!(Entry::load(&path).expect("load"), e);
        assert_eq!(entries(&dir).expect("list"), vec![path]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
