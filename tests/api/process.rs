//! `bookinfo` run as a real process: started with a clean environment, its output collected,
//! signalled and waited for.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// A running `bookinfo`.
pub struct Proc {
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Proc {
    /// Starts `bookinfo args...` with only `env` (and `RUST_LOG=info`) in its environment. Its
    /// runs' trace files go to a directory of the tests', never the user's.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_program(env!("CARGO_BIN_EXE_bookinfo"), args, env)
    }

    /// Starts `program args...` as [`start`](Self::start) starts `bookinfo`.
    pub fn start_program(program: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(program)
            .args(args)
            .env_clear()
            .env("RUST_LOG", "info")
            .env("BOOKINFO_RUNS_DIR", test_runs_dir())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn bookinfo");
        let output = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), output.clone()),
            collect(child.stderr.take().unwrap(), output.clone()),
        ];
        Self { child, output, readers }
    }

    /// Everything printed so far, standard output and error interleaved by line.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until a printed line satisfies `find` and returns what it extracts.
    pub async fn wait_for<T>(&self, within: Duration, find: impl Fn(&str) -> Option<T>) -> T {
        crate::wait::eventually(
            within,
            || format!("printed:\n{}", self.output()),
            || async { self.output().lines().find_map(&find) },
        )
        .await
    }

    pub fn pid(&self) -> i32 {
        self.child.id().unwrap() as i32
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Waits for the exit (at most `within`) and for the output to be read to its end.
    pub async fn wait(&mut self, within: Duration) -> ExitStatus {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running after {within:?}:\n{}", self.output()))
            .unwrap();
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        status
    }
}

/// Where the runs of `bookinfo` started by the tests keep their trace files.
pub fn test_runs_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bookinfo-test-runs-{}", std::process::id()))
}

fn collect(
    stream: impl AsyncRead + Unpin + 'static,
    output: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    actix_web::rt::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut output = output.lock().unwrap();
            output.push_str(&line);
            output.push('\n');
        }
    })
}

/// `bookinfo serve <service>` on an ephemeral 127.0.0.1 port.
pub struct Served {
    pub proc: Proc,
    pub addr: SocketAddr,
}

impl Served {
    pub async fn start(service: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_at(service, 0, extra_args, env).await
    }

    /// On `port` (0: any free one).
    pub async fn start_at(service: &str, port: u16, extra_args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = port.to_string();
        let mut args = vec!["serve", service, "--port", &port, "--host", "127.0.0.1"];
        args.extend_from_slice(extra_args);
        let proc = Proc::start(&args, env);
        let addr = proc
            .wait_for(Duration::from_secs(30), |line| {
                line.strip_prefix("bookinfo: ready: ")?.split_once("http://")?.1.trim().parse().ok()
            })
            .await;
        Self { proc, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then the exit status and everything printed.
    pub async fn stop(mut self) -> (ExitStatus, String) {
        self.proc.signal(Signal::SIGTERM);
        let status = self.proc.wait(Duration::from_secs(30)).await;
        (status, self.proc.output())
    }
}
