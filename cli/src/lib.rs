//! hooksctl, the operator CLI and the local stack: one subcommand per area. Everything lives in
//! this library so tests drive the same code; `main.rs` only parses and reports errors.
//! Commands write results to the given writer (tests capture it) and progress and notes for
//! humans to stderr, so stdout stays machine-readable. Operator commands reach the deployment
//! named by flags / the Lambdas' own environment variables, else the running local stack
//! (`.local/stack.json`); AWS access comes from the standard environment.

pub mod demo;
pub mod demo_daily;
pub mod demo_jitsi;
pub mod demo_prosody;
pub mod demo_videosdk;
pub mod jaas_token;
pub mod jibri;
pub mod ops;
pub mod settings;
pub mod stack;

use std::io::Write;

use clap::{Parser, Subcommand};

use ops::target::TargetArgs;

/// Operator CLI for the meeting-webhook backend.
#[derive(Debug, Parser)]
#[command(name = "hooksctl", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole product locally on the AWS emulator (Ctrl-C stops it).
    Up(stack::UpArgs),
    /// Play a signed demo meeting against the running local stack and check what landed.
    Demo {
        /// How long to wait for the copier.
        #[arg(long, default_value_t = 120)]
        wait_seconds: u64,
        /// Which provider's meeting to play: `jaas`, `daily`, `videosdk` or `jitsi` (a Jibri
        /// host uploading a recording).
        #[arg(long, default_value = "jaas")]
        provider: String,
    },
    /// Meeting settings answered to JaaS: app defaults and per-room overrides.
    Settings(settings::SettingsArgs),
    /// Show a session's events in timestamp order.
    Events {
        /// The JaaS sessionId.
        #[arg(long)]
        session: String,
    },
    /// A room's sessions, newest first (the read API's `GET /v1/sessions`).
    Sessions {
        /// The room's key (`roomKey` in the API: JaaS `<appId>/<room>`, `daily:<room>`, …).
        #[arg(long)]
        room: String,
        /// Sessions that started at or after this (Unix ms or RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Sessions that started before this (Unix ms or RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Who attended a session, with a presence chart (the read API's attendance).
    Attendance {
        /// The session's id as `hooksctl sessions` shows it.
        #[arg(long)]
        session: String,
        /// Include recorder and transcriber bots.
        #[arg(long)]
        include_bots: bool,
    },
    /// A session's files: copy state, bytes, SHA-256 and S3 location (the read API's files).
    Files {
        /// The session's id as `hooksctl sessions` shows it.
        #[arg(long)]
        session: String,
    },
    /// Show the copy state of a session's files (recordings, transcripts, chat, ...).
    Jobs {
        /// The JaaS sessionId.
        #[arg(long)]
        session: String,
    },
    /// Put a stored event's file back on the copy queue (resets a failed copy).
    Recopy {
        /// The event's stored key (its idempotencyKey, as `hooksctl events` shows it).
        #[arg(long)]
        key: String,
        /// Copy again even if the file was already copied.
        #[arg(long)]
        force: bool,
    },
    /// Mint a JaaS join token locally (token on stdout; `--claims` adds them on stderr).
    JaasToken(jaas_token::JaasTokenArgs),
    /// Move copy jobs from the dead-letter queue back to the jobs queue.
    Redrive {
        /// List what would move without moving anything.
        #[arg(long)]
        dry_run: bool,
        /// Move at most this many messages.
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
    /// Print the meeting events a subscriber of the bus receives (one JSON per line) and
    /// acknowledge them, from the local stack's subscriber queue or `--queue-url`.
    TailEvents {
        /// A queue an EventBridge rule on the bus targets (default: the local stack's).
        #[arg(long)]
        queue_url: Option<String>,
        /// Keep waiting for more (Ctrl-C stops).
        #[arg(long)]
        follow: bool,
        /// Leave the messages in the queue.
        #[arg(long)]
        keep: bool,
    },
    /// Publish the meeting events parked in their dead-letter queue again (same ids).
    RedriveEvents {
        /// The dead-letter queue (output MeetingEventsDeadLetterQueueUrl; default: the local stack's).
        #[arg(long)]
        dlq_url: Option<String>,
        /// The bus (output MeetingEventsBusName; default: the local stack's).
        #[arg(long)]
        bus: Option<String>,
    },
}

/// Runs one parsed command.
pub async fn run(cli: Cli, out: &mut impl Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => stack::up(args).await,
        Command::Demo {
            wait_seconds,
            provider,
        } if provider == "daily" => {
            let info = stack::info::StackInfo::read(&cli.target.stack_file)?;
            writeln!(
                out,
                "playing a signed Daily meeting against {}",
                info.api_base_url
            )?;
            let report =
                demo_daily::run(&info, std::time::Duration::from_secs(wait_seconds), true).await?;
            demo_daily::print_and_check(&report)
        }
        Command::Demo {
            wait_seconds,
            provider,
        } if provider == "videosdk" => {
            let info = stack::info::StackInfo::read(&cli.target.stack_file)?;
            writeln!(
                out,
                "playing a signed VideoSDK meeting against {}",
                info.api_base_url
            )?;
            let report =
                demo_videosdk::run(&info, std::time::Duration::from_secs(wait_seconds), true)
                    .await?;
            demo_videosdk::print_and_check(&report)
        }
        Command::Demo {
            wait_seconds,
            provider,
        } if provider == meeting_hooks::providers::jitsi::NAME => {
            let info = stack::info::StackInfo::read(&cli.target.stack_file)?;
            writeln!(
                out,
                "playing a self-hosted Jitsi room (Prosody's events) against {}",
                info.api_base_url
            )?;
            let room = demo_prosody::run(&info, true).await?;
            demo_prosody::print_and_check(&room)?;
            writeln!(
                out,
                "\nplaying a Jibri host uploading a recording to {}",
                info.providers
                    .get(meeting_hooks::providers::jitsi::NAME)
                    .and_then(|p| p.upload_url.clone())
                    .unwrap_or_default()
            )?;
            let report = demo_jitsi::run_jibri(
                &info,
                &room.meeting_url(),
                std::time::Duration::from_secs(wait_seconds),
                true,
            )
            .await?;
            demo_jitsi::print_and_check(&report)
        }
        Command::Demo {
            wait_seconds,
            provider,
        } => {
            if provider != "jaas" {
                anyhow::bail!("no demo for provider {provider:?} (jaas, daily, videosdk or jitsi)");
            }
            let info = stack::info::StackInfo::read(&cli.target.stack_file)?;
            writeln!(
                out,
                "playing a signed meeting against {}",
                info.webhook_url()
            )?;
            let report =
                demo::run(&info, std::time::Duration::from_secs(wait_seconds), true).await?;
            demo::print_and_check(&report)
        }
        Command::Settings(args) => settings::run(args, &cli.target, out).await,
        Command::JaasToken(args) => jaas_token::main(&args, out),
        Command::Events { session } => {
            let target = cli.target.resolve().await?;
            let entries = ops::events::timeline(&target, &session).await?;
            ops::events::print(out, &session, &entries)?;
            Ok(())
        }
        Command::Sessions {
            room,
            from,
            to,
            limit,
        } => {
            let time = |t: Option<String>, name: &str| -> anyhow::Result<Option<i64>> {
                t.map(|t| {
                    meeting_hooks::read::http::time_param(&t)
                        .ok_or_else(|| anyhow::anyhow!("--{name}: not Unix ms or RFC 3339"))
                })
                .transpose()
            };
            let range = meeting_hooks::read::model::TimeRange {
                from_ms: time(from, "from")?,
                to_ms: time(to, "to")?,
            };
            let target = cli.target.resolve().await?;
            let sessions = ops::read::sessions(&target, &room, range, limit.max(1)).await?;
            ops::read::print_sessions(out, &room, &sessions)?;
            Ok(())
        }
        Command::Attendance {
            session,
            include_bots,
        } => {
            let target = cli.target.resolve().await?;
            let (session, rows) = ops::read::attendance(&target, &session, include_bots).await?;
            ops::read::print_attendance(out, &session, &rows)?;
            Ok(())
        }
        Command::Files { session } => {
            let target = cli.target.resolve().await?;
            let (session, files) = ops::read::files(&target, &session).await?;
            ops::read::print_files(out, &session, target.bucket()?, &files)?;
            Ok(())
        }
        Command::Jobs { session } => {
            let target = cli.target.resolve().await?;
            let rows = ops::jobs::session_jobs(&target, &session).await?;
            ops::jobs::print(out, &session, &rows)?;
            Ok(())
        }
        Command::Recopy { key, force } => {
            let target = cli.target.resolve().await?;
            let done = ops::recopy::recopy(&target, &key, force).await?;
            writeln!(
                out,
                "enqueued {} ({}){}",
                done.job.job_id,
                done.job.kind.as_str(),
                done.reset_from
                    .map(|s| format!("; copy state {s} reset"))
                    .unwrap_or_default()
            )?;
            Ok(())
        }
        Command::TailEvents {
            queue_url,
            follow,
            keep,
        } => {
            let target = cli.target.resolve().await?;
            let local = local_events(&cli.target.stack_file);
            let queue = queue_url
                .or_else(|| local.as_ref().map(|m| m.subscriber_queue_url.clone()))
                .ok_or_else(|| anyhow::anyhow!("give --queue-url (or start the local stack)"))?;
            let n = ops::meeting_events::tail(&target.sdk, &queue, follow, keep, out).await?;
            eprintln!("{n} event(s)");
            Ok(())
        }
        Command::RedriveEvents { dlq_url, bus } => {
            let target = cli.target.resolve().await?;
            let local = local_events(&cli.target.stack_file);
            let dlq = dlq_url
                .or_else(|| local.as_ref().map(|m| m.dead_letter_queue_url.clone()))
                .ok_or_else(|| anyhow::anyhow!("give --dlq-url (or start the local stack)"))?;
            let bus = bus
                .or_else(|| local.as_ref().map(|m| m.bus_name.clone()))
                .ok_or_else(|| anyhow::anyhow!("give --bus (or start the local stack)"))?;
            let done = ops::meeting_events::redrive(&target.sdk, &dlq, &bus).await?;
            writeln!(
                out,
                "published {}, still refused {}, other messages left {}",
                done.published, done.refused, done.other
            )?;
            Ok(())
        }
        Command::Redrive { dry_run, max } => {
            let target = cli.target.resolve().await?;
            let report = ops::redrive::redrive(&target, dry_run, max, |done, total| {
                eprint!(
                    "\r{} {done}/{total}",
                    if dry_run { "listed" } else { "moved" }
                );
            })
            .await?;
            eprintln!();
            for job in &report.jobs {
                writeln!(out, "{job}")?;
            }
            writeln!(
                out,
                "{} {} job(s){}",
                if dry_run { "would move" } else { "moved" },
                report.jobs.len(),
                if dry_run {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            )?;
            Ok(())
        }
    }
}

/// The local stack's meeting events (stack.json), if it runs.
fn local_events(stack_file: &std::path::Path) -> Option<stack::info::MeetingEventsInfo> {
    stack::info::StackInfo::read(stack_file)
        .ok()
        .and_then(|i| i.meeting_events)
}
