//! Why `bookinfo` stops, and its exit code.

use std::io;
use std::process::ExitCode;

use bookinfo_config::ConfigError;
use bookinfo_http::server::BindError;

/// A failure that ends the program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Routing files cannot be used.
    #[error(transparent)]
    Routes(#[from] bookinfo_mesh::RouteError),
    /// Something this command needs is missing or cannot be used (Envoy for `--mesh`, say).
    #[error("{0}")]
    Setup(String),
    /// The service cannot listen.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Traces cannot be read or found.
    #[error("{0}")]
    Traces(String),
    /// The local stack stopped or could not start.
    #[error("{0}")]
    Stack(String),
    /// Anything else from the system.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Nobody reads the output any more (`... | head`): stop without a word.
    #[error("standard output is closed")]
    Quiet,
}

impl Error {
    /// 64 (`EX_USAGE`) for configuration mistakes, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::Routes(_) | Error::Setup(_) => ExitCode::from(64),
            Error::Quiet => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        }
    }
}
