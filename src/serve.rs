//! `bookinfo serve <service>`: one service, as in a container.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web::ServiceConfig;
use bookinfo_common::Upstreams;
use bookinfo_common::config::{self, Env, Source};
use bookinfo_common::router::{self, RouteTable};
use bookinfo_common::server::{self, ServerOptions};
use bookinfo_common::telemetry::{self, Identity};

use crate::cli::{ServeArgs, Service};
use crate::error::Error;

/// Set by `bookinfo up` on its children: the parent's process id. A child whose parent dies
/// stops too, so no service outlives the stack.
pub const STACK_PARENT: &str = "BOOKINFO_STACK_PARENT";

/// What a service prints on standard output once it listens, followed by its name and
/// `listening on http://ADDR`; `bookinfo up` waits for it.
pub const READY: &str = "bookinfo: ready:";

/// Runs one service until SIGINT or SIGTERM, then flushes its spans.
pub async fn run(args: ServeArgs) -> Result<(), Error> {
    follow_parent()?;
    let upstreams = Arc::new(Upstreams::from_source(&Env)?);
    let workers = Env
        .get(config::WORKERS)
        .map(|_| Env.parse_or(config::WORKERS, 1, "a number of threads"))
        .transpose()?;
    // Each service's configuration is read before anything starts, so a mistake stops it at once.
    let (identity, server) = match args.service {
        Service::Productpage => {
            let config = bookinfo_productpage::Config::from_source(&Env)?;
            let identity = identity(args.service, "v1".to_owned());
            (identity, Configured::Productpage(config))
        }
        Service::Details => {
            let config = bookinfo_details::Config::from_source(&Env)?;
            let version = if config.external_book_service { "v2" } else { "v1" };
            (identity(args.service, version.to_owned()), Configured::Details(config))
        }
        Service::Reviews => {
            let config = bookinfo_reviews::Config::from_source(&Env, args.version.into())?;
            (identity(args.service, config.version().to_string()), Configured::Reviews(config))
        }
        Service::Ratings => {
            let config = bookinfo_ratings::Config::from_source(&Env)?;
            (identity(args.service, config.version.clone()), Configured::Ratings(config))
        }
    };
    let telemetry = telemetry::init(&identity, args.tracing.into(), &Env);
    let routes = routes(&args.routes)?;
    let options = ServerOptions { tracing: telemetry.tracing(), routes, workers, ..ServerOptions::default() };
    let running = match server {
        Configured::Productpage(c) => start(&args, &options, upstreams, bookinfo_productpage::configure(&c)),
        Configured::Details(c) => start(&args, &options, upstreams, bookinfo_details::configure(&c)),
        Configured::Reviews(c) => start(&args, &options, upstreams, bookinfo_reviews::configure(&c)),
        Configured::Ratings(c) => start(&args, &options, upstreams, bookinfo_ratings::configure(&c)),
    };
    let result = match running {
        Ok(server) => server.await.map_err(Error::from),
        Err(err) => Err(err),
    };
    tracing::info!(service = args.service.name(), "stopped");
    telemetry.shutdown().await;
    result
}

/// The routing table of `files`, if any. Under `bookinfo up`, which reports what the files ask
/// for that is not applied locally, the notes are only logged at debug level.
fn routes(files: &[PathBuf]) -> Result<Option<Arc<RouteTable>>, Error> {
    if files.is_empty() {
        return Ok(None);
    }
    let (table, notes) = router::load(files)?;
    let under_stack = Env.get(STACK_PARENT).is_some();
    for note in &notes {
        if under_stack {
            tracing::debug!("routes: {note}");
        } else {
            tracing::warn!("routes: {note}");
        }
    }
    tracing::info!(files = ?files, "routes: outbound calls follow these Istio rules");
    Ok(Some(Arc::new(table)))
}

/// A service's configuration, read and checked.
enum Configured {
    Productpage(bookinfo_productpage::Config),
    Details(bookinfo_details::Config),
    Reviews(bookinfo_reviews::Config),
    Ratings(bookinfo_ratings::Config),
}

/// The service's telemetry identity; `SERVICE_VERSION`, which the original images set, wins.
fn identity(service: Service, version: String) -> Identity {
    Identity { service: service.name(), version: Env.get(config::SERVICE_VERSION).unwrap_or(version) }
}

fn start<F>(
    args: &ServeArgs,
    options: &ServerOptions,
    upstreams: Arc<Upstreams>,
    configure: F,
) -> Result<Server, Error>
where
    F: Fn(&mut ServiceConfig) + Send + Clone + 'static,
{
    let listener = server::bind(args.host, args.port)?;
    let addr: SocketAddr = listener.local_addr()?;
    let server = server::run(listener, options, upstreams, configure)?;
    println!("{READY} {} listening on http://{addr}", args.service.name());
    Ok(server)
}

/// Under `bookinfo up`, asks the kernel to send SIGTERM when the parent dies, and stops at once
/// if it already has.
fn follow_parent() -> Result<(), Error> {
    if Env.get(STACK_PARENT).is_none() {
        return Ok(());
    }
    let parent: i32 = Env.parse_or(STACK_PARENT, 0, "a process id")?;
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).map_err(std::io::Error::from)?;
    if nix::unistd::getppid().as_raw() != parent {
        return Err(Error::Stack(format!("the stack (process {parent}) is gone")));
    }
    Ok(())
}
