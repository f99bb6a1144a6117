//! Test harness: one `moto_server` per test binary on a free loopback port, plus helpers to
//! create uniquely named tables, queues and buckets on it so tests never share state.
//!
//! The server binary is found through `MOTO_SERVER`, then `.venv/bin/moto_server` at the
//! workspace root (what `.ci/run` and `./dev` install), then `moto_server` on `PATH`. It is
//! started under a small shell watchdog that stops it when the test process exits.

pub mod bench;
pub mod contract;
pub mod faults;
pub mod origin;
pub mod queue;
pub mod sample_events;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use meeting_hooks::schema::TableSpec;

pub const REGION: &str = "us-east-1";

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    pub endpoint: String,
    pub sdk: SdkConfig,
}

static EMULATOR: OnceLock<Emulator> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives in the workspace")
        .to_path_buf()
}

fn moto_binary() -> String {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return p;
    }
    let venv = workspace_root().join(".venv/bin/moto_server");
    if venv.exists() {
        return venv.display().to_string();
    }
    "moto_server".to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The emulator for this test binary, started on first use.
pub fn emulator() -> &'static Emulator {
    EMULATOR.get_or_init(|| {
        let endpoint = match std::env::var("TEST_AWS_ENDPOINT_URL") {
            Ok(url) => url,
            Err(_) => start_moto(),
        };
        Emulator {
            sdk: meeting_hooks::aws::emulator_config(&endpoint, REGION),
            endpoint,
        }
    })
}

fn start_moto() -> String {
    let port = free_port();
    let bin = moto_binary();
    // The watchdog loop ends moto when this test process is gone, even after a panic.
    let script = format!(
        "'{bin}' -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done; kill $m 2>/dev/null",
        parent = std::process::id()
    );
    // Not waited for on purpose: the watchdog outlives this function and reaps moto itself.
    #[allow(clippy::zombie_processes)]
    let _watchdog = Command::new("bash")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin} (install moto[server]; see README): {e}"));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("socket address");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{bin} did not start on port {port} within 30 s (install moto[server]; see README)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

/// A name no other test in this process uses (S3-legal: lowercase, digits, dashes).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl Emulator {
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        meeting_hooks::aws::dynamodb(&self.sdk)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        meeting_hooks::aws::sqs(&self.sdk)
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        meeting_hooks::aws::s3(&self.sdk)
    }

    pub fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        meeting_hooks::aws::secretsmanager(&self.sdk)
    }

    /// Creates a fresh table with the given layout and returns its name.
    pub async fn table(&self, spec: &TableSpec) -> String {
        let name = unique(&spec.logical_id.to_ascii_lowercase());
        spec.create(&self.dynamodb(), &name)
            .await
            .unwrap_or_else(|e| panic!("create table {name}: {e:?}"));
        name
    }

    /// Creates a fresh standard queue and returns its URL.
    pub async fn queue(&self) -> String {
        self.sqs()
            .create_queue()
            .queue_name(unique("jobs"))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url")
    }

    /// Creates a fresh queue with a dead-letter queue after `max_receive_count` receives, and
    /// returns both URLs (queue, DLQ).
    pub async fn queue_with_dlq(
        &self,
        visibility_timeout_secs: u32,
        max_receive_count: u32,
    ) -> (String, String) {
        use aws_sdk_sqs::types::QueueAttributeName;
        let sqs = self.sqs();
        let dlq_url = sqs
            .create_queue()
            .queue_name(unique("dlq"))
            .send()
            .await
            .expect("dlq")
            .queue_url
            .expect("url");
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("attributes")
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("arn");
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receive_count,
        });
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("jobs"))
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout_secs.to_string(),
            )
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("url");
        (queue_url, dlq_url)
    }

    /// Creates a fresh bucket and returns its name.
    pub async fn bucket(&self) -> String {
        let name = unique("bucket");
        self.s3()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        name
    }

    /// Receives every message currently visible on a queue (bodies), leaving them invisible.
    pub async fn drain(&self, queue_url: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let resp = self
                .sqs()
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .send()
                .await
                .expect("receive");
            let msgs = resp.messages.unwrap_or_default();
            if msgs.is_empty() {
                return out;
            }
            out.extend(msgs.into_iter().filter_map(|m| m.body));
        }
    }

    /// All items of a table (small test tables only).
    pub async fn scan(
        &self,
        table: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let resp = self
                .dynamodb()
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(resp.items.unwrap_or_default());
            start = resp.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }
}
