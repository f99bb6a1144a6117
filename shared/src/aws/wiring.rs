//! The wiring of each function, written once: typed config from an environment, SDK clients
//! from one `SdkConfig`, the service over its AWS ports. `functions/*/src/main.rs` call these
//! with the process environment (plus the secret); `hooksctl up` calls them with the local
//! stack's environment. Neither builds a service by hand, so the two cannot drift apart.

use aws_config::SdkConfig;

use super::settings::DynamoSettingsStore;
use super::uploads::S3Uploads;
use super::{blobs::S3BlobStore, copies::DynamoCopyStore, events::DynamoEventStore};
use super::{objects::S3MultipartSink, queue::SqsJobQueue};
use crate::config::{ConfigError, Env};
use crate::copier::CopierConfig;
use crate::copier::origin::{HttpOrigin, Lookup, SystemLookup};
use crate::copier::service::CopyService;
use crate::copier::sqs::JobHandler;
use crate::ingest::{IngestConfig, IngestService};
use crate::providers::daily::api::{DailyApi, DailyRecordings};
use crate::read::ReadConfig;
use crate::reconcile::{ReconcileConfig, ReconcileService};
use crate::settings::{SettingsConfig, SettingsService};
use crate::sweep::{SweepConfig, SweepService};
use crate::uploads::{UploadService, UploadsConfig};

/// webhook-ingest over DynamoDB, SQS and S3.
pub type Ingest = IngestService<DynamoEventStore, SqsJobQueue, S3BlobStore>;
/// settings-provisioning over DynamoDB.
pub type Settings = SettingsService<DynamoSettingsStore>;
/// event-sweeper over DynamoDB (the pending-job index, the copies' at-risk flags) and SQS.
pub type Sweeper = SweepService<DynamoEventStore, SqsJobQueue, DynamoCopyStore>;
/// recording-copier over DynamoDB, S3 and the SSRF-checked HTTP origin, fed from SQS.
pub type Copier = JobHandler<DynamoCopyStore, S3MultipartSink, HttpOrigin, SqsJobQueue>;

/// recording-reconciler for Daily over Daily's REST API, DynamoDB (copy states) and SQS.
pub type Reconciler =
    ReconcileService<DailyRecordings, DynamoCopyStore, SqsJobQueue, DynamoEventStore>;

/// jibri-uploads over S3 (the recordings bucket) and DynamoDB (copies and events tables).
pub type Uploads = UploadService<S3Uploads, DynamoCopyStore, DynamoEventStore>;

/// Why a function could not be wired (at cold start: the function refuses to start).
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("HTTP client for the origin could not be built")]
    Origin(#[source] reqwest::Error),
    #[error("no provider that lists its recent files is configured (DAILY_API_KEY)")]
    NothingToReconcile,
}

/// recording-reconciler: config from `env` (already holding the secret's values). Refuses
/// to start without Daily's API key: it would have nothing to list.
pub fn reconciler(
    sdk: &SdkConfig,
    env: &impl Env,
) -> Result<(Reconciler, ReconcileConfig), WiringError> {
    let config = ReconcileConfig::from_env(env)?;
    let api = DailyApi::from_env(env)?.ok_or(WiringError::NothingToReconcile)?;
    let service = ReconcileService::new(
        DailyRecordings(api),
        DynamoCopyStore::new(super::dynamodb(sdk), &config.copies_table),
        SqsJobQueue::new(super::sqs(sdk), &config.jobs_queue_url),
        DynamoEventStore::new(super::dynamodb(sdk), &config.events_table),
        &config,
    );
    Ok((service, config))
}

/// webhook-ingest: config from `env` (already holding the secret's values).
pub fn ingest(sdk: &SdkConfig, env: &impl Env) -> Result<(Ingest, IngestConfig), WiringError> {
    let config = IngestConfig::from_env(env)?;
    let service = IngestService::new(
        DynamoEventStore::new(super::dynamodb(sdk), &config.events_table),
        SqsJobQueue::new(super::sqs(sdk), &config.jobs_queue_url),
        S3BlobStore::new(super::s3(sdk), &config.payload_bucket),
        &config,
    );
    Ok((service, config))
}

/// settings-provisioning: config from `env` (already holding the secret's values).
pub fn settings(
    sdk: &SdkConfig,
    env: &impl Env,
) -> Result<(Settings, SettingsConfig), WiringError> {
    let config = SettingsConfig::from_env(env)?;
    let service = SettingsService::new(
        DynamoSettingsStore::new(super::dynamodb(sdk), &config.settings_table),
        &config,
    );
    Ok((service, config))
}

/// event-sweeper: config from `env`.
pub fn sweeper(sdk: &SdkConfig, env: &impl Env) -> Result<(Sweeper, SweepConfig), WiringError> {
    let config = SweepConfig::from_env(env)?;
    let service = SweepService::new(
        DynamoEventStore::new(super::dynamodb(sdk), &config.events_table),
        SqsJobQueue::new(super::sqs(sdk), &config.jobs_queue_url),
        DynamoCopyStore::new(super::dynamodb(sdk), &config.copies_table),
        &config,
    );
    Ok((service, config))
}

/// recording-copier: config from `env`.
pub fn copier(sdk: &SdkConfig, env: &impl Env) -> Result<(Copier, CopierConfig), WiringError> {
    copier_with_lookup(sdk, env, SystemLookup)
}

/// [`copier`] resolving the origin's names with `lookup` (the fault matrix's failing DNS);
/// everything else is the same wiring.
pub fn copier_with_lookup(
    sdk: &SdkConfig,
    env: &impl Env,
    lookup: impl Lookup + Clone,
) -> Result<(Copier, CopierConfig), WiringError> {
    let config = CopierConfig::from_env(env)?;
    let service = CopyService::new(
        DynamoCopyStore::new(super::dynamodb(sdk), &config.copies_table),
        S3MultipartSink::new(super::s3(sdk), &config.recordings_bucket),
        config
            .origin_with_lookup(lookup)
            .map_err(WiringError::Origin)?,
        config.settings(),
    )
    .with_resolver(std::sync::Arc::new(crate::providers::Resolvers::from_env(
        env,
    )?));
    let queue = SqsJobQueue::new(super::sqs(sdk), &config.jobs_queue_url);
    Ok((
        JobHandler::new(service, queue, config.retry_backoff),
        config,
    ))
}

/// jibri-uploads: config from `env` (already holding the secret's values: `JITSI_TOKENS`).
pub fn uploads(sdk: &SdkConfig, env: &impl Env) -> Result<(Uploads, UploadsConfig), WiringError> {
    let config = UploadsConfig::from_env(env)?;
    let service = UploadService::new(
        S3Uploads::new(super::s3(sdk), &config.recordings_bucket),
        DynamoCopyStore::new(super::dynamodb(sdk), &config.copies_table),
        DynamoEventStore::new(super::dynamodb(sdk), &config.events_table),
        &config,
    );
    Ok((service, config))
}

/// The read use cases over the events table's indexes, the copies table and S3 presigning.
pub type ReadService = crate::read::service::ReadService<
    super::read::DynamoReadIndex,
    super::read::DynamoCopyReader,
    super::read::S3Presigner,
>;

/// host-api: the read API and JaaS tokens, and who may call them.
pub type HostApi = crate::host_api::HostApi<
    super::read::DynamoReadIndex,
    super::read::DynamoCopyReader,
    super::read::S3Presigner,
>;

/// The read use cases on these tables and bucket (the read API's, and `hooksctl sessions`,
/// `attendance` and `files`, which call them without HTTP).
pub fn read_service(
    sdk: &SdkConfig,
    events_table: &str,
    copies_table: &str,
    recordings_bucket: &str,
    download_url_ttl_secs: u64,
) -> ReadService {
    crate::read::service::ReadService::new(
        super::read::DynamoReadIndex::new(super::dynamodb(sdk), events_table),
        super::read::DynamoCopyReader::new(super::dynamodb(sdk), copies_table),
        super::read::S3Presigner::new(super::s3(sdk), recordings_bucket),
        recordings_bucket,
        download_url_ttl_secs,
    )
}

/// host-api: config from `env` (already holding the secret's values: `READ_API_TOKENS`, the
/// JaaS API key's `JAAS_APP_ID`, `JAAS_API_KEY_ID`, `JAAS_API_PRIVATE_KEY`).
pub fn host_api(sdk: &SdkConfig, env: &impl Env) -> Result<(HostApi, ReadConfig), WiringError> {
    let config = ReadConfig::from_env(env)?;
    let jaas_key = crate::providers::jaas::token::http::signing_key_from_env(env)?;
    let api = crate::host_api::HostApi {
        read: crate::read::http::ReadApi {
            service: read_service(
                sdk,
                &config.events_table,
                &config.copies_table,
                &config.recordings_bucket,
                config.download_url_ttl_secs,
            ),
            tokens: config.tokens.clone(),
        },
        jaas_key,
    };
    Ok((api, config))
}

/// meeting-events (the publisher of the tables' streams): config from `env`.
pub fn meeting_events(
    sdk: &SdkConfig,
    env: &impl Env,
) -> Result<
    (
        super::meeting_events::MeetingEventsPublisher,
        super::meeting_events::MeetingEventsConfig,
    ),
    WiringError,
> {
    let config = super::meeting_events::MeetingEventsConfig::from_env(env)?;
    let publisher = crate::meeting_events::Publisher::new(
        super::meeting_events::EventBridgeBus::new(
            aws_sdk_eventbridge::Client::new(sdk),
            &config.bus_name,
        ),
        super::meeting_events::SqsDeadLetters::new(super::sqs(sdk), &config.dead_letter_queue_url),
        config.publish.clone(),
    );
    Ok((publisher, config))
}
