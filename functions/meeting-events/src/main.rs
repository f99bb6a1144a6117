//! meeting-events: reads the events and copies tables' streams (Lambda event source mappings)
//! and publishes the provider-neutral meeting events on the EventBridge bus. All behaviour
//! lives in `meeting_hooks::meeting_events`; the adapters and the stream record handling in
//! `meeting_hooks::aws::meeting_events` (the local stack runs the same handler); this binary
//! only adds the runtime. The answer is a partial batch response: the stream delivers again
//! from the first record whose events the bus did not take.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use meeting_hooks::aws::{self, meeting_events, wiring};
use meeting_hooks::config::ProcessEnv;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("meeting-events");
    let sdk = aws::load_config().await;
    let (publisher, config) = wiring::meeting_events(&sdk, &ProcessEnv)?;
    let (publisher, config) = (&publisher, &config);
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = meeting_hooks::respond::now_ms();
        Ok::<Value, Error>(meeting_events::handle(publisher, config, &event.payload, now).await)
    }))
    .await
}
