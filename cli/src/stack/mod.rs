//! `hooksctl up`: the whole product on one machine. Starts (or reuses) an AWS emulator, creates
//! the resources the template declares, serves the API routes on localhost through the Lambda
//! handler code, runs the copier the way the SQS event source mapping would and the event
//! sweeper the way its schedule would, writes
//! `.local/stack.json`, and stops everything it started on Ctrl-C.

pub mod api;
pub mod daily_api;
pub mod emulator;
pub mod info;
pub mod poller;
pub mod resources;
pub mod schedule;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use lambda_http::Request;
use meeting_hooks::aws::wiring;
use meeting_hooks::copier::sqs::{Invocation, handle_batch};
use meeting_hooks::providers::videosdk;
use meeting_hooks::schema;
use tokio::net::TcpListener;

use info::{Routes, StackInfo};

/// The development-only webhook secret of the local stack (also used by `events/`).
pub const LOCAL_WEBHOOK_SECRET: &str = "whsec_local_development_only";
/// The development-only Authorization header value JaaS would send (also used by `events/`).
pub const LOCAL_AUTHORIZATION: &str = "Bearer local_development_only";
/// The JaaS appId the local stack treats as ours.
pub const LOCAL_APP_ID: &str = "vpaas-magic-cookie-0000000000000000000000000000local";
pub const WEBHOOK_ROUTE: &str = "/webhooks/jaas";
/// Every provider's webhook route (`/webhooks/jaas` is one of them).
pub const PROVIDER_ROUTE: &str = "/webhooks/{provider}";
/// Routes below a provider's (self-hosted Jitsi's `/webhooks/jitsi/events/room/created`, …).
pub const PROVIDER_SUBROUTE: &str = "/webhooks/{provider}/{proxy+}";
pub const JITSI_ROUTE: &str = "/webhooks/jitsi";
/// The development-only bearer token of the local stack (Prosody's `api_headers`, the Jibri
/// hosts' `JIBRI_UPLOAD_TOKEN`).
pub const LOCAL_JITSI_TOKEN: &str = "jitsi_local_development_only";
pub const DAILY_ROUTE: &str = "/webhooks/daily";
/// The development-only bearer token of the read API's callers (the secret's `readApi`).
pub const LOCAL_READ_API_TOKEN: &str = "read_api_local_development_only";
pub const VIDEOSDK_ROUTE: &str = "/webhooks/videosdk";
/// Where the local VideoSDK key pair's private half is kept (made once, then reused, so a
/// restart against a running emulator keeps matching the secret).
pub const VIDEOSDK_KEY_PATH: &str = ".local/videosdk-private.pem";

/// The local JaaS API key pair (the secret's `jaas.apiPrivateKey`; tokens from
/// `POST /v1/jaas/token` verify with the public half), made once, then reused.
pub const JAAS_PRIVATE_KEY_PATH: &str = ".local/jaas-private.pem";
pub const JAAS_PUBLIC_KEY_PATH: &str = ".local/jaas-public.pem";
/// The local JaaS API key's id (the kid is `<LOCAL_APP_ID>/<this>`).
pub const LOCAL_JAAS_KEY_ID: &str = "local-dev";

/// The local JaaS API key: the private half's PEM (for the secret) and where the public half is.
struct LocalJaasKey {
    private_pem: String,
    public_path: PathBuf,
}

fn local_jaas_key(root: &std::path::Path) -> anyhow::Result<LocalJaasKey> {
    use secrecy::ExposeSecret;
    let (private_path, public_path) = (
        root.join(JAAS_PRIVATE_KEY_PATH),
        root.join(JAAS_PUBLIC_KEY_PATH),
    );
    if let (Ok(private_pem), true) = (std::fs::read_to_string(&private_path), public_path.exists())
    {
        return Ok(LocalJaasKey {
            private_pem,
            public_path,
        });
    }
    let pair = meeting_hooks::providers::jaas::token::generate_local_key_pair()?;
    if let Some(dir) = private_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(&private_path, pair.private_pem.expose_secret())?;
    std::fs::write(&public_path, &pair.public_pem)
        .with_context(|| format!("write {}", public_path.display()))?;
    Ok(LocalJaasKey {
        private_pem: pair.private_pem.expose_secret().to_owned(),
        public_path,
    })
}

/// Writes a private key readable by its owner only.
fn write_private(path: &std::path::Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(pem.as_bytes()))
        .with_context(|| format!("write {}", path.display()))
}

/// The local stand-in for VideoSDK's signing key.
struct LocalKey {
    private_path: PathBuf,
    public_pem: String,
}

fn local_videosdk_key(root: &std::path::Path) -> anyhow::Result<LocalKey> {
    let private_path = root.join(VIDEOSDK_KEY_PATH);
    let private = match std::fs::read_to_string(&private_path) {
        Ok(pem) => pem,
        Err(_) => {
            let (private, _) = videosdk::keys::generate_pem_pair().map_err(anyhow::Error::msg)?;
            if let Some(dir) = private_path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&private_path, &private)
                .with_context(|| format!("write {}", private_path.display()))?;
            private
        }
    };
    let public_pem = videosdk::keys::public_pem_of(&private).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (delete it to make a new one)",
            private_path.display()
        )
    })?;
    Ok(LocalKey {
        private_path,
        public_pem,
    })
}
/// The development-only Daily webhook secret (base64, as Daily shows its `hmac`; also used
/// by `events/daily/`).
pub const LOCAL_DAILY_SECRET: &str = "ZGFpbHlfbG9jYWxfZGV2ZWxvcG1lbnRfb25seQ==";
pub const SETTINGS_ROUTE: &str = "/settings/jaas";

/// Options of `hooksctl up`.
/// Variables of the functions' environment that `up` passes through from its own.
const LOCAL_TUNABLES: [&str; 4] = [
    "COPY_LEASE_SECONDS",
    "COPY_PART_SIZE_MIB",
    "COPY_INLINE_RETRIES",
    "ENQUEUE_LEASE_SECONDS",
];

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Port of the local API (webhook and settings routes).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Port for the moto_server this command starts.
    #[arg(long, default_value_t = 4566)]
    pub emulator_port: u16,
    /// Use an already running emulator at this URL instead of starting one.
    #[arg(long, env = "HOOKS_EMULATOR_URL", conflicts_with = "real_aws")]
    pub endpoint: Option<String>,
    /// Use real AWS (credentials and region from the environment) instead of an emulator; the
    /// resources are created in your account under `--prefix`.
    #[arg(long)]
    pub real_aws: bool,
    /// Name prefix of the tables, queues and bucket.
    #[arg(long, default_value = "meeting-hooks-local")]
    pub prefix: String,
    /// Seconds between event-sweeper runs (the template schedules it every minute).
    #[arg(long, default_value_t = schema::SWEEP_PERIOD_SECS)]
    pub sweep_interval_secs: u64,
    /// Refuse the first N PutEvents calls of the meeting events (EventBridge throttling or
    /// down), to watch them arrive anyway, each once.
    #[arg(long, default_value_t = 0)]
    pub fail_put_events: u32,
    /// Seconds between reconciliation runs (Daily's recordings list; the template's
    /// `ReconcileSchedule` parameter).
    #[arg(long, default_value_t = 20)]
    pub reconcile_interval_secs: u64,
    /// Port of the local Daily REST API stand-in (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub daily_api_port: u16,
    /// Where to write the machine-readable stack description.
    #[arg(long, default_value = info::DEFAULT_PATH)]
    pub stack_file: PathBuf,
}

/// Runs the stack until Ctrl-C.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let root = std::env::current_dir()?;
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let mut _moto = None;
    let endpoint = if args.real_aws {
        None
    } else if let Some(url) = &args.endpoint {
        Some(url.clone())
    } else {
        let bin = emulator::find_or_install(&root).await?;
        let moto = emulator::start(&bin, args.emulator_port).await?;
        let url = moto.endpoint.clone();
        _moto = Some(moto);
        Some(url)
    };
    let sdk = match &endpoint {
        Some(url) => meeting_hooks::aws::emulator_config(url, &region),
        None => meeting_hooks::aws::load_config().await,
    };
    let names = resources::Names::with_prefix(&args.prefix);
    let videosdk_key = local_videosdk_key(&root)?;
    let jaas_key = local_jaas_key(&root)?;
    let created = resources::create(
        &sdk,
        &names,
        &resources::LocalSecrets {
            webhook_secret: LOCAL_WEBHOOK_SECRET,
            authorization: LOCAL_AUTHORIZATION,
            daily_webhook_secret: LOCAL_DAILY_SECRET,
            daily_api_key: daily_api::LOCAL_API_KEY,
            videosdk_public_key: &videosdk_key.public_pem,
            jitsi_token: LOCAL_JITSI_TOKEN,
            read_api_token: LOCAL_READ_API_TOKEN,
            jaas_app_id: LOCAL_APP_ID,
            jaas_key_id: LOCAL_JAAS_KEY_ID,
            jaas_private_key: &jaas_key.private_pem,
        },
    )
    .await?;
    // Daily's REST API, played locally: access links to files it serves, a recordings list.
    let daily = daily_api::start(
        TcpListener::bind(("127.0.0.1", args.daily_api_port))
            .await
            .context("bind the Daily API stand-in")?,
        daily_api::LOCAL_API_KEY,
    )?;

    let meeting_events = resources::create_meeting_events(&sdk, &names, &args.prefix).await?;
    let max_attempts = schema::JOBS_QUEUE.max_receive_count.to_string();
    // The same variables the Lambdas read (template.yaml), with local values; the webhook
    // secret and Authorization token come from the stack's secret, as in production.
    let mut plain: HashMap<String, String> = [
        ("EVENTS_TABLE", names.tables.events.as_str()),
        ("JOBS_QUEUE_URL", created.queue_url.as_str()),
        ("PAYLOAD_BUCKET", names.payload_bucket.as_str()),
        ("PROVIDER_SECRETS_ARN", created.secret_arn.as_str()),
        ("SETTINGS_TABLE", names.tables.settings.as_str()),
        ("ALLOWED_APP_IDS", LOCAL_APP_ID),
        ("COPIES_TABLE", names.tables.copies.as_str()),
        ("RECORDINGS_BUCKET", names.bucket.as_str()),
        // Development only: lets the copier fetch the demo's files from http://127.0.0.1.
        ("ALLOW_INSECURE_LOCAL_ORIGIN", "true"),
        ("COPY_MAX_ATTEMPTS", &max_attempts),
        ("DAILY_API_BASE_URL", &daily.api_base_url()),
        // The stand-in's recordings are reconciled as soon as they are listed.
        ("RECONCILE_GRACE_SECONDS", "0"),
        ("EVENT_BUS_NAME", meeting_events.bus_name.as_str()),
        (
            "MEETING_EVENTS_DLQ_URL",
            meeting_events.dead_letter_queue_url.as_str(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    // Tuning the template also sets, taken from `up`'s own environment when given there (a
    // short copy lease to watch a crashed copy being taken over, smaller parts).
    for name in LOCAL_TUNABLES {
        if let Ok(value) = std::env::var(name) {
            plain.insert(name.to_owned(), value);
        }
    }
    let env = meeting_hooks::aws::secrets::env_with_secrets(&sdk, plain).await?;
    // The same wiring as the Lambdas' mains (`meeting_hooks::aws::wiring`).
    let (ingest, _) = wiring::ingest(&sdk, &env)?;
    let (settings, _) = wiring::settings(&sdk, &env)?;
    let (uploads, _) = wiring::uploads(&sdk, &env)?;
    let (host, _) = wiring::host_api(&sdk, &env)?;
    let (ingest, settings, uploads) = (Arc::new(ingest), Arc::new(settings), Arc::new(uploads));
    let host = Arc::new(host);
    let webhooks: api::Handler = Arc::new(move |req: Request| {
        let ingest = Arc::clone(&ingest);
        Box::pin(async move { meeting_hooks::ingest::http::handle(&ingest, req).await })
    });
    let router = api::Router::default()
        .route(PROVIDER_ROUTE, Arc::clone(&webhooks))
        .route(PROVIDER_SUBROUTE, webhooks)
        .route(
            SETTINGS_ROUTE,
            Arc::new(move |req: Request| {
                let settings = Arc::clone(&settings);
                Box::pin(async move { meeting_hooks::settings::http::handle(&settings, req).await })
            }),
        );
    // Jibri's upload grants: both routes, one handler (it tells them apart by path).
    let mut router = router;
    // host-api: every route, one handler (as in the template).
    for route in meeting_hooks::host_api::ROUTES {
        let host = Arc::clone(&host);
        router = router.route(
            route,
            Arc::new(move |req: Request| {
                let host = Arc::clone(&host);
                Box::pin(async move { meeting_hooks::host_api::handle(&host, req).await })
            }),
        );
    }
    for route in [
        meeting_hooks::uploads::ROUTE,
        meeting_hooks::uploads::COMPLETE_ROUTE,
    ] {
        let uploads = Arc::clone(&uploads);
        router = router.route(
            route,
            Arc::new(move |req: Request| {
                let uploads = Arc::clone(&uploads);
                Box::pin(async move { meeting_hooks::uploads::http::handle(&uploads, req).await })
            }),
        );
    }

    let listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| {
            format!(
                "bind 127.0.0.1:{} (is another stack running? try --port)",
                args.port
            )
        })?;
    let api_base_url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(api::serve(listener, router));

    // The copier, fed the way the SQS event source mapping feeds the Lambda.
    let (copier, copier_config) = wiring::copier(&sdk, &env)?;
    let copier = Arc::new(copier);
    let margin = copier_config.deadline_margin;
    let invocations = std::sync::atomic::AtomicU64::new(0);
    let poller = tokio::spawn(poller::run(
        meeting_hooks::aws::sqs(&sdk),
        created.queue_url.clone(),
        schema::COPIER_BATCH_SIZE,
        move |event| {
            let copier = Arc::clone(&copier);
            let n = invocations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move {
                // Each batch gets the Lambda's time budget, as one invocation would.
                let budget = std::time::Duration::from_secs(u64::from(schema::COPIER_TIMEOUT_SECS));
                let invocation = Invocation::with_budget(format!("local-{n}"), budget, margin);
                handle_batch(&*copier, event, &invocation).await
            }
        },
    ));

    // The meeting events, read from the tables' streams as Lambda's event source mappings do.
    let (publisher, publisher_config) = wiring::meeting_events(&sdk, &env)?;
    let publisher = publisher.map_bus(|bus| FailingFirst::new(bus, args.fail_put_events));
    let streams = tokio::spawn({
        let client = aws_sdk_dynamodbstreams::Client::new(&sdk);
        let arns = meeting_events.stream_arns.clone();
        async move {
            meeting_hooks::aws::meeting_events::follow_streams(
                client,
                arns,
                &publisher,
                &publisher_config,
                std::time::Duration::from_secs(1),
            )
            .await;
        }
    });

    // The event sweeper, on the template's schedule.
    let (sweeper, _) = wiring::sweeper(&sdk, &env)?;
    let sweeps = tokio::spawn(schedule::run(
        sweeper,
        std::time::Duration::from_secs(args.sweep_interval_secs.max(1)),
    ));

    // Daily's recordings list, reconciled on the template's schedule.
    let (reconciler, _) = wiring::reconciler(&sdk, &env)?;
    let reconciles = tokio::spawn(schedule::reconcile(
        reconciler,
        std::time::Duration::from_secs(args.reconcile_interval_secs.max(1)),
    ));

    let providers = [
        (
            "jaas".to_owned(),
            info::ProviderInfo {
                route: WEBHOOK_ROUTE.to_owned(),
                webhook_secret: Some(LOCAL_WEBHOOK_SECRET.to_owned()),
                private_key_path: None,
                authorization: Some(LOCAL_AUTHORIZATION.to_owned()),
                api_base_url: None,
                api_key: None,
                upload_url: None,
            },
        ),
        (
            "daily".to_owned(),
            info::ProviderInfo {
                route: DAILY_ROUTE.to_owned(),
                webhook_secret: Some(LOCAL_DAILY_SECRET.to_owned()),
                private_key_path: None,
                authorization: None,
                api_base_url: Some(daily.api_base_url()),
                api_key: Some(daily_api::LOCAL_API_KEY.to_owned()),
                upload_url: None,
            },
        ),
        (
            "jitsi".to_owned(),
            info::ProviderInfo {
                route: JITSI_ROUTE.to_owned(),
                webhook_secret: None,
                private_key_path: None,
                authorization: Some(format!("Bearer {LOCAL_JITSI_TOKEN}")),
                api_base_url: None,
                api_key: None,
                // The upload-grant URL jibri-finalize uses.
                upload_url: Some(format!("{api_base_url}{}", meeting_hooks::uploads::ROUTE)),
            },
        ),
        (
            videosdk::NAME.to_owned(),
            info::ProviderInfo {
                route: VIDEOSDK_ROUTE.to_owned(),
                webhook_secret: None,
                private_key_path: Some(videosdk_key.private_path.display().to_string()),
                authorization: None,
                api_base_url: None,
                api_key: None,
                upload_url: None,
            },
        ),
    ]
    .into_iter()
    .collect();
    let read_api = Some(info::ReadApiInfo {
        base_url: api_base_url.clone(),
        authorization: format!("Bearer {LOCAL_READ_API_TOKEN}"),
    });
    let jaas_token = Some(info::JaasTokenInfo {
        route: meeting_hooks::providers::jaas::token::http::ROUTE.to_owned(),
        authorization: format!("Bearer {LOCAL_READ_API_TOKEN}"),
        public_key_path: jaas_key.public_path.display().to_string(),
        kid: format!("{LOCAL_APP_ID}/{LOCAL_JAAS_KEY_ID}"),
    });
    let meeting_events = Some(info::MeetingEventsInfo {
        bus_name: meeting_events.bus_name.clone(),
        subscriber_queue_url: meeting_events.subscriber_queue_url.clone(),
        dead_letter_queue_url: meeting_events.dead_letter_queue_url.clone(),
    });
    let info = StackInfo {
        api_base_url,
        routes: Routes {
            webhook: WEBHOOK_ROUTE.to_owned(),
            settings: SETTINGS_ROUTE.to_owned(),
        },
        aws_endpoint_url: endpoint.clone(),
        region,
        tables: names.tables.clone(),
        queue_url: created.queue_url.clone(),
        dead_letter_queue_url: created.dlq_url.clone(),
        bucket: names.bucket.clone(),
        webhook_secret: LOCAL_WEBHOOK_SECRET.to_owned(),
        authorization: LOCAL_AUTHORIZATION.to_owned(),
        payload_bucket: names.payload_bucket.clone(),
        secret_arn: created.secret_arn.clone(),
        app_id: LOCAL_APP_ID.to_owned(),
        pid: std::process::id(),
        providers,
        read_api,
        jaas_token,
        meeting_events,
    };
    info.write(&args.stack_file)?;
    print_banner(&info, &args);

    shutdown_signal().await?;
    eprintln!("\nstopping…");
    server.abort();
    poller.abort();
    streams.abort();
    sweeps.abort();
    reconciles.abort();
    let _ = std::fs::remove_file(&args.stack_file);
    Ok(())
}

/// Ctrl-C, or SIGTERM from a supervisor.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("install SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("wait for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

fn print_banner(info: &StackInfo, args: &UpArgs) {
    let daily_url = format!("{}{DAILY_ROUTE}", info.api_base_url);
    let backend = match &info.aws_endpoint_url {
        Some(url) => format!("AWS emulator (moto) at {url}"),
        None => "real AWS".to_owned(),
    };
    println!(
        "\nmeeting-hooks is running locally ({backend})\n\n  \
         webhook URL:   {webhook}\n  \
         Daily webhook: {daily}\n  \
         Daily API stand-in: {daily_api}\n  \
         Jibri upload URL: {jibri}\n  \
         settings URL:  {settings}\n  \
         read API:      {api}/v1/sessions?room=<roomKey> (Authorization: Bearer {LOCAL_READ_API_TOKEN}; openapi.yaml)\n  \
         JaaS tokens:   POST {api}/v1/jaas/token (same Authorization)\n  \
         meeting events: bus {bus} -> subscriber queue (hooksctl tail-events)\n  \
         webhook secret (local only): {secret}\n  \
         Authorization header (local only): {authz}\n  \
         tables: {events}, {settings_t}, {copies}\n  \
         queue:  {queue} (DLQ {dlq})\n  \
         buckets: {bucket} (recordings), {payloads} (large and quarantined payloads)\n  \
         stack description: {file}\n\n\
         Try next (in another terminal):\n  \
         cargo run -q -p hooksctl -- demo                    play a signed meeting and watch the recording land in S3\n  \
         cargo run -q -p hooksctl -- demo --provider daily   the same with Daily (and a recording only reconciliation finds)\n  \
         cargo run -q -p hooksctl -- events --session <id>   a session's timeline\n  \
         cargo run -q -p hooksctl -- --help                  everything else\n\n\
         Ctrl-C stops everything this command started.",
        webhook = info.webhook_url(),
        daily = daily_url,
        daily_api = info
            .providers
            .get("daily")
            .and_then(|p| p.api_base_url.clone())
            .unwrap_or_default(),
        settings = info.settings_url(),
        api = info.api_base_url,
        bus = info
            .meeting_events
            .as_ref()
            .map_or("-", |m| m.bus_name.as_str()),
        jibri = info
            .providers
            .get(meeting_hooks::providers::jitsi::NAME)
            .and_then(|p| p.upload_url.clone())
            .unwrap_or_default(),
        secret = info.webhook_secret,
        authz = info.authorization,
        events = info.tables.events,
        settings_t = info.tables.settings,
        copies = info.tables.copies,
        queue = info.queue_url,
        dlq = info.dead_letter_queue_url,
        bucket = info.bucket,
        payloads = info.payload_bucket,
        file = args.stack_file.display(),
    );
}

/// A bus whose first calls fail as a whole, as EventBridge does when it is down or throttles
/// every entry (`up --fail-put-events N`).
struct FailingFirst<B> {
    bus: B,
    remaining: std::sync::atomic::AtomicU32,
}

impl<B> FailingFirst<B> {
    fn new(bus: B, failures: u32) -> Self {
        Self {
            bus,
            remaining: std::sync::atomic::AtomicU32::new(failures),
        }
    }
}

impl<B: meeting_hooks::meeting_events::EventBus> meeting_hooks::meeting_events::EventBus
    for FailingFirst<B>
{
    async fn put(
        &self,
        events: &[meeting_hooks::meeting_events::MeetingEvent],
    ) -> Result<
        Vec<Option<meeting_hooks::meeting_events::PutFailure>>,
        meeting_hooks::meeting_events::BusError,
    > {
        use std::sync::atomic::Ordering;
        let failing = self
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(meeting_hooks::meeting_events::BusError {
                operation: "PutEvents",
                source: "refused by up --fail-put-events".into(),
            });
        }
        self.bus.put(events).await
    }
}
