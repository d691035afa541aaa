//! Process-wide logging set-up.
//!
//! Logs go to standard output, one line per event, filtered by `RUST_LOG` (default `info`).

use std::io::{self, IsTerminal};

use tracing_subscriber::EnvFilter;

/// Installs the global log subscriber. Calling it again (tests) is harmless.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second call finds a subscriber already installed; keeping the first is what we want.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(io::stdout().is_terminal())
        .try_init();
}
