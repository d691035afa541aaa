//! `curl`, the part of it Istio's documentation runs inside Bookinfo's containers
//! (`kubectl exec <pod> -c ratings -- curl -sS productpage:9080/productpage`).
//!
//! The image holds one binary; called as `curl` (a link to it) it behaves as this plain-HTTP
//! subset of curl, so no second binary and no C library are needed. Exit codes and the one-line
//! error messages follow curl's: 1 unsupported protocol, 2 bad option, 3 malformed URL, 6 unknown
//! host, 7 refused, 22 `--fail`, 28 timeout, 47 too many redirects.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::web::Bytes;
use awc::error::{ConnectError, SendRequestError};
use clap::Parser;
use clap::error::{ContextKind, ErrorKind};
use url::Url;

/// curl's default `--max-redirs`.
const MAX_REDIRECTS: i64 = 50;

/// The longest `--max-time` curl takes: its milliseconds must fit a C `long`.
const MAX_SECONDS: f64 = (i64::MAX / 1000) as f64;

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
    /// With --location, fail (exit 47) after NUM redirects; -1 for no limit.
    #[arg(long = "max-redirs", value_name = "NUM", default_value_t = MAX_REDIRECTS, allow_negative_numbers = true, value_parser = redirect_limit)]
    max_redirs: i64,
    /// Whole-transfer deadline in seconds; 0 for none.
    #[arg(short = 'm', long = "max-time", value_name = "SECONDS", allow_negative_numbers = true, value_parser = seconds)]
    max_time: Option<f64>,
    /// Print the request and response headers on standard error.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Show this help.
    #[arg(short = 'h', long, action = clap::ArgAction::Help)]
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
        Err(err) if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("curl: {}", usage_error(&err));
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
    let url = parse_url(url)?;
    let method = match (&args.method, args.head, &args.data) {
        (Some(method), _, _) => {
            Method::from_bytes(method.as_bytes()).map_err(|_| Failure(3, format!("bad method {method}")))?
        }
        (None, true, _) => Method::HEAD,
        (None, false, Some(_)) => Method::POST,
        (None, false, None) => Method::GET,
    };
    let started = std::time::Instant::now();
    let mut out: Vec<u8> = Vec::new();
    let (status, body) = match args.max_time {
        Some(seconds) if seconds > 0.0 => actix_web::rt::time::timeout(
            Duration::from_secs_f64(seconds),
            transfer(args, method, url, &mut out),
        )
        .await
        .map_err(|_| {
            Failure(28, format!("Operation timed out after {} milliseconds", (seconds * 1000.0) as u64))
        })??,
        _ => transfer(args, method, url, &mut out).await?,
    };
    if args.fail && status.as_u16() >= 400 {
        return Err(Failure(22, format!("The requested URL returned error: {}", status.as_u16())));
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

/// The exchange with `url`, following redirects under `-L`: the last status and body; the
/// heads go to `out` under `-i` or `-I`.
async fn transfer(
    args: &CurlArgs,
    mut method: Method,
    mut url: Url,
    out: &mut Vec<u8>,
) -> Result<(StatusCode, Bytes), Failure> {
    let mut data = args.data.clone();
    // Redirects are followed here, not by awc: curl's limit, its error and its method rules.
    let client = awc::Client::builder().disable_timeout().disable_redirects().finish();
    let mut followed = 0;
    loop {
        let (status, headers, body) = exchange(&client, args, &method, &url, data.as_deref()).await?;
        if args.include || args.head {
            out.extend_from_slice(head(status, &headers).as_bytes());
        }
        let Some(next) = redirect(args, status, &headers, &url)? else {
            return Ok((status, body));
        };
        if args.max_redirs >= 0 && followed >= args.max_redirs {
            return Err(Failure(47, format!("Maximum ({}) redirects followed", args.max_redirs)));
        }
        followed += 1;
        // As curl: 303 turns anything but HEAD into GET, 301 and 302 turn POST into GET.
        let to_get = match status {
            StatusCode::SEE_OTHER => method != Method::HEAD,
            StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND => method == Method::POST,
            _ => false,
        };
        if to_get && args.method.is_none() {
            method = Method::GET;
            data = None;
        }
        url = next;
    }
}

/// One request and its whole answer.
async fn exchange(
    client: &awc::Client,
    args: &CurlArgs,
    method: &Method,
    url: &Url,
    data: Option<&str>,
) -> Result<(StatusCode, HeaderMap, Bytes), Failure> {
    let uri: Uri = url.as_str().parse().map_err(|_| url_rejected("Malformed input to a URL function"))?;
    let mut request =
        client.request(method.clone(), uri.clone()).insert_header(("user-agent", "curl/8 (bookinfo)"));
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
    let sent = match data {
        Some(data) => {
            request.content_type("application/x-www-form-urlencoded").send_body(data.to_owned()).await
        }
        None => request.send().await,
    };
    let mut response = sent.map_err(|err| connect_failure(&uri, &err))?;
    let body = response.body().limit(64 * 1024 * 1024).await.map_err(|err| Failure(56, err.to_string()))?;
    let (status, headers) = (response.status(), response.headers().clone());
    if args.verbose {
        for line in head(status, &headers).lines().filter(|l| !l.is_empty()) {
            eprintln!("< {line}");
        }
    }
    Ok((status, headers, body))
}

/// The status line and headers, as `-i` prints them.
fn head(status: StatusCode, headers: &HeaderMap) -> String {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or_default()));
    }
    head.push_str("\r\n");
    head
}

/// Where `-L` goes next: the `Location` of a redirect, against the current URL.
fn redirect(
    args: &CurlArgs,
    status: StatusCode,
    headers: &HeaderMap,
    url: &Url,
) -> Result<Option<Url>, Failure> {
    let redirects = [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ];
    if !args.location || !redirects.contains(&status) {
        return Ok(None);
    }
    let Some(location) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let next = url.join(location).map_err(rejected)?;
    match next.scheme() {
        "http" => Ok(Some(next)),
        scheme => Err(Failure(1, format!("Protocol \"{scheme}\" not supported"))),
    }
}

/// A command-line URL: `http://` when no scheme is given, and only plain HTTP.
fn parse_url(text: &str) -> Result<Url, Failure> {
    let text = match text.split_once("://") {
        None => format!("http://{text}"),
        Some(("http", _)) => text.to_owned(),
        Some((scheme, _)) => return Err(Failure(1, format!("Protocol \"{scheme}\" not supported"))),
    };
    Url::parse(&text).map_err(rejected)
}

/// curl's words for a URL it cannot use (exit code 3).
fn rejected(err: url::ParseError) -> Failure {
    url_rejected(match err {
        url::ParseError::InvalidPort => "Port number was not a decimal number between 0 and 65535",
        url::ParseError::EmptyHost => "No host part in the URL",
        url::ParseError::InvalidIpv6Address => "Bad IPv6 address",
        url::ParseError::InvalidIpv4Address
        | url::ParseError::IdnaError
        | url::ParseError::InvalidDomainCharacter => "Bad hostname",
        _ => "Malformed input to a URL function",
    })
}

fn url_rejected(reason: &str) -> Failure {
    Failure(3, format!("URL rejected: {reason}"))
}

/// `--max-time`: seconds as curl reads them.
fn seconds(text: &str) -> Result<f64, BadNumber> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_nan() => Err(BadNumber::NotANumber),
        Ok(value) if value < 0.0 => Err(BadNumber::Negative),
        Ok(value) if value > MAX_SECONDS => Err(BadNumber::TooLarge),
        Ok(value) => Ok(value),
        Err(_) => Err(BadNumber::NotANumber),
    }
}

/// `--max-redirs`: a count, or -1 for no limit.
fn redirect_limit(text: &str) -> Result<i64, BadNumber> {
    match text.trim().parse::<i64>() {
        Ok(value) if value >= -1 => Ok(value),
        _ => Err(BadNumber::NotANumber),
    }
}

/// A numeric option's value curl refuses, in curl's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum BadNumber {
    /// Not a number at all.
    #[error("expected a proper numerical parameter")]
    NotANumber,
    /// Below zero.
    #[error("expected a positive numerical parameter")]
    Negative,
    /// Past what curl can hold.
    #[error("too large number")]
    TooLarge,
}

/// A command line curl would refuse, in curl's words (without the `curl: ` prefix).
fn usage_error(err: &clap::Error) -> String {
    // clap names an option as `--max-time <SECONDS>`; curl names it as `--max-time`.
    let option = match err.get(ContextKind::InvalidArg) {
        Some(arg) => arg.to_string().split_whitespace().next().unwrap_or_default().to_owned(),
        None => String::new(),
    };
    match err.kind() {
        ErrorKind::UnknownArgument => format!("option {option}: is unknown"),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let reason =
                std::error::Error::source(err).map_or_else(|| "bad value".to_owned(), ToString::to_string);
            format!("option {option}: {reason}")
        }
        ErrorKind::MissingRequiredArgument if option.starts_with('[') || option.starts_with('<') => {
            "no URL specified!".to_owned()
        }
        ErrorKind::NoEquals | ErrorKind::InvalidSubcommand => format!("option {option}: is unknown"),
        _ => {
            // Anything else: clap's own first line, without its `error: ` prefix.
            let text = err.render().to_string();
            let line = text.lines().next().unwrap_or_default();
            line.strip_prefix("error: ").unwrap_or(line).to_owned()
        }
    }
}

fn connect_failure(uri: &Uri, error: &SendRequestError) -> Failure {
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    match error {
        SendRequestError::Connect(
            ConnectError::Resolver(_) | ConnectError::NoRecords | ConnectError::Unresolved,
        ) => Failure(6, format!("Could not resolve host: {host}")),
        _ => Failure(7, format!("Failed to connect to {host} port {port}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_options_are_refused_in_curls_words() {
        assert_eq!(seconds(" 2.5 "), Ok(2.5));
        assert_eq!(seconds("-1"), Err(BadNumber::Negative));
        assert_eq!(seconds("NaN"), Err(BadNumber::NotANumber));
        assert_eq!(seconds("soon"), Err(BadNumber::NotANumber));
        assert_eq!(seconds("1e300"), Err(BadNumber::TooLarge));
        assert_eq!(redirect_limit("-1"), Ok(-1));
        assert_eq!(redirect_limit("-2"), Err(BadNumber::NotANumber));
        assert_eq!(BadNumber::TooLarge.to_string(), "too large number");
    }
}
