//! `bookinfo serve <service>`: one service, as in a container.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web::ServiceConfig;
use bookinfo_common::config::{self, Env, Source};
use bookinfo_common::server::{self, ServerOptions};
use bookinfo_common::{Upstreams, telemetry};

use crate::cli::{ServeArgs, Service};
use crate::error::Error;

/// Set by `bookinfo up` on its children: the parent's process id. A child whose parent dies
/// stops too, so no service outlives the stack.
pub const STACK_PARENT: &str = "BOOKINFO_STACK_PARENT";

/// What a service prints on standard output once it listens, followed by its name and
/// `listening on http://ADDR`; `bookinfo up` waits for it.
pub const READY: &str = "bookinfo: ready:";

/// Runs one service until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<(), Error> {
    telemetry::init_logging();
    follow_parent()?;
    let upstreams = Arc::new(Upstreams::from_source(&Env)?);
    let options = ServerOptions {
        workers: Env
            .get(config::WORKERS)
            .map(|_| Env.parse_or(config::WORKERS, 1, "a number of threads"))
            .transpose()?,
        ..ServerOptions::default()
    };
    let server = match args.service {
        Service::Productpage => {
            let config = bookinfo_productpage::Config::from_source(&Env)?;
            start(&args, &options, upstreams, bookinfo_productpage::configure(&config))?
        }
        Service::Details => {
            let config = bookinfo_details::Config::from_source(&Env)?;
            start(&args, &options, upstreams, bookinfo_details::configure(&config))?
        }
        Service::Reviews => {
            let config = bookinfo_reviews::Config::from_source(&Env, args.version.into())?;
            tracing::info!(version = %config.version(), podname = %config.origin.podname, "reviews");
            start(&args, &options, upstreams, bookinfo_reviews::configure(&config))?
        }
        Service::Ratings => {
            let config = bookinfo_ratings::Config::from_source(&Env)?;
            tracing::info!(version = %config.version, "ratings");
            start(&args, &options, upstreams, bookinfo_ratings::configure(&config))?
        }
    };
    server.await?;
    tracing::info!(service = args.service.name(), "stopped");
    Ok(())
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
