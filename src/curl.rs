//! `curl`, the part of it Istio's documentation runs inside Bookinfo's containers
//! (`kubectl exec <pod> -c ratings -- curl -sS productpage:9080/productpage`).
//!
//! The image holds one binary; called as `curl` (a link to it) it behaves as this plain-HTTP
//! subset of curl, so no second binary and no C library are needed. Exit codes follow curl's:
//! 1 unsupported protocol, 3 malformed URL, 6 unknown host, 7 refused, 22 `--fail`, 28 timeout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::http::Method;
use clap::Parser;

/// A plain-HTTP subset of curl.
#[derive(Debug, Parser)]
#[command(name = "curl", disable_help_flag = true, disable_version_flag = true)]
pub struct CurlArgs {
    /// Show no progress or errors.
    #[arg(short = 's', long)]
    silent: bool,
    /// With --silent, still show errors.
    #[arg(short = 'S', long = "show-error")]
    show_error: bool,
    /// Write the body to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print FORMAT after the transfer (`%{http_code}`, `%{time_total}`, `\n`).
    #[arg(short = 'w', long = "write-out", value_name = "FORMAT")]
    write_out: Option<String>,
    /// Extra request header, `Name: value`.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    headers: Vec<String>,
    /// Request method.
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// Send DATA as a form (POST).
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Option<String>,
    /// Include the response status line and headers in the output.
    #[arg(short = 'i', long)]
    include: bool,
    /// HEAD request; print the headers.
    #[arg(short = 'I', long)]
    head: bool,
    /// Fail (exit 22) on an HTTP error status, printing no body.
    #[arg(short = 'f', long)]
    fail: bool,
    /// Follow redirects.
    #[arg(short = 'L', long)]
    location: bool,
    /// Whole-transfer deadline in seconds.
    #[arg(short = 'm', long = "max-time", value_name = "SECONDS")]
    max_time: Option<f64>,
    /// Print the request and response headers on standard error.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Show this help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// URLs; `http://` is implied.
    #[arg(required = true)]
    urls: Vec<String>,
}

/// A curl failure: its exit code and message.
struct Failure(u8, String);

/// Runs curl with `args` (without the program name).
pub async fn run(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args = match CurlArgs::try_parse_from(std::iter::once("curl".to_owned()).chain(args)) {
        Ok(args) => args,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(2);
        }
    };
    let mut code = 0;
    for url in &args.urls {
        if let Err(Failure(exit, message)) = fetch(&args, url).await {
            if !args.silent || args.show_error {
                eprintln!("curl: ({exit}) {message}");
            }
            code = exit;
        }
    }
    ExitCode::from(code)
}

async fn fetch(args: &CurlArgs, url: &str) -> Result<(), Failure> {
    let url = match url.split_once("://") {
        None => format!("http://{url}"),
        Some(("http", _)) => url.to_owned(),
        Some((scheme, _)) => return Err(Failure(1, format!("Protocol \"{scheme}\" not supported"))),
    };
    let uri: actix_web::http::Uri =
        url.parse().map_err(|_| Failure(3, format!("URL rejected: Malformed input: {url}")))?;
    let method = match (&args.method, args.head, &args.data) {
        (Some(method), _, _) => {
            Method::from_bytes(method.as_bytes()).map_err(|_| Failure(3, format!("bad method {method}")))?
        }
        (None, true, _) => Method::HEAD,
        (None, false, Some(_)) => Method::POST,
        (None, false, None) => Method::GET,
    };
    let mut builder = awc::Client::builder().disable_timeout();
    if !args.location {
        builder = builder.disable_redirects();
    }
    let client = builder.finish();
    let mut request = client.request(method, uri.clone()).insert_header(("user-agent", "curl/8 (bookinfo)"));
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else { continue };
        request = request.append_header((name.trim(), value.trim()));
    }
    if args.verbose {
        eprintln!("> {} {} HTTP/1.1", request.get_method(), uri.path_and_query().map_or("/", |p| p.as_str()));
        for (name, value) in request.headers() {
            eprintln!("> {name}: {}", value.to_str().unwrap_or_default());
        }
    }
    let started = std::time::Instant::now();
    let exchange = async {
        let sent = match &args.data {
            Some(data) => {
                request.content_type("application/x-www-form-urlencoded").send_body(data.clone()).await
            }
            None => request.send().await,
        };
        let mut response = sent.map_err(|err| connect_failure(&uri, &err.to_string()))?;
        let body =
            response.body().limit(64 * 1024 * 1024).await.map_err(|err| Failure(56, err.to_string()))?;
        Ok::<_, Failure>((response, body))
    };
    let (response, body) = match args.max_time {
        Some(seconds) if seconds.is_finite() && seconds > 0.0 => actix_web::rt::time::timeout(
            Duration::from_secs_f64(seconds),
            exchange,
        )
        .await
        .map_err(|_| {
            Failure(28, format!("Operation timed out after {} milliseconds", (seconds * 1000.0) as u64))
        })??,
        _ => exchange.await?,
    };
    let status = response.status();
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in response.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or_default()));
    }
    head.push_str("\r\n");
    if args.verbose {
        for line in head.lines().filter(|l| !l.is_empty()) {
            eprintln!("< {line}");
        }
    }
    if args.fail && status.as_u16() >= 400 {
        return Err(Failure(22, format!("The requested URL returned error: {}", status.as_u16())));
    }
    let mut out: Vec<u8> = Vec::new();
    if args.include || args.head {
        out.extend_from_slice(head.as_bytes());
    }
    if !args.head {
        out.extend_from_slice(&body);
    }
    match &args.output {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::write(path, &out).map_err(|err| Failure(23, format!("Failed writing body: {err}")))?
        }
        _ => {
            let _ = std::io::stdout().write_all(&out);
        }
    }
    if let Some(format) = &args.write_out {
        let text = format
            .replace("%{http_code}", status.as_str())
            .replace("%{response_code}", status.as_str())
            .replace("%{time_total}", &format!("{:.6}", started.elapsed().as_secs_f64()))
            .replace("%{size_download}", &body.len().to_string())
            .replace("\\n", "\n");
        let _ = std::io::stdout().write_all(text.as_bytes());
    }
    let _ = std::io::stdout().flush();
    Ok(())
}

fn connect_failure(uri: &actix_web::http::Uri, error: &str) -> Failure {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    if error.contains("resolve") || error.contains("DNS") || error.contains("lookup") {
        Failure(6, format!("Could not resolve host: {host}"))
    } else {
        Failure(7, format!("Failed to connect to {host} port {port}: {error}"))
    }
}
