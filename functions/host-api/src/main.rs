//! host-api: the API the host application's servers call: a room's sessions, a session's
//! timeline, attendance and files (`GET /v1/sessions…`), and JaaS join tokens
//! (`POST /v1/jaas/token`). All behaviour lives in `meeting_hooks::host_api`;
//! the wiring in `meeting_hooks::aws::wiring` (shared with the local stack); this binary only
//! adds the runtime.

use lambda_http::{Error, Request, run, service_fn};
use meeting_hooks::aws::{self, wiring};
use meeting_hooks::config::ProcessEnv;

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("host-api");
    let sdk = aws::load_config().await;
    // The callers' bearer tokens (`readApi.tokens`) and the JaaS API key come from Secrets
    // Manager (`PROVIDER_SECRETS_ARN`), laid over the process environment once, here.
    let env = aws::secrets::env_with_secrets(&sdk, ProcessEnv).await?;
    let (api, _) = wiring::host_api(&sdk, &env)?;
    let api = &api;
    run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(meeting_hooks::host_api::handle(api, request).await)
    }))
    .await
}
