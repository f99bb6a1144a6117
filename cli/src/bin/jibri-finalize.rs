//! jibri-finalize: Jibri's `finalize-script`. Everything lives in `hooksctl::jibri`; this
//! binary only parses arguments and reports errors (Jibri logs the exit code only).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hooksctl::jibri;

/// Uploads Jibri recordings into the meeting-hooks bucket through its upload-grant API.
///
/// Configuration (environment, else the config file): JIBRI_UPLOAD_URL, JIBRI_UPLOAD_TOKEN,
/// JIBRI_SPOOL_DIR, JIBRI_KEEP_FILES, JIBRI_PART_SIZE_MIB. No AWS credentials.
#[derive(Debug, Parser)]
#[command(name = "jibri-finalize", version, about, long_about = None)]
struct Args {
    /// Take up spooled uploads (all, or only this entry) instead of a recording directory.
    #[arg(long)]
    retry: bool,
    /// `KEY=VALUE` config file (default /etc/jibri-finalize.conf when present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Spool directory (overrides JIBRI_SPOOL_DIR).
    #[arg(long)]
    spool_dir: Option<PathBuf>,
    /// Keep the local recording after a verified upload (overrides JIBRI_KEEP_FILES).
    #[arg(long)]
    keep_files: bool,
    /// Upload in this process instead of a detached one (Jibri then waits for the upload).
    #[arg(long)]
    foreground: bool,
    /// The recording directory Jibri passes; with --retry, a spool entry.
    path: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jibri-finalize: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = jibri::Config::load(args.config.as_deref());
    if let Ok(c) = &mut config {
        if let Some(dir) = &args.spool_dir {
            c.spool_dir = dir.clone();
        }
        c.keep_files |= args.keep_files;
    }
    let hooks = jibri::Hooks::default();
    if args.retry {
        let config = config?;
        let left = match &args.path {
            Some(entry) => match jibri::run_entry(entry, &config, &hooks).await? {
                jibri::Outcome::Uploaded { .. } | jibri::Outcome::Gone | jibri::Outcome::Busy => 0,
                _ => 1,
            },
            None => jibri::retry_all(&config, &hooks).await?,
        };
        return Ok(if left == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let dir = args.path.ok_or_else(|| {
        anyhow::anyhow!("usage: jibri-finalize <recording-dir> | --retry [entry]")
    })?;
    // Spooled even when the configuration is broken: the timer's --retry uploads once fixed.
    let spool_dir = match (&config, &args.spool_dir) {
        (_, Some(dir)) => dir.clone(),
        (Ok(c), None) => c.spool_dir.clone(),
        (Err(_), None) => std::env::var_os("JIBRI_SPOOL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(jibri::DEFAULT_SPOOL)),
    };
    let entries = jibri::spool_recording(&dir, &spool_dir)?;
    let config = config?;
    if entries.is_empty() {
        eprintln!("jibri-finalize: no .mp4 in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    if args.foreground {
        for entry in &entries {
            jibri::run_entry(entry, &config, &hooks).await?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let exe = std::env::current_exe()?;
    for entry in &entries {
        jibri::detach(&exe, entry, args.config.as_deref(), &config)?;
        eprintln!(
            "jibri-finalize: spooled {}; uploading in the background",
            entry.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
