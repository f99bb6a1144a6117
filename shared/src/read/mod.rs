//! What teams store webhooks for, computed from the stored neutral facts only (never a
//! provider's fields): who attended a session and for how long ([`attendance`]).

pub mod attendance;
