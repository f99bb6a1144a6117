//! `hooksctl jaas-token`: mint a JaaS join token locally, with the same module the
//! `POST /v1/jaas/token` route uses (`meeting_hooks::providers::jaas::token`), so a developer can
//! join a JaaS meeting, or check what a token grants, without a deployment.
//!
//! stdout gets the token and nothing else (`TOKEN=$(hooksctl jaas-token ...)`). `--claims` writes
//! the signed header and claims as pretty JSON to stderr, never to stdout. Neither the key nor the
//! token is ever logged.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgGroup, Args};
use meeting_hooks::providers::jaas::token::{
    self, DEFAULT_TTL_SECS, Feature, SigningKey, TokenRequest, UserRequest,
};
use serde_json::json;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("rooms").required(true).args(["room", "room_prefix"])))]
pub struct JaasTokenArgs {
    /// The RSA private key (PEM, PKCS#1 or PKCS#8) whose public half is uploaded in the JaaS
    /// console.
    #[arg(long, value_name = "PEM_FILE")]
    pub private_key: PathBuf,
    /// The JaaS AppID (`vpaas-magic-cookie-...`).
    #[arg(long)]
    pub app_id: String,
    /// The API key id the console shows for that key (or the whole `<AppID>/<key id>`).
    #[arg(long)]
    pub key_id: String,
    /// The room, by exact name, or `*` for every room of the app.
    #[arg(long)]
    pub room: Option<String>,
    /// Admit every room whose name starts with this literal prefix.
    #[arg(long)]
    pub room_prefix: Option<String>,
    /// The user's id in the host application.
    #[arg(long)]
    pub user_id: String,
    /// The user's display name.
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub email: Option<String>,
    /// An http(s) URL of the user's picture.
    #[arg(long)]
    pub avatar: Option<String>,
    /// Make the user a moderator (needed for any --feature).
    #[arg(long)]
    pub moderator: bool,
    /// Keep the user out of recordings.
    #[arg(long)]
    pub hidden_from_recorder: bool,
    /// Grant a feature (repeatable): livestreaming, recording, transcription, sip-inbound-call,
    /// sip-outbound-call, inbound-call, outbound-call, file-upload, list-visitors,
    /// send-groupchat, create-polls.
    #[arg(long = "feature", value_name = "FEATURE", value_parser = parse_feature)]
    pub features: Vec<Feature>,
    /// The token's lifetime in seconds (60..=86400).
    #[arg(long, default_value_t = DEFAULT_TTL_SECS)]
    pub ttl_seconds: u64,
    /// Also write the signed header and claims as JSON to stderr.
    #[arg(long)]
    pub claims: bool,
}

fn parse_feature(name: &str) -> Result<Feature, String> {
    Feature::parse(name).ok_or_else(|| {
        let known: Vec<&str> = Feature::ALL.iter().map(|f| f.claim_name()).collect();
        format!("unknown feature {name:?}; known: {}", known.join(", "))
    })
}

impl JaasTokenArgs {
    /// The request the flags describe, as the HTTP route would receive it.
    pub fn request(&self) -> TokenRequest {
        let mut request = TokenRequest {
            room: self.room.clone(),
            room_prefix: self.room_prefix.clone(),
            user: UserRequest {
                id: self.user_id.clone(),
                name: self.name.clone(),
                email: self.email.clone(),
                avatar: self.avatar.clone(),
                moderator: self.moderator,
                hidden_from_recorder: self.hidden_from_recorder,
            },
            ttl_seconds: Some(self.ttl_seconds),
            ..TokenRequest::default()
        };
        for feature in &self.features {
            request.features.set(*feature, true);
        }
        request
    }
}

/// Mints at `now_secs`: the token to `out`, the claims (with `--claims`) to `notes`.
pub fn run(
    args: &JaasTokenArgs,
    now_secs: i64,
    out: &mut impl Write,
    notes: &mut impl Write,
) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(&args.private_key)
        .with_context(|| format!("reading {}", args.private_key.display()))?;
    let key = SigningKey::new(&args.app_id, &args.key_id, &pem)
        .with_context(|| format!("the key in {}", args.private_key.display()))?;
    let minted = token::mint(&key, &args.request(), now_secs).context("minting the token")?;
    writeln!(out, "{}", minted.token)?;
    if args.claims {
        let shown = json!({ "header": minted.header, "claims": minted.claims });
        writeln!(notes, "{}", serde_json::to_string_pretty(&shown)?)?;
    }
    Ok(())
}

/// [`run`] at the system clock, with notes on stderr.
pub fn main(args: &JaasTokenArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let now = i64::try_from(now.as_secs()).context("the system clock is out of range")?;
    run(args, now, out, &mut std::io::stderr().lock())
}
