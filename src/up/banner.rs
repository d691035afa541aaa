//! What `bookinfo up` prints once the stack runs: a table of what runs where, then a line each
//! on routing, tracing and the trace store.

use std::path::PathBuf;

use bookinfo_mesh::envoy::{DataPlane, Tracer, WAYPOINT, WaypointScope};
use bookinfo_propagation::TracingMode;
use bookinfo_traces::Sink;

use super::mesh::Layout;
use super::prepare::Exporter;
use crate::blocking;
use crate::error::Error;

/// One line of the banner's table: name, URL, process id (0: none shown).
pub struct Row {
    /// The workload.
    pub name: String,
    /// Where to reach it.
    pub url: String,
    /// Its process id.
    pub pid: u32,
}

/// `title`, then `rows` in aligned columns.
pub fn table(title: &str, rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).max(12);
    let mut text = format!("\n{title}\n");
    for row in rows {
        let pid = if row.pid == 0 { String::new() } else { format!("  (pid {})", row.pid) };
        text.push_str(&format!("  {:<width$} {}{pid}\n", row.name, row.url));
    }
    text
}

/// How the banner speaks of a mesh's proxies, by data plane.
pub struct Proxies {
    /// In the title: what runs.
    pub title: &'static str,
    /// Who traces: "the sidecars".
    pub tracing: &'static str,
    /// Where the routing files go.
    pub applied: &'static str,
    /// The title of the database's row.
    pub database: &'static str,
    /// The service whose spans each namespace's trace holds, `<span_maker>.<namespace>`, for
    /// `traces compare`; none where the propagate namespace's trace is the gateway's alone.
    pub span_maker: Option<&'static str>,
}

impl Proxies {
    /// The words for `data_plane` with `waypoint`, the routing files binding rules to the
    /// gateway or not (without a waypoint, only those are rendered).
    pub fn of(data_plane: DataPlane, waypoint: WaypointScope, gateway_rules: bool) -> Self {
        match (data_plane, waypoint) {
            (DataPlane::Sidecar, _) => Self {
                title: "sidecars and gateway",
                tracing: "the sidecars",
                applied: "rendered into the sidecars' routes",
                database: "The database (its sidecar, mysqldb, proxies it as TCP: no span):",
                span_maker: Some("productpage"),
            },
            (DataPlane::Ambient, waypoint) => {
                let with = waypoint == WaypointScope::Namespace;
                Self {
                    title: if with {
                        "ambient: ztunnel, waypoint and gateway"
                    } else {
                        "ambient: ztunnel and gateway, no waypoint"
                    },
                    tracing: if with { "the gateway and the waypoint" } else { "the gateway" },
                    applied: match (with, gateway_rules) {
                        (true, _) => "rendered into the gateway's and the waypoint's routes",
                        (false, true) => "rendered into the gateway's routes",
                        (false, false) => "nothing bound to the gateway",
                    },
                    database: "The database (mysqldb, reached through the ztunnel as TCP: no span):",
                    span_maker: with.then_some(WAYPOINT),
                }
            }
        }
    }
}

/// The mesh's table: the gateway's listeners, then each application behind its sidecar (or,
/// under ambient, each application, then the ztunnel and the waypoints).
pub fn mesh(
    layout: &Layout,
    namespaces: &[(String, TracingMode)],
    tracer: Tracer,
    envoy: &str,
    proxies: &Proxies,
) -> String {
    let single = namespaces.len() == 1;
    let mut rows = Vec::new();
    for (i, (addr, serves)) in layout.gateway.iter().enumerate() {
        // Side by side: the first listener routes by Host, the others serve one namespace each.
        let name = if single || i == 0 {
            "gateway".to_owned()
        } else {
            format!("gateway/{}", serves.trim_start_matches("bookinfo-"))
        };
        // The listener by Host has no page of its own to open: a browser sends no such Host.
        let url =
            if single || i > 0 { format!("http://{addr}/productpage") } else { format!("http://{addr}") };
        rows.push(Row { name, url, pid: layout.gateway_pid });
    }
    for placed in layout.apps.iter().rev() {
        let name = if single { placed.pod.clone() } else { format!("{}/{}", placed.namespace, placed.pod) };
        let url = match placed.sidecar {
            // The sidecar's address is the service's; the application's own is private.
            Some(sidecar) => format!("http://{sidecar}  (app {})", placed.app),
            None => format!("http://{}", placed.app),
        };
        rows.push(Row { name, url, pid: 0 });
    }
    for (name, what, pid) in &layout.ambient {
        rows.push(Row { name: name.clone(), url: (*what).to_owned(), pid: *pid });
    }
    let title = format!(
        "Bookinfo is running in a mesh: Envoy {envoy} {}, tracer {tracer}, namespace{} {}",
        proxies.title,
        if single { "" } else { "s" },
        namespaces.iter().map(|(ns, m)| format!("{ns} ({m})")).collect::<Vec<_>>().join(", ")
    );
    let mut text = table(&title, &rows);
    if let Some((_, by_host)) = layout.gateway.first().filter(|_| !single) {
        text.push_str(&format!("  (gateway: {by_host}, as the Host header says)\n"));
    }
    text
}

/// The routing line: the files, and `applied` (who applies them), or none.
pub fn routing(files: &[PathBuf], applied: &str) -> String {
    if files.is_empty() {
        return "Routing: none (calls to reviews spread over v1, v2 and v3).\n".to_owned();
    }
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    format!("Routing: {} ({applied})\n", files.join(", "))
}

/// The tracing line of the services in `mode` (and of the proxies' `tracer`, the proxies named
/// as `(tracer, "the sidecars")`); an exporter's
/// endpoint is asked whether it answers, off the runtime.
///
/// # Errors
/// Only if the probe panics.
pub async fn tracing(
    mode: TracingMode,
    tracer: Option<(Tracer, &str)>,
    exporter: &Exporter,
) -> Result<String, Error> {
    let answers = if mode == TracingMode::Otel && exporter.endpoint.is_some() {
        let exporter = exporter.clone();
        blocking::run(move || Ok(exporter.answers())).await?
    } else {
        false
    };
    Ok(tracing_line(mode, tracer, exporter, answers))
}

/// The tracing line, given whether the exporter's endpoint answers.
fn tracing_line(
    mode: TracingMode,
    tracer: Option<(Tracer, &str)>,
    exporter: &Exporter,
    answers: bool,
) -> String {
    let services = match mode {
        TracingMode::Propagate => "propagate (headers forwarded; the services make no spans)".to_owned(),
        TracingMode::None => "none (no trace context forwarded: traces fall apart at every hop)".to_owned(),
        TracingMode::Otel => match &exporter.endpoint {
            None if exporter.configured => "otel; spans exported as OTEL_TRACES_EXPORTER says".to_owned(),
            None => "otel; the services send their spans to the trace store".to_owned(),
            Some(endpoint) if answers => format!("otel; spans exported to {endpoint}"),
            Some(endpoint) => format!(
                "otel; spans exported to {endpoint} (nothing answers there now: spans are dropped until it does)"
            ),
        },
    };
    let proxies = tracer.map(|(t, who)| format!(", {who} through Istio's {t} provider")).unwrap_or_default();
    format!("Tracing: {services}{proxies}.\n")
}

/// The lines of `--compare`: a mode per namespace, and how to compare them.
pub fn compare(tracer: Tracer, proxies: &Proxies) -> String {
    let how = match proxies.span_maker {
        Some(maker) => format!(
            "Compare a request of each: bookinfo traces compare latest:{maker}.bookinfo-propagate latest:{maker}.bookinfo-otel"
        ),
        None => "Compare a request of each: bookinfo traces show --limit 2 (in bookinfo-propagate only the gateway makes spans: no waypoint)".to_owned(),
    };
    let who = proxies.tracing;
    format!(
        "Tracing: propagate in bookinfo-propagate, otel in bookinfo-otel, {who} through Istio's {tracer} provider.\n{how}\n"
    )
}

/// Where the trace store listens and writes.
pub fn store(sink: &Sink) -> String {
    let url = |addr: Option<std::net::SocketAddr>| {
        addr.map(|a| format!("http://{a}")).unwrap_or_else(|| "-".into())
    };
    let mut lines = format!("Traces: viewer {}\n", url(sink.query));
    lines.push_str(&format!(
        "        receiving OTLP on {} and Zipkin on {}\n",
        url(sink.otlp),
        url(sink.zipkin)
    ));
    if let Some(file) = &sink.file {
        lines.push_str(&format!("        written to {}\n", file.display()));
    }
    lines.push_str(if sink.printing() {
        "        and printed here once finished\n"
    } else {
        "        (not printed here: --quiet-traces)\n"
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracing_line_says_where_the_spans_go() {
        let store = Exporter::default();
        assert_eq!(
            tracing_line(TracingMode::Otel, None, &store, false),
            "Tracing: otel; the services send their spans to the trace store.\n"
        );
        let console = Exporter { configured: true, endpoint: None };
        assert!(
            tracing_line(TracingMode::Otel, None, &console, false).contains("as OTEL_TRACES_EXPORTER says")
        );
        let jaeger = Exporter { configured: true, endpoint: Some("http://jaeger:4318".into()) };
        assert_eq!(
            tracing_line(TracingMode::Otel, Some((Tracer::Zipkin, "the sidecars")), &jaeger, true),
            "Tracing: otel; spans exported to http://jaeger:4318, the sidecars through Istio's zipkin provider.\n"
        );
        assert!(tracing_line(TracingMode::Otel, None, &jaeger, false).contains("nothing answers there now"));
        assert!(tracing_line(TracingMode::Propagate, None, &jaeger, false).starts_with("Tracing: propagate"));
    }

    #[test]
    fn the_comparison_hint_names_the_spans_each_data_plane_makes() {
        let sidecar = compare(Tracer::Zipkin, &Proxies::of(DataPlane::Sidecar, WaypointScope::None, true));
        assert!(sidecar.contains("latest:productpage.bookinfo-propagate latest:productpage.bookinfo-otel"));
        assert!(sidecar.contains("the sidecars through Istio's zipkin provider"));
        let waypoint =
            compare(Tracer::Otel, &Proxies::of(DataPlane::Ambient, WaypointScope::Namespace, true));
        assert!(waypoint.contains("latest:waypoint.bookinfo-propagate latest:waypoint.bookinfo-otel"));
        assert!(waypoint.contains("the gateway and the waypoint through"));
        let none = compare(Tracer::Otel, &Proxies::of(DataPlane::Ambient, WaypointScope::None, true));
        assert!(none.contains("traces show --limit 2") && none.contains("the gateway through"), "{none}");
    }

    #[test]
    fn the_routing_line_names_the_files_or_none() {
        assert_eq!(routing(&[], "x"), "Routing: none (calls to reviews spread over v1, v2 and v3).\n");
        let files = [PathBuf::from("/a.yaml"), PathBuf::from("/b.yaml")];
        assert_eq!(routing(&files, "by whom"), "Routing: /a.yaml, /b.yaml (by whom)\n");
    }
}
