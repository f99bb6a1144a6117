//! Copier throughput and memory benchmark (harness = false).
//!
//! ```text
//! cargo bench -p integration-tests --bench copier_throughput            # 256 MiB and 1 GiB
//! cargo bench -p integration-tests --bench copier_throughput -- 64      # sizes in MiB
//! BENCH_S3_ENDPOINT_URL=http://127.0.0.1:8014 cargo bench ...            # S3 elsewhere
//! ```
//!
//! DynamoDB (the copy state) always runs on moto; `BENCH_S3_ENDPOINT_URL` moves only S3, e.g.
//! to `s3s-fs` (`cargo install s3s-fs@0.14.1 --features binary --root /tmp/s3s-fs`, then
//! `/tmp/s3s-fs/bin/s3s-fs --host 127.0.0.1 --port 8014 --access-key test --secret-key test
//! /tmp/s3s-data`), a file-system backed S3 that is much faster than moto's. s3s-fs does not
//! implement object tagging, so against it the final `PutObjectTagging` (one small request
//! after the copy) is skipped; the digest is still checked against the generated file.
//!
//! For each size: generate a file in `/tmp/copier-bench/` (never in the repository), serve it
//! from the local test origin, copy it into the emulator's S3 with the copier's own code
//! (`CopyService` + `DynamoCopyStore` + `S3MultipartSink` + `HttpOrigin`, default
//! `COPY_*` settings unless set in the environment) in a child process of its own so that its
//! peak RSS (`VmHWM`) belongs to that size alone, verify size and SHA-256 tag, then time the
//! baseline `curl <url> | aws s3 cp - s3://… --endpoint-url …` against the same origin and S3.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use integration_tests::origin::{Route, TestOrigin};
use integration_tests::{emulator, unique};
use meeting_hooks::aws::copies::DynamoCopyStore;
use meeting_hooks::aws::objects::S3MultipartSink;
use meeting_hooks::copier::CopierConfig;
use meeting_hooks::copier::layout::ObjectMeta;
use meeting_hooks::copier::ports::{MultipartSink, SinkError};
use meeting_hooks::copier::service::{Attempt, CopyService, Done};
use meeting_hooks::copier::state::{ListedPart, PartRecord};
use meeting_hooks::jobs::{CopyJob, FileKind, FileMeta, JOB_VERSION, Link, SourceEvent};
use meeting_hooks::respond::now_ms;
use meeting_hooks::schema::COPIES;
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;
const DIR: &str = "/tmp/copier-bench";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        child(&args[2..]);
        return;
    }
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is only a build check.
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "benchmark skipped: run it with `cargo bench -p integration-tests --bench copier_throughput`"
        );
        return;
    }
    let sizes: Vec<u64> = args[1..]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect::<Vec<_>>();
    let sizes = if sizes.is_empty() {
        vec![256, 1024]
    } else {
        sizes
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(orchestrate(&sizes));
}

/// Writes `mib` MiB of incompressible bytes (once) and returns path and SHA-256.
fn generate(mib: u64) -> (PathBuf, String) {
    std::fs::create_dir_all(DIR).expect("bench dir");
    let path = Path::new(DIR).join(format!("file-{mib}MiB.bin"));
    let sha_path = path.with_extension("sha256");
    if let (Ok(meta), Ok(sha)) = (std::fs::metadata(&path), std::fs::read_to_string(&sha_path))
        && meta.len() == mib * MIB
    {
        return (path, sha.trim().to_owned());
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut hasher = Sha256::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ mib;
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        hasher.update(&block);
        file.write_all(&block).expect("write");
    }
    file.flush().expect("flush");
    let sha = hex::encode(hasher.finalize());
    std::fs::write(&sha_path, &sha).expect("sha");
    (path, sha)
}

#[derive(Debug)]
struct Figures {
    secs: f64,
    peak_rss_kib: u64,
}

async fn orchestrate(sizes: &[u64]) {
    let emu = emulator();
    let s3_endpoint =
        std::env::var("BENCH_S3_ENDPOINT_URL").unwrap_or_else(|_| emu.endpoint.clone());
    let s3 = meeting_hooks::aws::s3(&meeting_hooks::aws::emulator_config(
        &s3_endpoint,
        integration_tests::REGION,
    ));
    let bucket = unique("bench");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let table = emu.table(&COPIES).await;
    let origin = TestOrigin::start().await;
    let exe = std::env::current_exe().expect("own path");
    println!(
        "S3 {s3_endpoint}  DynamoDB {}  bucket {bucket}",
        emu.endpoint
    );
    println!(
        "{:>8} | {:>22} | {:>22} | {:>7}",
        "size", "copier MB/s (peak RSS)", "curl | aws s3 cp MB/s", "ratio"
    );
    for &mib in sizes {
        let (path, sha) = generate(mib);
        let url = origin.route(&format!("/bench/{mib}.mp4"), Route::disk(path, mib * MIB));

        // Copier, in its own process.
        let out = Command::new(&exe)
            .args([
                "--child",
                &url,
                &emu.endpoint,
                &s3_endpoint,
                &bucket,
                &table,
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("run copier child");
        assert!(out.status.success(), "copier child failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(line).expect("child figures");
        let copier = Figures {
            secs: v["secs"].as_f64().expect("secs"),
            peak_rss_kib: v["vmhwm_kib"].as_u64().expect("rss"),
        };
        let key = v["key"].as_str().expect("key").to_owned();
        // Verify what landed in S3.
        let head = s3
            .head_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .expect("copied object");
        assert_eq!(head.content_length, Some((mib * MIB) as i64));
        assert_eq!(
            v["sha256"].as_str(),
            Some(sha.as_str()),
            "digest of the copy"
        );

        // Baseline.
        let started = Instant::now();
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -o pipefail; curl -sS --fail '{url}' | aws s3 cp - 's3://{bucket}/baseline/{mib}' \
                 --endpoint-url '{}' --expected-size {} --only-show-errors",
                s3_endpoint,
                mib * MIB
            ))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", integration_tests::REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .status()
            .expect("run baseline");
        let baseline_secs = started.elapsed().as_secs_f64();
        assert!(status.success(), "baseline failed");

        let mbps = |secs: f64| (mib * MIB) as f64 / 1e6 / secs;
        let row = format!(
            "{:>5} MiB | {:>9.1} MB/s ({:>4} MiB) | {:>17.1} MB/s | {:>6.2}x | copier CPU {:.1} s in {:.1} s",
            mib,
            mbps(copier.secs),
            copier.peak_rss_kib / 1024,
            mbps(baseline_secs),
            baseline_secs / copier.secs,
            v["cpu_secs"].as_f64().unwrap_or(0.0),
            copier.secs,
        );
        println!("{row}");
        integration_tests::bench::figure("copier.mb_per_s", mbps(copier.secs));
        integration_tests::bench::figure(
            "copier.cpu_s_per_gb",
            v["cpu_secs"].as_f64().unwrap_or(0.0) / ((mib * MIB) as f64 / 1e9),
        );
        integration_tests::bench::figure(
            "copier.peak_rss_mib",
            (copier.peak_rss_kib / 1024) as f64,
        );
    }
}

/// The copier's S3 sink, minus tagging when the S3 under test does not implement it.
#[derive(Debug, Clone)]
struct BenchSink {
    inner: S3MultipartSink,
    tagging: bool,
}

impl MultipartSink for BenchSink {
    async fn create(&self, key: &str, meta: &ObjectMeta) -> Result<String, SinkError> {
        self.inner.create(key, meta).await
    }
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
        sha256_b64: &str,
    ) -> Result<String, SinkError> {
        self.inner
            .upload_part(key, upload_id, number, body, sha256_b64)
            .await
    }
    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartRecord],
    ) -> Result<(), SinkError> {
        self.inner.complete(key, upload_id, parts).await
    }
    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), SinkError> {
        self.inner.abort(key, upload_id).await
    }
    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<ListedPart>, SinkError> {
        self.inner.list_parts(key, upload_id).await
    }
    async fn tag_sha256(&self, key: &str, sha256_hex: &str) -> Result<(), SinkError> {
        if self.tagging {
            self.inner.tag_sha256(key, sha256_hex).await
        } else {
            Ok(())
        }
    }
    async fn existing(&self, key: &str) -> Result<Option<(u64, Option<String>)>, SinkError> {
        self.inner.existing(key).await
    }
}

/// One copy with the copier's code; prints `{"secs":…,"vmhwm_kib":…,"key":…,"sha256":…}`.
fn child(args: &[String]) {
    let [url, ddb_endpoint, s3_endpoint, bucket, table] = args else {
        panic!("--child <url> <dynamodb endpoint> <s3 endpoint> <bucket> <table>");
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (secs, key, sha) = rt.block_on(async {
        let mut env: HashMap<String, String> = std::env::vars().collect();
        env.insert("COPIES_TABLE".into(), table.clone());
        env.insert("RECORDINGS_BUCKET".into(), bucket.clone());
        env.insert("ALLOW_INSECURE_LOCAL_ORIGIN".into(), "true".into());
        // Read by the config (a copy handed back goes there); one copy that succeeds never
        // sends to it.
        env.insert(
            "JOBS_QUEUE_URL".into(),
            format!("{ddb_endpoint}/000000000000/bench-unused"),
        );
        env.remove("AWS_LAMBDA_FUNCTION_NAME");
        let config = CopierConfig::from_env(&env).expect("config");
        let ddb = meeting_hooks::aws::emulator_config(ddb_endpoint, integration_tests::REGION);
        let s3 = meeting_hooks::aws::emulator_config(s3_endpoint, integration_tests::REGION);
        let service = CopyService::new(
            DynamoCopyStore::new(meeting_hooks::aws::dynamodb(&ddb), table),
            BenchSink {
                inner: S3MultipartSink::new(meeting_hooks::aws::s3(&s3), bucket),
                tagging: ddb_endpoint == s3_endpoint,
            },
            config.origin().expect("http client"),
            config.settings(),
        );
        let now = now_ms();
        let job = CopyJob {
            v: JOB_VERSION,
            job_id: unique("bench"),
            provider: "jaas".into(),
            kind: FileKind::Recording,
            file: meeting_hooks::facts::FileSource::Url(Link::new(url.clone())),
            link_expires_at: now + 3_600_000,
            source: SourceEvent {
                stored_key: unique("bench-event"),
                event_type: "RECORDING_UPLOADED".into(),
                timestamp: now,
            },
            session_id: Some("bench-session".into()),
            fqn: Some("bench-app/bench-room".into()),
            room: Some("bench-room".into()),
            app_id: Some("bench-app".into()),
            customer_id: None,
            meta: FileMeta::default(),
        };
        let attempt = Attempt {
            owner: unique("bench-owner"),
            stop_at: tokio::time::Instant::now() + Duration::from_secs(3600),
            receive_count: 1,
        };
        let started = Instant::now();
        let done = service.process(&job, &attempt).await.expect("copy");
        let secs = started.elapsed().as_secs_f64();
        let Done::Copied(result) = done else {
            panic!("unexpected {done:?}")
        };
        (secs, result.key, result.sha256)
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let vmhwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    // utime + stime in clock ticks (fields 14 and 15; USER_HZ is 100 on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    println!(
        "{}",
        serde_json::json!({"secs": secs, "vmhwm_kib": vmhwm, "cpu_secs": ticks as f64 / 100.0, "key": key, "sha256": sha})
    );
}
