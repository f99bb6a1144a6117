//! event-sweeper: runs on an EventBridge schedule and enqueues the copy job of every stored
//! file event whose job was never queued once its enqueue lease ran out. All behaviour lives
//! in `meeting_hooks::sweep`; the wiring in `meeting_hooks::aws::wiring` (shared with the
//! local stack); this binary only adds the runtime. A run that stops on a storage or queue
//! failure returns an error, so Lambda counts it (the template alarms on it).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use meeting_hooks::aws::{self, wiring};
use meeting_hooks::config::ProcessEnv;
use meeting_hooks::respond::now_ms;
use meeting_hooks::sweep::SweepReport;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("event-sweeper");
    let sdk = aws::load_config().await;
    let (service, _) = wiring::sweeper(&sdk, &ProcessEnv)?;
    let service = &service;
    run(service_fn(
        move |_: LambdaEvent<EventBridgeEvent>| async move {
            Ok::<SweepReport, Error>(service.sweep(now_ms()).await?)
        },
    ))
    .await
}
