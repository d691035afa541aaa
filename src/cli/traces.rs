//! The options of `bookinfo traces`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::values::parse_size;

/// `bookinfo traces`.
#[derive(Debug, Clone, Args)]
pub struct TracesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TracesCommand,
}

/// The `traces` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TracesCommand {
    /// Print traces as indented trees with a waterfall.
    Show {
        /// Where the traces are.
        #[command(flatten)]
        source: TraceSource,
        /// Only traces with a span of this service (needed with --jaeger).
        #[arg(long)]
        service: Option<String>,
        /// How many traces, the latest.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// One trace, by id or latest:SERVICE, optionally in another run (RUN:..., as compare
        /// takes them).
        #[arg(long, value_name = "ID")]
        trace: Option<String>,
        /// Show each span's attributes and its service's version under it.
        #[arg(long)]
        attributes: bool,
        /// Draw every span (by default 200 rows and 40 levels at most).
        #[arg(long)]
        all: bool,
    },
    /// Two traces side by side: spans per service and kind, sidecar and application spans,
    /// depth, duration, orphans, the reviews version, what each has on each hop, and both
    /// trees.
    Compare {
        /// Where the traces are.
        #[command(flatten)]
        source: TraceSource,
        /// The first trace: its id or latest:SERVICE, in the run --file or --jaeger say (by
        /// default the newest); prefixed with RUN: for another run of `bookinfo up`, where RUN
        /// is @N (N runs before the newest) or a run's name (`bookinfo traces runs` lists them).
        a: String,
        /// The second trace, spelled as the first: `@1:latest:productpage` is the latest
        /// productpage trace of the run before the newest.
        b: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List the runs of `bookinfo up` that hold traces, newest first, with the @N that names
    /// each in a trace reference.
    Runs,
    /// Serve the web viewer (and the Jaeger-style query API) over a saved trace file.
    Serve {
        /// The trace file [default: the newest run's that holds traces or is running].
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Port of the viewer.
        #[arg(long, default_value_t = 16686)]
        port: u16,
        /// Address of the viewer.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        host: IpAddr,
        /// Memory the traces are held in, at most; the latest are loaded.
        #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
        trace_memory: u64,
    },
}

/// Where traces are read from.
#[derive(Debug, Clone, Args)]
pub struct TraceSource {
    /// A trace file written by `bookinfo up` [default: the newest run's that holds traces or
    /// is running]. Lines longer than 4 MiB are skipped; a pipe or device with one is given up.
    #[arg(long, value_name = "FILE", conflicts_with = "jaeger")]
    pub file: Option<PathBuf>,
    /// A Jaeger (v2) query service, such as http://127.0.0.1:16686 (Istio's /jaeger base path
    /// is found by itself).
    #[arg(long, value_name = "URL")]
    pub jaeger: Option<String>,
    /// How far back to search Jaeger.
    #[arg(long, default_value = "1h", value_parser = bookinfo_config::parse_duration)]
    pub lookback: std::time::Duration,
}
