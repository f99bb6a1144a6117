//! Creates on the emulator exactly the resources `template.yaml` declares: the three tables
//! from `meeting_hooks::schema`, the jobs queue with its dead-letter queue and redrive policy, and
//! the recordings bucket. The template test checks the template against the same descriptions.

use anyhow::Context as _;
use aws_sdk_sqs::types::QueueAttributeName;
use meeting_hooks::schema::{self, JOBS_QUEUE};

use super::info::Tables;

/// Names of the local resources (a prefix keeps several stacks apart on one emulator).
#[derive(Debug, Clone)]
pub struct Names {
    pub tables: Tables,
    pub queue: String,
    pub dlq: String,
    pub bucket: String,
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
        }
    }
}

/// Created queue URLs.
#[derive(Debug, Clone)]
pub struct Created {
    pub queue_url: String,
    pub dlq_url: String,
}

/// Creates every resource; existing ones are kept (restarting against a running emulator).
pub async fn create(sdk: &aws_config::SdkConfig, names: &Names) -> anyhow::Result<Created> {
    let ddb = meeting_hooks::aws::dynamodb(sdk);
    for (spec, name) in [
        (&schema::EVENTS, &names.tables.events),
        (&schema::SETTINGS, &names.tables.settings),
        (&schema::COPIES, &names.tables.copies),
    ] {
        spec.create(&ddb, name)
            .await
            .with_context(|| format!("create table {name}"))?;
    }

    let sqs = meeting_hooks::aws::sqs(sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name(&names.dlq)
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            JOBS_QUEUE.retention_secs.to_string(),
        )
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .send()
        .await
        .context("create dead-letter queue")?
        .queue_url
        .context("dead-letter queue has no URL")?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("read dead-letter queue ARN")?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .context("dead-letter queue has no ARN")?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": JOBS_QUEUE.max_receive_count,
    });
    let queue_url = sqs
        .create_queue()
        .queue_name(&names.queue)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            JOBS_QUEUE.visibility_timeout_secs.to_string(),
        )
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            JOBS_QUEUE.retention_secs.to_string(),
        )
        .attributes(QueueAttributeName::SqsManagedSseEnabled, "true")
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .context("create jobs queue")?
        .queue_url
        .context("jobs queue has no URL")?;

    let s3 = meeting_hooks::aws::s3(sdk);
    if let Err(e) = s3.create_bucket().bucket(&names.bucket).send().await {
        let owned = e
            .as_service_error()
            .is_some_and(|se| se.is_bucket_already_owned_by_you() || se.is_bucket_already_exists());
        if !owned {
            return Err(e).with_context(|| format!("create bucket {}", names.bucket));
        }
    }
    Ok(Created { queue_url, dlq_url })
}
