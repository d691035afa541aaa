//! `bookinfo`: Istio's Bookinfo sample in Rust. `bookinfo up` (plain `cargo run`) starts the
//! whole stack locally; `bookinfo serve <service>` runs one service, as in a container.
#![forbid(unsafe_code)]

mod cli;
mod error;
mod serve;
mod up;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Up(cli.up));
    let result = actix_web::rt::System::new().block_on(async move {
        match command {
            Command::Up(args) => up::run(args).await,
            Command::Serve(args) => serve::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bookinfo: error: {err}");
            err.exit_code()
        }
    }
}
