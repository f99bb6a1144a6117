//! recording-copier: consumes copy jobs from SQS and streams each file into the recordings
//! bucket before its link dies. All behaviour lives in `meeting_hooks::copier`; the wiring in
//! `meeting_hooks::aws::wiring` (shared with the local stack); this binary only adds the
//! runtime and turns the Lambda deadline into the instant at which copies stop cleanly
//! (`COPY_DEADLINE_MARGIN_SECONDS` before it).

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use meeting_hooks::aws::{self, wiring};
use meeting_hooks::config::ProcessEnv;
use meeting_hooks::copier::sqs::{Invocation, handle_batch};

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("recording-copier");
    let sdk = aws::load_config().await;
    // Provider API keys (Daily's, to resolve its recordings' links) come from the secret.
    let env = aws::secrets::env_with_secrets(&sdk, ProcessEnv).await?;
    let (service, config) = wiring::copier(&sdk, &env)?;
    let (service, margin) = (&service, config.deadline_margin);
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let left = event
            .context
            .deadline()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let invocation = Invocation::with_budget(event.context.request_id.clone(), left, margin);
        Ok::<SqsBatchResponse, Error>(handle_batch(service, event.payload, &invocation).await)
    }))
    .await
}
