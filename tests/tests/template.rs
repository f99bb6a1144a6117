//! `template.yaml` against the code: every function builds a binary of this workspace, the
//! tables are the ones `meeting_hooks::schema` describes, the job queue and event source fit
//! the copier, routes and environment follow the functions' contract, permissions are least
//! privilege, and alarms and dashboard name EMF metrics with their full dimension sets.
//! cfn-lint checks CloudFormation itself; it misses all of these.
//!
//! The template is read with `serde_norway`, which keeps CloudFormation's short tags
//! (`!Ref`, `!GetAtt`, `!Sub`, ...) as tagged values instead of refusing them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use integration_tests::workspace_root;
use meeting_hooks::config::Layered;
use meeting_hooks::ingest::IngestConfig;
use meeting_hooks::jobs::FileKind;
use meeting_hooks::schema::{ALL_TABLES, COPIES, EVENTS, IndexProjection, SETTINGS};
use serde_norway::{Mapping, Value};

const INGEST: &str = "webhook-ingest";
const SETTINGS_FN: &str = "settings-provisioning";
const COPIER: &str = "recording-copier";
const SWEEPER: &str = "event-sweeper";
const RECONCILER: &str = "recording-reconciler";
const UPLOADS: &str = "jibri-uploads";
const HOST_API: &str = "host-api";

fn template_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        std::fs::read_to_string(workspace_root().join("template.yaml")).expect("template.yaml")
    })
}

fn template() -> &'static Value {
    static T: OnceLock<Value> = OnceLock::new();
    T.get_or_init(|| serde_norway::from_str(template_text()).expect("template.yaml is YAML"))
}

fn resources() -> &'static Mapping {
    template()["Resources"].as_mapping().expect("Resources")
}

fn resource(id: &str) -> &'static Value {
    resources()
        .get(id)
        .unwrap_or_else(|| panic!("template has no resource {id}"))
}

fn resources_of(kind: &str) -> Vec<(&'static str, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().expect("logical id"), r))
        .collect()
}

fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

/// `!Ref X` -> X
fn ref_of(v: &Value) -> Option<&str> {
    tagged(v, "Ref").and_then(Value::as_str)
}

/// `!GetAtt X.Attr` -> "X.Attr"
fn getatt_of(v: &Value) -> Option<&str> {
    tagged(v, "GetAtt").and_then(Value::as_str)
}

/// `!Sub "..."` -> the pattern
fn sub_of(v: &Value) -> Option<&str> {
    tagged(v, "Sub").and_then(Value::as_str)
}

fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .map(|i| i.as_str().expect("a list of strings").to_owned())
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The function whose build names `binary`.
fn function(binary: &str) -> &'static Value {
    resources_of("AWS::Serverless::Function")
        .into_iter()
        .map(|(_, f)| f)
        .find(|f| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(binary))
        .unwrap_or_else(|| panic!("no function builds {binary}"))
}

/// A function property, falling back to `Globals.Function`.
fn prop(f: &'static Value, name: &str) -> &'static Value {
    let own = &f["Properties"][name];
    if own.is_null() {
        &template()["Globals"]["Function"][name]
    } else {
        own
    }
}

/// Environment variables: `Globals.Function` merged with the function's own.
fn env_of(f: &'static Value) -> BTreeMap<String, &'static Value> {
    let mut env = BTreeMap::new();
    for source in [
        &template()["Globals"]["Function"]["Environment"]["Variables"],
        &f["Properties"]["Environment"]["Variables"],
    ] {
        if let Some(m) = source.as_mapping() {
            for (k, v) in m {
                env.insert(k.as_str().expect("variable name").to_owned(), v);
            }
        }
    }
    env
}

fn number(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().expect("integer"),
        Value::String(s) => s.parse().expect("integer string"),
        other => panic!("not a number: {other:?}"),
    }
}

/// Binary targets of the workspace, from `cargo metadata` (name -> package directory).
fn workspace_binaries() -> BTreeMap<String, std::path::PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let mut bins = BTreeMap::new();
    for package in meta["packages"].as_array().expect("packages") {
        let dir = Path::new(package["manifest_path"].as_str().expect("manifest"))
            .parent()
            .expect("package dir")
            .to_path_buf();
        for target in package["targets"].as_array().expect("targets") {
            if target["kind"]
                .as_array()
                .expect("kind")
                .iter()
                .any(|k| k == "bin")
            {
                bins.insert(
                    target["name"].as_str().expect("name").to_owned(),
                    dir.clone(),
                );
            }
        }
    }
    bins
}

#[test]
fn every_function_builds_a_binary_of_this_workspace_for_lambda_arm64() {
    let bins = workspace_binaries();
    let root = workspace_root();
    let functions = resources_of("AWS::Serverless::Function");
    assert_eq!(functions.len(), 8);
    let mut built = BTreeSet::new();
    for (id, f) in functions {
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        let binary = f["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id}: BuildProperties.Binary (the workspace has several)"));
        let package_dir = bins
            .get(binary)
            .unwrap_or_else(|| panic!("{id}: no binary {binary} in the workspace ({bins:?})"));
        // cargo lambda runs in CodeUri: the workspace root or the package itself.
        let code_uri = root.join(prop(f, "CodeUri").as_str().expect("CodeUri"));
        let code_uri = code_uri.canonicalize().expect("CodeUri exists");
        assert!(
            code_uri.join("Cargo.toml").exists(),
            "{id}: no Cargo.toml in CodeUri"
        );
        assert!(
            code_uri == root.canonicalize().expect("root") || &code_uri == package_dir,
            "{id}: CodeUri {} is neither the workspace root nor {}",
            code_uri.display(),
            package_dir.display()
        );
        assert_eq!(prop(f, "Runtime").as_str(), Some("provided.al2023"), "{id}");
        assert_eq!(prop(f, "Handler").as_str(), Some("bootstrap"), "{id}");
        assert_eq!(str_list(prop(f, "Architectures")), vec!["arm64"], "{id}");
        assert!(number(prop(f, "Timeout")) > 0, "{id}: timeout chosen");
        assert!(number(prop(f, "MemorySize")) >= 128, "{id}: memory chosen");
        built.insert(binary.to_owned());
    }
    // Every function crate of the workspace is deployed.
    let function_crates: BTreeSet<String> = bins
        .iter()
        .filter(|(_, dir)| dir.starts_with(root.join("functions")))
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(built, function_crates);
    assert_eq!(
        built,
        BTreeSet::from([
            INGEST.to_owned(),
            SETTINGS_FN.to_owned(),
            COPIER.to_owned(),
            SWEEPER.to_owned(),
            RECONCILER.to_owned(),
            UPLOADS.to_owned(),
            HOST_API.to_owned(),
            "meeting-events".to_owned()
        ])
    );
}

#[test]
fn tables_are_the_ones_the_code_expects() {
    let tables = resources_of("AWS::DynamoDB::Table");
    let ids: BTreeSet<&str> = tables.iter().map(|(id, _)| *id).collect();
    let specs: BTreeSet<&str> = ALL_TABLES.iter().map(|s| s.logical_id).collect();
    assert_eq!(
        ids, specs,
        "template tables vs meeting_hooks::schema::ALL_TABLES"
    );
    for spec in ALL_TABLES {
        let p = &resource(spec.logical_id)["Properties"];
        let id = spec.logical_id;
        assert_eq!(p["BillingMode"].as_str(), Some("PAY_PER_REQUEST"), "{id}");
        assert_eq!(
            p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
            Some(true),
            "{id}"
        );
        let key_schema = |v: &Value| -> Vec<(String, String)> {
            v.as_sequence()
                .expect("KeySchema")
                .iter()
                .map(|k| {
                    (
                        k["AttributeName"].as_str().expect("name").to_owned(),
                        k["KeyType"].as_str().expect("type").to_owned(),
                    )
                })
                .collect()
        };
        let expected_keys = |hash: &str, range: Option<&str>| {
            let mut keys = vec![(hash.to_owned(), "HASH".to_owned())];
            keys.extend(range.map(|r| (r.to_owned(), "RANGE".to_owned())));
            keys
        };
        assert_eq!(
            key_schema(&p["KeySchema"]),
            expected_keys(spec.hash_key, spec.range_key),
            "{id}"
        );
        let attrs: BTreeSet<(String, String)> = p["AttributeDefinitions"]
            .as_sequence()
            .expect("AttributeDefinitions")
            .iter()
            .map(|a| {
                (
                    a["AttributeName"].as_str().expect("name").to_owned(),
                    a["AttributeType"].as_str().expect("type").to_owned(),
                )
            })
            .collect();
        let expected_attrs: BTreeSet<(String, String)> = spec
            .key_attributes()
            .into_iter()
            .map(|a| (a.to_owned(), "S".to_owned()))
            .collect();
        assert_eq!(attrs, expected_attrs, "{id}");
        type Gsi = (Vec<(String, String)>, String, BTreeSet<String>);
        let gsis: BTreeMap<String, Gsi> = p["GlobalSecondaryIndexes"]
            .as_sequence()
            .map(|s| s.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|g| {
                (
                    g["IndexName"].as_str().expect("IndexName").to_owned(),
                    (
                        key_schema(&g["KeySchema"]),
                        g["Projection"]["ProjectionType"]
                            .as_str()
                            .expect("projection")
                            .to_owned(),
                        str_list(&g["Projection"]["NonKeyAttributes"])
                            .into_iter()
                            .collect(),
                    ),
                )
            })
            .collect();
        let expected_gsis: BTreeMap<String, Gsi> = spec
            .indexes
            .iter()
            .map(|ix| {
                let (kind, attrs) = match ix.projection {
                    IndexProjection::All => ("ALL", BTreeSet::new()),
                    IndexProjection::Include(attrs) => {
                        ("INCLUDE", attrs.iter().map(|a| (*a).to_owned()).collect())
                    }
                };
                (
                    ix.name.to_owned(),
                    (
                        expected_keys(ix.hash_key, ix.range_key),
                        kind.to_owned(),
                        attrs,
                    ),
                )
            })
            .collect();
        assert_eq!(gsis, expected_gsis, "{id}");
        let ttl = &p["TimeToLiveSpecification"];
        match spec.ttl_attribute {
            Some(attr) => {
                assert_eq!(ttl["AttributeName"].as_str(), Some(attr), "{id}");
                assert_eq!(ttl["Enabled"].as_bool(), Some(true), "{id}");
            }
            None => assert!(ttl.is_null(), "{id}: TTL the code does not expect"),
        }
    }
}

#[test]
fn job_queue_and_event_source_fit_the_copier() {
    let copier = function(COPIER);
    let timeout = number(prop(copier, "Timeout"));
    let events = copier["Properties"]["Events"]
        .as_mapping()
        .expect("copier events");
    let sqs: Vec<&Value> = events
        .values()
        .filter(|e| e["Type"].as_str() == Some("SQS"))
        .collect();
    assert_eq!(sqs.len(), 1, "one SQS event source");
    let source = &sqs[0]["Properties"];
    // Without it a single failed job makes Lambda retry the whole batch.
    assert_eq!(
        str_list(&source["FunctionResponseTypes"]),
        vec!["ReportBatchItemFailures"]
    );
    assert!(number(&source["BatchSize"]) >= 1);
    let queue_attr = getatt_of(&source["Queue"]).expect("Queue: !GetAtt <queue>.Arn");
    let queue_id = queue_attr.strip_suffix(".Arn").expect(".Arn");
    let queue = &resource(queue_id)["Properties"];

    // AWS: visibility timeout at least 6 x the function timeout for SQS event sources.
    let visibility = number(&queue["VisibilityTimeout"]);
    assert!(
        visibility >= 6 * timeout,
        "visibility timeout {visibility} s < 6 x copier timeout {timeout} s"
    );
    let redrive = &queue["RedrivePolicy"];
    let max_receive = number(&redrive["maxReceiveCount"]);
    assert!(max_receive >= 2, "a job gets retries before the DLQ");
    // Every retry happens while the link still works (a recording link lives 24 h).
    let link_validity_s = meeting_hooks::jaas::files::validity_ms(FileKind::Recording) / 1000;
    assert!(
        max_receive * visibility <= link_validity_s,
        "{max_receive} attempts x {visibility} s outlast the link's {link_validity_s} s"
    );
    let dlq = getatt_of(&redrive["deadLetterTargetArn"])
        .and_then(|a| a.strip_suffix(".Arn"))
        .expect("deadLetterTargetArn: !GetAtt <dlq>.Arn");
    // The local stack (`hooksctl up`) creates its queues from the same description.
    let spec = &meeting_hooks::schema::JOBS_QUEUE;
    assert_eq!(queue_id, spec.logical_id);
    assert_eq!(dlq, spec.dlq_logical_id);
    assert_eq!(
        timeout,
        i64::from(meeting_hooks::schema::COPIER_TIMEOUT_SECS)
    );
    assert_eq!(visibility, i64::from(spec.visibility_timeout_secs));
    assert_eq!(max_receive, i64::from(spec.max_receive_count));
    assert_eq!(
        number(&queue["MessageRetentionPeriod"]),
        i64::from(spec.retention_secs)
    );
    assert_eq!(
        number(&resource(dlq)["Properties"]["MessageRetentionPeriod"]),
        i64::from(spec.dlq_retention_secs)
    );
    assert_eq!(
        number(&source["BatchSize"]),
        i64::from(meeting_hooks::schema::COPIER_BATCH_SIZE)
    );
    assert_eq!(resource(dlq)["Type"].as_str(), Some("AWS::SQS::Queue"));
    for id in [queue_id, dlq] {
        assert_eq!(
            resource(id)["Properties"]["SqsManagedSseEnabled"].as_bool(),
            Some(true),
            "{id} encrypted"
        );
    }
    // Ingest sends to the queue the copier reads.
    assert_eq!(
        ref_of(env_of(function(INGEST))["JOBS_QUEUE_URL"]),
        Some(queue_id)
    );
    // The copier delays returned records on (and continues jobs in) the queue it reads.
    assert_eq!(ref_of(env_of(copier)["JOBS_QUEUE_URL"]), Some(queue_id));
    // Its retry backoff stays far below the visibility timeout it replaces.
    let copier_config = meeting_hooks::copier::CopierConfig::from_env(&template_env(COPIER))
        .expect("copier config");
    assert!(
        copier_config.retry_backoff.max.as_secs() * 4 <= visibility as u64,
        "backoff cap {:?} vs visibility {visibility} s",
        copier_config.retry_backoff.max
    );
    // A live copy renews its lease every third of it (the heartbeat); a dead one's job is
    // delivered again within a lease and the heartbeat's slack: a few minutes at most, well
    // under the visibility timeout, and long enough that a slow DynamoDB answer never loses it.
    let lease: i64 = env_of(copier)["COPY_LEASE_SECONDS"]
        .as_str()
        .expect("literal")
        .parse()
        .expect("seconds");
    assert!(
        (60..=300).contains(&lease),
        "COPY_LEASE_SECONDS {lease} (timeout {timeout})"
    );
    assert!(lease * 10 < visibility);
    // The copier knows which delivery is the last one before the DLQ.
    assert_eq!(
        env_of(copier)["COPY_MAX_ATTEMPTS"].as_str(),
        Some(
            meeting_hooks::schema::JOBS_QUEUE
                .max_receive_count
                .to_string()
                .as_str()
        )
    );
}

/// webhook-ingest's variables, whichever of its routes a request came by.
const INGEST_ENV: &[&str] = &[
    "EVENTS_TABLE",
    "JOBS_QUEUE_URL",
    "PAYLOAD_BUCKET",
    "PROVIDER_SECRETS_ARN",
    "SIGNATURE_TOLERANCE_SECONDS",
    "MAX_BODY_BYTES",
    "ENQUEUE_LEASE_SECONDS",
    "EVENT_RETENTION_DAYS",
];

/// host-api: the read API's GET routes and the JaaS token's POST route (each throttled), with
/// the environment its config reads; exactly the routes the local stack serves.
#[test]
fn host_api_has_its_routes_and_environment() {
    let f = function(HOST_API);
    let got: BTreeSet<String> = env_of(f).keys().cloned().collect();
    let want: BTreeSet<String> = [
        "EVENTS_TABLE",
        "COPIES_TABLE",
        "RECORDINGS_BUCKET",
        "PROVIDER_SECRETS_ARN",
        "DOWNLOAD_URL_TTL_SECONDS",
        "METRICS_NAMESPACE",
        "RUST_LOG",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(got, want);
    let events = f["Properties"]["Events"].as_mapping().expect("events");
    let mut routes: Vec<(&str, &str)> = events
        .values()
        .map(|e| {
            (
                e["Properties"]["Path"].as_str().expect("path"),
                e["Properties"]["Method"].as_str().expect("method"),
            )
        })
        .collect();
    routes.sort_unstable();
    let mut want = vec![
        (meeting_hooks::read::http::SESSIONS_ROUTE, "GET"),
        (meeting_hooks::read::http::SESSION_VIEW_ROUTE, "GET"),
        (meeting_hooks::providers::jaas::token::http::ROUTE, "POST"),
    ];
    want.sort_unstable();
    assert_eq!(routes, want);
    let served: BTreeSet<&str> = meeting_hooks::host_api::ROUTES.into_iter().collect();
    assert_eq!(served, routes.iter().map(|(p, _)| *p).collect());
    for (path, method) in routes {
        let api =
            ref_of(&events.values().next().expect("one")["Properties"]["ApiId"]).expect("api");
        let throttled = &resource(api)["Properties"]["RouteSettings"][&format!("{method} {path}")];
        assert!(number(&throttled["ThrottlingRateLimit"]) > 0, "{path}");
    }
}

#[test]
fn routes_and_environment_follow_the_functions_contract() {
    const UPLOADS_ENV: &[&str] = &[
        "EVENTS_TABLE",
        "COPIES_TABLE",
        "RECORDINGS_BUCKET",
        "PROVIDER_SECRETS_ARN",
        "UPLOAD_URL_TTL_SECONDS",
        "UPLOAD_URLS_PER_ANSWER",
        "UPLOAD_MAX_GIB",
        "EVENT_RETENTION_DAYS",
    ];
    let expected: [(&str, &str, &[&str]); 9] = [
        // Jibri hosts: the grant, and its completion (derived from the grant URL).
        (UPLOADS, meeting_hooks::uploads::ROUTE, UPLOADS_ENV),
        (UPLOADS, meeting_hooks::uploads::COMPLETE_ROUTE, UPLOADS_ENV),
        (INGEST, "/webhooks/jaas", INGEST_ENV),
        (
            SETTINGS_FN,
            "/settings/jaas",
            &[
                "SETTINGS_TABLE",
                "ALLOWED_APP_IDS",
                "PROVIDER_SECRETS_ARN",
                "SIGNATURE_TOLERANCE_SECONDS",
                "SETTINGS_CACHE_TTL_SECONDS",
                "SETTINGS_DEFAULT",
                "SETTINGS_FALLBACK",
                "ALLOW_INSECURE_NO_AUTH",
                "SETTINGS_STORE_TIMEOUT_MS",
            ],
        ),
        (
            COPIER,
            "",
            &[
                "COPIES_TABLE",
                "RECORDINGS_BUCKET",
                // Every provider's host list (providers::SOURCE_HOSTS; checked below too).
                "ALLOWED_SOURCE_HOSTS",
                "DAILY_SOURCE_HOSTS",
                "VIDEOSDK_SOURCE_HOSTS",
                "PROVIDER_SECRETS_ARN",
                "COPY_PART_SIZE_MIB",
                "COPY_MAX_PARTS_IN_FLIGHT",
                "COPY_LEASE_SECONDS",
                "COPY_DEADLINE_MARGIN_SECONDS",
                "COPY_MAX_REDIRECTS",
                "COPY_MAX_ATTEMPTS",
                "COPY_INLINE_RETRIES",
                "JOBS_QUEUE_URL",
                "COPY_RETRY_BASE_SECONDS",
                "COPY_RETRY_MAX_SECONDS",
                "LINK_AT_RISK_SECONDS",
            ],
        ),
        (
            SWEEPER,
            "",
            &[
                "EVENTS_TABLE",
                "JOBS_QUEUE_URL",
                "ENQUEUE_LEASE_SECONDS",
                "SWEEP_MAX_JOBS",
                "COPIES_TABLE",
                "LINK_AT_RISK_SECONDS",
            ],
        ),
        // Every other provider's route goes to the same function.
        (INGEST, "/webhooks/{provider}", INGEST_ENV),
        (INGEST, "/webhooks/{provider}/{proxy+}", INGEST_ENV),
        (
            RECONCILER,
            "",
            &[
                "COPIES_TABLE",
                "JOBS_QUEUE_URL",
                "PROVIDER_SECRETS_ARN",
                "RECONCILE_LOOK_BACK_MINUTES",
                "RECONCILE_GRACE_SECONDS",
                "EVENTS_TABLE",
                "EVENT_RETENTION_DAYS",
            ],
        ),
    ];
    for (binary, path, vars) in expected {
        let f = function(binary);
        let env = env_of(f);
        let mut want: BTreeSet<&str> = vars.iter().copied().collect();
        want.extend(["METRICS_NAMESPACE", "RUST_LOG"]);
        let got: BTreeSet<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(got, want, "{binary}: environment");
        if binary == COPIER {
            for hosts in meeting_hooks::providers::SOURCE_HOSTS {
                assert!(got.contains(hosts.var), "copier lacks {}", hosts.var);
            }
        }
        if !path.is_empty() {
            let routes: Vec<&Value> = f["Properties"]["Events"]
                .as_mapping()
                .expect("events")
                .values()
                .filter(|e| {
                    e["Type"].as_str() == Some("HttpApi")
                        && e["Properties"]["Path"].as_str() == Some(path)
                })
                .collect();
            assert_eq!(routes.len(), 1, "{binary}: one route for {path}");
            let r = &routes[0]["Properties"];
            assert_eq!(r["Method"].as_str(), Some("POST"), "{binary}");
            assert_eq!(r["Path"].as_str(), Some(path), "{binary}");
            assert_eq!(r["PayloadFormatVersion"].as_str(), Some("2.0"), "{binary}");
            let api = ref_of(&r["ApiId"]).expect("ApiId: !Ref <HttpApi>");
            assert_eq!(
                resource(api)["Type"].as_str(),
                Some("AWS::Serverless::HttpApi")
            );
            let throttled = &resource(api)["Properties"]["RouteSettings"][&format!("POST {path}")];
            assert!(
                number(&throttled["ThrottlingRateLimit"]) > 0,
                "{binary}: throttled"
            );
            assert!(
                number(&throttled["ThrottlingBurstLimit"]) > 0,
                "{binary}: throttled"
            );
            // The output the operator pastes into the JaaS console ends in this route (the
            // completion route is the grant URL's `/complete`: no output of its own).
            let outputs = template()["Outputs"].as_mapping().expect("Outputs");
            let providers: &[&str] = if path.ends_with("/complete") {
                &[]
            } else {
                &["jaas", "daily", "videosdk", "jitsi"]
            };
            for provider in providers {
                let path = path
                    .replace("{provider}", provider)
                    .replace("/{proxy+}", "");
                assert!(
                    outputs
                        .values()
                        .any(|o| sub_of(&o["Value"]).is_some_and(|s| {
                            s.starts_with("https://${") && s.ends_with(&format!("}}{path}"))
                        })),
                    "{binary}: no output URL ending in {path}"
                );
            }
        }
        if let Some(secret) = env.get("PROVIDER_SECRETS_ARN") {
            let id = ref_of(secret).expect("PROVIDER_SECRETS_ARN: !Ref <secret>");
            assert_eq!(
                resource(id)["Type"].as_str(),
                Some("AWS::SecretsManager::Secret")
            );
        }
    }
    for (var, spec) in [
        ("EVENTS_TABLE", &EVENTS),
        ("SETTINGS_TABLE", &SETTINGS),
        ("COPIES_TABLE", &COPIES),
    ] {
        let binary = match var {
            "EVENTS_TABLE" => INGEST,
            "SETTINGS_TABLE" => SETTINGS_FN,
            _ => COPIER,
        };
        assert_eq!(
            ref_of(env_of(function(binary))[var]),
            Some(spec.logical_id),
            "{var}"
        );
    }
    assert_eq!(
        env_of(function(SETTINGS_FN))["ALLOW_INSECURE_NO_AUTH"].as_str(),
        Some("false")
    );
    // Test-only switches and plain secrets never appear in the template.
    for forbidden in [
        "ALLOW_INSECURE_LOCAL_ORIGIN",
        "JAAS_WEBHOOK_SECRETS",
        "JAAS_AUTHORIZATION",
    ] {
        assert!(
            !template_text().contains(forbidden),
            "template mentions {forbidden}"
        );
    }
    for name in template()["Parameters"]
        .as_mapping()
        .expect("Parameters")
        .keys()
    {
        let name = name.as_str().expect("name").to_ascii_lowercase();
        assert!(
            !["secret", "authorization", "token", "password"]
                .iter()
                .any(|w| name.contains(w)),
            "parameter {name} looks like a secret: secrets live in Secrets Manager"
        );
    }
}

/// A function's environment as the template sets it, with `!Ref`s to parameters replaced by
/// their defaults (or a placeholder for required parameters and resources).
fn template_env(binary: &str) -> std::collections::HashMap<String, String> {
    let params = template()["Parameters"].as_mapping().expect("Parameters");
    env_of(function(binary))
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => {
                    let target = ref_of(other).expect("a literal or a !Ref");
                    match params.get(target) {
                        Some(p) => match &p["Default"] {
                            Value::Number(n) => n.to_string(),
                            Value::String(s) => s.clone(),
                            _ => format!("param-{target}"),
                        },
                        None => format!("resource-{target}"),
                    }
                }
            };
            (k, value)
        })
        .collect()
}

/// What the JaaS secret lays over the environment at cold start.
fn secret_overlay() -> std::collections::HashMap<String, String> {
    [
        ("JAAS_WEBHOOK_SECRETS".to_owned(), "whsec_x".to_owned()),
        (
            "JAAS_AUTHORIZATION".to_owned(),
            "Bearer generated".to_owned(),
        ),
    ]
    .into()
}

/// Each function starts with the template's environment (plus its secret): every required
/// variable is there and the literal values and parameter defaults are valid together (e.g. the
/// signature tolerance is shorter than the event retention, the store timeout fits JaaS's 3 s).
#[test]
fn every_function_config_accepts_the_template_environment() {
    let config = IngestConfig::from_env(&Layered::new(secret_overlay(), template_env(INGEST)))
        .expect("ingest starts");
    assert!(
        config.retention.is_some(),
        "events expire with the table's TTL"
    );
    meeting_hooks::settings::SettingsConfig::from_env(&Layered::new(
        secret_overlay(),
        template_env(SETTINGS_FN),
    ))
    .expect("settings-provisioning starts");
    let copier = meeting_hooks::copier::CopierConfig::from_env(&template_env(COPIER))
        .expect("recording-copier starts");
    let sweeper = meeting_hooks::sweep::SweepConfig::from_env(&template_env(SWEEPER))
        .expect("event-sweeper starts");
    let reconcile = meeting_hooks::reconcile::ReconcileConfig::from_env(&template_env(RECONCILER))
        .expect("recording-reconciler starts");
    assert_eq!(
        reconcile.look_back,
        std::time::Duration::from_secs(24 * 3600)
    );
    assert_eq!(
        sweeper.enqueue_lease, config.enqueue_lease,
        "the sweeper takes the lease ingest takes"
    );
    assert!(
        copier.settings().max_attempts.is_some(),
        "the copier knows the last delivery"
    );
    let jitsi: std::collections::HashMap<String, String> = [(
        "JITSI_TOKENS".to_owned(),
        "jibri-host-token-0123456789".to_owned(),
    )]
    .into();
    let uploads = meeting_hooks::uploads::UploadsConfig::from_env(&Layered::new(
        jitsi,
        template_env(UPLOADS),
    ))
    .expect("jibri-uploads starts");
    assert!(
        uploads.retention.is_some(),
        "its events expire like the others"
    );
    assert!(
        uploads.url_ttl <= std::time::Duration::from_secs(600),
        "presigned part URLs live minutes"
    );
    // Without the secret's jitsi section it refuses to start, naming the variable.
    let err = meeting_hooks::uploads::UploadsConfig::from_env(&template_env(UPLOADS))
        .expect_err("no tokens")
        .to_string();
    assert!(err.contains("JITSI_TOKENS"), "{err}");
    // The read API: the callers' tokens come from the secret's readApi section.
    let readers: std::collections::HashMap<String, String> = [(
        "READ_API_TOKENS".to_owned(),
        "host-app-token-0123456789".to_owned(),
    )]
    .into();
    let read =
        meeting_hooks::read::ReadConfig::from_env(&Layered::new(readers, template_env(HOST_API)))
            .expect("host-api starts");
    assert!(
        read.download_url_ttl_secs <= 600,
        "download URLs live minutes"
    );
    let err = meeting_hooks::read::ReadConfig::from_env(&template_env(HOST_API))
        .expect_err("no tokens")
        .to_string();
    assert!(err.contains("READ_API_TOKENS"), "{err}");
    // Without the secret's JaaS API key it starts, and the token route answers 501.
    assert!(
        meeting_hooks::providers::jaas::token::http::signing_key_from_env(&template_env(HOST_API))
            .expect("no key is not an error")
            .is_none()
    );
}

/// Statements of a function's inline policies; SAM policy templates and managed policies are
/// refused so that this test can see every permission.
fn statements(binary: &str) -> Vec<&'static Value> {
    let mut out = Vec::new();
    for policy in function(binary)["Properties"]["Policies"]
        .as_sequence()
        .expect("Policies")
    {
        let st = policy["Statement"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{binary}: only inline policy documents, got {policy:?}"));
        out.extend(st.iter());
    }
    out
}

/// (action, resource description) pairs; a resource is "Ref:X", "GetAtt:X.Arn" or "Sub:...".
fn grants(binary: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for st in statements(binary) {
        assert_eq!(st["Effect"].as_str(), Some("Allow"), "{binary}");
        let resources: Vec<String> = match &st["Resource"] {
            Value::Sequence(items) => items.iter().map(describe).collect(),
            one => vec![describe(one)],
        };
        for action in str_list(&st["Action"]) {
            assert!(!action.contains('*'), "{binary}: wildcard action {action}");
            for r in &resources {
                out.insert((action.clone(), r.clone()));
            }
        }
    }
    out
}

fn describe(v: &Value) -> String {
    if let Some(r) = ref_of(v) {
        format!("Ref:{r}")
    } else if let Some(a) = getatt_of(v) {
        format!("GetAtt:{a}")
    } else if let Some(s) = sub_of(v) {
        format!("Sub:{s}")
    } else {
        panic!("resource must name one of the stack's resources, got {v:?}")
    }
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
        .collect()
}

#[test]
fn each_function_has_exactly_the_permissions_it_needs() {
    // Ingest: write its events, send jobs, write payloads under two prefixes (never read S3),
    // read its secret.
    assert_eq!(
        grants(INGEST),
        set(&[
            ("dynamodb:GetItem", "GetAtt:EventsTable.Arn"),
            ("dynamodb:PutItem", "GetAtt:EventsTable.Arn"),
            ("dynamodb:UpdateItem", "GetAtt:EventsTable.Arn"),
            ("s3:PutObject", "Sub:${PayloadBucket.Arn}/quarantine/*"),
            ("s3:PutObject", "Sub:${PayloadBucket.Arn}/raw/*"),
            ("secretsmanager:GetSecretValue", "Ref:JaasSecret"),
            ("sqs:SendMessage", "GetAtt:JobsQueue.Arn"),
        ])
    );
    // Settings: read-only on the settings table, and its secret.
    assert_eq!(
        grants(SETTINGS_FN),
        set(&[
            ("dynamodb:BatchGetItem", "GetAtt:SettingsTable.Arn"),
            ("dynamodb:GetItem", "GetAtt:SettingsTable.Arn"),
            ("secretsmanager:GetSecretValue", "Ref:JaasSecret"),
        ])
    );
    // Sweeper: query the pending-job index and the link watch only, claim and mark items, send
    // jobs, read the watched files' copy states and flag them.
    assert_eq!(
        grants(SWEEPER),
        set(&[
            (
                "dynamodb:Query",
                &format!(
                    "Sub:${{EventsTable.Arn}}/index/{}",
                    meeting_hooks::schema::EVENTS_PENDING_JOBS
                )
            ),
            (
                "dynamodb:Query",
                &format!(
                    "Sub:${{EventsTable.Arn}}/index/{}",
                    meeting_hooks::schema::EVENTS_LINK_WATCH
                )
            ),
            ("dynamodb:UpdateItem", "GetAtt:EventsTable.Arn"),
            // The link watch: the files' copy states, and their at-risk flags.
            ("dynamodb:BatchGetItem", "GetAtt:CopiesTable.Arn"),
            ("dynamodb:UpdateItem", "GetAtt:CopiesTable.Arn"),
            ("sqs:SendMessage", "GetAtt:JobsQueue.Arn"),
        ])
    );
    // Reconciler: reads copy states (is there one?), sends jobs, stores the recovered files'
    // events, reads its secret (Daily's key).
    assert_eq!(
        grants(RECONCILER),
        set(&[
            ("dynamodb:GetItem", "GetAtt:CopiesTable.Arn"),
            // The recovered file's event: a conditional put (the old item comes back on a clash).
            ("dynamodb:PutItem", "GetAtt:EventsTable.Arn"),
            ("dynamodb:GetItem", "GetAtt:EventsTable.Arn"),
            ("secretsmanager:GetSecretValue", "Ref:JaasSecret"),
            ("sqs:SendMessage", "GetAtt:JobsQueue.Arn"),
        ])
    );
    // Jibri uploads: multipart upload, read back, tag and delete under jitsi/ only; the
    // recording's event (conditional put) and copy state; its secret (the hosts' tokens).
    let jitsi = "Sub:${RecordingsBucket.Arn}/jitsi/*";
    assert_eq!(
        grants(UPLOADS),
        set(&[
            ("dynamodb:GetItem", "GetAtt:CopiesTable.Arn"),
            ("dynamodb:GetItem", "GetAtt:EventsTable.Arn"),
            ("dynamodb:PutItem", "GetAtt:EventsTable.Arn"),
            ("dynamodb:UpdateItem", "GetAtt:CopiesTable.Arn"),
            ("s3:DeleteObject", jitsi),
            ("s3:GetObject", jitsi),
            ("s3:GetObjectTagging", jitsi),
            ("s3:ListMultipartUploadParts", jitsi),
            ("s3:PutObject", jitsi),
            ("s3:PutObjectTagging", jitsi),
            ("secretsmanager:GetSecretValue", "Ref:JaasSecret"),
        ])
    );
    // host-api: reads only: the two indexes it queries, copy states in batches, GetObject
    // (presigned GETs carry its signature), its secret (the callers' tokens).
    assert_eq!(
        grants(HOST_API),
        set(&[
            ("dynamodb:BatchGetItem", "GetAtt:CopiesTable.Arn"),
            ("dynamodb:Query", "Sub:${EventsTable.Arn}/index/bySession"),
            ("dynamodb:Query", "Sub:${EventsTable.Arn}/index/byRoom"),
            ("s3:GetObject", "Sub:${RecordingsBucket.Arn}/*"),
            ("secretsmanager:GetSecretValue", "Ref:JaasSecret"),
        ])
    );
    // Copier (its secret: provider API keys, for Daily's access links): multipart upload into the recordings bucket, its own copy state, and on its own
    // queue the retry backoff and continuations; nothing on the events or settings tables, no
    // secrets. (SAM adds the SQS poller permissions for the
    // event source itself.)
    assert_eq!(
        grants(COPIER),
        set(&[
            ("dynamodb:DeleteItem", "GetAtt:CopiesTable.Arn"),
            ("dynamodb:GetItem", "GetAtt:CopiesTable.Arn"),
            ("dynamodb:PutItem", "GetAtt:CopiesTable.Arn"),
            ("dynamodb:UpdateItem", "GetAtt:CopiesTable.Arn"),
            ("s3:AbortMultipartUpload", "Sub:${RecordingsBucket.Arn}/*"),
            ("s3:GetObject", "Sub:${RecordingsBucket.Arn}/*"),
            // aws::objects tags each copy with its SHA-256 and reads the tag back.
            ("s3:GetObjectTagging", "Sub:${RecordingsBucket.Arn}/*"),
            ("s3:PutObjectTagging", "Sub:${RecordingsBucket.Arn}/*"),
            (
                "s3:ListMultipartUploadParts",
                "Sub:${RecordingsBucket.Arn}/*"
            ),
            ("s3:PutObject", "Sub:${RecordingsBucket.Arn}/*"),
            ("secretsmanager:GetSecretValue", "Ref:JaasSecret"),
            ("sqs:ChangeMessageVisibility", "GetAtt:JobsQueue.Arn"),
            ("sqs:SendMessage", "GetAtt:JobsQueue.Arn"),
        ])
    );
}

#[test]
fn buckets_are_private_encrypted_tls_only_and_abort_incomplete_uploads() {
    let buckets = resources_of("AWS::S3::Bucket");
    assert_eq!(buckets.len(), 2);
    for (id, b) in buckets {
        let p = &b["Properties"];
        let block = &p["PublicAccessBlockConfiguration"];
        for k in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(block[k].as_bool(), Some(true), "{id}.{k}");
        }
        assert!(
            p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
                ["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
                .as_str()
                .is_some(),
            "{id} encrypted"
        );
        let rules = p["LifecycleConfiguration"]["Rules"]
            .as_sequence()
            .expect("lifecycle rules");
        assert!(
            rules.iter().any(|r| r["Status"].as_str() == Some("Enabled")
                && number(&r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]) >= 1),
            "{id} aborts incomplete multipart uploads"
        );
        let policy = resources_of("AWS::S3::BucketPolicy")
            .into_iter()
            .find(|(_, pol)| ref_of(&pol["Properties"]["Bucket"]) == Some(id))
            .unwrap_or_else(|| panic!("{id} has no bucket policy"))
            .1;
        let st = &policy["Properties"]["PolicyDocument"]["Statement"][0];
        assert_eq!(st["Effect"].as_str(), Some("Deny"), "{id}");
        assert_eq!(
            st["Condition"]["Bool"]["aws:SecureTransport"].as_str(),
            Some("false"),
            "{id} TLS only"
        );
    }
}

#[test]
fn log_groups_have_retention_and_functions_log_there() {
    for (id, f) in resources_of("AWS::Serverless::Function") {
        let group = ref_of(&f["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id}: LoggingConfig.LogGroup: !Ref <group>"));
        let g = resource(group);
        assert_eq!(g["Type"].as_str(), Some("AWS::Logs::LogGroup"));
        assert!(
            !g["Properties"]["RetentionInDays"].is_null(),
            "{group} retention"
        );
    }
}

/// Replaces `${...}` placeholders of a `!Sub` pattern so the dashboard body parses as JSON.
fn unsub(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(&format!("<{}>", &rest[start + 2..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// EMF metrics with an extra dimension, which CloudWatch stores only under the full set.
const EXTRA_DIMENSION: &[(&str, &str)] = &[
    ("Events", "EventType"),
    ("SignatureFailures", "Reason"),
    ("SettingsAnswers", "Source"),
    ("CopyFailures", "Class"),
];

#[test]
fn dashboard_shows_every_metric_with_its_full_dimension_set() {
    let body =
        sub_of(&resource("Dashboard")["Properties"]["DashboardBody"]).expect("DashboardBody: !Sub");
    let dash: serde_json::Value = serde_json::from_str(&unsub(body)).expect("dashboard JSON");
    let ns = "<MetricsNamespace>";
    let mut shown = BTreeSet::new();
    let mut searched = BTreeSet::new();
    for w in dash["widgets"].as_array().expect("widgets") {
        for row in w["properties"]["metrics"].as_array().into_iter().flatten() {
            let row = row.as_array().expect("metric row");
            if let Some(expr) = row[0]["expression"].as_str() {
                // SEARCH must name the full dimension schema of what it searches.
                for (metric, dim) in EXTRA_DIMENSION {
                    if expr.contains(&format!("MetricName=\"{metric}\"")) {
                        // Published with and without the Provider dimension.
                        assert!(
                            expr.contains(&format!("{{{ns},{dim},Service}}"))
                                || expr.contains(&format!("{{{ns},Provider,{dim},Service}}")),
                            "{expr}"
                        );
                        searched.insert(*metric);
                    }
                }
                continue;
            }
            let strings: Vec<&str> = row.iter().filter_map(|v| v.as_str()).collect();
            if strings[0] != ns {
                continue;
            }
            let metric = strings[1];
            let dims: BTreeSet<&str> = strings[2..].iter().step_by(2).copied().collect();
            let mut want = BTreeSet::from(["Service"]);
            if let Some((_, d)) = EXTRA_DIMENSION.iter().find(|(m, _)| *m == metric) {
                want.insert(*d);
            }
            // Provider metrics are published with and without their Provider dimension.
            if dims.contains("Provider") {
                want.insert("Provider");
            }
            assert_eq!(dims, want, "{metric}: dimension set");
            shown.insert(metric);
        }
    }
    let mut all: BTreeSet<&str> = shown.union(&searched).copied().collect();
    all.retain(|m| !m.is_empty());
    for metric in [
        "Events",
        "EventsStored",
        "Duplicates",
        "Conflicts",
        "Quarantined",
        "SignatureFailures",
        "StorageFailures",
        "QueueFailures",
        "InProgress",
        "JobsRecovered",
        "JobsSwept",
        "FileEventsWithoutLink",
        "SettingsAnswers",
        "BytesCopied",
        "CopyDuration",
        "CopyFailures",
        "LinkSecondsLeftAtStart",
        "FilesReconciled",
        "ProviderFileErrors",
        "LinksResolved",
    ] {
        assert!(all.contains(metric), "dashboard lacks {metric}");
    }
    for aws in [
        "\"Errors\"",
        "\"Throttles\"",
        "\"Duration\"",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
        "<JobsDeadLetterQueue.QueueName>",
    ] {
        assert!(unsub(body).contains(aws), "dashboard lacks {aws}");
    }
}

#[test]
fn alarms_cover_dlq_old_jobs_copies_signatures_and_settings_and_can_notify() {
    let alarms = resources_of("AWS::CloudWatch::Alarm");
    let mut metrics = BTreeSet::new();
    for (id, a) in &alarms {
        let p = &a["Properties"];
        // The optional topic: `!If [HasAlarmTopic, [topic], !Ref AWS::NoValue]`.
        let actions = tagged(&p["AlarmActions"], "If").expect("AlarmActions: !If");
        assert_eq!(actions[0].as_str(), Some("HasAlarmTopic"), "{id}");
        let mut named = Vec::new();
        if let Some(m) = p["MetricName"].as_str() {
            named.push((m.to_owned(), p["Dimensions"].clone()));
        }
        for m in p["Metrics"].as_sequence().into_iter().flatten() {
            let stat = &m["MetricStat"]["Metric"];
            if let Some(name) = stat["MetricName"].as_str() {
                named.push((name.to_owned(), stat["Dimensions"].clone()));
            }
            if let Some(expr) = tagged(&m["Expression"], "Sub").and_then(Value::as_str) {
                for summed in ["SignatureFailures", "SettingsRefused"] {
                    if expr.contains(summed) {
                        assert!(expr.contains("SCHEMA(\"${MetricsNamespace}\", Reason, Service)"));
                        metrics.insert(summed.to_owned());
                    }
                }
            }
        }
        for (name, dims) in named {
            let dims: BTreeSet<String> = dims
                .as_sequence()
                .expect("Dimensions")
                .iter()
                .map(|d| d["Name"].as_str().expect("Name").to_owned())
                .collect();
            if let Some((_, extra)) = EXTRA_DIMENSION.iter().find(|(m, _)| *m == name) {
                assert!(
                    dims.contains("Service") && dims.contains(*extra),
                    "{id}: {name}"
                );
            }
            metrics.insert(name);
        }
    }
    for m in [
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "CopyFailures",
        "SignatureFailures",
        "SettingsAnswers",
        "SettingsRefused",
        "FileEventsWithoutLink",
    ] {
        assert!(metrics.contains(m), "no alarm on {m}");
    }
    // One file event whose file nobody will copy is enough, and it is ingest's metric.
    let without_link = alarms
        .iter()
        .find(|(_, a)| a["Properties"]["MetricName"].as_str() == Some("FileEventsWithoutLink"))
        .expect("FileEventsWithoutLink alarm")
        .1;
    let p = &without_link["Properties"];
    assert_eq!(number(&p["Threshold"]), 1);
    assert_eq!(
        p["ComparisonOperator"].as_str(),
        Some("GreaterThanOrEqualToThreshold")
    );
    assert_eq!(p["Statistic"].as_str(), Some("Sum"));
    assert_eq!(p["Dimensions"][0]["Name"].as_str(), Some("Service"));
    assert_eq!(p["Dimensions"][0]["Value"].as_str(), Some(INGEST));
    let oldest = alarms
        .iter()
        .find(|(_, a)| {
            a["Properties"]["MetricName"].as_str() == Some("ApproximateAgeOfOldestMessage")
        })
        .expect("oldest-job alarm");
    assert_eq!(number(&oldest.1["Properties"]["Threshold"]), 3600);
    let dlq = alarms
        .iter()
        .find(|(_, a)| {
            a["Properties"]["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible")
        })
        .expect("DLQ alarm");
    let queue = getatt_of(&dlq.1["Properties"]["Dimensions"][0]["Value"]).expect("queue name");
    let main_queue =
        getatt_of(&function(COPIER)["Properties"]["Events"]["CopyJobs"]["Properties"]["Queue"])
            .expect("queue")
            .trim_end_matches(".Arn");
    let dlq_id =
        getatt_of(&resource(main_queue)["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
            .expect("dlq")
            .trim_end_matches(".Arn");
    assert_eq!(
        queue,
        format!("{dlq_id}.QueueName"),
        "the DLQ alarm watches the DLQ"
    );
    let condition = &template()["Conditions"]["HasAlarmTopic"];
    assert!(!condition.is_null());
    // The sweeper's failures alarm on their own (threshold 1): jobs are waiting.
    let sweeper_id = resources_of("AWS::Serverless::Function")
        .into_iter()
        .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(SWEEPER))
        .expect("sweeper")
        .0;
    assert!(
        alarms.iter().any(|(_, a)| {
            number(&a["Properties"]["Threshold"]) == 1
                && a["Properties"]["Metrics"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .any(|m| {
                        let metric = &m["MetricStat"]["Metric"];
                        metric["MetricName"].as_str() == Some("Errors")
                            && ref_of(&metric["Dimensions"][0]["Value"]) == Some(sweeper_id)
                    })
        }),
        "no alarm on the sweeper's errors"
    );
    // Jibri uploads: one error is enough (hosts keep retrying, nothing arrives meanwhile).
    let uploads_id = resources_of("AWS::Serverless::Function")
        .into_iter()
        .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(UPLOADS))
        .expect("jibri-uploads")
        .0;
    assert!(
        alarms.iter().any(|(_, a)| {
            let p = &a["Properties"];
            p["MetricName"].as_str() == Some("Errors")
                && ref_of(&p["Dimensions"][0]["Value"]) == Some(uploads_id)
                && number(&p["Threshold"]) == 1
        }),
        "no alarm on jibri-uploads' errors"
    );
}

#[test]
fn the_sweeper_runs_on_its_schedule_and_reads_the_pending_job_index() {
    use meeting_hooks::schema::{EVENTS_PENDING_JOBS, SWEEP_PERIOD_SECS, SWEEP_SCHEDULE};
    let f = function(SWEEPER);
    let schedules: Vec<&Value> = f["Properties"]["Events"]
        .as_mapping()
        .expect("sweeper events")
        .values()
        .filter(|e| e["Type"].as_str() == Some("Schedule"))
        .collect();
    assert_eq!(schedules.len(), 1, "one schedule");
    assert_eq!(
        schedules[0]["Properties"]["Schedule"].as_str(),
        Some(SWEEP_SCHEDULE)
    );
    assert_eq!(SWEEP_SCHEDULE, "rate(1 minute)");
    assert_eq!(SWEEP_PERIOD_SECS, 60);
    // A run ends before the next one starts.
    assert!(number(prop(f, "Timeout")) <= 60);
    assert_eq!(
        ref_of(env_of(f)["EVENTS_TABLE"]),
        Some(EVENTS.logical_id),
        "the table ingest writes"
    );
    assert_eq!(
        env_of(f)["JOBS_QUEUE_URL"],
        env_of(function(INGEST))["JOBS_QUEUE_URL"],
        "the queue ingest sends to"
    );
    assert!(
        EVENTS
            .indexes
            .iter()
            .any(|ix| ix.name == EVENTS_PENDING_JOBS),
        "the index it queries exists"
    );
}

#[test]
fn data_resources_are_exactly_the_ones_the_code_and_local_stack_expect() {
    use meeting_hooks::schema::{DATA_RESOURCES, ResourceKind};
    for kind in [
        ResourceKind::Table,
        ResourceKind::Queue,
        ResourceKind::Bucket,
        ResourceKind::Secret,
    ] {
        let mut declared: Vec<&str> = resources_of(kind.cloudformation_type())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let mut expected: Vec<&str> = DATA_RESOURCES
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(id, _)| *id)
            .collect();
        declared.sort_unstable();
        expected.sort_unstable();
        assert_eq!(
            declared, expected,
            "{kind:?}: template.yaml vs schema::DATA_RESOURCES"
        );
    }
}

/// The meeting events' outbox: each table's stream has the view the publisher reads, and the
/// publisher's mappings answer partially, never give up on their own, and keep failures.
#[test]
fn meeting_events_read_the_tables_streams_and_lose_nothing() {
    for spec in [
        &meeting_hooks::schema::EVENTS,
        &meeting_hooks::schema::COPIES,
    ] {
        let table = resource(spec.logical_id);
        assert_eq!(
            table["Properties"]["StreamSpecification"]["StreamViewType"].as_str(),
            spec.stream,
            "{}",
            spec.logical_id
        );
    }
    let f = function("meeting-events");
    let events = f["Properties"]["Events"].as_mapping().expect("events");
    assert_eq!(events.len(), 2);
    for e in events.values() {
        let p = &e["Properties"];
        assert_eq!(e["Type"].as_str(), Some("DynamoDB"));
        assert_eq!(p["StartingPosition"].as_str(), Some("TRIM_HORIZON"));
        assert_eq!(
            p["FunctionResponseTypes"][0].as_str(),
            Some("ReportBatchItemFailures")
        );
        assert_eq!(number(&p["MaximumRetryAttempts"]), -1);
        assert!(
            !p["DestinationConfig"]["OnFailure"]["Destination"].is_null(),
            "failures are kept"
        );
    }
    let env: BTreeSet<String> = env_of(f).keys().cloned().collect();
    for var in [
        "EVENTS_TABLE",
        "COPIES_TABLE",
        "RECORDINGS_BUCKET",
        "EVENT_BUS_NAME",
        "MEETING_EVENTS_DLQ_URL",
    ] {
        assert!(env.contains(var), "{var}");
    }
}

/// Whether `record` matches an event-source-mapping filter `pattern` (the subset of Lambda's
/// filter syntax the template uses: nested keys, value lists, `{"exists": bool}`).
fn filter_matches(pattern: &serde_json::Value, record: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match pattern {
        J::Object(keys) => keys
            .iter()
            .all(|(k, p)| filter_matches(p, record.get(k).unwrap_or(&J::Null))),
        J::Array(options) => options.iter().any(|o| match o.get("exists") {
            Some(exists) => exists.as_bool() == Some(!record.is_null()),
            None => record == o,
        }),
        _ => false,
    }
}

/// A stream record as Lambda delivers it, from `table`.
fn stream_record(
    table: &str,
    name: &str,
    new: serde_json::Value,
    old: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut d = serde_json::json!({"NewImage": new, "SequenceNumber": "1",
        "ApproximateCreationDateTime": 1_700_000_000.0});
    if let Some(old) = old {
        d["OldImage"] = old;
    }
    serde_json::json!({"eventName": name, "dynamodb": d,
        "eventSourceARN": format!("arn:aws:dynamodb:us-east-1:1:table/{table}/stream/x")})
}

#[test]
fn the_stream_filters_pass_every_change_the_publisher_turns_into_an_event() {
    use serde_json::json;
    let f = function("meeting-events");
    let mut filters: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for e in f["Properties"]["Events"]
        .as_mapping()
        .expect("events")
        .values()
    {
        let p = &e["Properties"];
        let table = describe(&p["Stream"]);
        for filter in p["FilterCriteria"]["Filters"]
            .as_sequence()
            .expect("filters")
        {
            let pattern = filter["Pattern"].as_str().expect("pattern");
            filters
                .entry(table.clone())
                .or_default()
                .push(serde_json::from_str(pattern).expect("pattern is JSON"));
        }
    }
    let passes = |table: &str, record: &serde_json::Value| {
        filters[&format!("GetAtt:{table}.StreamArn")]
            .iter()
            .any(|p| filter_matches(p, record))
    };
    let env: std::collections::HashMap<String, String> = [
        ("RECORDINGS_BUCKET", "b"),
        ("EVENTS_TABLE", "events"),
        ("COPIES_TABLE", "copies"),
        ("EVENT_BUS_NAME", "bus"),
        ("MEETING_EVENTS_DLQ_URL", "dlq"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config =
        meeting_hooks::aws::meeting_events::MeetingEventsConfig::from_env(&env).expect("config");
    let published = |record: &serde_json::Value| {
        let r = meeting_hooks::aws::meeting_events::stream_record(record, &config);
        meeting_hooks::meeting_events::events_of(&r.change, "b").len()
    };
    let about = json!({"S": r#"{"provider":"jaas","kind":"recording"}"#});
    let item = |state: &str, flagged: bool| {
        let mut i = json!({"jobId": {"S": "k/recording"}, "state": {"S": state},
            "about": about, "updatedAt": {"N": "5"}});
        if state == "copied" {
            i["objectKey"] = json!({"S": "a/b.mp4"});
            i["sha256"] = json!({"S": "ab".repeat(32)});
            i["bytes"] = json!({"N": "3"});
        }
        if state == "failed" {
            i["permanent"] = json!({"BOOL": true});
        }
        if flagged {
            i["atRiskAt"] = json!({"N": "7"});
            i["atRiskCause"] = json!({"S": "link_expiring"});
            i["linkExpiresAt"] = json!({"N": "9"});
        }
        i
    };
    // (record, publishes an event)
    let copies = [
        (
            stream_record(
                "copies",
                "MODIFY",
                item("copied", false),
                Some(item("copying", false)),
            ),
            true,
        ),
        (
            stream_record(
                "copies",
                "MODIFY",
                item("failed", false),
                Some(item("copying", false)),
            ),
            true,
        ),
        // The sweeper's flag on a job the copier never saw (a new item).
        (
            stream_record("copies", "INSERT", item("pending", true), None),
            true,
        ),
        // The copier's flag on a job it hands back.
        (
            stream_record(
                "copies",
                "MODIFY",
                item("pending", true),
                Some(item("copying", false)),
            ),
            true,
        ),
        // A claim of a flagged job: it passes, the publisher sees nothing new.
        (
            stream_record(
                "copies",
                "MODIFY",
                item("copying", true),
                Some(item("pending", true)),
            ),
            false,
        ),
        // Progress of a copy: filtered out.
        (
            stream_record(
                "copies",
                "MODIFY",
                item("copying", false),
                Some(item("copying", false)),
            ),
            false,
        ),
    ];
    for (record, publishes) in &copies {
        assert_eq!(published(record) > 0, *publishes, "{record}");
        if *publishes {
            assert!(passes("CopiesTable", record), "filtered out: {record}");
        }
    }
    assert!(
        !passes("CopiesTable", &copies[5].0),
        "progress is filtered out"
    );
    let event = json!({"pk": {"S": "k1"}});
    assert!(passes(
        "EventsTable",
        &stream_record("events", "INSERT", event.clone(), None)
    ));
    assert!(!passes(
        "EventsTable",
        &stream_record("events", "MODIFY", event, None)
    ));
}
