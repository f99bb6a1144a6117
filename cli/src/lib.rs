//! hooksctl, the operator CLI: one subcommand per area (`settings` today; events, jobs,
//! redrive, recopy, up and demo are meant to sit beside it as siblings of [`Command`]).
//! Commands write their results to the given writer (tests capture it) and notes for humans
//! to stderr, so stdout stays machine-readable. AWS access comes from the standard
//! environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` for an emulator).

pub mod settings;

use std::io::Write;

use clap::{Parser, Subcommand};

/// Operator CLI for the meeting-webhook backend.
#[derive(Debug, Parser)]
#[command(name = "hooksctl", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Meeting settings answered to JaaS: app defaults and per-room overrides.
    Settings(settings::SettingsArgs),
}

/// Runs one parsed command.
pub async fn run(cli: Cli, out: &mut impl Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Settings(args) => settings::run(args, out).await,
    }
}
