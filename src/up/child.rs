//! One child process of the stack: started with its command line and variables, its output
//! shown under its name, its readiness awaited, its end sent to whoever supervises it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader, Lines};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use crate::error::{Error, StackError};
use crate::output;
use crate::serve::{READY, STACK_PARENT};

/// How long a child may take to be ready.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Lines of a child's output kept, to explain why it did not start.
const KEPT_LINES: usize = 20;

/// How to start a child, and how to tell it is ready.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Its name in output: `details`, `reviews-v2`, `sidecar details`, ...
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables set for it, on top of the inherited ones.
    pub env: Vec<(String, String)>,
    /// Inherited variables it must not see.
    pub scrub: Vec<String>,
    /// When it is ready.
    pub ready: Ready,
    /// When it stops, among the stack's children.
    pub stops: Stops,
}

/// When a child stops, among the stack's children: the edge first, so that pages in flight
/// finish against services still up, then the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Stops {
    /// The application at the edge (productpage): it stops taking requests and finishes those
    /// it has, while what it calls still answers.
    First,
    /// Everything else, once the edge has gone. The proxies are among them: Envoy exits on
    /// SIGTERM without finishing its requests (Istio drains it through its agent), so under
    /// the mesh the edge that drains is productpage behind the gateway.
    #[default]
    Then,
}

impl Spec {
    /// Makes the port it bound (`--port 0`: a free one) its port from now on: a restarted
    /// service must be found where it was.
    pub fn pin_port(&mut self, addr: Option<SocketAddr>) {
        if let (Some(addr), Some(at)) = (addr, self.args.iter().position(|a| a == "--port"))
            && let Some(port) = self.args.get_mut(at + 1)
        {
            *port = addr.port().to_string();
        }
    }
}

/// When a child is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// It printed `bookinfo: ready: ... listening on http://ADDR` (a Bookinfo service).
    Line,
    /// Its admin interface answers `/ready` (Envoy).
    Admin(SocketAddr),
    /// It takes TCP connections at the address (a database server).
    Tcp(SocketAddr),
}

/// How a child ended: which one, which of its starts, and its status.
#[derive(Debug)]
pub struct Exit {
    /// Its index among the supervised children.
    pub index: usize,
    /// Which start of it ended.
    pub generation: u64,
    /// Its exit status.
    pub status: std::io::Result<ExitStatus>,
}

/// A started, ready child.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// Its process id.
    pub pid: u32,
    /// Where it listens, if it said so.
    pub addr: Option<SocketAddr>,
}

/// Starts `spec` and waits until it is ready; its end is sent on `exits` as `index`,
/// `generation`.
///
/// # Errors
/// It cannot be started, stops before it is ready, or is not ready in time; the error holds
/// its last lines of output (Envoy's reason for refusing a configuration, say).
pub async fn start(
    spec: &Spec,
    index: usize,
    generation: u64,
    exits: mpsc::UnboundedSender<Exit>,
) -> Result<Started, Error> {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in &spec.scrub {
        command.env_remove(name);
    }
    command.env(STACK_PARENT, std::process::id().to_string()).envs(spec.env.iter().map(|(k, v)| (k, v)));
    let mut child =
        command.spawn().map_err(|source| StackError::Spawn { program: spec.program.clone(), source })?;
    let pid = child.id().unwrap_or_default();
    let name: Arc<str> = spec.name.as_str().into();
    let kept: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(StackError::NoPipes(spec.name.clone()).into());
    };
    actix_web::rt::spawn(forward(name.clone(), BufReader::new(stderr).lines(), kept.clone(), true));
    let mut stdout = BufReader::new(stdout).lines();
    let deadline = Instant::now() + START_DEADLINE;
    let addr = match spec.ready {
        Ready::Line => {
            let found = ready_line(&name, &mut stdout, deadline, &kept).await;
            actix_web::rt::spawn(forward(name.clone(), stdout, kept.clone(), false));
            match found {
                Some(addr) => Some(addr),
                None => return Err(not_ready(&name, &mut child, deadline, &kept).await),
            }
        }
        Ready::Admin(admin) => {
            actix_web::rt::spawn(forward(name.clone(), stdout, kept.clone(), false));
            if !admin_ready(admin, &mut child, deadline).await {
                return Err(not_ready(&name, &mut child, deadline, &kept).await);
            }
            None
        }
        Ready::Tcp(addr) => {
            actix_web::rt::spawn(forward(name.clone(), stdout, kept.clone(), false));
            if !tcp_ready(addr, &mut child, deadline).await {
                return Err(not_ready(&name, &mut child, deadline, &kept).await);
            }
            Some(addr)
        }
    };
    actix_web::rt::spawn(async move {
        let status = child.wait().await;
        // The receiver is gone only once `up` is done with its children.
        let _ = exits.send(Exit { index, generation, status });
    });
    Ok(Started { pid, addr })
}

/// Reads output lines until the ready line, showing the others.
async fn ready_line<R: AsyncBufRead + Unpin>(
    name: &str,
    lines: &mut Lines<R>,
    deadline: Instant,
    kept: &Mutex<VecDeque<String>>,
) -> Option<SocketAddr> {
    loop {
        match timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => match ready_addr(&line) {
                Some(addr) => return Some(addr),
                None => show(name, &line, kept, false),
            },
            _ => return None,
        }
    }
}

/// Polls Envoy's admin `/ready` until it says LIVE, while the process runs.
async fn admin_ready(admin: SocketAddr, child: &mut tokio::process::Child, deadline: Instant) -> bool {
    let client = awc::Client::builder().timeout(Duration::from_millis(500)).finish();
    let url = format!("http://{admin}/ready");
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if let Ok(response) = client.get(&url).send().await
            && response.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Tries to connect to `addr` until something accepts, while the process runs.
async fn tcp_ready(addr: SocketAddr, child: &mut tokio::process::Child, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Why a child is not ready: its status and its last lines.
async fn not_ready(
    name: &str,
    child: &mut tokio::process::Child,
    deadline: Instant,
    kept: &Mutex<VecDeque<String>>,
) -> Error {
    // Its last lines may still be on their way through the pipes.
    let status =
        match timeout_at(deadline.max(Instant::now() + Duration::from_millis(500)), child.wait()).await {
            Ok(status) => describe(&status),
            Err(_) => {
                let _ = child.kill().await;
                format!("not ready within {START_DEADLINE:?}")
            }
        };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let said = kept.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
    StackError::NotReady { name: name.to_owned(), status, said }.into()
}

/// Shows a child's output lines, prefixed with its name, keeping the last few.
async fn forward<R: AsyncBufRead + Unpin>(
    name: Arc<str>,
    mut lines: Lines<R>,
    kept: Arc<Mutex<VecDeque<String>>>,
    to_stderr: bool,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        show(&name, &line, &kept, to_stderr);
    }
}

fn show(name: &str, line: &str, kept: &Mutex<VecDeque<String>>, to_stderr: bool) {
    {
        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() == KEPT_LINES {
            kept.pop_front();
        }
        kept.push_back(line.to_owned());
    }
    let text = format!("{name:>16} | {line}");
    if to_stderr { output::error(&text) } else { output::line(&text) }
}

/// The address in a `bookinfo: ready: NAME listening on http://ADDR` line.
pub fn ready_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix(READY)?;
    let (_, addr) = rest.split_once("http://")?;
    addr.trim().parse().ok()
}

/// An exit status in words.
pub fn describe(status: &std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(err) => format!("status unknown: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_give_the_address() {
        let line = format!("{READY} details listening on http://127.0.0.1:9081");
        assert_eq!(ready_addr(&line), Some("127.0.0.1:9081".parse().unwrap()));
        assert_eq!(ready_addr("2026-11-23 INFO access ..."), None);
    }
}
