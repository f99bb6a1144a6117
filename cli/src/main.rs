//! hooksctl: the operator CLI. Everything lives in the `hooksctl` library; this binary only
//! parses arguments and reports errors.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = hooksctl::Cli::parse();
    let mut out = std::io::stdout().lock();
    match hooksctl::run(cli, &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
