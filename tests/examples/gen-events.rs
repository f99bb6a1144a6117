//! Writes the sample Lambda events under `events/` (see `integration_tests::sample_events`).
//! Run after changing the catalogue, the job format or the generator:
//! `cargo run -p integration-tests --example gen-events`. Files the generator no longer
//! makes are removed, so `events/` holds exactly what the sample-events test expects.

use std::collections::HashSet;
use std::path::Path;

use integration_tests::{sample_events, workspace_root};

fn main() -> std::io::Result<()> {
    let root = workspace_root().join("events");
    let files = sample_events::generate();
    let wanted: HashSet<_> = files.iter().map(|f| root.join(&f.path)).collect();
    for dir in sample_events::DIRS {
        remove_stale(&root.join(dir), &wanted)?;
    }
    for f in &files {
        let path = root.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.contents)?;
    }
    println!("wrote {} files under {}", files.len(), root.display());
    Ok(())
}

fn remove_stale(dir: &Path, wanted: &HashSet<std::path::PathBuf>) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") && !wanted.contains(&path) {
            std::fs::remove_file(&path)?;
            println!("removed stale {}", path.display());
        }
    }
    Ok(())
}
