//! Domain core and AWS adapters shared by the meeting-webhook Lambdas.
//!
//! Layout: pure logic (`jaas`, `jobs`, `ingest::core`) works on bytes, headers and our own
//! types; `ports` names each capability the logic needs as one small trait; `aws` implements
//! those traits with the AWS SDK; `http` maps outcomes to responses in one place.

pub mod auth;
pub mod aws;
pub mod config;
pub mod copier;
pub mod facts;
pub mod host_api;
pub mod ingest;
pub mod jobs;
pub mod lenient;
pub mod meeting_events;
pub mod metrics;
pub mod providers;
pub mod read;
pub mod reconcile;
pub mod respond;
pub mod rsa_pem;
pub mod schema;
pub mod settings;
pub mod sweep;
pub mod telemetry;
pub mod time;
pub mod uploads;

/// JaaS stays reachable at its old path for the settings service, which is JaaS's own.
pub use providers::jaas;
