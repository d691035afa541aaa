//! `bookinfo`: Istio's Bookinfo sample in Rust (see the library for what each command does).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use bookinfo::cli::{Cli, Command};
use bookinfo::error::Error;
use bookinfo::{curl, serve, traces, up};
use bookinfo_config::Env;
use clap::Parser;

// The one place the process environment is taken: everything below reads variables through
// the `Env` source handed in.
fn main() -> ExitCode {
    // The image links `curl` to this binary: under that name it is curl.
    let mut args = std::env::args();
    let program = args.next().unwrap_or_default();
    if std::path::Path::new(&program).file_name().is_some_and(|name| name == "curl") {
        return actix_web::rt::System::new().block_on(curl::run(args));
    }
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Up(cli.up));
    let result = match command {
        // Becomes another program: nothing to start first.
        Command::Exec { command } => Err(serve::exec(&command, &Env)),
        command => actix_web::rt::System::new().block_on(async move {
            match command {
                Command::Up(args) => up::run(args, Env).await.map(|()| ExitCode::SUCCESS),
                Command::Serve(args) => serve::run(args, Env).await.map(|()| ExitCode::SUCCESS),
                Command::Traces(args) => traces::run(args, &Env).await.map(|()| ExitCode::SUCCESS),
                Command::Curl { args } => Ok(curl::run(args).await),
                Command::Exec { .. } => Ok(ExitCode::FAILURE),
            }
        }),
    };
    match result {
        Ok(code) => code,
        Err(Error::Quiet) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bookinfo: error: {err}");
            err.exit_code()
        }
    }
}
