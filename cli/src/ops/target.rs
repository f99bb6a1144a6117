//! Which deployment an operator command talks to: explicit names (flags or the same environment
//! variables the Lambdas read) against the AWS configured in the environment, else the local
//! stack described by `.local/stack.json`.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::stack::info::{self, StackInfo};

/// Flags shared by every operator command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TargetArgs {
    /// Events table (real AWS: the stack's EventsTable).
    #[arg(long, env = "EVENTS_TABLE", global = true)]
    pub events_table: Option<String>,
    /// Settings table.
    #[arg(long, env = "SETTINGS_TABLE", global = true)]
    pub settings_table: Option<String>,
    /// Copies table (copy state per job).
    #[arg(long, env = "COPIES_TABLE", global = true)]
    pub copies_table: Option<String>,
    /// Jobs queue URL.
    #[arg(long, env = "JOBS_QUEUE_URL", global = true)]
    pub queue_url: Option<String>,
    /// Dead-letter queue URL of the jobs queue.
    #[arg(long, env = "JOBS_DLQ_URL", global = true)]
    pub dlq_url: Option<String>,
    /// Recordings bucket.
    #[arg(long, env = "RECORDINGS_BUCKET", global = true)]
    pub bucket: Option<String>,
    /// Bucket holding payloads too large for an item.
    #[arg(long, env = "PAYLOAD_BUCKET", global = true)]
    pub payload_bucket: Option<String>,
    /// Local stack description used for anything not given above.
    #[arg(long, default_value = info::DEFAULT_PATH, global = true)]
    pub stack_file: PathBuf,
}

/// A resolved deployment.
#[derive(Debug, Clone)]
pub struct Target {
    pub sdk: aws_config::SdkConfig,
    pub events_table: Option<String>,
    pub settings_table: Option<String>,
    pub copies_table: Option<String>,
    pub queue_url: Option<String>,
    pub dlq_url: Option<String>,
    pub bucket: Option<String>,
    pub payload_bucket: Option<String>,
}

impl TargetArgs {
    pub async fn resolve(&self) -> anyhow::Result<Target> {
        let explicit = self.events_table.is_some()
            || self.settings_table.is_some()
            || self.copies_table.is_some()
            || self.queue_url.is_some()
            || self.dlq_url.is_some();
        let local = if self.stack_file.exists() {
            Some(StackInfo::read(&self.stack_file)?)
        } else {
            None
        };
        let sdk = match &local {
            Some(l) if !explicit => l.sdk_config().await,
            _ => meeting_hooks::aws::load_config().await,
        };
        Ok(self.layer_over(local.as_ref(), sdk))
    }

    /// Names given here, else the local stack's.
    fn layer_over(&self, local: Option<&StackInfo>, sdk: aws_config::SdkConfig) -> Target {
        let pick = |own: &Option<String>, f: fn(&StackInfo) -> String| {
            own.clone().or_else(|| local.map(f))
        };
        Target {
            sdk,
            events_table: pick(&self.events_table, |l| l.tables.events.clone()),
            settings_table: pick(&self.settings_table, |l| l.tables.settings.clone()),
            copies_table: pick(&self.copies_table, |l| l.tables.copies.clone()),
            queue_url: pick(&self.queue_url, |l| l.queue_url.clone()),
            dlq_url: pick(&self.dlq_url, |l| l.dead_letter_queue_url.clone()),
            bucket: pick(&self.bucket, |l| l.bucket.clone()),
            payload_bucket: pick(&self.payload_bucket, |l| l.payload_bucket.clone()),
        }
    }
}

impl Target {
    /// Everything from a running local stack's description.
    pub async fn from_stack(info: &StackInfo) -> Self {
        TargetArgs::default().layer_over(Some(info), info.sdk_config().await)
    }

    pub fn events_table(&self) -> anyhow::Result<&str> {
        self.events_table
            .as_deref()
            .context("no events table: pass --events-table or set EVENTS_TABLE, or start the local stack (`hooksctl up`)")
    }
    pub fn settings_table(&self) -> anyhow::Result<&str> {
        self.settings_table
            .as_deref()
            .context("no settings table: pass --table or set SETTINGS_TABLE, or start the local stack (`hooksctl up`)")
    }
    pub fn copies_table(&self) -> anyhow::Result<&str> {
        self.copies_table
            .as_deref()
            .context("no copies table: pass --copies-table or set COPIES_TABLE, or start the local stack (`hooksctl up`)")
    }
    pub fn bucket(&self) -> anyhow::Result<&str> {
        self.bucket
            .as_deref()
            .context("no recordings bucket: pass --bucket or set RECORDINGS_BUCKET, or start the local stack (`hooksctl up`)")
    }
    pub fn queue_url(&self) -> anyhow::Result<&str> {
        self.queue_url
            .as_deref()
            .context("no jobs queue: pass --queue-url or set JOBS_QUEUE_URL, or start the local stack (`hooksctl up`)")
    }
    pub fn dlq_url(&self) -> anyhow::Result<&str> {
        self.dlq_url
            .as_deref()
            .context("no dead-letter queue: pass --dlq-url or set JOBS_DLQ_URL, or start the local stack (`hooksctl up`)")
    }
}
