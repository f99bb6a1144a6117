//! Creates on the emulator exactly the resources `template.yaml` declares: the three tables
//! from `meeting_hooks::schema`, the jobs queue with its dead-letter queue and redrive policy, and
//! the recordings bucket. The template test checks the template against the same descriptions.

use anyhow::Context as _;
use anyhow::bail;
use aws_sdk_sqs::types::QueueAttributeName;
use meeting_hooks::schema::{self, DATA_RESOURCES, JOBS_QUEUE, ResourceKind};

use super::info::Tables;

/// Names of the local resources (a prefix keeps several stacks apart on one emulator).
#[derive(Debug, Clone)]
pub struct Names {
    pub tables: Tables,
    pub queue: String,
    pub dlq: String,
    pub bucket: String,
    pub payload_bucket: String,
    pub secret: String,
}

impl Names {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            tables: Tables {
                events: format!("{prefix}-events"),
                settings: format!("{prefix}-settings"),
                copies: format!("{prefix}-copies"),
            },
            queue: format!("{prefix}-jobs"),
            dlq: format!("{prefix}-jobs-dlq"),
            bucket: format!("{prefix}-recordings"),
            payload_bucket: format!("{prefix}-payloads"),
            secret: format!("{prefix}-jaas"),
        }
    }
}

/// What the stack created that is only known afterwards.
#[derive(Debug, Clone)]
pub struct Created {
    pub queue_url: String,
    pub dlq_url: String,
    pub secret_arn: String,
}

/// The local development values kept in the stack's Secrets Manager secret, as production
/// keeps the real ones (`PROVIDER_SECRETS_ARN`).
#[derive(Debug, Clone)]
pub struct LocalSecrets<'a> {
    pub webhook_secret: &'a str,
    pub authorization: &'a str,
    /// Daily's section: the webhook's `hmac` (base64) and the REST API key.
    pub daily_webhook_secret: &'a str,
    pub daily_api_key: &'a str,
    /// VideoSDK's section: the local key pair's public half (PEM).
    pub videosdk_public_key: &'a str,
    /// Self-hosted Jitsi's section: the bearer token Prosody and Jibri send.
    pub jitsi_token: &'a str,
    /// The read API's section: the bearer token the host application's servers send.
    pub read_api_token: &'a str,
    /// JaaS's API key (host-api's tokens): the AppID, the key id, the private half (PEM).
    pub jaas_app_id: &'a str,
    pub jaas_key_id: &'a str,
    pub jaas_private_key: &'a str,
}

/// Creates every resource of [`DATA_RESOURCES`]; existing ones are kept (restarting against
/// a running emulator).
pub async fn create(
    sdk: &aws_config::SdkConfig,
    names: &Names,
    secrets: &LocalSecrets<'_>,
) -> anyhow::Result<Created> {
    let mut queue_url = None;
    let mut dlq_url = None;
    let mut secret_arn = None;
    for (logical_id, kind) in DATA_RESOURCES {
        match (kind, *logical_id) {
            (ResourceKind::Table, id) => {
                let (spec, name) = match id {
                    _ if id == schema::EVENTS.logical_id => (&schema::EVENTS, &names.tables.events),
                    _ if id == schema::SETTINGS.logical_id => {
                        (&schema::SETTINGS, &names.tables.settings)
                    }
                    _ if id == schema::COPIES.logical_id => (&schema::COPIES, &names.tables.copies),
                    other => bail!("no table description for {other}"),
                };
                spec.create(&meeting_hooks::aws::dynamodb(sdk), name)
                    .await
                    .with_context(|| format!("create table {name}"))?;
            }
            (ResourceKind::Queue, id) if id == JOBS_QUEUE.dlq_logical_id => {}
            // With the bus, by `create_meeting_events`.
            (ResourceKind::Queue, schema::MEETING_EVENTS_DLQ) => {}
            (ResourceKind::Queue, id) if id == JOBS_QUEUE.logical_id => {
                let (q, d) = create_queues(sdk, names).await?;
                queue_url = Some(q);
                dlq_url = Some(d);
            }
            (ResourceKind::Bucket, id) => {
                let name = match id {
                    schema::RECORDINGS_BUCKET => &names.bucket,
                    schema::PAYLOAD_BUCKET => &names.payload_bucket,
                    other => bail!("no bucket name for {other}"),
                };
                create_bucket(sdk, name).await?;
            }
            (ResourceKind::Secret, _) => {
                secret_arn = Some(create_secret(sdk, &names.secret, secrets).await?);
            }
            (_, other) => bail!("the local stack does not know how to create {other}"),
        }
    }
    Ok(Created {
        queue_url: queue_url.context("no jobs queue in DATA_RESOURCES")?,
        dlq_url: dlq_url.context("no dead-letter queue in DATA_RESOURCES")?,
        secret_arn: secret_arn.context("no secret in DATA_RESOURCES")?,
    })
}

async fn create_secret(
    sdk: &aws_config::SdkConfig,
    name: &str,
    secrets: &LocalSecrets<'_>,
) -> anyhow::Result<String> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    // One section per provider, as in production.
    let value = serde_json::json!({
        "jaas": {
            "webhookSecrets": secrets.webhook_secret,
            "authorization": secrets.authorization,
            "appId": secrets.jaas_app_id,
            "apiKeyId": secrets.jaas_key_id,
            "apiPrivateKey": secrets.jaas_private_key,
        },
        "daily": {
            "webhookSecrets": [secrets.daily_webhook_secret],
            "apiKey": secrets.daily_api_key,
        },
        "videosdk": {
            "publicKeys": [secrets.videosdk_public_key],
        },
        "jitsi": {
            "tokens": [secrets.jitsi_token],
        },
        "readApi": {
            "tokens": [secrets.read_api_token],
        },
    })
    .to_string();
    match client
        .create_secret()
        .name(name)
        .secret_string(&value)
        .send()
        .await
    {
        Ok(out) => out.arn.context("created secret has no ARN"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_exists_exception()) =>
        {
            let out = client
                .put_secret_value()
                .secret_id(name)
                .secret_string(&value)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "update secret {name}: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                    )
                })?;
            out.arn.context("secret has no ARN")
        }
        Err(e) => Err(anyhow::anyhow!(
            "create secret {name}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        )),
    }
}

async fn create_queues(
    sdk: &aws_config::SdkConfig,
    names: &Names,
) -> anyhow::Result<(String, String)> {
    let sqs = meeting_hooks::aws::sqs(sdk);
    let dlq_url = ensure_queue(
        &sqs,
        &names.dlq,
        &[
            (
                QueueAttributeName::MessageRetentionPeriod,
                JOBS_QUEUE.retention_secs.to_string(),
            ),
            (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
        ],
    )
    .await
    .context("create dead-letter queue")?;
    let dlq_arn = queue_arn(&sqs, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": JOBS_QUEUE.max_receive_count,
    });
    let queue_url = ensure_queue(
        &sqs,
        &names.queue,
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                JOBS_QUEUE.visibility_timeout_secs.to_string(),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                JOBS_QUEUE.retention_secs.to_string(),
            ),
            (QueueAttributeName::SqsManagedSseEnabled, "true".to_owned()),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ],
    )
    .await
    .context("create jobs queue")?;
    Ok((queue_url, dlq_url))
}

/// Creates the queue, or, when a queue of that name already exists with other attributes (a
/// stack restarted after a crash, an emulator kept running), keeps it and its messages and sets
/// the attributes the template declares. `CreateQueue` refuses a name that exists with other
/// attributes (`QueueNameExists`); the work in flight must survive a restart.
/// A queue's ARN.
async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("read the ARN of {url}"))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .with_context(|| format!("{url} has no ARN"))
}

pub async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> anyhow::Result<String> {
    let mut create = sqs.create_queue().queue_name(name);
    for (k, v) in attributes {
        create = create.attributes(k.clone(), v);
    }
    match create.send().await {
        Ok(out) => out.queue_url.context("created queue has no URL"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_queue_name_exists()) =>
        {
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "find existing queue {name}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    )
                })?
                .queue_url
                .context("existing queue has no URL")?;
            let mut set = sqs.set_queue_attributes().queue_url(&url);
            for (k, v) in attributes {
                set = set.attributes(k.clone(), v);
            }
            set.send().await.map_err(|e| {
                anyhow::anyhow!(
                    "update existing queue {name}: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
            Ok(url)
        }
        Err(e) => Err(anyhow::anyhow!(
            "create queue {name}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(&e)
        )),
    }
}

async fn create_bucket(sdk: &aws_config::SdkConfig, name: &str) -> anyhow::Result<()> {
    let s3 = meeting_hooks::aws::s3(sdk);
    if let Err(e) = s3.create_bucket().bucket(name).send().await {
        let owned = e
            .as_service_error()
            .is_some_and(|se| se.is_bucket_already_owned_by_you() || se.is_bucket_already_exists());
        if !owned {
            return Err(e).with_context(|| format!("create bucket {name}"));
        }
    }
    Ok(())
}

/// The local meeting events: the bus, its archive (as the template makes), a rule that sends
/// everything our source publishes to a subscriber queue (what a consumer would set up), and
/// the publisher's dead-letter queue; plus the tables' stream ARNs it reads.
#[derive(Debug, Clone)]
pub struct MeetingEvents {
    pub bus_name: String,
    pub subscriber_queue_url: String,
    pub dead_letter_queue_url: String,
    pub stream_arns: Vec<String>,
}

fn exists<E: std::fmt::Debug>(e: &E) -> bool {
    let text = format!("{e:?}");
    text.contains("AlreadyExists") || text.contains("already exists")
}

pub async fn create_meeting_events(
    sdk: &aws_config::SdkConfig,
    names: &Names,
    prefix: &str,
) -> anyhow::Result<MeetingEvents> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = meeting_hooks::aws::sqs(sdk);
    let bus_name = format!("{prefix}-meeting-events");
    let bus_arn = match events.create_event_bus().name(&bus_name).send().await {
        Ok(out) => out.event_bus_arn().map(str::to_owned),
        Err(e) if exists(&e) => None,
        Err(e) => return Err(anyhow::Error::new(e).context("create the event bus")),
    };
    let bus_arn = match bus_arn {
        Some(arn) => arn,
        None => events
            .describe_event_bus()
            .name(&bus_name)
            .send()
            .await
            .context("describe the event bus")?
            .arn()
            .context("the bus has no ARN")?
            .to_owned(),
    };
    if let Err(e) = events
        .create_archive()
        .archive_name(format!("{prefix}-meeting-events"))
        .event_source_arn(&bus_arn)
        .retention_days(7)
        .send()
        .await
        && !exists(&e)
    {
        return Err(anyhow::Error::new(e).context("create the bus archive"));
    }
    let subscriber_queue_url =
        ensure_queue(&sqs, &format!("{prefix}-meeting-events-subscriber"), &[])
            .await
            .context("create the subscriber queue")?;
    let dead_letter_queue_url = ensure_queue(
        &sqs,
        &format!("{prefix}-meeting-events-dlq"),
        &[(
            QueueAttributeName::MessageRetentionPeriod,
            "1209600".to_owned(),
        )],
    )
    .await
    .context("create the meeting events' dead-letter queue")?;
    let subscriber_arn = queue_arn(&sqs, &subscriber_queue_url).await?;
    let rule = format!("{prefix}-all-meeting-events");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus_name)
        .event_pattern(
            serde_json::json!({"source": [meeting_hooks::meeting_events::SOURCE]}).to_string(),
        )
        .send()
        .await
        .context("put the subscriber rule")?;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus_name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("subscriber")
                .arn(subscriber_arn)
                .build()
                .context("target")?,
        )
        .send()
        .await
        .context("put the rule's target")?;
    let ddb = meeting_hooks::aws::dynamodb(sdk);
    let mut stream_arns = Vec::new();
    for table in [&names.tables.events, &names.tables.copies] {
        let described = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .with_context(|| format!("describe {table}"))?;
        let arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .with_context(|| format!("{table} has no stream (made before streams were on?)"))?;
        stream_arns.push(arn.to_owned());
    }
    Ok(MeetingEvents {
        bus_name,
        subscriber_queue_url,
        dead_letter_queue_url,
        stream_arns,
    })
}
