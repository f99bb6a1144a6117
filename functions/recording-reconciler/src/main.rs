//! recording-reconciler: runs on an EventBridge schedule, lists the providers' recent
//! recordings (Daily's `GET /v1/recordings`) and enqueues a copy job for every one that has no
//! copy yet, so a lost webhook costs minutes, not a recording. All behaviour lives in
//! `meeting_hooks::reconcile`; the wiring in `meeting_hooks::aws::wiring` (shared with the
//! local stack); this binary only adds the runtime. A failed run returns an error, so Lambda
//! counts it (the template alarms on it); the next run lists the same window again.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use meeting_hooks::aws::{self, wiring};
use meeting_hooks::config::ProcessEnv;
use meeting_hooks::reconcile::ReconcileReport;
use meeting_hooks::respond::now_ms;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("recording-reconciler");
    let sdk = aws::load_config().await;
    // Daily's API key comes from the secret's `daily` section.
    let env = aws::secrets::env_with_secrets(&sdk, ProcessEnv).await?;
    // Without Daily's section there is nothing to list: each run says so and returns, so a
    // JaaS-only deployment does not alarm on a function it does not use.
    let service = match wiring::reconciler(&sdk, &env) {
        Ok((service, _)) => Some(service),
        Err(wiring::WiringError::NothingToReconcile) => None,
        Err(e) => return Err(e.into()),
    };
    let service = &service;
    run(service_fn(
        move |_: LambdaEvent<EventBridgeEvent>| async move {
            match service {
                Some(s) => Ok::<ReconcileReport, Error>(s.run(now_ms()).await?),
                None => {
                    tracing::info!("no provider that lists its recordings is configured");
                    Ok(ReconcileReport::default())
                }
            }
        },
    ))
    .await
}
