//! settings-provisioning: answers JaaS's settings request (`{"fqn":"<appId>/<room>"}`, sent
//! before every meeting) with the room's validated settings, fast and fail-safe. All
//! behaviour lives in `meeting_hooks::settings`; the wiring in `meeting_hooks::aws::wiring`
//! (shared with the local stack); this binary only adds the runtime.

use lambda_http::{Error, Request, run, service_fn};
use meeting_hooks::aws::{self, wiring};
use meeting_hooks::config::ProcessEnv;
use meeting_hooks::settings::http;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("settings-provisioning");
    let sdk = aws::load_config().await;
    // The Authorization token and webhook secrets come from Secrets Manager
    // (`PROVIDER_SECRETS_ARN`), laid over the process environment once, here.
    let env = aws::secrets::env_with_secrets(&sdk, ProcessEnv).await?;
    let (service, _) = wiring::settings(&sdk, &env)?;
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(http::handle(service, request).await)
    }))
    .await
}
