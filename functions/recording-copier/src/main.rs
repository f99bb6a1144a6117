//! recording-copier: consumes copy jobs from SQS and streams each file into the recordings
//! bucket before its link dies. All behaviour lives in `meeting_hooks::copier`; this binary
//! only wires config, clients and the runtime, and turns the Lambda deadline into the instant
//! at which copies stop cleanly (`COPY_DEADLINE_MARGIN_SECONDS` before it).

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use meeting_hooks::aws::{self, copies::DynamoCopyStore, objects::S3MultipartSink};
use meeting_hooks::config::ProcessEnv;
use meeting_hooks::copier::CopierConfig;
use meeting_hooks::copier::service::CopyService;
use meeting_hooks::copier::sqs::{Invocation, handle_batch};

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("recording-copier");
    let config = CopierConfig::from_env(&ProcessEnv)?;
    let sdk = aws::load_config().await;
    let service = CopyService::new(
        DynamoCopyStore::new(aws::dynamodb(&sdk), &config.copies_table),
        S3MultipartSink::new(aws::s3(&sdk), &config.recordings_bucket),
        config.origin()?,
        config.settings(),
    );
    let (service, margin) = (&service, config.deadline_margin);
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let mut left = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        if left.is_zero() {
            // Never the case on AWS; local emulators (`cargo lambda watch`) may report a deadline
            // already past. Assume the function's configured timeout instead of refusing all work.
            tracing::warn!(
                "the runtime reported a deadline already past; assuming the template's timeout"
            );
            left = Duration::from_secs(u64::from(meeting_hooks::schema::COPIER_TIMEOUT_SECS));
        }
        tracing::debug!(seconds_left = left.as_secs(), "invocation time budget");
        let invocation = Invocation {
            request_id: event.context.request_id.clone(),
            stop_at: tokio::time::Instant::now() + left.saturating_sub(margin),
        };
        Ok::<SqsBatchResponse, Error>(handle_batch(service, event.payload, &invocation).await)
    }))
    .await
}
