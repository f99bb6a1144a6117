//! AWS adapters: SDK client set-up and the implementations of the ports.
//!
//! Production and the emulator run the same code: `AWS_ENDPOINT_URL` (standard SDK setting)
//! redirects every client; S3 then also needs path-style addressing.

pub mod blobs;
pub mod copies;
pub mod emulator_compat;
pub mod events;
pub mod meeting_events;
pub mod objects;
pub mod queue;
pub mod read;
pub mod secrets;
pub mod settings;
pub mod uploads;
pub mod wiring;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// SDK configuration from the environment (region, credentials, `AWS_ENDPOINT_URL`).
pub async fn load_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// SDK configuration for an emulator on `endpoint` with static dummy credentials: what the
/// tests and the local stack use, with no environment variables involved.
pub fn emulator_config(endpoint: &str, region: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            Credentials::new("test", "test", None, None, "emulator"),
        ))
        .build()
}

pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn sqs(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

pub fn secretsmanager(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

/// S3 client. With an endpoint override (an emulator): path-style addressing, since emulators
/// do not serve virtual-host buckets on loopback, and [`emulator_compat`]'s fix for moto's
/// multipart answers. Against real S3 neither applies.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(config);
    if config.endpoint_url().is_some() {
        builder = builder
            .force_path_style(true)
            .interceptor(emulator_compat::CompleteMultipartRootFix);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// Boxes an SDK error keeping its full cause chain (`DisplayErrorContext` shows it).
pub(crate) fn boxed<E>(e: E) -> Box<dyn std::error::Error + Send + Sync>
where
    E: std::error::Error + Send + Sync + 'static,
{
    Box::new(e)
}
