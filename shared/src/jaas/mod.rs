//! 8x8 Jitsi as a Service: webhook model, signature verification, catalogue examples.

pub mod catalogue;
pub mod lenient;
pub mod model;
pub mod signature;

pub use model::{EnvelopeError, EventData, EventType, JaasEvent};
pub use signature::{JaasVerifier, SignatureError, VerifiedBody};
