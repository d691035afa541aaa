//! `bookinfo`: Istio's Bookinfo sample in Rust. `bookinfo up` (plain `cargo run`) starts the
//! whole stack locally; `bookinfo serve <service>` runs one service, as in a container.
#![forbid(unsafe_code)]

mod cli;
mod curl;
mod error;
mod serve;
mod traces;
mod up;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::Error;

fn main() -> ExitCode {
    // The image links `curl` to this binary: under that name it is curl.
    let mut args = std::env::args();
    let program = args.next().unwrap_or_default();
    if std::path::Path::new(&program).file_name().is_some_and(|name| name == "curl") {
        return actix_web::rt::System::new().block_on(curl::run(args));
    }
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Up(cli.up));
    let result = actix_web::rt::System::new().block_on(async move {
        match command {
            Command::Up(args) => up::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Traces(args) => traces::run(args).await.map(|()| ExitCode::SUCCESS),
            Command::Curl { args } => Ok(curl::run(args).await),
        }
    });
    match result {
        Ok(code) => code,
        Err(Error::Quiet) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bookinfo: error: {err}");
            err.exit_code()
        }
    }
}
