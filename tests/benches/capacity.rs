//! Capacity and cost model: `./dev bench capacity`.
//!
//! Recomputed from what the other benchmarks measured (the `figure` lines `./dev bench` keeps in
//! `target/bench/ingest.out` and `target/bench/copier_throughput.out`: CPU per event, AWS
//! calls per delivery, bytes and DynamoDB write units per stored event, the copier's MB/s and
//! CPU per GB), the template's own settings (read from `template.yaml`: route throttles,
//! memory sizes, part size), AWS's published default quotas and us-east-1 prices (constants
//! below, with their source), and a stated load: 10,000 concurrent meetings, 2,000 webhooks/s
//! at peak, one recording per meeting. Assumptions that no bench measures are named as such
//! and can be changed through the environment (`CAPACITY_*`).

use std::collections::BTreeMap;

use integration_tests::bench::{figures_of, output_path};
use serde_norway::Value;

// AWS default quotas (Service Quotas console / service docs, per account and region).
/// Lambda concurrent executions.
const LAMBDA_CONCURRENCY: f64 = 1_000.0;
/// API Gateway HTTP API requests per second (account, region), burst 5,000.
const HTTP_API_RPS: f64 = 10_000.0;
/// DynamoDB: write units per second on one partition (so on one index key).
const PARTITION_WCU: f64 = 1_000.0;
/// DynamoDB on-demand: write units per second a table may reach (account default).
const TABLE_MAX_WCU: f64 = 40_000.0;
/// DynamoDB on-demand: what a new table serves at once before it adapts (4,000 WRU/s).
const NEW_TABLE_WCU: f64 = 4_000.0;
/// EventBridge PutEvents entries per second (us-east-1, us-west-2, eu-west-1).
const PUT_EVENTS_TPS: f64 = 10_000.0;

// us-east-1 on-demand prices (aws.amazon.com/<service>/pricing).
const LAMBDA_GB_SECOND_ARM: f64 = 0.000_013_333_4;
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
const HTTP_API_PER_REQUEST: f64 = 1.00 / 1e6;
const DDB_PER_WRITE_UNIT: f64 = 0.625 / 1e6;
const SQS_PER_REQUEST: f64 = 0.40 / 1e6;
const S3_PER_PUT: f64 = 0.005 / 1e3;
const S3_GB_MONTH: f64 = 0.023;
const EVENTBRIDGE_PER_EVENT: f64 = 1.00 / 1e6;
const LOGS_PER_GB: f64 = 0.50;

fn assumption(name: &str, default: f64, what: &str) -> f64 {
    let v = std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    println!("  assumed  {name:<34} {v:>10}  {what}");
    v
}

fn template() -> Value {
    let text = std::fs::read_to_string(integration_tests::workspace_root().join("template.yaml"))
        .expect("template.yaml");
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn need(figures: &BTreeMap<String, f64>, name: &str, bench: &str) -> f64 {
    *figures.get(name).unwrap_or_else(|| {
        panic!(
            "{name} missing from {}: run `./dev bench {bench}` first",
            output_path(bench).display()
        )
    })
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("capacity: run with `./dev bench capacity` (reads the other benches' output)");
        return;
    }
    let ingest = figures_of("ingest").unwrap_or_else(|| {
        panic!(
            "no {}: run `./dev bench capacity` (it runs the ingest bench first)",
            output_path("ingest").display()
        )
    });
    let copier = figures_of("copier_throughput").unwrap_or_else(|| {
        panic!(
            "no {}: run `./dev bench capacity` (it runs the copier bench first)",
            output_path("copier_throughput").display()
        )
    });
    let t = template();
    let r = &t["Resources"];

    println!("== Capacity and cost model (recomputed from the bench output and template.yaml) ==");
    println!("load and assumptions no bench measures:");
    let meetings = assumption("CAPACITY_MEETINGS", 10_000.0, "concurrent meetings");
    let webhooks_per_s = assumption("CAPACITY_WEBHOOKS_PER_S", 2_000.0, "webhooks/s at peak");
    let gb_per_hour = assumption(
        "CAPACITY_RECORDING_GB_PER_HOUR",
        0.5,
        "recording size per hour (720p MP4)",
    );
    let ending_window_s = assumption(
        "CAPACITY_END_WINDOW_S",
        600.0,
        "the meetings end (and their recordings arrive) within this many seconds",
    );
    let call_ms = assumption(
        "CAPACITY_AWS_CALL_MS",
        8.0,
        "one DynamoDB/SQS call in-region, ms",
    );
    let lambda_mb_per_s = assumption(
        "CAPACITY_LAMBDA_MB_PER_S",
        90.0,
        "a Lambda's network copy rate, MB/s (the local figure below is loopback)",
    );
    let events_per_webhook = assumption(
        "CAPACITY_EVENTS_PER_WEBHOOK",
        0.8,
        "meeting events published per webhook (presence and endings)",
    );
    let log_bytes = assumption(
        "CAPACITY_LOG_BYTES_PER_WEBHOOK",
        1_500.0,
        "structured log bytes per webhook",
    );

    // Measured.
    let providers = ["jaas", "daily", "videosdk", "jitsi"];
    let mean = |prefix: &str| {
        providers
            .iter()
            .map(|p| need(&ingest, &format!("{prefix}.{p}"), "ingest"))
            .sum::<f64>()
            / providers.len() as f64
    };
    let cpu_ms = mean("ingest.cpu_ns_per_event") / 1e6;
    let calls = mean("ingest.aws_calls_per_delivery");
    let item_bytes = need(&ingest, "ingest.item_bytes", "ingest");
    let wcu_per_item = need(&ingest, "ingest.write_units_per_item", "ingest");
    let copier_cpu_s_per_gb = need(&copier, "copier.cpu_s_per_gb", "copier_throughput");
    let copier_local_mb_s = need(&copier, "copier.mb_per_s", "copier_throughput");
    println!("measured (target/bench/*.out):");
    println!("  ingest CPU per event (verify + interpret, mean of 4 providers): {cpu_ms:.3} ms");
    println!("  AWS calls per first delivery (mean of 4 providers):           {calls:.2}");
    println!(
        "  stored event: {item_bytes:.0} bytes, {wcu_per_item:.2} write units (table + indexes)"
    );
    println!(
        "  copier: {copier_local_mb_s:.0} MB/s on loopback, {copier_cpu_s_per_gb:.2} CPU s per GB"
    );

    // The template's settings.
    let throttle = &r["HttpApi"]["Properties"]["RouteSettings"]["POST /webhooks/{provider}"];
    let route_rps = num(&throttle["ThrottlingRateLimit"]);
    let route_burst = num(&throttle["ThrottlingBurstLimit"]);
    let ingest_mb = num(&r["WebhookIngestFunction"]["Properties"]["MemorySize"]);
    let copier_mb = num(&r["RecordingCopierFunction"]["Properties"]["MemorySize"]);
    let copier_timeout = num(&r["RecordingCopierFunction"]["Properties"]["Timeout"]);
    let part_mib = num(
        &r["RecordingCopierFunction"]["Properties"]["Environment"]["Variables"]["COPY_PART_SIZE_MIB"],
    );
    println!(
        "template.yaml: webhook routes throttled at {route_rps} req/s (burst {route_burst}) each, \
         ingest {ingest_mb} MB, copier {copier_mb} MB / {copier_timeout} s, parts {part_mib} MiB"
    );

    // Demand at the stated load.
    let ingest_s = cpu_ms / 1e3 + calls * call_ms / 1e3;
    let ingest_concurrency = webhooks_per_s * ingest_s;
    let recording_gb = gb_per_hour; // one hour per meeting
    let copy_s = recording_gb * 1e3 / lambda_mb_per_s;
    let copier_concurrency = meetings * copy_s / ending_window_s;
    let wcu = webhooks_per_s * wcu_per_item;
    let hottest_session_wcu = wcu / meetings * 50.0; // a meeting 50x busier than the average
    let put_events = webhooks_per_s * events_per_webhook;
    let max_recording_gb = lambda_mb_per_s * copier_timeout / 1e3;

    println!("\nlimits at the peak, first hit first (demand / what allows it):");
    let mut limits = [
        (
            "API Gateway route throttle (template)",
            webhooks_per_s,
            route_rps * 3.0,
            "3 webhook routes x RouteSettings; raise ThrottlingRateLimit/BurstLimit in template.yaml",
        ),
        (
            "DynamoDB new on-demand table",
            wcu,
            NEW_TABLE_WCU,
            "a new table serves 4,000 WRU/s at once: set WarmThroughput or ramp up",
        ),
        (
            "Lambda concurrency (account)",
            ingest_concurrency + copier_concurrency,
            LAMBDA_CONCURRENCY,
            "ingest + copier at meeting ends; ask for more in Service Quotas",
        ),
        (
            "HTTP API requests/s (account)",
            webhooks_per_s,
            HTTP_API_RPS,
            "soft quota",
        ),
        (
            "DynamoDB table write units/s",
            wcu,
            TABLE_MAX_WCU,
            "on-demand table maximum (soft)",
        ),
        (
            "DynamoDB partition (bySession key)",
            hottest_session_wcu,
            PARTITION_WCU,
            "one meeting's events share a key; 50x the average meeting",
        ),
        (
            "EventBridge PutEvents entries/s",
            put_events,
            PUT_EVENTS_TPS,
            "us-east-1 default (soft)",
        ),
        (
            "copier time per recording (s)",
            copy_s,
            copier_timeout,
            "a larger file resumes in the next run (checkpointed parts)",
        ),
    ];
    limits.sort_by(|a, b| (b.1 / b.2).total_cmp(&(a.1 / a.2)));
    for (name, demand, allowed, note) in &limits {
        println!(
            "  {name:<40} {demand:>10.0} / {allowed:>8.0}  {:>6.1}%  {note}",
            demand / allowed * 100.0
        );
    }
    println!(
        "  first limit: {} ({:.0}% of it); SQS standard queues have no practical limit here",
        limits[0].0,
        limits[0].1 / limits[0].2 * 100.0
    );
    println!(
        "  one copier run moves up to {max_recording_gb:.0} GB before its timeout at {lambda_mb_per_s} MB/s"
    );

    // Cost per million webhooks.
    let m = 1e6;
    let lambda_compute = m * ingest_s * ingest_mb / 1024.0 * LAMBDA_GB_SECOND_ARM;
    let rows = [
        ("HTTP API requests", m * HTTP_API_PER_REQUEST),
        ("Lambda requests (ingest)", m * LAMBDA_PER_REQUEST),
        ("Lambda compute (ingest)", lambda_compute),
        ("DynamoDB writes", m * wcu_per_item * DDB_PER_WRITE_UNIT),
        (
            "EventBridge events",
            m * events_per_webhook * EVENTBRIDGE_PER_EVENT,
        ),
        ("CloudWatch Logs", m * log_bytes / 1e9 * LOGS_PER_GB),
    ];
    let per_million: f64 = rows.iter().map(|(_, c)| c).sum();
    println!("\ncost per million webhooks (us-east-1): ${per_million:.2}");
    for (name, cost) in rows {
        println!("  {name:<28} ${cost:>7.3}");
    }
    println!(
        "  ({:.2} GB stored per million events: ${:.2}/month on DynamoDB at $0.25/GB)",
        m * item_bytes / 1e9,
        m * item_bytes / 1e9 * 0.25
    );

    // Cost per recorded hour.
    let parts = (recording_gb * 1e3 / (part_mib * 1.048_576)).ceil();
    let copy_gb_s = copy_s.max(copier_cpu_s_per_gb * recording_gb) * copier_mb / 1024.0;
    let rows = [
        ("S3 storage, first month", recording_gb * S3_GB_MONTH),
        ("S3 requests (parts + complete)", (parts + 2.0) * S3_PER_PUT),
        (
            "Lambda copier",
            copy_gb_s * LAMBDA_GB_SECOND_ARM + LAMBDA_PER_REQUEST,
        ),
        ("SQS (send, receive, delete)", 3.0 * SQS_PER_REQUEST),
        (
            "DynamoDB copy state (per part + 4)",
            (parts + 4.0) * DDB_PER_WRITE_UNIT,
        ),
        ("EventBridge RecordingCopied", EVENTBRIDGE_PER_EVENT),
    ];
    let per_hour: f64 = rows.iter().map(|(_, c)| c).sum();
    println!("\ncost per recorded hour ({recording_gb} GB): ${per_hour:.4}");
    for (name, cost) in rows {
        println!("  {name:<34} ${cost:>9.5}");
    }
    integration_tests::bench::figure("capacity.cost_per_million_webhooks", per_million);
    integration_tests::bench::figure("capacity.cost_per_recorded_hour", per_hour);
}
