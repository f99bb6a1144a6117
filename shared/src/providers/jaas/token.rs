//! JaaS join tokens: the RS256 JWT a host application mints so that one user can join a JaaS
//! meeting (PROVIDERS.md, "JaaS JWT"). Pure: no AWS types, no I/O; the clock is a parameter.
//!
//! What a token looks like (8x8's samples and Jitsi's token plugin):
//! header `{"alg":"RS256","typ":"JWT","kid":"<AppID>/<API key id>"}`, signed with the RSA
//! private key whose public half was uploaded in the JaaS console; claims `aud` "jitsi",
//! `iss` "chat", `sub` the AppID, `room`, `exp`, `nbf`, `context.user`, `context.features`, and
//! `context.room.regex` when `room` is a pattern.
//!
//! Rules kept here rather than left to every caller:
//! - `context.user.moderator` and every feature are the *strings* "true"/"false", as in 8x8's
//!   samples; every feature JaaS knows is written out, so "not granted" is explicit.
//! - JaaS honours feature rights (recording, transcription, ...) for moderators only. A request
//!   that grants a feature to a non-moderator is refused ([`TokenError::FeaturesNeedModerator`])
//!   instead of minting a token that silently does less than the caller thinks.
//! - The room is an exact name, `*` (every room of the app), or a literal prefix
//!   (`roomPrefix`). Callers never send raw Lua patterns: an unescaped `-` or `.` silently widens
//!   or breaks a grant. Jitsi matches a `context.room.regex` room claim with Lua's `string.match`
//!   against the room's name as the backend knows it (lowercase) and checks that the match is
//!   the whole name, so a prefix becomes `^<prefix>.*`, with the prefix ASCII-lowercased and
//!   every Lua magic character (`^$()%.[]*+-?`) escaped with `%` ([`prefix_pattern`]).
//! - `nbf = now - 10` (clock skew, as in 8x8's samples), `exp = now + ttl`, the ttl 60..=86400 s
//!   (default 7200, as in 8x8's samples); all time arithmetic is checked.
//!
//! Signing uses `jsonwebtoken` with its aws-lc backend (the aws-lc already built for rustls).
//! Keys and tokens never appear in an error text, a log line or a `Debug` output.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The `aud` claim JaaS expects.
pub const AUDIENCE: &str = "jitsi";
/// The `iss` claim JaaS expects.
pub const ISSUER: &str = "chat";
/// The token lifetime when the request names none (8x8's samples).
pub const DEFAULT_TTL_SECS: u64 = 7200;
/// The shortest lifetime accepted: shorter tokens expire while the page is still loading.
pub const MIN_TTL_SECS: u64 = 60;
/// The longest lifetime accepted (our bound): a join token is a bearer credential.
pub const MAX_TTL_SECS: u64 = 86_400;
/// `nbf` is set this far in the past so a participant whose clock runs behind can still join.
pub const CLOCK_SKEW_SECS: i64 = 10;
/// The smallest RSA modulus accepted (the JaaS console makes 4096-bit keys).
pub const MIN_KEY_BITS: usize = 2048;
/// The longest room name or prefix, in bytes (the same bound as the settings table's rooms).
pub const MAX_ROOM_LEN: usize = 512;
/// The longest user id or display name, in bytes (our bound).
pub const MAX_TEXT_LEN: usize = 256;
/// The longest e-mail address, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// The longest avatar URL, in bytes (our bound).
pub const MAX_URL_LEN: usize = 2048;
/// The longest app id or API key id, in bytes (the settings table's bound for app ids).
pub const MAX_ID_LEN: usize = 128;

/// The characters that are magic in a Lua pattern; each is written `%<c>` to stand for itself.
const LUA_MAGIC: &[char] = &['^', '$', '(', ')', '%', '.', '[', ']', '*', '+', '-', '?'];

/// Why a signing key could not be built from configuration. Never quotes the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JaaS app id is invalid: {0}")]
    AppId(&'static str),
    #[error("JaaS API key id is invalid: {0}")]
    KeyId(&'static str),
    #[error("the JaaS API key id names app {found:?}, not the configured app {expected:?}")]
    KidAppMismatch { expected: String, found: String },
    #[error("the JaaS private key is a public key; give the private key the console downloaded")]
    PublicKeyGiven,
    #[error(
        "the JaaS private key is encrypted; decrypt it first (openssl pkcs8 -in KEY -out PLAIN)"
    )]
    Encrypted,
    #[error(
        "the JaaS private key is not an RSA private key in PEM \
         (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`)"
    )]
    Pem(#[source] jsonwebtoken::errors::Error),
    #[error("the JaaS private key was rejected as an RSA private key")]
    Rejected(#[source] aws_lc_rs::error::KeyRejected),
    #[error("the JaaS private key has {bits} bits; at least {MIN_KEY_BITS} are needed")]
    TooSmall { bits: usize },
    #[error("RSA key generation failed")]
    Generate,
}

/// Why a token was not minted. All but [`TokenError::Signing`] and [`TokenError::Clock`] are
/// the caller's fault (see [`TokenError::is_request_error`]); the texts name fields, never
/// their values, so they are safe to return to the caller.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("give exactly one of room and roomPrefix")]
    RoomChoice,
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} is longer than {max} bytes")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} contains control characters")]
    ControlCharacters { field: &'static str },
    #[error("{field} {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error(
        "features [{}] need user.moderator: JaaS grants feature rights to moderators only",
        .features.join(", ")
    )]
    FeaturesNeedModerator { features: Vec<&'static str> },
    #[error("ttlSeconds must be between {MIN_TTL_SECS} and {MAX_TTL_SECS}, not {0}")]
    Ttl(u64),
    #[error("the clock reading {0} cannot be used for a token's times")]
    Clock(i64),
    #[error("signing the token failed")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

impl TokenError {
    /// A short machine-readable code for the JSON error body and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RoomChoice => "room_choice",
            Self::Empty { .. } => "field_empty",
            Self::TooLong { .. } => "field_too_long",
            Self::ControlCharacters { .. } => "field_control_characters",
            Self::Invalid { .. } => "field_invalid",
            Self::FeaturesNeedModerator { .. } => "features_need_moderator",
            Self::Ttl(_) => "ttl_out_of_range",
            Self::Clock(_) => "clock",
            Self::Signing(_) => "signing_failed",
        }
    }

    /// Whether the request was at fault (answer 4xx), not the service (5xx).
    pub fn is_request_error(&self) -> bool {
        !matches!(self, Self::Clock(_) | Self::Signing(_))
    }
}

/// The key a deployment signs JaaS tokens with: its AppID, the `kid` JaaS looks the public
/// key up by, and the RSA private key. `Debug` shows the kid and the key size, never the key.
#[derive(Clone)]
pub struct SigningKey {
    app_id: String,
    kid: String,
    encoding: EncodingKey,
    bits: usize,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("app_id", &self.app_id)
            .field("kid", &self.kid)
            .field("bits", &self.bits)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Builds the key from configuration. `key_id` is the API key id the console shows
    /// (`4f4910`), or the whole kid (`<app_id>/4f4910`) as long as its app part is `app_id`.
    /// `private_pem` is PKCS#1 (`RSA PRIVATE KEY`, what `ssh-keygen -m PEM` writes) or PKCS#8
    /// (`PRIVATE KEY`), unencrypted, at least [`MIN_KEY_BITS`] bits.
    pub fn new(app_id: &str, key_id: &str, private_pem: &str) -> Result<Self, KeyError> {
        check_id(app_id).map_err(KeyError::AppId)?;
        let key_id = match key_id.split_once('/') {
            Some((app, rest)) if app == app_id => rest,
            Some((app, _)) => {
                return Err(KeyError::KidAppMismatch {
                    expected: app_id.to_owned(),
                    found: app.to_owned(),
                });
            }
            None => key_id,
        };
        check_id(key_id).map_err(KeyError::KeyId)?;
        let has = |label: &str| private_pem.contains(&format!("-----BEGIN {label}-----"));
        if has("ENCRYPTED PRIVATE KEY") {
            return Err(KeyError::Encrypted);
        }
        let private = has("PRIVATE KEY") || has("RSA PRIVATE KEY");
        if !private && (has("PUBLIC KEY") || has("RSA PUBLIC KEY")) {
            return Err(KeyError::PublicKeyGiven);
        }
        install_provider();
        let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes()).map_err(KeyError::Pem)?;
        // jsonwebtoken only unwraps the PEM; aws-lc checks the key itself, once, here, so a bad
        // key fails at cold start rather than on the first request.
        let pair = aws_lc_rs::signature::RsaKeyPair::from_der(encoding.as_bytes())
            .map_err(KeyError::Rejected)?;
        let bits = pair.public_modulus_len().saturating_mul(8);
        if bits < MIN_KEY_BITS {
            return Err(KeyError::TooSmall { bits });
        }
        Ok(Self {
            app_id: app_id.to_owned(),
            kid: format!("{app_id}/{key_id}"),
            encoding,
            bits,
        })
    }

    /// The AppID (the `sub` claim).
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The header's `kid`: `<AppID>/<API key id>`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The RSA modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }
}

/// An app id or key id: ASCII letters, digits, `-`, `_`, `.` (the settings table's rule for
/// app ids; JaaS's are `vpaas-magic-cookie-<hex>` and hex key ids).
fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return Err("it is longer than 128 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("it may hold only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// jsonwebtoken picks its crypto backend from its features; with exactly `aws_lc_rs` on that
/// is aws-lc. Should another crate in the build ever turn on its `rust_crypto` too, it would
/// panic on first use instead; installing the aws-lc provider explicitly rules that out. An
/// error only means a provider is installed already.
fn install_provider() {
    let _already_installed = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// A JaaS feature right, as [`Features`] names it in a request and JaaS in `context.features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    Livestreaming,
    Recording,
    Transcription,
    SipInboundCall,
    SipOutboundCall,
    InboundCall,
    OutboundCall,
    FileUpload,
    ListVisitors,
    SendGroupchat,
    CreatePolls,
}

impl Feature {
    /// Every feature JaaS documents; each is written into every token.
    pub const ALL: [Self; 11] = [
        Self::Livestreaming,
        Self::Recording,
        Self::Transcription,
        Self::SipInboundCall,
        Self::SipOutboundCall,
        Self::InboundCall,
        Self::OutboundCall,
        Self::FileUpload,
        Self::ListVisitors,
        Self::SendGroupchat,
        Self::CreatePolls,
    ];

    /// The key in the token's `context.features`.
    pub fn claim_name(self) -> &'static str {
        match self {
            Self::Livestreaming => "livestreaming",
            Self::Recording => "recording",
            Self::Transcription => "transcription",
            Self::SipInboundCall => "sip-inbound-call",
            Self::SipOutboundCall => "sip-outbound-call",
            Self::InboundCall => "inbound-call",
            Self::OutboundCall => "outbound-call",
            Self::FileUpload => "file-upload",
            Self::ListVisitors => "list-visitors",
            Self::SendGroupchat => "send-groupchat",
            Self::CreatePolls => "create-polls",
        }
    }

    /// The key in a request's `features` object.
    pub fn request_name(self) -> &'static str {
        match self {
            Self::Livestreaming => "livestreaming",
            Self::Recording => "recording",
            Self::Transcription => "transcription",
            Self::SipInboundCall => "sipInboundCall",
            Self::SipOutboundCall => "sipOutboundCall",
            Self::InboundCall => "inboundCall",
            Self::OutboundCall => "outboundCall",
            Self::FileUpload => "fileUpload",
            Self::ListVisitors => "listVisitors",
            Self::SendGroupchat => "sendGroupchat",
            Self::CreatePolls => "createPolls",
        }
    }

    /// The feature named either way (`outbound-call` or `outboundCall`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.claim_name() == name || f.request_name() == name)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.claim_name())
    }
}

/// The feature rights a request asks for; absent means not granted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Features {
    pub livestreaming: bool,
    pub recording: bool,
    pub transcription: bool,
    pub sip_inbound_call: bool,
    pub sip_outbound_call: bool,
    pub inbound_call: bool,
    pub outbound_call: bool,
    pub file_upload: bool,
    pub list_visitors: bool,
    pub send_groupchat: bool,
    pub create_polls: bool,
}

impl Features {
    fn slot(&mut self, feature: Feature) -> &mut bool {
        match feature {
            Feature::Livestreaming => &mut self.livestreaming,
            Feature::Recording => &mut self.recording,
            Feature::Transcription => &mut self.transcription,
            Feature::SipInboundCall => &mut self.sip_inbound_call,
            Feature::SipOutboundCall => &mut self.sip_outbound_call,
            Feature::InboundCall => &mut self.inbound_call,
            Feature::OutboundCall => &mut self.outbound_call,
            Feature::FileUpload => &mut self.file_upload,
            Feature::ListVisitors => &mut self.list_visitors,
            Feature::SendGroupchat => &mut self.send_groupchat,
            Feature::CreatePolls => &mut self.create_polls,
        }
    }

    /// Whether `feature` is asked for.
    pub fn get(&self, feature: Feature) -> bool {
        let mut copy = *self;
        *copy.slot(feature)
    }

    /// Asks for `feature` (or not).
    pub fn set(&mut self, feature: Feature, granted: bool) {
        *self.slot(feature) = granted;
    }

    /// The features asked for, in [`Feature::ALL`] order.
    pub fn granted(&self) -> Vec<Feature> {
        Feature::ALL.into_iter().filter(|f| self.get(*f)).collect()
    }
}

/// Who the token is for: `context.user`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserRequest {
    /// The host application's user id (JaaS echoes it as `id` in participant webhooks).
    pub id: String,
    /// The display name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// An `https` (or `http`) URL of the user's picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(default)]
    pub moderator: bool,
    /// Kept out of recordings (`hidden-from-recorder`).
    #[serde(default)]
    pub hidden_from_recorder: bool,
}

/// What a caller asks a token for: the body of `POST /v1/jaas/token` and what
/// `hooksctl jaas-token` builds from its flags. Exactly one of `room` and `roomPrefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    /// An exact room name, or `*` for every room of the app. Written as given; Jitsi compares
    /// it with the room's name in lowercase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// A literal prefix: the token admits every room whose name starts with it (compared in
    /// lowercase, as Jitsi names rooms). Not a pattern: every character stands for itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_prefix: Option<String>,
    pub user: UserRequest,
    #[serde(default)]
    pub features: Features,
    /// The token's lifetime, [`MIN_TTL_SECS`]..=[`MAX_TTL_SECS`]; [`DEFAULT_TTL_SECS`] if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// Which rooms a token admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomScope {
    /// Every room of the app (`room` `*`).
    Any,
    /// One room, by name.
    Exact(String),
    /// Every room whose (lowercase) name starts with this (lowercased) prefix.
    Prefix(String),
}

impl RoomScope {
    /// The `room` claim.
    pub fn claim(&self) -> String {
        match self {
            Self::Any => "*".to_owned(),
            Self::Exact(room) => room.clone(),
            Self::Prefix(prefix) => prefix_pattern(prefix),
        }
    }

    /// Whether the claim is a Lua pattern (`context.room.regex`).
    pub fn is_pattern(&self) -> bool {
        matches!(self, Self::Prefix(_))
    }
}

impl TokenRequest {
    /// Which rooms the request asks for, checked.
    pub fn room_scope(&self) -> Result<RoomScope, TokenError> {
        match (&self.room, &self.room_prefix) {
            (Some(room), None) if room == "*" => Ok(RoomScope::Any),
            (Some(room), None) => {
                check_room("room", room)?;
                Ok(RoomScope::Exact(room.clone()))
            }
            (None, Some(prefix)) => {
                check_room("roomPrefix", prefix)?;
                Ok(RoomScope::Prefix(prefix.to_ascii_lowercase()))
            }
            _ => Err(TokenError::RoomChoice),
        }
    }

    /// The lifetime asked for, checked.
    pub fn ttl(&self) -> Result<u64, TokenError> {
        let ttl = self.ttl_seconds.unwrap_or(DEFAULT_TTL_SECS);
        if (MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl) {
            Ok(ttl)
        } else {
            Err(TokenError::Ttl(ttl))
        }
    }
}

/// Text a token carries: not blank, at most `max` bytes, no control characters.
fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), TokenError> {
    if value.trim().is_empty() {
        return Err(TokenError::Empty { field });
    }
    if value.len() > max {
        return Err(TokenError::TooLong { field, max });
    }
    if value.chars().any(char::is_control) {
        return Err(TokenError::ControlCharacters { field });
    }
    Ok(())
}

/// A room name or prefix. `/` cannot occur: a JaaS meeting is addressed `<AppID>/<room>`.
fn check_room(field: &'static str, room: &str) -> Result<(), TokenError> {
    check_text(field, room, MAX_ROOM_LEN)?;
    if room.contains('/') {
        return Err(TokenError::Invalid {
            field,
            reason: "contains '/' (a JaaS meeting is <AppID>/<room>)",
        });
    }
    Ok(())
}

fn check_user(user: &UserRequest) -> Result<(), TokenError> {
    check_text("user.id", &user.id, MAX_TEXT_LEN)?;
    check_text("user.name", &user.name, MAX_TEXT_LEN)?;
    if let Some(email) = &user.email {
        check_text("user.email", email, MAX_EMAIL_LEN)?;
        let well_formed = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
            && !email.chars().any(char::is_whitespace);
        if !well_formed {
            return Err(TokenError::Invalid {
                field: "user.email",
                reason: "is not an e-mail address",
            });
        }
    }
    if let Some(avatar) = &user.avatar {
        check_text("user.avatar", avatar, MAX_URL_LEN)?;
        let web = url::Url::parse(avatar)
            .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host());
        if !web {
            return Err(TokenError::Invalid {
                field: "user.avatar",
                reason: "is not an http(s) URL",
            });
        }
    }
    Ok(())
}

/// `literal` as a Lua pattern that matches exactly those characters: every magic character
/// is preceded by `%` (Lua: "%x, where x is any non-alphanumeric character, represents the
/// character x"). Only punctuation is ever escaped, so Jitsi lowercasing the pattern cannot
/// turn an escape into a character class (`%A` → `%a`).
pub fn lua_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len().saturating_add(8));
    for c in literal.chars() {
        if LUA_MAGIC.contains(&c) {
            out.push('%');
        }
        out.push(c);
    }
    out
}

/// The `room` claim admitting every room whose name starts with `prefix`: `^` anchors the
/// match at the start, `.*` makes it cover the whole name (Jitsi compares what matched with the
/// room name), and the prefix is lowercased because Jitsi's room names are.
pub fn prefix_pattern(prefix: &str) -> String {
    format!("^{}.*", lua_escape(&prefix.to_ascii_lowercase()))
}

/// A minted token. `Debug` leaves the token out: it is a bearer credential.
#[derive(Clone)]
pub struct Minted {
    /// The compact JWT, to hand to the JaaS client (`jwt` option / `?jwt=`).
    pub token: String,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// `nbf`, Unix seconds.
    pub not_before: i64,
    /// The JOSE header as signed.
    pub header: Value,
    /// The claims as signed (no secret in them).
    pub claims: Value,
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minted")
            .field("token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("not_before", &self.not_before)
            .field("header", &self.header)
            .field("claims", &self.claims)
            .finish()
    }
}

/// Mints the token `request` asks for, at `now_secs` (Unix seconds).
pub fn mint(key: &SigningKey, request: &TokenRequest, now_secs: i64) -> Result<Minted, TokenError> {
    let scope = request.room_scope()?;
    check_user(&request.user)?;
    let granted = request.features.granted();
    if !granted.is_empty() && !request.user.moderator {
        return Err(TokenError::FeaturesNeedModerator {
            features: granted.iter().map(|f| f.request_name()).collect(),
        });
    }
    let ttl = request.ttl()?;
    let not_before = now_secs
        .checked_sub(CLOCK_SKEW_SECS)
        .filter(|nbf| *nbf >= 0)
        .ok_or(TokenError::Clock(now_secs))?;
    let expires_at = i64::try_from(ttl)
        .ok()
        .and_then(|ttl| now_secs.checked_add(ttl))
        .ok_or(TokenError::Clock(now_secs))?;

    let claims = claims(key, request, &scope, &granted, not_before, expires_at);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    install_provider();
    let token =
        jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(TokenError::Signing)?;
    tracing::debug!(
        kid = %key.kid,
        room_pattern = scope.is_pattern(),
        any_room = scope == RoomScope::Any,
        moderator = request.user.moderator,
        features = granted.len(),
        ttl,
        "minted a JaaS token"
    );
    Ok(Minted {
        token,
        expires_at,
        not_before,
        header: json!({ "alg": "RS256", "typ": "JWT", "kid": key.kid }),
        claims,
    })
}

fn flag(on: bool) -> &'static str {
    if on { "true" } else { "false" }
}

fn claims(
    key: &SigningKey,
    request: &TokenRequest,
    scope: &RoomScope,
    granted: &[Feature],
    not_before: i64,
    expires_at: i64,
) -> Value {
    let u = &request.user;
    let mut user = Map::new();
    user.insert("id".into(), u.id.clone().into());
    user.insert("name".into(), u.name.clone().into());
    if let Some(email) = &u.email {
        user.insert("email".into(), email.clone().into());
    }
    if let Some(avatar) = &u.avatar {
        user.insert("avatar".into(), avatar.clone().into());
    }
    user.insert("moderator".into(), flag(u.moderator).into());
    // A boolean, as in 8x8's samples (moderator is the one documented as a string).
    user.insert("hidden-from-recorder".into(), u.hidden_from_recorder.into());
    let features: Map<String, Value> = Feature::ALL
        .into_iter()
        .map(|f| (f.claim_name().to_owned(), flag(granted.contains(&f)).into()))
        .collect();
    let mut context = Map::new();
    context.insert("user".into(), user.into());
    context.insert("features".into(), features.into());
    if scope.is_pattern() {
        context.insert("room".into(), json!({ "regex": true }));
    }
    json!({
        "aud": AUDIENCE,
        "iss": ISSUER,
        "sub": key.app_id,
        "room": scope.claim(),
        "exp": expires_at,
        "nbf": not_before,
        "context": context,
    })
}

/// A fresh RSA key pair for the local stack and tests, as PEM. The JaaS console makes its own
/// (4096-bit) keys; these are 2048-bit, enough for anything that is not JaaS itself.
#[derive(Debug)]
pub struct KeyPairPem {
    /// PKCS#8 `PRIVATE KEY`.
    pub private_pem: SecretString,
    /// SubjectPublicKeyInfo `PUBLIC KEY`.
    pub public_pem: String,
}

/// Makes a [`KeyPairPem`] (e.g. the local stack's `.local/jaas-private.pem`).
pub fn generate_local_key_pair() -> Result<KeyPairPem, KeyError> {
    let (private, public_pem) =
        crate::rsa_pem::generate_pem_pair().map_err(|_| KeyError::Generate)?;
    Ok(KeyPairPem {
        private_pem: SecretString::from(private),
        public_pem,
    })
}

/// Why [`verify`] refused a token.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the public key is not an RSA public key in PEM")]
    PublicKey(#[source] jsonwebtoken::errors::Error),
    #[error("the token was refused")]
    Refused(#[source] jsonwebtoken::errors::Error),
    #[error("the token expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's {0} is missing or malformed")]
    Malformed(&'static str),
}

/// A token that checked out, as JaaS would read it.
#[derive(Debug, Clone)]
pub struct Verified {
    pub kid: Option<String>,
    pub claims: Value,
}

/// Checks a JaaS token as JaaS would: RS256 under `public_pem`, `aud` "jitsi", `iss` "chat",
/// `nbf <= now_secs < exp` (no leeway). For tests, the CLI's self-check and a local stand-in
/// for JaaS; the product itself never needs to read these tokens.
pub fn verify(token: &str, public_pem: &str, now_secs: i64) -> Result<Verified, VerifyError> {
    install_provider();
    let key = DecodingKey::from_rsa_pem(public_pem.as_bytes()).map_err(VerifyError::PublicKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    // Times are checked below against the given clock, not the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(VerifyError::Refused)?;
    let time = |name: &'static str| {
        data.claims
            .get(name)
            .and_then(Value::as_i64)
            .ok_or(VerifyError::Malformed(name))
    };
    if now_secs >= time("exp")? {
        return Err(VerifyError::Expired);
    }
    if now_secs < time("nbf")? {
        return Err(VerifyError::NotYetValid);
    }
    Ok(Verified {
        kid: data.header.kid,
        claims: data.claims,
    })
}

pub mod http;

#[cfg(test)]
mod tests;
