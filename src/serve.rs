//! `bookinfo serve <service>`: one service, as in a container; and [`Configured`], the wiring
//! of one service that `bookinfo serve` and the in-process tests share.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use bookinfo_config::{self as config, ConfigError, Source};
use bookinfo_http::server::{self, ServerOptions};
use bookinfo_http::{Tracing, Upstreams};
use bookinfo_mesh::Routing;
use bookinfo_productpage::session::{ROUTED_USERS, RoutedUsers};
use bookinfo_reviews::ReviewsVersion;
use bookinfo_telemetry::{self as telemetry, Identity};

use crate::blocking;
use crate::cli::ServeArgs;
use crate::error::{Error, StackError};
use crate::service::Service;

/// Set by `bookinfo up` on its children: the parent's process id. A child whose parent dies
/// stops too, so no service outlives the stack.
pub const STACK_PARENT: &str = "BOOKINFO_STACK_PARENT";

/// What a service prints on standard output once it listens, followed by its name and
/// `listening on http://ADDR`; `bookinfo up` waits for it.
pub const READY: &str = "bookinfo: ready:";

/// Most worker threads a service may be given (actix refuses more).
pub const MAX_WORKERS: usize = 512;

/// One service, its configuration read and checked.
#[derive(Debug, Clone)]
pub enum Configured {
    /// productpage.
    Productpage(bookinfo_productpage::Config),
    /// details.
    Details(bookinfo_details::Config),
    /// reviews.
    Reviews(bookinfo_reviews::Config),
    /// ratings.
    Ratings(bookinfo_ratings::Config),
}

impl Configured {
    /// `service`'s configuration from `source` (reviews with `version`'s defaults).
    ///
    /// # Errors
    /// A variable that cannot be used.
    pub fn from_source(
        service: Service,
        version: ReviewsVersion,
        source: &(impl Source + ?Sized),
    ) -> Result<Self, ConfigError> {
        Ok(match service {
            Service::Productpage => {
                Configured::Productpage(bookinfo_productpage::Config::from_source(source)?)
            }
            Service::Details => Configured::Details(bookinfo_details::Config::from_source(source)?),
            Service::Reviews => Configured::Reviews(bookinfo_reviews::Config::from_source(source, version)?),
            Service::Ratings => Configured::Ratings(bookinfo_ratings::Config::from_source(source)?),
        })
    }

    /// Where the services it calls live.
    ///
    /// # Errors
    /// An address that cannot be used.
    pub fn upstreams(&self, source: &(impl Source + ?Sized)) -> Result<Upstreams, ConfigError> {
        match self {
            Configured::Productpage(_) => bookinfo_productpage::upstreams(source),
            Configured::Details(c) => bookinfo_details::upstreams(c, source),
            Configured::Reviews(_) => bookinfo_reviews::upstreams(source),
            Configured::Ratings(_) => bookinfo_ratings::upstreams(source),
        }
    }

    /// Which service it is.
    pub fn service(&self) -> Service {
        match self {
            Configured::Productpage(_) => Service::Productpage,
            Configured::Details(_) => Service::Details,
            Configured::Reviews(_) => Service::Reviews,
            Configured::Ratings(_) => Service::Ratings,
        }
    }

    /// Its telemetry identity; `SERVICE_VERSION`, which the original images set, wins.
    pub fn identity(&self, source: &(impl Source + ?Sized)) -> Identity {
        let version = match self {
            Configured::Productpage(_) => "v1".to_owned(),
            Configured::Details(c) => (if c.external_book_service { "v2" } else { "v1" }).to_owned(),
            Configured::Reviews(c) => c.version().to_string(),
            Configured::Ratings(c) => c.version.clone(),
        };
        Identity {
            service: self.service().as_str(),
            version: source.get(config::SERVICE_VERSION).unwrap_or(version),
        }
    }

    /// Serves it on `listener`.
    ///
    /// # Errors
    /// The server cannot start.
    pub fn run(
        &self,
        listener: TcpListener,
        options: &ServerOptions,
        upstreams: Arc<Upstreams>,
    ) -> std::io::Result<Server> {
        match self {
            Configured::Productpage(c) => {
                server::run(listener, options, upstreams, bookinfo_productpage::configure(c))
            }
            Configured::Details(c) => {
                server::run(listener, options, upstreams, bookinfo_details::configure(c))
            }
            Configured::Reviews(c) => {
                server::run(listener, options, upstreams, bookinfo_reviews::configure(c))
            }
            Configured::Ratings(c) => {
                server::run(listener, options, upstreams, bookinfo_ratings::configure(c))
            }
        }
    }
}

/// Everything `bookinfo serve` reads from its flags and variables, read and checked before
/// anything starts, so that a mistake stops the service at once with no telemetry to tear
/// down; and so that reading it through a [`config::Recording`] tells which variables a
/// service reads (the image test holds the Kubernetes manifests to that).
#[derive(Debug)]
pub struct Plan {
    /// Where to listen: `--port`/`PORT`.
    pub port: u16,
    /// `--host`/`BOOKINFO_HOST`; `None` for every address.
    pub host: Option<IpAddr>,
    /// Where the upstreams are.
    pub upstreams: Upstreams,
    /// `BOOKINFO_WORKERS`.
    pub workers: Option<usize>,
    /// The service and its own settings.
    pub configured: Configured,
    /// `--routes`/`BOOKINFO_ROUTES`, loaded.
    pub routing: Option<Routing>,
    /// Its telemetry identity.
    pub identity: Identity,
    /// Its tracing mode and settings.
    pub telemetry: telemetry::Setup,
}

impl Plan {
    /// Reads `args` and `source`.
    ///
    /// # Errors
    /// A variable that cannot be used, or a routes file that cannot be read.
    pub fn read(args: &ServeArgs, source: &(impl Source + ?Sized)) -> Result<Self, Error> {
        let (port, host, mode) = (args.port(source)?, args.host(source)?, args.tracing(source)?);
        let workers = workers(source)?;
        let mut configured = Configured::from_source(args.service, args.version, source)?;
        let upstreams = configured.upstreams(source)?;
        let routing = routes(&args.routes(source)?, source)?;
        if let (Configured::Productpage(config), Some(routing)) = (&mut configured, &routing)
            && source.get(ROUTED_USERS).is_none()
        {
            config.routed_users = RoutedUsers::new(routing.routed_users());
        }
        let identity = configured.identity(source);
        let telemetry = telemetry::Setup::read(mode, source);
        Ok(Self { port, host, upstreams, workers, configured, routing, identity, telemetry })
    }
}

/// Runs one service, configured by `args` and `source`, until SIGINT or SIGTERM, then flushes
/// its spans.
///
/// # Errors
/// A flag, variable or file that cannot be used, or a service that cannot listen.
pub async fn run<S>(args: ServeArgs, source: S) -> Result<(), Error>
where
    S: Source + Send + 'static,
{
    follow_parent(&source)?;
    // The routing files are read here: off the runtime.
    let plan = {
        let args = args.clone();
        blocking::run(move || Plan::read(&args, &source)).await?
    };
    let routes = plan.routing.map(|routing| Arc::new(routing) as Arc<dyn bookinfo_http::routing::Router>);
    let listener = server::bind(plan.host, plan.port)?;
    let addr: SocketAddr = listener.local_addr()?;

    let telemetry = telemetry::init(&plan.identity, &plan.telemetry);
    let tracing = match telemetry.spans() {
        Some(spans) => Tracing::new(
            plan.telemetry.mode,
            Some(spans.tracer.clone()),
            &spans.propagators,
            spans.fetch_spans,
        ),
        None => Tracing::new(plan.telemetry.mode, None, &[], false),
    };
    let options = ServerOptions { tracing, routes, workers: plan.workers, ..ServerOptions::default() };
    let result = match plan.configured.run(listener, &options, Arc::new(plan.upstreams)) {
        Ok(server) => {
            println!("{READY} {} listening on http://{addr}", args.service.as_str());
            server.await.map_err(Error::from)
        }
        Err(err) => Err(err.into()),
    };
    tracing::info!(service = args.service.as_str(), "stopped");
    telemetry.shutdown().await;
    result
}

/// `BOOKINFO_WORKERS`, if set: 1 to 512.
pub fn workers(source: &(impl Source + ?Sized)) -> Result<Option<usize>, ConfigError> {
    let Some(value) = source.get(config::WORKERS) else { return Ok(None) };
    let expected = format!("a number of threads from 1 to {MAX_WORKERS}");
    match value.trim().parse::<usize>() {
        Ok(n @ 1..=MAX_WORKERS) => Ok(Some(n)),
        _ => Err(ConfigError::new(config::WORKERS, &value, &expected)),
    }
}

/// The routing of `files`, if any. Under `bookinfo up`, which reports its warnings, they are
/// only logged at debug level.
fn routes(files: &[PathBuf], source: &(impl Source + ?Sized)) -> Result<Option<Routing>, Error> {
    if files.is_empty() {
        return Ok(None);
    }
    let routing = Routing::load(files)?;
    let under_stack = source.get(STACK_PARENT).is_some();
    for warning in &routing.warnings {
        if under_stack {
            tracing::debug!("routes: {warning}");
        } else {
            tracing::warn!("routes: {warning}");
        }
    }
    if !routing.gateway.is_empty() && !under_stack {
        tracing::warn!("routes: the gateway's rules apply at an ingress gateway only (bookinfo up --mesh)");
    }
    tracing::info!(files = ?files, "routes: outbound calls follow these Istio rules");
    Ok(Some(routing))
}

/// Under `bookinfo up` (`BOOKINFO_STACK_PARENT` set in `source`), asks the kernel to stop this
/// process when the parent dies, and stops at once if it already has.
///
/// # Errors
/// A `BOOKINFO_STACK_PARENT` that is not a process id, or a parent already gone.
pub fn follow_parent(source: &(impl Source + ?Sized)) -> Result<(), Error> {
    follow(source, nix::sys::signal::Signal::SIGTERM)
}

/// `bookinfo exec PROGRAM ARGS...`: becomes PROGRAM (same process), killed when the stack that
/// started it (`BOOKINFO_STACK_PARENT` of `source`) dies, even by SIGKILL: the kernel's
/// parent-death signal survives the exec.
pub fn exec(command: &[String], source: &(impl Source + ?Sized)) -> Error {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = command.split_first() else {
        return StackError::NoProgram.into();
    };
    if let Err(err) = follow(source, nix::sys::signal::Signal::SIGKILL) {
        return err;
    }
    // Only returns on failure.
    let source = std::process::Command::new(program).args(args).exec();
    StackError::Spawn { program: program.into(), source }.into()
}

/// Under a stack, `signal` for this process when the stack's process dies; an error if it
/// already has.
fn follow(source: &(impl Source + ?Sized), signal: nix::sys::signal::Signal) -> Result<(), Error> {
    if source.get(STACK_PARENT).is_none() {
        return Ok(());
    }
    let parent: i32 = source.parse_or(STACK_PARENT, 0, "a process id")?;
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from)?;
    if nix::unistd::getppid().as_raw() != parent {
        return Err(StackError::ParentGone(parent).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_between_one_and_the_limit() {
        assert_eq!(workers(&[("BOOKINFO_WORKERS", "4")]), Ok(Some(4)));
        assert_eq!(workers(&[("X", "4")]), Ok(None));
        for bad in ["0", "513", "many", "-1"] {
            let err = workers(&[("BOOKINFO_WORKERS", bad)]).unwrap_err();
            assert_eq!(err.name, "BOOKINFO_WORKERS", "{bad}");
        }
    }

    #[test]
    fn a_stack_parent_is_followed_only_when_the_source_names_one() {
        assert!(follow_parent(&[("OTHER", "x")]).is_ok(), "not under a stack");
        let err = follow_parent(&[("BOOKINFO_STACK_PARENT", "abc")]).unwrap_err();
        assert!(matches!(&err, Error::Config(e) if e.name == "BOOKINFO_STACK_PARENT"), "{err}");
        let other = (nix::unistd::getppid().as_raw() + 1).to_string();
        let err = follow_parent(&[("BOOKINFO_STACK_PARENT", other.as_str())]).unwrap_err();
        assert_eq!(err.to_string(), format!("the stack (process {other}) is gone"));
    }
}
