// The Bookinfo trace viewer. It draws what /api/bookinfo computes (summaries, rows, hops)
// and computes none of those numbers itself, so the page and the terminal always agree.
// Everything from a trace reaches the page as text (textContent), never as markup.
"use strict";

const REFRESH_MS = 2000;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.error && body.error.message;
    throw new Error(message || `${response.status} ${response.statusText}`);
  }
  return body;
}

function duration(ns) {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)}s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)}ms`;
  return `${Math.round(ns / 1e3)}µs`;
}

function clock(ns) {
  return new Date(ns / 1e6).toLocaleTimeString([], { hour12: false }) + "." +
    String(Math.floor(ns / 1e6) % 1000).padStart(3, "0");
}

// One colour per workload, the same for its sidecar's spans and its application's.
function colour(workload) {
  let hash = 0;
  for (const c of workload) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360}, 55%, 48%)`;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

function failure(error) {
  return el("p", { class: "failure", role: "alert", text: `Cannot load: ${error.message}` });
}

async function refreshStats() {
  const stats = document.getElementById("stats");
  try {
    const { store, intake, writer } = await getJson("/api/bookinfo/stats");
    const size = (b) => (b >= 1048576 ? `${(b / 1048576).toFixed(1)} MiB` : `${Math.ceil(b / 1024)} KiB`);
    // What was not kept as it came, as the terminal says it too: never lost unseen.
    const losses = [
      [store.dropped, "spans past their trace's cap"],
      [intake ? intake.values_cut : 0, "values cut"],
      [intake ? intake.attributes_dropped : 0, "attributes dropped"],
      [intake ? intake.throttled : 0, "exports refused for now (429)"],
      [writer ? writer.spans_not_written : 0, "spans not written"],
    ].filter(([count]) => count > 0).map(([count, what]) => `${count} ${what}`);
    stats.textContent =
      `${store.traces} traces, ${store.spans} spans held (${size(store.bytes)} of ${size(store.limit)})` +
      (losses.length > 0 ? ` · ${losses.join(" · ")}` : "");
    stats.classList.toggle("failure", losses.length > 0);
    stats.title = writer && writer.error ? writer.error : "";
  } catch (_) {
    stats.textContent = "";
  }
}

// --- the list of recent traces -------------------------------------------------------------

function summaryCells(s) {
  return [
    el("td", { class: "when", text: clock(s.start_ns) }),
    el("td", {}, el("a", { href: `/trace/${s.trace_id}`, class: "root", text: s.root })),
    el("td", { class: "services", text: s.services.join(", ") }),
    el("td", { class: "num", text: `${s.spans}` }),
    el("td", { class: "num", text: `${s.sidecar_spans} / ${s.application_spans}` }),
    el("td", { class: "num", text: duration(s.duration_ns) }),
    el("td", { class: s.errors > 0 ? "num errors" : "num", text: `${s.errors}` }),
    el("td", { text: s.reviews_version || "" }),
  ];
}

async function listView() {
  const params = new URLSearchParams(location.search);
  const service = params.get("service") || "";
  const picked = new Set();
  const filter = el("select", { id: "service-filter", "aria-label": "service" });
  const compare = el("button", { id: "compare-picked", disabled: true, text: "Compare the two picked" });
  const live = el("input", { type: "checkbox", id: "live", checked: true });
  const body = el("tbody", { id: "trace-rows" });
  const table = el("table", { class: "traces" },
    el("thead", {}, el("tr", {},
      ["", "time", "root span", "services", "spans", "envoy / app", "duration", "errors", "reviews"]
        .map((h) => el("th", { text: h })))),
    body);
  compare.addEventListener("click", () => {
    const [a, b] = [...picked];
    location.href = `/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
  });
  filter.addEventListener("change", () => {
    const next = filter.value ? `/?service=${encodeURIComponent(filter.value)}` : "/";
    history.replaceState(null, "", next);
    load();
  });
  show(el("section", {},
    el("div", { class: "toolbar" },
      el("label", {}, "Service ", filter),
      el("label", {}, live, " refresh as traces arrive"),
      compare),
    table));

  async function load() {
    const chosen = filter.value || service;
    let data;
    try {
      data = await getJson(`/api/bookinfo/traces?limit=100${chosen ? `&service=${encodeURIComponent(chosen)}` : ""}`);
    } catch (error) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 9 }, failure(error))));
      return;
    }
    filter.replaceChildren(el("option", { value: "", text: "all services" }),
      ...data.services.map((s) => el("option", { value: s, text: s, selected: s === chosen })));
    if (data.traces.length === 0) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 9, class: "muted",
        text: "No traces yet: open the productpage and they appear here." })));
      return;
    }
    body.replaceChildren(...data.traces.map((s) => {
      const box = el("input", { type: "checkbox", "aria-label": "pick for comparison", checked: picked.has(s.trace_id) });
      box.addEventListener("change", () => {
        if (box.checked) picked.add(s.trace_id); else picked.delete(s.trace_id);
        compare.disabled = picked.size !== 2;
      });
      return el("tr", { "data-trace-id": s.trace_id, class: s.errors > 0 ? "failed" : "" }, el("td", {}, box), ...summaryCells(s));
    }));
    refreshStats();
  }

  await load();
  setInterval(() => { if (live.checked) load(); }, REFRESH_MS);
}

// --- one trace as a waterfall ---------------------------------------------------------------

function numbers(summaries, labels) {
  const rows = [
    ["trace", (s) => s.trace_id],
    ["reviews version", (s) => s.reviews_version || "-"],
    ["spans", (s) => s.spans],
    ["  made by Envoy", (s) => s.sidecar_spans],
    ["  made by the applications", (s) => s.application_spans],
    ["depth", (s) => s.depth],
    ["duration", (s) => duration(s.duration_ns)],
    ["orphans", (s) => s.orphans],
    ["errors", (s) => s.errors],
  ];
  return el("table", { class: "numbers" },
    labels ? el("thead", {}, el("tr", {}, el("th"), ...labels.map((l) => el("th", { text: l })))) : null,
    el("tbody", {}, rows.map(([label, get]) =>
      el("tr", {}, el("th", { text: label }), ...summaries.map((s) => el("td", { text: `${get(s)}` }))))));
}

function details(row) {
  const pairs = (list) => list.length === 0
    ? el("p", { class: "muted", text: "none" })
    : el("table", { class: "attributes" }, el("tbody", {},
      list.map(([k, v]) => el("tr", { class: k.startsWith("baggage") ? "baggage" : "" },
        el("th", { text: k }), el("td", { text: v })))));
  return el("div", { class: "details" },
    el("p", {}, `span ${row.span_id}`, row.parent_id ? ` · parent ${row.parent_id}` : " · no parent",
      ` · starts at +${duration(row.offset_ns)} · lasts ${duration(row.duration_ns)}`),
    el("h4", { text: "attributes" }), pairs(row.attributes),
    el("h4", { text: "resource (the process)" }), pairs(row.resource));
}

function waterfall(view) {
  const total = Math.max(view.summary.duration_ns, 1);
  const list = el("div", { class: "waterfall", role: "list" });
  for (const row of view.rows) {
    const pct = (x) => `${Math.min(100, Math.max(0, (x / total) * 100))}%`;
    const bar = el("div", {
      class: row.sidecar ? "bar envoy" : "bar app",
      style: { left: pct(row.offset_ns), width: `max(2px, ${pct(row.duration_ns)})`, backgroundColor: colour(row.workload) },
    });
    const line = el("div", {
      class: `row${row.error ? " failed" : ""}`, role: "listitem", tabindex: 0,
      "data-span-id": row.span_id, "data-service": row.service, "data-kind": row.kind,
      "data-maker": row.sidecar ? "envoy" : "app",
    },
      el("div", { class: "label", style: { paddingLeft: `${Math.min(row.depth, 40) * 14}px` } },
        el("span", { class: "swatch", style: { backgroundColor: colour(row.workload) } }),
        el("span", { class: "service", text: row.service }),
        el("span", { class: `kind ${row.kind.toLowerCase()}`, text: row.kind }),
        el("span", { class: row.sidecar ? "maker envoy" : "maker app", text: row.sidecar ? "envoy" : "app" }),
        el("span", { class: "name", text: row.name }),
        row.error ? el("span", { class: "mark-error", title: "failed", text: "!" }) : null,
        row.detached ? el("span", { class: "detached", text: `(${row.detached})` }) : null),
      el("div", { class: "track" }, bar),
      el("div", { class: "dur", text: duration(row.duration_ns) }));
    let open = null;
    const toggle = () => {
      if (open) { open.remove(); open = null; return; }
      open = details(row);
      line.after(open);
    };
    line.addEventListener("click", toggle);
    line.addEventListener("keydown", (e) => { if (e.key === "Enter") toggle(); });
    list.append(line);
  }
  const notes = [];
  if (view.hidden > 0) notes.push(el("p", { class: "muted", text: `… ${view.hidden} more spans not drawn` }));
  if (view.summary.dropped > 0) {
    notes.push(el("p", { class: "muted", text: `… ${view.summary.dropped} more spans arrived past the store's cap and were not kept` }));
  }
  return el("div", {}, list, notes);
}

async function traceView(reference) {
  let view;
  try {
    view = await getJson(`/api/bookinfo/traces/${encodeURIComponent(reference)}`);
  } catch (error) {
    show(failure(error));
    return;
  }
  document.title = `${view.summary.root} · Bookinfo traces`;
  show(el("section", { class: "trace" },
    el("h2", { text: view.summary.root }),
    el("p", { class: "muted", text: `${view.summary.services.join(", ")} · ${clock(view.summary.start_ns)}` }),
    numbers([view.summary]),
    el("p", { class: "hint", text: "Click a span for its attributes and its process's resource." }),
    waterfall(view)));
  refreshStats();
}

// --- two traces side by side ----------------------------------------------------------------

function compareForm(a, b) {
  const inputA = el("input", { name: "a", id: "compare-a", value: a || "latest:productpage.bookinfo-propagate", size: 44 });
  const inputB = el("input", { name: "b", id: "compare-b", value: b || "latest:productpage.bookinfo-otel", size: 44 });
  return el("form", { method: "get", action: "/compare", class: "toolbar" },
    el("label", {}, "A ", inputA), el("label", {}, "B ", inputB),
    el("button", { type: "submit", text: "Compare" }),
    el("span", { class: "muted", text: "a trace id, or latest:SERVICE" }));
}

function hopCell(spans) {
  if (spans.length === 0) return el("td", { class: "muted", text: "-" });
  return el("td", {}, spans.map((s) => el("span", { class: `chip ${s.sidecar ? "envoy" : "app"}`,
    style: { borderColor: colour(s.workload) }, text: `${s.workload} ${s.sidecar ? "envoy" : "app"} ${s.kind}` })));
}

async function compareView() {
  const params = new URLSearchParams(location.search);
  const [a, b] = [params.get("a"), params.get("b")];
  if (!a || !b) {
    show(el("section", {}, el("h2", { text: "Compare two traces" }), compareForm(a, b)));
    return;
  }
  let data;
  try {
    data = await getJson(`/api/bookinfo/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  } catch (error) {
    show(compareForm(a, b), failure(error));
    return;
  }
  const [sa, sb] = [data.a.summary, data.b.summary];
  show(el("section", { class: "compare" },
    compareForm(a, b),
    numbers([sa, sb], [`A: ${a}`, `B: ${b}`]),
    el("h3", { text: "Hop by hop" }),
    el("table", { class: "hops" },
      el("thead", {}, el("tr", {}, el("th", { text: "hop" }), el("th", { text: "A" }), el("th", { text: "B" }))),
      el("tbody", {}, data.hops.map((h) => el("tr", { "data-hop": h.hop }, el("th", { text: h.hop }), hopCell(h.a), hopCell(h.b))))),
    el("div", { class: "side-by-side" },
      el("div", { class: "side", id: "side-a" }, el("h3", {}, "A: ", el("a", { href: `/trace/${sa.trace_id}`, text: sa.root })), waterfall(data.a)),
      el("div", { class: "side", id: "side-b" }, el("h3", {}, "B: ", el("a", { href: `/trace/${sb.trace_id}`, text: sb.root })), waterfall(data.b)))));
  refreshStats();
}

// --- the service graph ----------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const LOOKBACKS = [["5 minutes", 300000], ["1 hour", 3600000], ["24 hours", 86400000]];

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// Layers by distance from the roots (nodes nobody calls): the longest chain of calls, so a
// caller is always left of what it calls; a node only on a cycle starts a layer of its own.
function layers(links) {
  const names = [...new Set(links.flatMap((l) => [l.parent, l.child]))].sort();
  const callers = new Map(names.map((n) => [n, 0]));
  for (const l of links) if (l.parent !== l.child) callers.set(l.child, callers.get(l.child) + 1);
  const depth = new Map();
  let frontier = names.filter((n) => callers.get(n) === 0);
  if (frontier.length === 0) frontier = names.slice(0, 1);
  frontier.forEach((n) => depth.set(n, 0));
  // At most one pass per node: a cycle cannot push a node further than that.
  for (let pass = 0; pass < names.length; pass++) {
    let moved = false;
    for (const l of links) {
      if (!depth.has(l.parent) || l.parent === l.child) continue;
      const next = depth.get(l.parent) + 1;
      if (!depth.has(l.child) || depth.get(l.child) < next) {
        if (next < names.length) { depth.set(l.child, next); moved = true; }
      }
    }
    if (!moved) break;
  }
  for (const n of names) if (!depth.has(n)) depth.set(n, 0);
  const columns = [];
  for (const n of names) (columns[depth.get(n)] ||= []).push(n);
  return columns.filter(Boolean);
}

function drawGraph(links) {
  const columns = layers(links);
  // Boxes as wide as the longest name (under 8 px a character at this size, and a margin).
  const longest = Math.max(...columns.flat().map((n) => n.length));
  const [width, height, gapX, gapY] = [Math.max(110, Math.round(longest * 7.6) + 28), 40, 80, 34];
  const place = new Map();
  columns.forEach((column, x) => column.forEach((name, y) =>
    place.set(name, { x: 20 + x * (width + gapX), y: 20 + y * (height + gapY) })));
  const tallest = Math.max(...columns.map((c) => c.length));
  const picture = svg("svg", {
    id: "graph", role: "img", "aria-label": "service graph",
    width: 40 + columns.length * width + (columns.length - 1) * gapX,
    height: 40 + tallest * height + (tallest - 1) * gapY,
  }, svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }))));
  for (const l of links) {
    const [a, b] = [place.get(l.parent), place.get(l.child)];
    const from = { x: a.x + width, y: a.y + height / 2 };
    const to = { x: b.x, y: b.y + height / 2 };
    // A call back to an earlier layer (or within one) bends below the boxes.
    const back = to.x <= from.x;
    const d = back
      ? `M ${a.x + width / 2} ${a.y + height} C ${a.x + width / 2} ${a.y + height + 40}, ${b.x + width / 2} ${b.y + height + 40}, ${b.x + width / 2} ${b.y + height}`
      : `M ${from.x} ${from.y} C ${from.x + gapX / 2} ${from.y}, ${to.x - gapX / 2} ${to.y}, ${to.x} ${to.y}`;
    const mid = back
      ? { x: (a.x + b.x + width) / 2, y: Math.max(a.y, b.y) + height + 34 }
      : { x: (from.x + to.x) / 2, y: (from.y + to.y) / 2 - 6 };
    const label = svg("text", { x: mid.x, y: mid.y, class: "edge-label", "text-anchor": "middle" },
      svg("tspan", { text: `${l.callCount}` }),
      l.errorCount > 0 ? svg("tspan", { class: "edge-errors", text: ` (${l.errorCount} failed)` }) : "");
    picture.append(svg("g", {
      class: l.errorCount > 0 ? "edge failed" : "edge",
      "data-parent": l.parent, "data-child": l.child, "data-calls": l.callCount, "data-errors": l.errorCount,
    }, svg("path", { d, "marker-end": "url(#arrow)" }), label));
  }
  for (const [name, at] of place) {
    picture.append(svg("g", { class: "node", "data-node": name },
      svg("rect", { x: at.x, y: at.y, width, height, rx: 6, stroke: colour(name) }),
      svg("text", { x: at.x + width / 2, y: at.y + height / 2 + 5, "text-anchor": "middle", text: name })));
  }
  return picture;
}

function edgeTable(links) {
  return el("table", { class: "traces edges" },
    el("thead", {}, el("tr", {}, ["caller", "called", "calls", "failed"].map((h) => el("th", { text: h })))),
    el("tbody", {}, links.map((l) => el("tr", { class: l.errorCount > 0 ? "failed" : "" },
      el("td", { text: l.parent }), el("td", { text: l.child }),
      el("td", { class: "num", text: `${l.callCount}` }),
      el("td", { class: l.errorCount > 0 ? "num errors" : "num", text: `${l.errorCount}` })))));
}

async function graphView() {
  const params = new URLSearchParams(location.search);
  const chosen = Number(params.get("lookback")) || 3600000;
  const lookback = el("select", { id: "graph-lookback", "aria-label": "lookback" },
    LOOKBACKS.map(([label, ms]) => el("option", { value: ms, text: label, selected: ms === chosen })));
  const live = el("input", { type: "checkbox", id: "live", checked: true });
  const area = el("div", { id: "graph-area" });
  lookback.addEventListener("change", () => {
    history.replaceState(null, "", `/graph?lookback=${lookback.value}`);
    load();
  });
  show(el("section", { class: "graph" },
    el("div", { class: "toolbar" },
      el("label", {}, "Calls of the last ", lookback),
      el("label", {}, live, " refresh as traces arrive")),
    area,
    el("p", { class: "hint", text: "A call is a span whose parent is another workload's (a sidecar's spans are its workload's); a database is named by its db.system.name. The same numbers: /api/dependencies." })));

  async function load() {
    let data;
    try {
      data = await getJson(`/api/dependencies?endTs=${Date.now()}&lookback=${lookback.value}`);
    } catch (error) {
      area.replaceChildren(failure(error));
      return;
    }
    const links = data.data || [];
    if (links.length === 0) {
      area.replaceChildren(el("p", { class: "muted", id: "graph-empty",
        text: "No calls between services in this window: open the productpage, or the services pass on no trace context." }));
      return;
    }
    area.replaceChildren(drawGraph(links), edgeTable(links));
    refreshStats();
  }

  await load();
  setInterval(() => { if (live.checked) load(); }, REFRESH_MS);
}

function route() {
  const path = location.pathname;
  if (path.startsWith("/trace/")) {
    document.getElementById("nav-traces").classList.add("here");
    return traceView(decodeURIComponent(path.slice("/trace/".length)));
  }
  if (path === "/graph") {
    document.getElementById("nav-graph").classList.add("here");
    return graphView();
  }
  if (path === "/compare") {
    document.getElementById("nav-compare").classList.add("here");
    return compareView();
  }
  document.getElementById("nav-traces").classList.add("here");
  return listView();
}

document.addEventListener("DOMContentLoaded", () => {
  refreshStats();
  route();
});
