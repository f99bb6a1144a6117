//! webhook-ingest: receives JaaS webhooks behind API Gateway, verifies them, stores each event
//! exactly once and enqueues copy jobs for the files they carry. All behaviour lives in
//! `meeting_hooks::ingest`; the wiring in `meeting_hooks::aws::wiring` (shared with the local
//! stack); this binary only adds the runtime.

use lambda_http::{Error, Request, run, service_fn};
use meeting_hooks::aws::{self, wiring};
use meeting_hooks::config::ProcessEnv;
use meeting_hooks::ingest::http;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("webhook-ingest");
    let sdk = aws::load_config().await;
    // Webhook secrets and the Authorization token come from Secrets Manager
    // (`PROVIDER_SECRETS_ARN`), laid over the process environment once, here.
    let env = aws::secrets::env_with_secrets(&sdk, ProcessEnv).await?;
    let (service, _) = wiring::ingest(&sdk, &env)?;
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(http::handle(service, request).await)
    }))
    .await
}
