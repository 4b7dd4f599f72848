/* The dashboard's Kubernetes parts (docs/dashboard.md): Queue resources on the Overview (workers
 * ready/desired, suspended/paused) and the Workers page's "Worker pods" and "Autoscaler decisions",
 * from /api/kube/* (dashboard/routes-kube.ts). Loaded before app.js; uses its h(), api(), table(),
 * ageOf() and errorBox() when called. Without a Kubernetes API the columns show "—" and the page says so. */
/* global h, api, table, ageOf, errorBox, setTimeout, clearTimeout */
/* exported KUBE_QUEUE_COLUMNS, kubeOverview, kubeWorkers */
"use strict";

/** The last /api/kube/queues answer: `configured`, `error`, `at`, and the Queue views by name. */
const kubeQueues = { configured: undefined, error: undefined, at: undefined, byName: new Map() };
const DASH = "—";

/** Reads /api/kube/queues into kubeQueues (never throws: an error is kept for the note). */
async function refreshKubeQueues() {
  try {
    const r = await api("/kube/queues");
    kubeQueues.configured = r.configured;
    kubeQueues.error = r.error;
    kubeQueues.at = r.at;
    kubeQueues.byName = new Map(r.items.map((q) => [q.name, q]));
  } catch (e) {
    kubeQueues.error = String(e.message || e);
  }
}

/** The Queue resource's Ready condition, when read. */
function readyCondition(queue) {
  const k = kubeQueues.byName.get(queue);
  return k && (k.conditions || []).find((c) => c.type === "Ready");
}

/** Overview columns from the Queue resources (app.js QUEUE_COLUMNS appends them). */
const KUBE_QUEUE_COLUMNS = [
  { label: "Ready", field: "kubeReady", fmt: (_v, q) => {
    const c = readyCondition(q.queue);
    return c ? `${c.status}${c.reason ? `: ${c.reason}` : ""}` : DASH;
  }, title: (_v, q) => readyCondition(q.queue)?.message },
  { label: "Workers ready/desired", field: "kubeWorkers", num: true, fmt: (_v, q) => {
    const k = kubeQueues.byName.get(q.queue);
    return k ? `${k.workersReady}/${k.workersDesired ?? DASH}` : DASH;
  } },
  { label: "Suspended/paused", field: "kubeSuspend", fmt: (_v, q) => {
    const k = kubeQueues.byName.get(q.queue);
    if (!k) return DASH;
    const s = [k.suspended ? "suspended" : "", k.paused ? `paused${k.paused.reason ? `: ${k.paused.reason}` : ""}` : ""].filter(Boolean);
    return s.length ? s.join(", ") : "no";
  } },
];

/** One line saying where the Kubernetes figures come from, or why there are none. */
function kubeNote(r) {
  if (r.configured === false) return h("p", { class: "muted", "data-kube": "absent" }, `Kubernetes API: none (${r.error || "not configured"}); the columns and tables from it show ${DASH}.`);
  if (r.error) return h("p", { class: "err", "data-kube": "error" }, `Kubernetes API unreachable: ${r.error}${r.at ? ` (showing the read of ${new Date(r.at).toLocaleTimeString()})` : ""}`);
  return h("p", { class: "muted", "data-kube": "ok" }, r.at ? `Kubernetes API read ${new Date(r.at).toLocaleTimeString()} (every 5 s).` : "Reading the Kubernetes API…");
}

/** Overview: polls the Queue resources every 5 s (the rows read kubeQueues on each tick); returns the note's holder and a stop function. */
function kubeOverview() {
  const holder = h("div", { id: "kube-overview" });
  let timer;
  let stopped = false;
  const loop = async () => {
    await refreshKubeQueues();
    holder.replaceChildren(kubeNote(kubeQueues));
    if (!stopped) timer = setTimeout(loop, 5000);
  };
  void loop();
  return { el: holder, stop: () => { stopped = true; clearTimeout(timer); } };
}

/** Workers page: "Worker pods" and "Autoscaler decisions" (the last `perQueue` Scaled events of each queue), every 5 s. */
function kubeWorkers(perQueue = 5) {
  const box = h("div", { id: "kube-workers" }, h("h2", {}, "Worker pods"), h("p", { class: "muted" }, "Reading the Kubernetes API…"));
  let timer;
  let stopped = false;
  const load = async () => {
    try {
      const [pods, events] = await Promise.all([api("/kube/pods"), api("/kube/events?reason=Scaled&limit=500")]);
      const parts = [h("h2", {}, "Worker pods"), kubeNote(pods)];
      if (pods.configured) {
        if (pods.items.length === 0) parts.push(h("p", { class: "muted" }, "No worker pods."));
        else parts.push(table(["Pod", "Queue", "Ready", { label: "Restarts", num: true }, "Phase", "Age", "Node"], pods.items.map((p) => h("tr", { "data-pod": p.name, "data-queue": p.queue },
          h("td", {}, p.name), h("td", {}, p.queue), h("td", { class: p.isReady ? "phase-Succeeded" : "err", "data-field": "ready" }, p.ready),
          h("td", { class: "num", "data-field": "restarts" }, p.restarts), h("td", { "data-field": "phase" }, `${p.terminating ? "Terminating" : p.phase}${p.reason ? ` (${p.reason})` : ""}`),
          h("td", {}, p.createdAt ? ageOf(p.createdAt) : ""), h("td", {}, p.node || "")))));
      }
      parts.push(h("h2", {}, "Autoscaler decisions"));
      if (events.configured) {
        const per = new Map();
        for (const e of events.items) {
          const l = per.get(e.queue) || [];
          if (l.length < perQueue) l.push(e);
          per.set(e.queue, l);
        }
        const rows = [...per.keys()].sort().flatMap((q) => per.get(q));
        if (events.error) parts.push(kubeNote(events));
        if (rows.length === 0) parts.push(h("p", { class: "muted" }, "No Scaled events (the operator records one each time it changes a queue's worker count; Events expire after about an hour)."));
        else parts.push(table(["Time", "Queue", "Reason", "Message", { label: "Count", num: true }], rows.map((e) => h("tr", { "data-event-queue": e.queue },
          h("td", { title: e.time || "" }, e.time ? `${ageOf(e.time)} ago` : ""), h("td", {}, e.queue), h("td", {}, e.reason), h("td", { "data-field": "message" }, e.message), h("td", { class: "num" }, e.count)))));
        parts.push(h("p", { class: "muted" }, `The last ${perQueue} per queue, newest first.`));
      } else {
        parts.push(h("p", { class: "muted" }, DASH));
      }
      box.replaceChildren(...parts);
    } catch (e) {
      box.replaceChildren(h("h2", {}, "Worker pods"), errorBox(e));
    }
    if (!stopped) timer = setTimeout(load, 5000);
  };
  void load();
  return { el: box, stop: () => { stopped = true; clearTimeout(timer); } };
}
