//! jibri-uploads: grants self-hosted Jibri hosts presigned multipart uploads of their
//! recordings into the recordings bucket, then completes, verifies (full SHA-256, read back)
//! and records them. All behaviour lives in `meeting_hooks::uploads`; the wiring in
//! `meeting_hooks::aws::wiring` (shared with the local stack); this binary only adds the runtime.

use lambda_http::{Error, Request, run, service_fn};
use meeting_hooks::aws::{self, wiring};
use meeting_hooks::config::ProcessEnv;
use meeting_hooks::uploads::http;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("jibri-uploads");
    let sdk = aws::load_config().await;
    // The Jibri hosts' bearer tokens (`jitsi.tokens`) come from Secrets Manager
    // (`PROVIDER_SECRETS_ARN`), laid over the process environment once, here.
    let env = aws::secrets::env_with_secrets(&sdk, ProcessEnv).await?;
    let (service, _) = wiring::uploads(&sdk, &env)?;
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(http::handle(service, request).await)
    }))
    .await
}
