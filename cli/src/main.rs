//! hooksctl: run the product locally and operate it (local stack or real AWS).

use clap::{Parser, Subcommand};
use hooksctl::ops::{self, target::TargetArgs};
use hooksctl::stack;

#[derive(Debug, Parser)]
#[command(name = "hooksctl", version, about = "Run meeting-hooks locally and operate it", long_about = None)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole product locally on the AWS emulator (Ctrl-C stops it).
    Up(stack::UpArgs),
    /// Play a signed demo meeting against the running local stack and check what landed.
    Demo {
        /// How long to wait for the copier.
        #[arg(long, default_value_t = 120)]
        wait_seconds: u64,
    },
    /// Show a session's events in timestamp order.
    Events {
        /// The JaaS sessionId.
        #[arg(long)]
        session: String,
    },
    /// Move copy jobs from the dead-letter queue back to the jobs queue.
    Redrive {
        /// List what would move without moving anything.
        #[arg(long)]
        dry_run: bool,
        /// Move at most this many messages.
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => stack::up(args).await,
        Command::Demo { wait_seconds } => {
            let info = hooksctl::stack::info::StackInfo::read(&cli.target.stack_file)?;
            println!("playing a signed meeting against {}", info.webhook_url());
            let report =
                hooksctl::demo::run(&info, std::time::Duration::from_secs(wait_seconds), true)
                    .await?;
            hooksctl::demo::print_and_check(&report)
        }
        Command::Events { session } => {
            let target = cli.target.resolve().await?;
            let entries = ops::events::timeline(&target, &session).await?;
            ops::events::print(&session, &entries);
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
                println!("{job}");
            }
            println!(
                "{} {} job(s){}",
                if dry_run { "would move" } else { "moved" },
                report.jobs.len(),
                if dry_run {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            );
            Ok(())
        }
    }
}
