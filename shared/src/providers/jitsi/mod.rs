//! Self-hosted Jitsi: Prosody's room and occupant events (`mod_event_sync_component`) and the
//! Jibri recording uploads, both authenticated with a static bearer token.
//!
//! Facts (`PROVIDERS.md`, self-hosted Jitsi): the module POSTs JSON to
//! `<api_prefix>/events/room/created`, `…/room/destroyed`, `…/occupant/joined`,
//! `…/occupant/left` with static `api_headers` (here `Authorization: Bearer <token>`). No
//! signature, no event id, no timestamp header. It retries on connection failures and 5xx
//! (3 times, 1 s apart) and drops a request after its 20 s timeout: answer fast, and never 4xx
//! a well-authenticated request.

pub mod auth;

/// The route name and `provider` attribute (`/webhooks/jitsi/events/…`, `/uploads/jitsi`).
pub const NAME: &str = "jitsi";

/// The secret's `jitsi` section: `tokens`, the bearer tokens Prosody and the Jibri hosts
/// send (several during a rotation).
pub const SECRET_SECTION: &[super::SectionKey] = &[("tokens", "JITSI_TOKENS", true)];

/// The variable holding the tokens.
pub const TOKENS_VAR: &str = "JITSI_TOKENS";
