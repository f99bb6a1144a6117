//! webhook-ingest: receives JaaS webhooks behind API Gateway, verifies them, stores each event
//! exactly once and enqueues copy jobs for the files they carry. All behaviour lives in
//! `meeting_hooks::ingest`; this binary only wires config, clients and the runtime.

use lambda_http::{Error, Request, run, service_fn};
use meeting_hooks::aws::{self, blobs::S3BlobStore, events::DynamoEventStore, queue::SqsJobQueue};
use meeting_hooks::config::ProcessEnv;
use meeting_hooks::ingest::{IngestConfig, IngestService, http};

#[tokio::main]
async fn main() -> Result<(), Error> {
    meeting_hooks::telemetry::init("webhook-ingest");
    let sdk = aws::load_config().await;
    // Webhook secrets and the Authorization token come from Secrets Manager
    // (`JAAS_SECRETS_ARN`), laid over the process environment once, here.
    let env = aws::secrets::env_with_secrets(&sdk, ProcessEnv).await?;
    let config = IngestConfig::from_env(&env)?;
    let service = IngestService::new(
        DynamoEventStore::new(aws::dynamodb(&sdk), &config.events_table),
        SqsJobQueue::new(aws::sqs(&sdk), &config.jobs_queue_url),
        S3BlobStore::new(aws::s3(&sdk), &config.payload_bucket),
        &config,
    );
    let service = &service;
    run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(http::handle(service, request).await)
    }))
    .await
}
