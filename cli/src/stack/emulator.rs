//! Starting `moto_server` for the local stack: from the project's `.venv` (created here when
//! missing, so a fresh clone needs nothing installed by hand), or from `PATH`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

const MOTO_REQUIREMENT: &str = "moto[server]==5.2.1";

/// Finds `moto_server`: `$MOTO_SERVER`, `<root>/.venv/bin/moto_server`, then `PATH`; installs it
/// into `<root>/.venv` when none exists.
pub async fn find_or_install(root: &Path) -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return Ok(PathBuf::from(p));
    }
    let venv = root.join(".venv");
    let bin = venv.join("bin/moto_server");
    if bin.exists() {
        return Ok(bin);
    }
    if let Ok(status) = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        && status.success()
    {
        return Ok(PathBuf::from("moto_server"));
    }
    eprintln!(
        "installing {MOTO_REQUIREMENT} into {} (once, ~30 s)…",
        venv.display()
    );
    let ok = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .await
        .context("python3 -m venv (install Python 3 with venv)")?;
    if !ok.success() {
        bail!("python3 -m venv {} failed", venv.display());
    }
    let ok = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            MOTO_REQUIREMENT,
        ])
        .status()
        .await
        .context("pip install moto[server]")?;
    if !ok.success() {
        bail!("pip install {MOTO_REQUIREMENT} failed");
    }
    Ok(bin)
}

/// A moto_server child process, stopped when dropped.
#[derive(Debug)]
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

/// Starts moto on `127.0.0.1:port` and waits until it answers. moto runs under a small shell
/// watchdog that also stops it if this process dies without cleaning up (SIGKILL, crash).
pub async fn start(bin: &Path, port: u16) -> anyhow::Result<Moto> {
    if tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
    {
        bail!(
            "port {port} is already in use: pass --emulator-port, or --endpoint to reuse a running emulator"
        );
    }
    // moto is our child and is killed when `Moto` is dropped (clean shutdown). A detached
    // watchdog covers the other case: if this process dies without cleaning up (SIGKILL, crash),
    // it stops moto; if moto is gone first, it just exits.
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    if let Some(moto_pid) = child.id() {
        let watchdog = format!(
            "while kill -0 {parent} 2>/dev/null && kill -0 {moto_pid} 2>/dev/null; do sleep 0.5; done; \
             kill -0 {parent} 2>/dev/null || kill {moto_pid} 2>/dev/null",
            parent = std::process::id()
        );
        std::process::Command::new("bash")
            .arg("-c")
            .arg(watchdog)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start the emulator watchdog")?;
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(Moto {
                endpoint,
                _child: child,
            });
        }
        if Instant::now() > deadline {
            bail!("moto_server did not listen on port {port} within 30 s (is the port taken?)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
