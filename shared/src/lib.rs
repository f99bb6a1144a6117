//! Domain core and AWS adapters shared by the meeting-webhook Lambdas.
//!
//! Layout: pure logic (`jaas`, `jobs`, `ingest::core`) works on bytes, headers and our own
//! types; `ports` names each capability the logic needs as one small trait; `aws` implements
//! those traits with the AWS SDK; `http` maps outcomes to responses in one place.

pub mod aws;
pub mod config;
pub mod copier;
pub mod ingest;
pub mod jaas;
pub mod jobs;
pub mod metrics;
pub mod respond;
pub mod schema;
pub mod settings;
pub mod sweep;
pub mod telemetry;
