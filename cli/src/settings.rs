//! `hooksctl settings`: manage what settings-provisioning answers JaaS.
//!
//! Every write goes through the same types the function uses (`meeting_hooks::settings`), so
//! an invalid value is refused here with the rule it broke and never reaches the table.
//! Writes are read-modify-write with optimistic locking: two operators editing one room
//! cannot silently undo each other. Passcodes are printed as `****` unless `--show-passcode`.

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use meeting_hooks::aws::{self, settings::DynamoSettingsStore};
use meeting_hooks::settings::ports::{SettingsStore, StoredSettings};
use meeting_hooks::settings::{AppId, Field, Fqn, Scope, Settings, effective};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Name of the settings table.
    #[arg(long, env = "SETTINGS_TABLE", global = true)]
    pub table: Option<String>,
    #[command(subcommand)]
    pub action: Action,
}

/// Which document a command works on: exactly one of `--app` and `--room`.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// An app's defaults, by JaaS appId.
    #[arg(long, value_name = "APP_ID")]
    pub app: Option<String>,
    /// One room, as `<appId>/<room>` (the fqn JaaS sends).
    #[arg(long, value_name = "APP_ID/ROOM")]
    pub room: Option<String>,
}

impl Target {
    fn scope(&self) -> anyhow::Result<Scope> {
        match (&self.app, &self.room) {
            (Some(app), None) => Ok(Scope::App(
                AppId::parse(app).map_err(|r| anyhow!("--app: {r}"))?,
            )),
            (None, Some(room)) => Ok(Scope::Room(
                Fqn::parse(room).map_err(|r| anyhow!("--room: {r}"))?,
            )),
            _ => bail!("give exactly one of --app and --room"),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Set fields (FIELD=VALUE ...) and/or a JSON document; the result is validated as a
    /// whole before it is written.
    Set {
        #[command(flatten)]
        target: Target,
        /// FIELD=VALUE, e.g. lobbyEnabled=true passcode=0042 maxOccupants=20. Fields:
        /// lobbyEnabled, passcode, lobbyType, maxOccupants, transcriberType,
        /// participantsSoftLimit, visitorsEnabled, hideDisplayName, autoAudioRecording,
        /// autoVideoRecording, autoTranscriptions, outboundPhoneNo, visitorsLive.
        #[arg(value_name = "FIELD=VALUE")]
        assignments: Vec<String>,
        /// A JSON object of settings, applied before the FIELD=VALUE pairs.
        #[arg(long, value_name = "JSON")]
        json: Option<String>,
        /// Start from nothing instead of the stored document.
        #[arg(long)]
        replace: bool,
        /// Print passcodes in clear (shown as **** otherwise).
        #[arg(long)]
        show_passcode: bool,
    },
    /// Print the stored document of an app or a room (not merged).
    Get {
        #[command(flatten)]
        target: Target,
        /// Print passcodes in clear (shown as **** otherwise).
        #[arg(long)]
        show_passcode: bool,
    },
    /// Remove fields (they are then inherited) or, with --all, the whole document.
    Unset {
        #[command(flatten)]
        target: Target,
        /// Field names, e.g. passcode maxOccupants.
        #[arg(value_name = "FIELD", required_unless_present = "all")]
        fields: Vec<String>,
        #[arg(long, conflicts_with = "fields")]
        all: bool,
    },
    /// Print every stored document, one per line: `<key><TAB><json>`.
    List {
        /// Only this app's defaults and rooms.
        #[arg(long, value_name = "APP_ID")]
        app: Option<String>,
        /// Print passcodes in clear (shown as **** otherwise).
        #[arg(long)]
        show_passcode: bool,
    },
    /// Print the JSON JaaS receives for a room (room over app over global default), as
    /// storage holds it now; byte for byte with --show-passcode. A running function may
    /// still serve its cached answer for up to its cache TTL.
    Effective {
        /// The room, as `<appId>/<room>`.
        #[arg(long, value_name = "APP_ID/ROOM")]
        room: String,
        /// The function's global default (same variable as the function).
        #[arg(long, env = "SETTINGS_DEFAULT", value_name = "JSON")]
        global_default: Option<String>,
        /// The function's served appIds; an appId outside them gets 403 from the function.
        #[arg(long, env = "ALLOWED_APP_IDS", value_name = "IDS")]
        allowed_app_ids: Option<String>,
        /// Print passcodes in clear (shown as **** otherwise).
        #[arg(long)]
        show_passcode: bool,
    },
}

fn shown(settings: &Settings, show_passcode: bool) -> Value {
    if show_passcode {
        settings.to_json()
    } else {
        settings.to_json_masked()
    }
}

fn field(name: &str) -> anyhow::Result<Field> {
    Field::from_name(name).ok_or_else(|| {
        anyhow!(
            "unknown setting {name:?}; known: {}",
            Field::ALL.map(Field::name).join(", ")
        )
    })
}

/// Applies `--json` and `FIELD=VALUE` pairs to `base`, validating the result.
pub fn apply(
    mut base: Settings,
    json: Option<&str>,
    assignments: &[String],
) -> anyhow::Result<Settings> {
    if let Some(json) = json {
        let doc = Settings::from_json_str(json).context("--json")?;
        base = base.overlaid_with(&doc);
    }
    for assignment in assignments {
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| anyhow!("{assignment:?} is not FIELD=VALUE"))?;
        let f = field(name.trim())?;
        base.set_text(f, value)?;
    }
    base.validate()?;
    Ok(base)
}

fn now_ms() -> i64 {
    meeting_hooks::respond::now_ms()
}

/// Runs one `settings` command against the table (`--table`, else the deployment's).
pub async fn run(
    args: SettingsArgs,
    target: &crate::ops::target::TargetArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (sdk, table) = match args.table {
        Some(t) => (aws::load_config().await, t),
        None => {
            let target = target.resolve().await?;
            let table = target.settings_table()?.to_owned();
            (target.sdk, table)
        }
    };
    let store = DynamoSettingsStore::new(aws::dynamodb(&sdk), table);
    execute(&store, args.action, out).await
}

/// When a stored change reaches JaaS (settings-provisioning reads through by default).
pub const APPLIES: &str = "applies to the next settings request (the next meeting of the room), \
unless the function's SETTINGS_CACHE_TTL_SECONDS was raised above its default 0";

/// Runs one command against any store (the CLI uses DynamoDB).
pub async fn execute<S: SettingsStore>(
    store: &S,
    action: Action,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match action {
        Action::Set {
            target,
            assignments,
            json,
            replace,
            show_passcode,
        } => {
            let scope = target.scope()?;
            if json.is_none() && assignments.is_empty() {
                bail!("nothing to set: give FIELD=VALUE pairs and/or --json");
            }
            let current = store.get(&scope).await?;
            let base = match (&current, replace) {
                (Some(c), false) => c.settings.clone(),
                _ => Settings::default(),
            };
            let next = apply(base, json.as_deref(), &assignments)?;
            let expected = current.as_ref().map(|c| c.version);
            if next.is_empty() {
                bail!("the result sets no field; use `unset --all` to remove the document");
            }
            store.put(&scope, &next, expected, now_ms()).await?;
            writeln!(out, "{}", shown(&next, show_passcode))?;
            eprintln!("{APPLIES}");
        }
        Action::Get {
            target,
            show_passcode,
        } => {
            let scope = target.scope()?;
            match store.get(&scope).await? {
                Some(stored) => writeln!(out, "{}", shown(&stored.settings, show_passcode))?,
                None => {
                    eprintln!("nothing stored for {scope}");
                    writeln!(out, "{{}}")?;
                }
            }
        }
        Action::Unset {
            target,
            fields,
            all,
        } => {
            let scope = target.scope()?;
            if all {
                if !store.delete(&scope).await? {
                    eprintln!("nothing stored for {scope}");
                }
                return Ok(());
            }
            let fields = fields
                .iter()
                .map(|f| field(f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let Some(StoredSettings {
                mut settings,
                version,
                ..
            }) = store.get(&scope).await?
            else {
                eprintln!("nothing stored for {scope}");
                return Ok(());
            };
            for f in fields {
                settings.unset(f);
            }
            if settings.is_empty() {
                store.delete(&scope).await?;
            } else {
                store
                    .put(&scope, &settings, Some(version), now_ms())
                    .await?;
            }
            writeln!(out, "{}", settings.to_json_masked())?;
        }
        Action::List { app, show_passcode } => {
            let app = app
                .map(|a| AppId::parse(&a).map_err(|r| anyhow!("--app: {r}")))
                .transpose()?;
            for stored in store.list().await? {
                let owner = match &stored.scope {
                    Scope::App(a) => a,
                    Scope::Room(fqn) => fqn.app(),
                };
                if app.as_ref().is_some_and(|want| want != owner) {
                    continue;
                }
                writeln!(
                    out,
                    "{}\t{}",
                    stored.scope.key(),
                    shown(&stored.settings, show_passcode)
                )?;
            }
        }
        Action::Effective {
            room,
            global_default,
            allowed_app_ids,
            show_passcode,
        } => {
            let fqn = Fqn::parse(&room).map_err(|r| anyhow!("--room: {r}"))?;
            if let Some(ids) = allowed_app_ids {
                let allowed: HashSet<&str> = ids.split(',').map(str::trim).collect();
                if !allowed.contains(fqn.app().as_str()) {
                    bail!(
                        "{} is not in ALLOWED_APP_IDS: JaaS receives 403 unknown_app",
                        fqn.app()
                    );
                }
            }
            let global = match global_default.as_deref() {
                Some(raw) => Settings::from_json_str(raw).context("SETTINGS_DEFAULT")?,
                None => Settings::default(),
            };
            let resolved = effective(store, &global, &fqn).await?;
            if resolved.soft_limit_clamped {
                eprintln!(
                    "note: an inherited participantsSoftLimit is above this room's maxOccupants and is lowered to it"
                );
            }
            writeln!(out, "{}", shown(&resolved.settings, show_passcode))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<crate::Cli, clap::Error> {
        crate::Cli::try_parse_from(std::iter::once("hooksctl").chain(args.iter().copied()))
    }

    #[test]
    fn clap_structure_is_consistent() {
        use clap::CommandFactory;
        crate::Cli::command().debug_assert();
    }

    #[test]
    fn set_help_names_every_field() {
        use clap::CommandFactory;
        let mut cli = crate::Cli::command();
        let help = cli
            .find_subcommand_mut("settings")
            .and_then(|s| s.find_subcommand_mut("set"))
            .expect("settings set")
            .render_long_help()
            .to_string();
        for f in Field::ALL {
            assert!(help.contains(f.name()), "{f}");
        }
    }

    #[test]
    fn exactly_one_target() {
        assert!(parse(&["settings", "get"]).is_err());
        assert!(parse(&["settings", "get", "--app", "a", "--room", "a/b"]).is_err());
        assert!(parse(&["settings", "get", "--room", "a/b"]).is_ok());
        assert!(parse(&["settings", "--table", "t", "unset", "--app", "a"]).is_err());
        assert!(parse(&["settings", "unset", "--app", "a", "--all"]).is_ok());
        assert!(parse(&["settings", "unset", "--app", "a", "--all", "passcode"]).is_err());
        assert!(parse(&["settings", "get", "--app", "a", "--table", "t"]).is_ok());
    }

    #[test]
    fn apply_validates_before_anything_is_written() {
        let s = apply(
            Settings::default(),
            Some(r#"{"maxOccupants": 10}"#),
            &["passcode=0042".into(), "lobbyEnabled=true".into()],
        )
        .unwrap();
        assert_eq!(
            s.to_json(),
            serde_json::json!({"maxOccupants": 10, "passcode": "0042", "lobbyEnabled": true})
        );
        for bad in [
            "passcode=12ab",
            "maxOccupants=501",
            "lobbyEnabled=yes",
            "lobbyType=LATER",
            "nosuch=1",
            "noequals",
            "participantsSoftLimit=11",
        ] {
            let e = apply(s.clone(), None, &[bad.into()]).unwrap_err();
            assert!(!e.to_string().contains("12ab"), "{e}");
        }
        assert!(apply(Settings::default(), Some("[1]"), &[]).is_err());
    }
}
