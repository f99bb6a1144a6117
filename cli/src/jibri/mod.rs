//! jibri-finalize: what Jibri runs as its `finalize-script` on a self-hosted Jitsi recorder.
//! It puts each recording of the directory into our bucket through the upload-grant API
//! (`meeting_hooks::uploads`), with only an endpoint URL and a token on the host: no AWS
//! credentials.
//!
//! `jibri-finalize <recording-dir>` records the files in the spool ([`spool`]) and returns at
//! once (Jibri waits for it), leaving the upload to a detached copy of itself
//! (`--retry <entry>`). `jibri-finalize --retry` (a timer) takes up whatever is left. An
//! upload hashes the file once (streaming), sends each part with its SHA-256 (S3 checks it),
//! persists its progress after every part, resumes with the parts the API says are missing,
//! and deletes the local recording only after the API confirmed the object's full SHA-256.

pub mod spool;
mod transfer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use secrecy::SecretString;

pub use spool::{Entry, FileDigest};
pub use transfer::{Hooks, Outcome};

/// Where entries live unless configured.
pub const DEFAULT_SPOOL: &str = "/var/spool/jibri-finalize";
/// Read when present (`KEY=VALUE` lines, the same names as the variables).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/jibri-finalize.conf";
/// Parts of this size unless configured (a 6-hour recording is a few hundred parts).
pub const DEFAULT_PART_MIB: u64 = 16;

/// jibri-finalize's configuration: the grant API and a token, nothing of AWS.
#[derive(Debug, Clone)]
pub struct Config {
    /// `JIBRI_UPLOAD_URL`: the API's `/uploads/jitsi` URL (the stack's `JibriUploadUrl`).
    pub upload_url: String,
    /// `JIBRI_UPLOAD_TOKEN`: one of the secret's `jitsi.tokens`.
    pub token: SecretString,
    /// `JIBRI_SPOOL_DIR`
    pub spool_dir: PathBuf,
    /// `JIBRI_KEEP_FILES=true`: leave the recording on disk after a verified upload.
    pub keep_files: bool,
    /// `JIBRI_PART_SIZE_MIB` (5..=5120), raised when a file would need more than 10,000 parts.
    pub part_size: u64,
    /// `JIBRI_MUC_DOMAIN`: the deployment's MUC domain, when it is not `conference.<meeting
    /// host>`, so that recordings are filed under the rooms Prosody's events name.
    pub muc_domain: Option<String>,
}

/// Reads `KEY=VALUE` lines (`#` comments, optional quotes).
pub fn read_config_file(path: &Path) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim().trim_matches('"').trim_matches('\'');
            (k.trim().to_owned(), v.to_owned())
        })
        .collect())
}

impl Config {
    /// From the environment, then the config file (the environment wins).
    pub fn load(config_file: Option<&Path>) -> anyhow::Result<Self> {
        let file = match config_file {
            Some(p) => read_config_file(p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                read_config_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => Default::default(),
        };
        Self::from_lookup(|name| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .or_else(|| file.get(name).cloned())
        })
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let upload_url = get("JIBRI_UPLOAD_URL")
            .context("JIBRI_UPLOAD_URL is not set (the API's /uploads/jitsi URL)")?;
        let parsed = url::Url::parse(upload_url.trim()).context("JIBRI_UPLOAD_URL is not a URL")?;
        if !matches!(parsed.scheme(), "https" | "http") {
            bail!("JIBRI_UPLOAD_URL must be https (http only for a local stack)");
        }
        let token = get("JIBRI_UPLOAD_TOKEN").context("JIBRI_UPLOAD_TOKEN is not set")?;
        let part_mib: u64 = match get("JIBRI_PART_SIZE_MIB") {
            Some(v) => v
                .trim()
                .parse()
                .context("JIBRI_PART_SIZE_MIB is not a number")?,
            None => DEFAULT_PART_MIB,
        };
        let keep_files = get("JIBRI_KEEP_FILES").is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")
        });
        let muc_domain = match get("JIBRI_MUC_DOMAIN").map(|d| d.trim().to_ascii_lowercase()) {
            Some(d) if d.is_empty() => None,
            Some(d) if !meeting_hooks::uploads::wire::is_muc_domain(&d) => {
                bail!("JIBRI_MUC_DOMAIN is not a domain name")
            }
            other => other,
        };
        Ok(Self {
            muc_domain,
            upload_url: upload_url.trim().trim_end_matches('/').to_owned(),
            token: SecretString::from(token.trim().to_owned()),
            spool_dir: get("JIBRI_SPOOL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL)),
            keep_files,
            part_size: part_mib.clamp(5, 5 * 1024) * 1024 * 1024,
        })
    }
}

/// Jibri's directory name is its session id, sanitised to `[a-zA-Z0-9_-]`; anything else is
/// replaced here too, so the API accepts it.
fn session_of(dir: &Path) -> anyhow::Result<String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the recording directory has no name")?;
    let session: String = name
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if session.is_empty() {
        bail!("the recording directory has an empty name");
    }
    Ok(session)
}

/// Records every `.mp4` of `dir` in the spool (an entry that exists is kept: a second run
/// for the same directory changes nothing) and returns the entries. Cheap: no hashing.
pub fn spool_recording(dir: &Path, spool_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("recording directory {}", dir.display()))?;
    let session_id = session_of(&dir)?;
    let metadata = match std::fs::read(dir.join("metadata.json")) {
        Ok(raw) => match serde_json::from_slice::<serde_json::Value>(&raw) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                eprintln!(
                    "jibri-finalize: {session_id}: metadata.json is not a JSON object; uploading without it"
                );
                Default::default()
            }
        },
        Err(_) => {
            eprintln!("jibri-finalize: {session_id}: no metadata.json; uploading without it");
            Default::default()
        }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("mp4")))
        .collect();
    files.sort();
    std::fs::create_dir_all(spool_dir)
        .with_context(|| format!("create spool {}", spool_dir.display()))?;
    let mut out = Vec::new();
    for file in files {
        let file_name = file
            .file_name()
            .and_then(|n| n.to_str())
            .context("a recording's name is not UTF-8")?
            .to_owned();
        let path = spool::entry_path(spool_dir, &session_id, &file_name);
        if !path.exists() {
            Entry {
                version: 1,
                recording_dir: dir.clone(),
                file: file.clone(),
                session_id: session_id.clone(),
                file_name,
                metadata: metadata.clone(),
                digest: None,
                upload_id: None,
                uploaded_parts: Default::default(),
                attempts: 0,
                last_error: None,
            }
            .save(&path)?;
        }
        out.push(path);
    }
    Ok(out)
}

/// Uploads one spool entry now (in this process), resuming whatever an earlier run left.
pub async fn run_entry(entry: &Path, config: &Config, hooks: &Hooks) -> anyhow::Result<Outcome> {
    let Some(_lock) = spool::lock(entry)? else {
        return Ok(Outcome::Busy);
    };
    if !entry.exists() {
        // Finished by the process that held the lock before us.
        return Ok(Outcome::Gone);
    }
    transfer::run(entry, config, hooks).await
}

/// `--retry`: every entry of the spool, one after the other. Errors are reported per entry;
/// the result is how many entries failed (an entry another process is uploading right now is
/// not a failure).
pub async fn retry_all(config: &Config, hooks: &Hooks) -> anyhow::Result<usize> {
    let mut left = 0;
    for entry in spool::entries(&config.spool_dir)? {
        match run_entry(&entry, config, hooks).await {
            Ok(Outcome::Uploaded { .. } | Outcome::Gone | Outcome::Busy) => {}
            Ok(Outcome::Interrupted) => left += 1,
            Err(e) => {
                eprintln!("jibri-finalize: {}: {e:#}", entry.display());
                left += 1;
            }
        }
    }
    Ok(left)
}

/// Starts `exe --retry <entry>` detached from Jibri: its own process group, no stdin, output
/// to `<entry>.log`, not waited for. Jibri's finalize run then returns at once.
pub fn detach(
    exe: &Path,
    entry: &Path,
    config_file: Option<&Path>,
    config: &Config,
) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(entry.with_extension("log"))
        .ok();
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--retry")
        .arg(entry)
        .env("JIBRI_SPOOL_DIR", &config.spool_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .process_group(0);
    match log {
        Some(f) => cmd.stderr(f),
        None => cmd.stderr(std::process::Stdio::null()),
    };
    if config.keep_files {
        cmd.env("JIBRI_KEEP_FILES", "true");
    }
    if let Some(file) = config_file {
        cmd.arg("--config").arg(file);
    }
    cmd.spawn()
        .with_context(|| format!("start {} --retry", exe.display()))?;
    Ok(())
}

/// How long the upload waits between rounds within one run (a later `--retry` continues).
pub(crate) fn backoff(round: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << round.min(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let vars: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_muc_domain_is_optional_lowercased_and_checked() {
        let base = [
            ("JIBRI_UPLOAD_URL", "https://api.example.org/uploads/jitsi"),
            ("JIBRI_UPLOAD_TOKEN", "t0k3n-t0k3n-t0k3n"),
        ];
        assert_eq!(load(&base).expect("config").muc_domain, None);
        let with = |d: &str| {
            let mut pairs = base.to_vec();
            pairs.push(("JIBRI_MUC_DOMAIN", d));
            load(&pairs)
        };
        assert_eq!(
            with(" MUC.Meet.Example.org ")
                .expect("config")
                .muc_domain
                .as_deref(),
            Some("muc.meet.example.org")
        );
        assert_eq!(with("").expect("config").muc_domain, None);
        let refused = with("muc.example.org/evil").expect_err("refused");
        assert!(
            refused.to_string().contains("JIBRI_MUC_DOMAIN"),
            "{refused}"
        );
    }
}
