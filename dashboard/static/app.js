/* The Celeriac dashboard page (docs/dashboard.md): hash routes over the JSON API of dashboard/server.ts,
 * DOM built with textContent only (no HTML from data), charts with uPlot (served from its package). */
/* global document, window, fetch, EventSource, sessionStorage, uPlot, URLSearchParams, setTimeout, clearTimeout, KUBE_QUEUE_COLUMNS, kubeOverview, kubeWorkers */
"use strict";

const main = document.getElementById("main");
const Node = window.Node;
let session = { namespace: "", allowActions: false, phases: [] };
/** Cleanups of the page shown (timers, SSE streams, charts). */
let cleanups = [];
/** Pages added by the scripts loaded after this one (workloads.js): name → {nav, render(arg, params)}. */
const extraPages = (window.celeriacPages = window.celeriacPages || {});

/** Builds an element: h("td", {class: "num"}, "3"); strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k in el && k !== "list") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** GET or POST the API; throws Error(message) on a non-2xx answer. */
async function api(path, opts) {
  const r = await fetch(`/api${path}`, opts);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(body.error || `HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return body;
}

const ageOf = (iso) => {
  if (!iso) return "";
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : s < 172800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86400)}d`;
};
const secs = (n) => (n === undefined ? "" : n < 120 ? `${Math.round(n)}s` : n < 7200 ? `${Math.floor(n / 60)}m` : `${Math.floor(n / 3600)}h`);
const json = (v) => JSON.stringify(v, null, 2);
const taskLink = (id) => h("a", { href: `#/task/${encodeURIComponent(id)}` }, id);
const phaseCell = (p) => h("td", { class: `phase-${p || "none"}`, "data-field": "phase" }, p || "");
const table = (headers, rows) => h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", { class: x.num ? "num" : undefined }, x.label || x)))), h("tbody", {}, rows));
const errorBox = (e) => h("p", { class: "err", role: "alert" }, String(e.message || e));

// ---- Overview ------------------------------------------------------------------------------

const QUEUE_COLUMNS = [
  { label: "Queue", field: "queue" },
  { label: "Backlog", field: "backlog", num: true },
  { label: "In flight", field: "inFlight", num: true },
  { label: "Delayed", field: "delayed", num: true },
  { label: "Dead", field: "dead", num: true },
  { label: "Held", field: "held", num: true },
  { label: "Settled /s", field: "ratePerSecond", num: true },
  { label: "Started /s", field: "startedPerSecond", num: true },
  { label: "Failed /s", field: "failedPerSecond", num: true },
  { label: "Oldest", field: "oldestTaskAgeSeconds", num: true, fmt: secs },
  { label: "Workers", field: "workers", num: true },
  { label: "Paused", field: "paused", fmt: (v, q) => (v ? `yes${q.pausedReason ? `: ${q.pausedReason}` : ""}` : "no") },
  ...KUBE_QUEUE_COLUMNS, // from the Queue resources (kube.js)
];

function queueRow(q) {
  return h("tr", { "data-queue": q.queue }, QUEUE_COLUMNS.map((c) => {
    const v = q[c.field];
    const text = c.fmt ? c.fmt(v, q) : v === undefined ? "" : String(v);
    if (c.field === "queue") return h("td", { "data-field": "queue" }, h("a", { href: `#/tasks?queue=${encodeURIComponent(v)}` }, v));
    return h("td", { class: c.num ? "num" : undefined, "data-field": c.field, title: c.title ? c.title(v, q) : undefined }, text);
  }));
}

/** The tick item's field of a history field (live updates). */
const TICK_FIELD = { rate: "ratePerSecond", started: "startedPerSecond", failed: "failedPerSecond" };

const PALETTE = ["#0969da", "#1a7f37", "#cf222e", "#9a6700", "#8250df", "#bf3989", "#1b7c83", "#116329", "#fb8500", "#0550ae"];

/** A queue's chart colour: a hash of its name into the palette, so adding a queue changes no other queue's colour. */
function queueColour(q) {
  let x = 2166136261;
  for (let i = 0; i < q.length; i++) x = Math.imul(x ^ q.charCodeAt(i), 16777619) >>> 0;
  return PALETTE[x % PALETTE.length];
}

/**
 * One uPlot chart of some history fields over time, a series per queue and field (fields:
 * [{field, label}]; one field: series named by queue only). `series` lists [queue, field] per column.
 */
function makeChart(title, id, fields, queues, hist, width) {
  const byT = new Set();
  for (const q of queues) for (const s of hist[q] || []) byT.add(s.t);
  const xs = [...byT].sort((a, b) => a - b);
  const idx = new Map(xs.map((t, i) => [t, i]));
  const series = queues.flatMap((q) => fields.map((f) => [q, f]));
  const data = [xs.map((t) => t / 1000), ...series.map(([q, f]) => {
    const col = new Array(xs.length).fill(null);
    for (const s of hist[q] || []) col[idx.get(s.t)] = s[f.field] ?? null;
    return col;
  })];

  const opts = {
    title, width, height: 220,
    scales: { x: { time: true } },
    series: [{}, ...series.map(([q, f]) => ({ label: fields.length > 1 ? `${q} ${f.label}` : q, stroke: queueColour(q), dash: fields.indexOf(f) > 0 ? [4, 3] : undefined, width: 1.5, spanGaps: true }))],
    axes: [{}, { size: 50 }],
  };
  const box = h("div", { class: "chart", "data-chart": id });
  const plot = new uPlot(opts, data, box);
  return { box, plot, data, series };
}

/** What the history note says: where the samples are kept and for how long. */
function historyNote(hist) {
  const mins = Math.round((hist.windowMs || 3600000) / 60000);
  const span = mins % 60 === 0 ? `${mins / 60} h` : `${mins} min`;
  return hist.store === "nats"
    ? h("p", { class: "muted", id: "history-store", "data-store": "nats" }, `Last ${span}: one point per ${Math.round(hist.resolutionMs / 1000)} s kept in NATS (bucket ${hist.bucket}, across dashboard restarts), one per sample since this dashboard started.`)
    : h("p", { class: "notice", id: "history-store", "data-store": "memory" }, `Since this dashboard started only (kept in memory): ${hist.reason || "no history store"}.`);
}

async function overview() {
  main.append(h("h1", {}, "Queues"));
  const status = h("p", { class: "muted", id: "tick" }, "Connecting…");
  const tbody = h("tbody", { id: "queues" });
  const kube = kubeOverview();
  cleanups.push(kube.stop);
  main.append(status, h("table", { id: "queue-table" }, h("thead", {}, h("tr", {}, QUEUE_COLUMNS.map((c) => h("th", { class: c.num ? "num" : undefined }, c.label)))), tbody), kube.el);
  if (session.allowActions) main.append(window.celeriacActions.queueBar((await api("/queues")).items.map((q) => q.queue)));
  const note = h("div", { id: "history-note" });
  main.append(h("h2", {}, "History"), note);
  const chartsBox = h("div", { class: "charts" });
  main.append(chartsBox);
  let charts = [];
  let queues = [];
  let windowMs = 3600000;
  const width = Math.max(360, Math.min(620, Math.floor((main.clientWidth - 40) / 2)));
  const build = async (names) => {
    const hist = await api("/history");
    windowMs = hist.windowMs || windowMs;
    note.replaceChildren(historyNote(hist));
    for (const c of charts) c.plot.destroy();
    chartsBox.replaceChildren();
    queues = names;
    charts = [
      makeChart("Backlog", "backlog", [{ field: "backlog", label: "backlog" }], names, hist.queues, width),
      makeChart("Throughput (started/s, settled/s)", "throughput", [{ field: "started", label: "started/s" }, { field: "rate", label: "settled/s" }], names, hist.queues, width),
      makeChart("Failures (failed/s: dead letters added)", "failures", [{ field: "failed", label: "failed/s" }], names, hist.queues, width),
    ];
    for (const c of charts) chartsBox.append(c.box);
  };
  const onTick = async (t) => {
    tbody.replaceChildren(...t.items.map(queueRow));
    status.textContent = `${t.items.length} queue${t.items.length === 1 ? "" : "s"} · updated ${new Date(t.at).toLocaleTimeString()}${t.error ? ` · last read failed: ${t.error}` : ""}`;
    status.className = t.error ? "err" : "muted";
    const names = t.items.map((q) => q.queue);
    if (names.join("\n") !== queues.join("\n")) return build(names);
    const x = Date.parse(t.at) / 1000;
    const byQueue = new Map(t.items.map((q) => [q.queue, q]));
    for (const c of charts) {
      if (c.data[0][c.data[0].length - 1] === x) continue;
      c.data[0].push(x);
      c.series.forEach(([q, f], i) => {
        const item = byQueue.get(q) || {};
        c.data[i + 1].push(item[TICK_FIELD[f.field] || f.field] ?? null);
      });
      // keep the window: drop what is older (work per tick, not per task)
      while (c.data[0].length > 1 && c.data[0][0] < x - windowMs / 1000) for (const col of c.data) col.shift();
      c.plot.setData(c.data);
    }
  };
  const es = new EventSource("/api/events");
  let busy = Promise.resolve();
  es.addEventListener("queues", (ev) => {
    const t = JSON.parse(ev.data);
    busy = busy.then(() => onTick(t)).catch((e) => status.replaceWith(errorBox(e)));
  });
  es.onerror = () => {
    status.textContent = "Live updates interrupted: reconnecting…";
    status.className = "err";
  };
  cleanups.push(() => es.close(), () => charts.forEach((c) => c.plot.destroy()));
}

// ---- Tasks ---------------------------------------------------------------------------------

async function tasks(params) {
  main.append(h("h1", {}, "Tasks"));
  const queues = (await api("/queues")).items.map((q) => q.queue);
  const idInput = h("input", { name: "id", placeholder: "task id", size: 40, value: params.get("id") || "" });
  main.append(h("form", { class: "filters", id: "search", onsubmit: (e) => {
    e.preventDefault();
    if (idInput.value.trim()) window.location.hash = `#/task/${encodeURIComponent(idInput.value.trim())}`;
  } }, h("label", {}, "Find by id", idInput), h("button", { type: "submit" }, "Find")));
  const sel = (name, options, value) => h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === (value || "") }, label)));
  const state = sel("state", [["", "any"], ...session.phases.map((p) => [p, p])], params.get("state"));
  const queue = sel("queue", [["", "all"], ...queues.map((q) => [q, q])], params.get("queue"));
  const task = h("input", { name: "task", placeholder: "task name", value: params.get("task") || "" });
  const limit = h("input", { name: "limit", type: "number", min: 1, max: 1000, value: params.get("limit") || "50", size: 5 });
  const timeHint = "15m, 2h, 1d, or 2026-12-03T10:00:00Z";
  const since = h("input", { name: "since", placeholder: timeHint, title: `last written at or after: ${timeHint}`, size: 18, value: params.get("since") || "" });
  const until = h("input", { name: "until", placeholder: timeHint, title: `last written at or before: ${timeHint}`, size: 18, value: params.get("until") || "" });
  const key = h("input", { name: "concurrencyKey", placeholder: "concurrency key", size: 14, value: params.get("concurrencyKey") || "" });
  main.append(h("form", { class: "filters", id: "filters", onsubmit: (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    for (const [k, el] of [["state", state], ["queue", queue], ["task", task], ["since", since], ["until", until], ["concurrencyKey", key], ["limit", limit]]) if (el.value.trim()) p.set(k, el.value.trim());
    window.location.hash = `#/tasks?${p}`;
  } }, h("label", {}, "State", state), h("label", {}, "Queue", queue), h("label", {}, "Task", task), h("label", {}, "Since", since), h("label", {}, "Until", until),
  h("label", {}, "Concurrency key", key), h("label", {}, "Limit", limit), h("button", { type: "submit" }, "List")));
  const out = h("div", { id: "task-list" }, h("p", { class: "muted" }, "Loading…"));
  main.append(out);
  const p = new URLSearchParams();
  for (const k of ["state", "queue", "task", "since", "until", "concurrencyKey"]) if (params.get(k)) p.set(k, params.get(k));
  p.set("limit", params.get("limit") || "50");
  try {
    const r = await api(`/tasks?${p}`);
    const keys = r.items.some((t) => t.concurrencyKey !== undefined);
    out.replaceChildren(
      r.items.length === 0 ? h("p", { class: "muted" }, "No tasks match.") : table(["Id", "Queue", "Task", "Phase", { label: "Attempts", num: true }, "Worker", ...(keys ? ["Key"] : []), "Updated", "Error"], r.items.map((t) => h("tr", { "data-task": t.id },
        h("td", {}, taskLink(t.id)), h("td", {}, t.queue), h("td", {}, t.task), phaseCell(t.status.phase), h("td", { class: "num" }, t.status.attempts ?? ""), h("td", {}, t.status.worker || ""),
        keys ? h("td", { "data-field": "concurrencyKey" }, t.concurrencyKey || "") : "", h("td", { title: t.updatedAt }, ageOf(t.updatedAt)), h("td", { class: "err" }, t.status.error ? t.status.error.message.split("\n")[0].slice(0, 80) : "")))),
      r.items.length ? h("p", { class: "muted", id: "task-order" }, `Newest first (${r.items.length} shown).`) : "",
      r.truncated ? h("p", { class: "muted" }, `The newest ${p.get("limit")}: older tasks match too (raise the limit or narrow the filter).`) : "",
    );
  } catch (e) {
    out.replaceChildren(errorBox(e));
  }
}

const TERMINAL = ["Succeeded", "Failed", "Cancelled", "Expired"];

/** A task's page: re-read every 3 s until the task ends (or the page is left). */
async function taskPage(id) {
  main.append(h("h1", {}, "Task ", h("code", {}, id)));
  const box = h("div", { id: "task-view" });
  let bar;
  let timer;
  let stopped = false;
  cleanups.push(() => {
    stopped = true;
    clearTimeout(timer);
  });
  const load = async () => {
    clearTimeout(timer);
    let v;
    try {
      v = await api(`/tasks?id=${encodeURIComponent(id)}`);
    } catch (e) {
      if (stopped) return;
      if (!box.firstChild || e.status === 404 || e.status === 400) {
        box.replaceChildren(errorBox(e));
        if (!box.isConnected) main.append(box);
        return;
      }
      timer = setTimeout(load, 3000); // a passing error: keep the last view, try again
      return;
    }
    if (stopped) return;
    const ended = TERMINAL.includes(v.phase);
    if (session.allowActions) {
      if (!bar) {
        bar = window.celeriacActions.revokeBar(v, () => load());
        main.append(bar);
      } else bar.update(v);
    }
    box.replaceChildren(...taskParts(v));
    if (!box.isConnected) main.append(box);
    box.dataset.phase = v.phase || "";
    box.dataset.refresh = ended ? "stopped" : "every 3 s";
    if (!ended) timer = setTimeout(load, 3000);
  };
  await load();
}

/** The parts of a task's page for one read of /api/tasks?id= (tasks get's view, plus taskResource for a Task resource). */
function taskParts(v) {
  const st = (v.record && v.record.status) || {};
  const tr = v.taskResource;
  const rows = [
    ["Task", v.task], ["Queue", `${v.namespace}/${v.queue}`], ["Origin", `${v.origin.kind}${v.origin.name ? ` ${v.origin.namespace || ""}/${v.origin.name}` : ""}`],
    tr ? ["Task resource", h("span", { id: "task-resource" }, `${tr.name} (uid ${tr.uid})${tr.phase ? `: ${tr.phase}` : ""}${tr.reason ? ` (${tr.reason})` : ""}${tr.message ? `: ${tr.message}` : ""}`)] : undefined,
    v.origin.kind === "Workflow" && v.origin.name ? ["Workflow", workflowOf(v)] : undefined,
    ["Phase", h("span", { class: `phase-${v.phase}`, id: "task-phase" }, v.phase || "")], ["Attempts", v.attempts ?? ""], ["Worker", v.worker || ""],
    ["Progress", st.progress ? h("span", {}, h("span", { class: "bar" }, progressBar(st.progress)), " ", st.progress.display) : ""],
    ["Updated", v.updatedAt || ""],
  ].filter(Boolean);
  if (v.retryOf) rows.push(["Retry of", taskLink(v.retryOf)]);
  if (v.retries) rows.push(["Retried as", v.retries.flatMap((r, i) => (i ? [", ", taskLink(r)] : [taskLink(r)]))]);
  if (v.revokedAt) rows.push(["Revoked", v.revokedAt]);
  if (v.deadLettered) rows.push(["Dead-lettered", h("a", { href: `#/dlq?queue=${encodeURIComponent(v.queue)}` }, "yes: see the queue's dead letters")]);
  if (v.canvas) {
    const c = v.canvas;
    if (c.root) rows.push(["Canvas", h("span", {}, "root ", taskLink(c.root), c.parent ? [", parent ", taskLink(c.parent)] : "", `, step ${c.step ?? "?"}`, c.failedStep ? [", failed step ", taskLink(c.failedStep.id)] : "")]);
    if (c.children) rows.push(["Canvas steps", c.children.flatMap((r, i) => (i ? [", ", taskLink(r)] : [taskLink(r)]))]);
  }
  const out = [h("table", { id: "task-fields" }, h("tbody", {}, rows.map(([k, val]) => h("tr", {}, h("th", {}, k), h("td", {}, val)))))];
  const args = v.args ? { args: v.args, kwargs: v.kwargs, from: v.argsSource ? `From the ${v.argsSource}.` : tr ? `From the Task resource's spec (${tr.name}).` : "" }
    : tr ? { args: tr.args, kwargs: tr.kwargs, from: `From the Task resource's spec (${tr.name}).` } : undefined;
  out.push(h("h2", {}, "Arguments"), args ? h("pre", { id: "task-args" }, `args: ${json(args.args)}\nkwargs: ${json(args.kwargs)}`)
    : h("p", { class: "muted", id: "task-args-missing" }, v.origin.kind === "Task" && v.origin.name
      ? `Not in the record: they are in the Task resource's spec (kubectl get task ${v.origin.name} -n ${v.origin.namespace || v.namespace} -o jsonpath='{.spec.args}').`
      : "Not kept: the results bucket keeps the status only, and the message is gone."));
  if (args && args.from) out.push(h("p", { class: "muted", id: "task-args-source" }, args.from));
  if (v.record && "result" in v.record.status) out.push(h("h2", {}, "Result"), h("pre", { id: "task-result" }, json(v.result)));
  if (v.resultRef) out.push(h("h2", {}, "Result"), h("p", {}, `Stored apart: ${v.resultRef.bucket} ${v.resultRef.key} (${v.resultRef.sizeBytes} bytes)`));
  if (v.error) out.push(h("h2", {}, "Error"), h("p", { class: "err", id: "task-error" }, `${v.error.type}: ${v.error.message}`), v.error.stack ? h("pre", { id: "task-stack" }, v.error.stack) : "");
  out.push(h("h2", {}, "Timeline"), table(["Time", "Event"], v.timeline.map((e) => h("tr", {}, h("td", {}, e.time), h("td", {}, e.event)))));
  return out;
}

/** A Workflow step task's link to its Workflow (task ids are `<workflow uid>_<step>…`, api/workflow.ts). */
function workflowOf(v) {
  const o = v.origin;
  const step = o.uid && v.id.startsWith(`${o.uid}_`) ? v.id.slice(o.uid.length + 1).split("_")[0] : undefined;
  return h("span", {}, h("a", { href: `#/workflow/${encodeURIComponent(o.name)}`, id: "task-workflow" }, o.name), step ? `, step ${step}` : "");
}

function progressBar(p) {
  const s = h("span");
  s.style.width = `${Math.round((p.fraction ?? 0) * 100)}%`;
  return s;
}

// ---- Workers -------------------------------------------------------------------------------

async function workers() {
  main.append(h("h1", {}, "Workers"));
  const box = h("div", { id: "workers" }, h("p", { class: "muted" }, "Asking the workers…"));
  const kube = kubeWorkers(); // worker pods and autoscaler decisions (kube.js)
  cleanups.push(kube.stop);
  main.append(box, kube.el);
  let timer;
  let stopped = false;
  const load = async () => {
    try {
      const r = await api("/workers");
      const active = new Map(r.active.items.map((a) => [`${a.queue}/${a.worker}`, a.active || []]));
      const registered = new Map(r.registered.items.map((a) => [`${a.queue}/${a.worker}`, a.registered || []]));
      const parts = [];
      if (r.ping.items.length === 0) parts.push(h("p", { class: "muted" }, "No live workers: none answered and none is in the worker registry."));
      else parts.push(table(["Queue", "Worker", "Status", { label: "Slots", num: true }, "Uptime", "Version", "Registered tasks", "Reply"], r.ping.items.map((w) => h("tr", { "data-worker": w.worker, "data-queue": w.queue },
        h("td", {}, w.queue), h("td", {}, w.worker), h("td", { class: w.answered ? "phase-Succeeded" : "err", "data-field": "status" }, w.status),
        h("td", { class: "num", "data-field": "slots" }, w.active === undefined ? "" : `${w.active}/${w.concurrency}`), h("td", {}, secs(w.uptimeSeconds)), h("td", {}, w.version || ""),
        h("td", { "data-field": "registered" }, (registered.get(`${w.queue}/${w.worker}`) || []).join(", ")), h("td", {}, w.replyMs === undefined ? `last seen ${ageOf(w.lastSeen)} ago` : `${w.replyMs} ms`)))));
      const running = r.ping.items.flatMap((w) => (active.get(`${w.queue}/${w.worker}`) || []).map((a) => ({ w, a })));
      parts.push(h("h2", {}, `Running tasks (${running.length})`));
      if (running.length) parts.push(table(["Worker", "Id", "Task", { label: "Attempt", num: true }, "Started", "Progress"], running.map(({ w, a }) => h("tr", { "data-task": a.id },
        h("td", {}, w.worker), h("td", {}, taskLink(a.id)), h("td", {}, a.task), h("td", { class: "num" }, a.attempt), h("td", {}, `${ageOf(a.startedAt)} ago`),
        h("td", { "data-field": "progress" }, a.progress ? [h("span", { class: "bar" }, progressBar(a.progress)), " ", a.progress.display] : "")))));
      if (r.stale) parts.push(h("p", { class: "muted" }, `${r.stale} gone worker${r.stale === 1 ? "" : "s"} in the registry (last seen over 30 s ago), not shown.`));
      parts.push(h("p", { class: "muted" }, `Asked ${new Date().toLocaleTimeString()}; refreshed every 3 s.`));
      box.replaceChildren(...parts);
    } catch (e) {
      box.replaceChildren(errorBox(e));
    }
    if (!stopped) timer = setTimeout(load, 3000);
  };
  cleanups.push(() => {
    stopped = true;
    clearTimeout(timer);
  });
  await load();
}

// ---- Dead letters --------------------------------------------------------------------------

const csrf = () => (document.cookie.split(";").map((c) => c.trim().split("=")).find(([k]) => k === "celeriac_csrf") || [])[1] || "";

async function dlq(params) {
  main.append(h("h1", {}, "Dead letters"));
  const queues = (await api("/queues")).items.map((q) => q.queue);
  if (queues.length === 0) {
    main.append(h("p", { class: "muted" }, "No queues."));
    return;
  }
  const current = params.get("queue") && queues.includes(params.get("queue")) ? params.get("queue") : queues[0];
  const pick = h("select", { name: "queue", onchange: () => (window.location.hash = `#/dlq?queue=${encodeURIComponent(pick.value)}`) }, queues.map((q) => h("option", { value: q, selected: q === current }, q)));
  main.append(h("form", { class: "filters" }, h("label", {}, "Queue", pick)));
  const notice = h("div", { id: "dlq-notice" });
  const box = h("div", { id: "dlq-list" }, h("p", { class: "muted" }, "Loading…"));
  const detail = h("div", { id: "dlq-detail" });
  let items = [];
  const checks = new Map();
  const selected = () => items.filter((d) => checks.get(d.seq)?.checked).map((d) => d.seq);
  const act = async (what) => {
    const seqs = selected();
    if (seqs.length === 0) {
      notice.replaceChildren(h("p", { class: "err" }, "Select dead letters first."));
      return;
    }
    const question = what === "replay"
      ? `Replay ${seqs.length} dead letter${seqs.length === 1 ? "" : "s"} of ${current} as new tasks? The dead letters are kept.`
      : `Delete ${seqs.length} dead letter${seqs.length === 1 ? "" : "s"} of ${current}? This cannot be undone.`;
    if (!window.confirm(question)) return;
    sessionStorage.setItem("celeriac-action-token", tokenInput.value);
    try {
      const r = await api(`/dlq/${encodeURIComponent(current)}/${what}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${tokenInput.value}`, "X-CSRF-Token": csrf() },
        body: JSON.stringify({ seqs }),
      });
      notice.replaceChildren(h("p", { class: "notice", id: "action-result" }, what === "replay"
        ? r.items.map((o) => `seq ${o.seq}: ${o.outcome}${o.outcome === "Replayed" ? ` as ${o.replayId}` : ""}${o.message ? ` (${o.message})` : ""}`).join("; ")
        : `Deleted ${r.deleted} dead letter${r.deleted === 1 ? "" : "s"}.`));
      await reloadAfterAction();
    } catch (e) {
      notice.replaceChildren(errorBox(e));
    }
  };
  // after a replay or purge: re-read the list now, then every second while a replay listed has not
  // ended (at most 30 s), so its Replay column follows it without a reload
  let followTimer;
  let followUntil = 0;
  cleanups.push(() => {
    followUntil = 0;
    clearTimeout(followTimer);
  });
  const reloadAfterAction = async () => {
    followUntil = Date.now() + 30_000;
    clearTimeout(followTimer);
    checks.clear(); // the acted-on selection is done with
    const again = async () => {
      await load();
      const open = items.some((d) => d.replay && !TERMINAL.includes(d.replay.phase));
      if (open && Date.now() < followUntil) followTimer = setTimeout(again, 1000);
    };
    await again();
  };
  const k8s = session.auth === "kubernetes";
  const tokenInput = h("input", { type: "password", name: "token", class: "credential", placeholder: k8s ? "your Kubernetes token" : "action token", autocomplete: "off", value: sessionStorage.getItem("celeriac-action-token") || "" });
  if (session.allowActions) {
    main.append(h("div", { class: "actions" }, h("label", {}, k8s ? "Kubernetes token " : "Action token ", tokenInput),
      h("button", { type: "button", id: "replay", onclick: () => act("replay") }, "Replay selected"),
      h("button", { type: "button", id: "purge", class: "danger", onclick: () => act("purge") }, "Purge selected")),
      window.celeriacActions.filterBar(current, (n) => notice.replaceChildren(n), () => reloadAfterAction()));
  } else {
    main.append(h("p", { class: "notice" }, "Read-only: start the dashboard with --allow-actions to replay or purge."));
  }
  main.append(notice, box, detail);
  const show = async (seq) => {
    try {
      const d = await api(`/dlq/${encodeURIComponent(current)}/${seq}`);
      detail.replaceChildren(h("h2", {}, `Dead letter ${seq}`), table(["Header", "Value"], Object.entries(d.headers).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v)))),
        h("h2", {}, `Original bytes (${d.bytes})`), h("pre", { id: "dlq-body" }, d.body ?? `base64: ${d.bodyBase64}`));
    } catch (e) {
      detail.replaceChildren(errorBox(e));
    }
  };
  const load = async () => {
    try {
      const was = new Set(selected());
      items = (await api(`/dlq?queue=${encodeURIComponent(current)}&limit=500`)).items;
      checks.clear();
      box.replaceChildren(items.length === 0 ? h("p", { class: "muted" }, `No dead letters in ${current}.`) : table(["", { label: "Seq", num: true }, "Id", "Task", "Reason", { label: "Attempts", num: true }, "Age", "Replay", "Error", ""], items.map((d) => {
        const cb = h("input", { type: "checkbox", "data-seq": d.seq, disabled: !session.allowActions, checked: was.has(d.seq) });
        checks.set(d.seq, cb);
        return h("tr", { "data-seq": d.seq }, h("td", {}, cb), h("td", { class: "num" }, d.seq), h("td", {}, d.id ? taskLink(d.id) : ""), h("td", {}, d.task || ""), h("td", { "data-field": "reason" }, d.reason || ""),
          h("td", { class: "num" }, d.attempts ?? ""), h("td", {}, ageOf(d.deadLetteredAt)), h("td", { "data-field": "replay" }, d.replay ? [taskLink(d.replay.id), ` (${d.replay.phase || "published"})`] : ""),
          h("td", { class: "err" }, d.error ? d.error.slice(0, 80) : ""), h("td", {}, h("button", { type: "button", onclick: () => show(d.seq) }, "Bytes")));
      })));
    } catch (e) {
      box.replaceChildren(errorBox(e));
    }
  };
  await load();
}

// ---- routing -------------------------------------------------------------------------------

/** An unknown `#/<page>`: says so, with links to the pages there are. */
function noSuchPage(page) {
  const links = [...document.querySelectorAll("nav a")].map((a) => h("a", { href: a.getAttribute("href") }, a.textContent));
  main.append(h("h1", {}, "No such page"), h("p", { class: "err", id: "no-such-page" }, `No such page: ${page}`),
    h("p", {}, "Pages: ", links.flatMap((l, i) => (i ? [", ", l] : [l]))));
}

async function route() {
  for (const c of cleanups) c();
  cleanups = [];
  main.replaceChildren();
  const hash = window.location.hash || "#/overview";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const [, page, arg] = path.split("/");
  const extra = Object.hasOwn(extraPages, page) ? extraPages[page] : undefined;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === (page === "task" ? "tasks" : extra ? extra.nav : page));
  try {
    if (page === "tasks") await tasks(params);
    else if (page === "task" && arg) await taskPage(decodeURIComponent(arg));
    else if (page === "workers") await workers();
    else if (page === "dlq") await dlq(params);
    else if (extra) await extra.render(arg === undefined ? undefined : decodeURIComponent(arg), params);
    else if (page === "overview" || page === undefined || page === "") await overview();
    else noSuchPage(page);
  } catch (e) {
    main.append(errorBox(e));
  }
  main.dataset.ready = hash;
}

(async () => {
  try {
    session = await api("/session");
    document.getElementById("ns").textContent = `namespace ${session.namespace}`;
    const mode = document.getElementById("mode");
    mode.textContent = session.allowActions ? (session.auth === "kubernetes" ? "actions allowed (Kubernetes identity)" : "actions allowed") : "read-only";
    if (session.allowActions) mode.classList.add("rw");
  } catch (e) {
    main.append(errorBox(e));
  }
  // the scripts after this one (workloads.js) add their pages: route once they all ran
  if (document.readyState === "loading") await new Promise((r) => document.addEventListener("DOMContentLoaded", r, { once: true }));
  window.addEventListener("hashchange", route);
  await route();
})();
