//! Listening sockets and the `actix-web` wiring every service shares.
//!
//! A service contributes its routes (a `ServiceConfig` function); [`run`] wraps them with the
//! request middleware (the edge rule, server span, access log) and the per-worker
//! [`UpstreamClient`], so every service traces, logs and calls out the same way. [`bind`] opens the socket first, so that port 0 works (tests) and a port already in
//! use is reported clearly before anything starts.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::web::{self, Data, ServiceConfig};
use actix_web::{App, HttpServer, Route, guard};
use socket2::{Domain, Protocol, Socket, Type};

use crate::client::UpstreamClient;
use crate::edge;
use crate::middleware::observe;
use crate::routing::Router;
use crate::spans::Tracing;
use crate::upstream::Upstreams;

/// Why a service cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another process holds the port.
    #[error("port {port} is already in use (cannot listen on {addr})")]
    InUse {
        /// The address asked for.
        addr: SocketAddr,
        /// Its port.
        port: u16,
    },
    /// Any other failure.
    #[error("cannot listen on {addr}: {source}")]
    Other {
        /// The address asked for.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
}

/// Opens a listening socket on `host:port`; without a host, on every IPv6 and IPv4 address
/// (dual stack, as the originals bind `[::]`), falling back to IPv4 where IPv6 is missing.
///
/// # Errors
/// [`BindError::InUse`] when the port is taken, [`BindError::Other`] otherwise.
pub fn bind(host: Option<IpAddr>, port: u16) -> Result<TcpListener, BindError> {
    match host {
        Some(ip) => listen(SocketAddr::new(ip, port)),
        None => match listen(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)) {
            Err(BindError::Other { .. }) => listen(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)),
            result => result,
        },
    }
}

fn listen(addr: SocketAddr) -> Result<TcpListener, BindError> {
    let open = || -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() && addr.ip().is_unspecified() {
            socket.set_only_v6(false)?;
        }
        // Lets a restarted service take its port back while old connections sit in TIME_WAIT;
        // on Linux it never lets two listeners share a port.
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    open().map_err(|source| match source.kind() {
        io::ErrorKind::AddrInUse => BindError::InUse { addr, port: addr.port() },
        _ => BindError::Other { addr, source },
    })
}

/// How the HTTP server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// How requests are traced.
    pub tracing: Tracing,
    /// Istio rules applied to outbound calls (the local stack), if any.
    pub routes: Option<Arc<dyn Router>>,
    /// Worker threads; `None` is one per CPU core.
    pub workers: Option<usize>,
    /// Whether SIGINT/SIGTERM stop the server (true for a real process, false in tests that
    /// run several servers in one process).
    pub handle_signals: bool,
    /// How long in-flight requests may run on after a stop signal.
    pub shutdown_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            tracing: Tracing::Propagate,
            routes: None,
            workers: None,
            handle_signals: true,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Starts serving `configure`'s routes on `listener`, with the shared middleware and an
/// [`UpstreamClient`] per worker. The returned [`Server`] runs when awaited or spawned.
///
/// # Errors
/// When the listener cannot be handed to the server.
pub fn run<F>(
    listener: TcpListener,
    options: &ServerOptions,
    upstreams: Arc<Upstreams>,
    configure: F,
) -> io::Result<Server>
where
    F: Fn(&mut ServiceConfig) + Send + Clone + 'static,
{
    let tracing = options.tracing.clone();
    let routes = options.routes.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(observe))
            // Outside `observe`, so the span and the forwarded headers see the edited request.
            .wrap(from_fn(edge::rule))
            // Browsers take every answer for what its content type says, nothing else.
            .wrap(DefaultHeaders::new().add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")))
            .app_data(Data::new(tracing.clone()))
            .app_data(Data::new(UpstreamClient::new(upstreams.clone(), tracing.clone(), routes.clone())))
            .configure(configure.clone())
    })
    .shutdown_timeout(options.shutdown_timeout.as_secs())
    .listen(listener)?;
    if let Some(workers) = options.workers {
        server = server.workers(workers.max(1));
    }
    if !options.handle_signals {
        server = server.disable_signals();
    }
    Ok(server.run())
}

/// A route answering `GET` and `HEAD` (whose body `actix-web` drops), as Flask, JAX-RS and
/// WEBrick do for every `GET` route.
pub fn get_or_head() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}
