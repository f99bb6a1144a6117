//! `hooksctl recopy --key <stored key>`: puts a stored event's file back on the job queue,
//! rebuilt from the payload exactly as stored (inline, or the payload bucket for large ones).
//! A copy that failed is reset first so the copier takes it again; a copy that succeeded is
//! left alone unless `--force` (the copy then overwrites the same S3 key).

use anyhow::{Context as _, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use meeting_hooks::aws::copies::status_of;
use meeting_hooks::copier::state::CopyStatus;
use meeting_hooks::jaas::JaasEvent;
use meeting_hooks::jaas::plan_job_with;
use meeting_hooks::jobs::{CopyJob, LinkPolicy};
use meeting_hooks::schema::{copy_attr as c, event_attr as a};

use super::target::Target;

/// What a recopy did.
#[derive(Debug, Clone)]
pub struct Recopied {
    pub job: CopyJob,
    /// The copy state that was reset, if any.
    pub reset_from: Option<String>,
}

/// Re-enqueues the file of the event stored under `key`.
pub async fn recopy(target: &Target, key: &str, force: bool) -> anyhow::Result<Recopied> {
    let sdk = &target.sdk;
    let ddb = meeting_hooks::aws::dynamodb(sdk);
    let item = ddb
        .get_item()
        .table_name(target.events_table()?)
        .key(a::KEY, AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "read event {key}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            )
        })?
        .item
        .with_context(|| format!("no stored event under key {key}"))?;
    let payload: Vec<u8> = match (item.get(a::PAYLOAD), item.get(a::PAYLOAD_REF)) {
        (Some(AttributeValue::S(text)), _) => text.clone().into_bytes(),
        (Some(AttributeValue::B(bytes)), _) => bytes.clone().into_inner(),
        (_, Some(AttributeValue::S(reference))) => {
            let bucket = target.payload_bucket.as_deref().context(
                "payload is in the payload bucket: pass --payload-bucket or run `hooksctl up`",
            )?;
            meeting_hooks::aws::s3(sdk)
                .get_object()
                .bucket(bucket)
                .key(reference)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "read payload {reference}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                })?
                .body
                .collect()
                .await
                .context("read payload body")?
                .to_vec()
        }
        _ => bail!("event {key} has no stored payload"),
    };
    let event = JaasEvent::parse(&payload).context("stored payload is not a JaaS event")?;
    let received_at = item
        .get(a::RECEIVED_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Loopback http links too (the local stack's demo files): the copier applies its own
    // source policy, and refuses them outside a local stack.
    let job = plan_job_with(&event, key, received_at, LinkPolicy::HttpsOrLoopbackHttp)?
        .with_context(|| format!("{} events carry no file to copy", event.event_type))?;

    let copies = target.copies_table()?;
    let state = ddb
        .get_item()
        .table_name(copies)
        .key(c::JOB_ID, AttributeValue::S(job.job_id.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "read copy state: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            )
        })?
        .item;
    let status = state.as_ref().and_then(status_of);
    let reset_from = match &status {
        None | Some(CopyStatus::Pending) => None,
        Some(CopyStatus::Copying { .. }) => {
            bail!(
                "{} is being copied right now; wait for it to finish",
                job.job_id
            )
        }
        Some(CopyStatus::Copied) if !force => {
            bail!(
                "{} is already copied; pass --force to copy it again",
                job.job_id
            )
        }
        Some(s @ (CopyStatus::Copied | CopyStatus::Failed { .. })) => {
            // Conditional on the state we saw, so a copier that just took it is not disturbed.
            ddb.delete_item()
                .table_name(copies)
                .key(c::JOB_ID, AttributeValue::S(job.job_id.clone()))
                .condition_expression("#s = :s")
                .expression_attribute_names("#s", c::STATE)
                .expression_attribute_values(":s", AttributeValue::S(s.name().to_owned()))
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "reset copy state: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(&e)
                    )
                })?;
            Some(s.name().to_owned())
        }
    };
    meeting_hooks::aws::sqs(sdk)
        .send_message()
        .queue_url(target.queue_url()?)
        .message_body(job.to_json())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("enqueue: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    Ok(Recopied { job, reset_from })
}
