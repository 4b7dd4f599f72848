/* The dashboard's Schedules and Workflows pages (docs/dashboard.md), over /api/schedules and /api/workflows
 * (dashboard/routes-workloads.ts). Loaded after app.js, whose helpers (h, api, main, table, taskLink,
 * phaseCell, errorBox, json, cleanups) it uses, and registered in its page table (window.celeriacPages).
 * A Workflow's DAG is drawn with cytoscape (served from its package, loaded by the first Workflow page), nodes coloured by step phase;
 * clicking a node opens its task's page. DOM built with textContent only. */
/* global window, document, cytoscape, setTimeout, clearTimeout, h, api, main, table, taskLink, phaseCell, errorBox, json, cleanups */
"use strict";

(() => {
  /** Colours of the step phases (api/workflow.ts STEP_PHASES), for the DAG's nodes. */
  const PHASE_COLOURS = { Pending: "#8c959f", Running: "#0969da", Succeeded: "#1a7f37", Failed: "#cf222e", Cancelled: "#9a6700" };
  const REFRESH_MS = 3000;
  const FINAL = new Set(["Succeeded", "Failed", "Cancelled"]);

  /** "in 12s" / "3m ago" for an RFC 3339 time, "" for none. */
  const rel = (iso) => {
    if (!iso) return "";
    const d = Math.round((Date.parse(iso) - Date.now()) / 1000);
    const a = Math.abs(d);
    const t = a < 120 ? `${a}s` : a < 7200 ? `${Math.floor(a / 60)}m` : a < 172800 ? `${Math.floor(a / 3600)}h` : `${Math.floor(a / 86400)}d`;
    return d >= 0 ? `in ${t}` : `${t} ago`;
  };
  /** A time cell: the relative time, the absolute one as the tooltip. */
  const timeCell = (iso, field) => h("td", { "data-field": field, title: iso || undefined }, iso ? rel(iso) : "");
  const scheduleLink = (name) => h("a", { href: `#/schedule/${encodeURIComponent(name)}` }, name);
  const workflowLink = (name) => h("a", { href: `#/workflow/${encodeURIComponent(name)}` }, name);
  const runLink = (r) => (r.kind === "Workflow" ? workflowLink(r.name) : r.uid ? h("a", { href: `#/task/${encodeURIComponent(r.uid)}`, title: `task id ${r.uid}` }, r.name) : r.name);
  const fields = (id, rows) => h("table", { id }, h("tbody", {}, rows.filter(Boolean).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))));
  const at = (iso) => (iso ? h("span", { title: iso }, `${new Date(iso).toLocaleString()} (${rel(iso)})`) : "");

  /** Runs `load` now and every REFRESH_MS while the page is shown (and `more()` says so). */
  async function refreshing(load, more = () => true) {
    let timer;
    let stopped = false;
    const again = async () => {
      await load();
      if (!stopped && more()) timer = setTimeout(again, REFRESH_MS);
    };
    cleanups.push(() => {
      stopped = true;
      clearTimeout(timer);
    });
    await again();
  }

  // ---- Schedules -------------------------------------------------------------------------

  async function schedules() {
    main.append(h("h1", {}, "Schedules"));
    const box = h("div", { id: "schedules" }, h("p", { class: "muted" }, "Loading…"));
    main.append(box);
    await refreshing(async () => {
      try {
        const r = await api("/schedules");
        box.replaceChildren(r.items.length === 0 ? h("p", { class: "muted" }, `No Schedules in namespace ${r.namespace}.`) : table(
          ["Name", "Schedule", "Creates", "Suspend", "Ready", "Next fire", "Last fire", "Last outcome", { label: "Missed", num: true }, { label: "Active", num: true }],
          r.items.map((s) => h("tr", { "data-schedule": s.name },
            h("td", {}, scheduleLink(s.name)),
            h("td", { "data-field": "schedule" }, h("code", {}, s.schedule), s.timeZone !== "UTC" ? ` (${s.timeZone})` : ""),
            h("td", {}, s.creates),
            h("td", { "data-field": "suspend", class: s.suspend ? "phase-Cancelled" : undefined }, s.suspend ? "yes" : "no"),
            h("td", { "data-field": "ready", class: s.ready && s.ready.status !== "True" ? "err" : undefined, title: s.ready && s.ready.message }, s.ready ? (s.ready.status === "True" ? "yes" : `no: ${s.ready.reason || ""}`) : ""),
            timeCell(s.suspend ? undefined : s.nextScheduleTime, "next"),
            timeCell(s.lastScheduleTime, "last"),
            s.lastOutcome ? h("td", { class: `phase-${s.lastOutcome.phase || "none"}`, "data-field": "outcome" }, s.lastOutcome.phase || "", " ", runLink(s.lastOutcome)) : h("td", { "data-field": "outcome" }),
            h("td", { class: "num", "data-field": "missed", title: s.lastMissedTime ? `last missed ${s.lastMissedTime}` : undefined }, s.missedRuns),
            h("td", { class: "num", "data-field": "active" }, s.active))),
        ));
      } catch (e) {
        box.replaceChildren(errorBox(e));
      }
    });
  }

  async function schedulePage(name) {
    main.append(h("h1", {}, "Schedule ", h("code", {}, name)));
    const box = h("div", { id: "schedule" }, h("p", { class: "muted" }, "Loading…"));
    main.append(box);
    await refreshing(async () => {
      try {
        const s = await api(`/schedules/${encodeURIComponent(name)}`);
        box.replaceChildren(
          fields("schedule-fields", [
            ["Schedule", h("span", {}, h("code", {}, s.schedule), ` in ${s.timeZone}`)],
            ["Creates", `a ${s.creates} per run`],
            ["Suspend", h("span", { id: "schedule-suspend" }, s.suspend ? "yes: no runs are created" : "no")],
            ["Ready", s.ready ? `${s.ready.status}${s.ready.reason ? ` (${s.ready.reason})` : ""}${s.ready.message ? `: ${s.ready.message}` : ""}` : "not reconciled yet"],
            ["Next fire", s.suspend ? "suspended" : at(s.nextScheduleTime)],
            ["Last fire", at(s.lastScheduleTime)],
            ["Last success", at(s.lastSuccessfulTime)],
            ["Last outcome", s.lastOutcome ? h("span", { class: `phase-${s.lastOutcome.phase}` }, `${s.lastOutcome.phase} `, runLink(s.lastOutcome)) : "none finished yet"],
            ["Missed runs", h("span", { id: "schedule-missed" }, `${s.missedRuns}${s.lastMissedTime ? `, last ${new Date(s.lastMissedTime).toLocaleString()}` : ""}`)],
            ["Policies", `concurrency ${s.concurrencyPolicy}; missed runs ${s.missedRunPolicy || "RunLatest"}${s.startingDeadlineSeconds !== undefined ? `; starting deadline ${s.startingDeadlineSeconds}s` : ""}; history kept: ${s.successfulTasksHistoryLimit ?? 3} succeeded, ${s.failedTasksHistoryLimit ?? 1} failed`],
          ]),
          h("h2", {}, `Runs (${s.runs.length}${s.runsTruncated ? "+" : ""})`),
          s.runs.length === 0 ? h("p", { class: "muted" }, "No runs kept: none fired yet, or the history limits deleted them.") : table(
            ["Run", "Kind", "Scheduled", "Phase", "Finished", "Message"],
            s.runs.map((r) => h("tr", { "data-run": r.name }, h("td", {}, runLink(r)), h("td", {}, r.kind), timeCell(r.scheduledAt, "scheduled"), phaseCell(r.phase), timeCell(r.completionTime, "finished"), h("td", { class: "err" }, r.message || ""))),
          ),
          h("p", { class: "muted" }, "A Task run links to its task's page (its task id is the Task's uid); a Workflow run to its Workflow. Refreshed every 3 s."),
        );
      } catch (e) {
        box.replaceChildren(errorBox(e));
      }
    });
  }

  // ---- Workflows -------------------------------------------------------------------------

  async function workflows() {
    main.append(h("h1", {}, "Workflows"));
    const box = h("div", { id: "workflows" }, h("p", { class: "muted" }, "Loading…"));
    main.append(box);
    await refreshing(async () => {
      try {
        const r = await api("/workflows");
        box.replaceChildren(r.items.length === 0 ? h("p", { class: "muted" }, `No Workflows in namespace ${r.namespace}.`) : table(
          ["Name", "Phase", { label: "Steps", num: true }, "Queue", "Started", "Finished", "Duration", "Schedule", "Message"],
          r.items.map((w) => h("tr", { "data-workflow": w.name },
            h("td", {}, workflowLink(w.name)), phaseCell(w.phase), h("td", { class: "num", "data-field": "steps" }, `${w.stepsDone}/${w.stepsTotal}`), h("td", {}, w.queue),
            timeCell(w.startTime, "started"), timeCell(w.completionTime, "finished"), h("td", {}, w.duration || ""), h("td", {}, w.schedule ? scheduleLink(w.schedule) : ""), h("td", { class: "err" }, w.message || ""))),
        ));
      } catch (e) {
        box.replaceChildren(errorBox(e));
      }
    });
  }

  /** The cytoscape elements of a Workflow's DAG. */
  function dagElements(w) {
    const nodes = w.steps.map((s) => ({
      group: "nodes",
      data: { id: s.name, label: `${s.name}\n${s.phase}${s.tasks.total > 1 ? ` ${s.tasks.succeeded}/${s.tasks.total}` : ""}`, phase: s.phase, taskIds: s.taskIds, hook: s.hook },
      classes: s.hook ? "hook" : "",
    }));
    const edges = w.edges.map((e) => ({ group: "edges", data: { id: `${e.from}->${e.to}`, source: e.from, target: e.to }, classes: e.kind }));
    return [...nodes, ...edges];
  }

  let cytoscapeLoaded;
  /** Loads cytoscape (433 KB) the first time a Workflow page needs it, not with every page. */
  const loadCytoscape = () => (cytoscapeLoaded ??= new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "/vendor/cytoscape/cytoscape.min.js";
    s.onload = resolve;
    s.onerror = () => {
      cytoscapeLoaded = undefined;
      reject(new Error("could not load /vendor/cytoscape/cytoscape.min.js: the DAG cannot be drawn"));
    };
    document.head.append(s);
  }));

  /** A node's width, px: its longest label line at about 7 px a character (12 px system-ui), plus room. */
  const nodeWidth = (n) => Math.max(56, 16 + 7 * Math.max(...String(n.data("label")).split("\n").map((l) => l.length)));

  /** Draws the DAG in `box`; returns the cytoscape instance (also window.__cy, for tests). */
  function drawDag(box, w) {
    const style = [
      { selector: "node", style: { shape: "round-rectangle", width: nodeWidth, height: 38, padding: "6px", label: "data(label)", "text-wrap": "wrap", "text-valign": "center", "text-halign": "center", color: "#fff", "font-size": 12, "font-family": "system-ui, sans-serif", "background-color": PHASE_COLOURS.Pending } },
      ...Object.entries(PHASE_COLOURS).map(([p, c]) => ({ selector: `node[phase = "${p}"]`, style: { "background-color": c } })),
      { selector: "node.hook", style: { shape: "round-diamond", padding: "16px" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#1f2328" } },
      { selector: "edge", style: { width: 2, "line-color": "#8c959f", "target-arrow-color": "#8c959f", "target-arrow-shape": "triangle", "curve-style": "bezier" } },
      { selector: "edge.hook", style: { "line-style": "dashed" } },
    ];
    const cy = cytoscape({
      container: box,
      elements: dagElements(w),
      style,
      layout: { name: "breadthfirst", directed: true, maximal: true, spacingFactor: 1.15, padding: 16, avoidOverlap: true },
      autoungrabify: true,
      boxSelectionEnabled: false,
      minZoom: 0.2,
      maxZoom: 2.5,
    });
    cy.on("tap", "node", (ev) => {
      const ids = ev.target.data("taskIds") || [];
      if (ids.length) window.location.hash = `#/task/${encodeURIComponent(ids[0])}`;
    });
    cy.on("mouseover", "node", (ev) => (box.title = (ev.target.data("taskIds") || []).length ? `open task ${ev.target.data("taskIds")[0]}` : "no task yet"));
    window.__cy = cy;
    return cy;
  }

  function stepRows(w) {
    return w.steps.map((s) => h("tr", { "data-step": s.name },
      h("td", {}, s.hook ? h("em", {}, s.name) : s.name), h("td", {}, s.task), h("td", {}, s.queue), h("td", {}, s.dependsOn.join(", ")),
      phaseCell(s.phase),
      h("td", { class: "num", "data-field": "tasks" }, `${s.tasks.succeeded}/${s.tasks.total}${s.tasks.failed ? `, ${s.tasks.failed} failed` : ""}${s.tasks.running ? `, ${s.tasks.running} running` : ""}`),
      h("td", { class: "num" }, s.attempts ?? ""), timeCell(s.startTime, "started"), timeCell(s.completionTime, "finished"),
      h("td", { "data-field": "taskIds" }, s.taskIds.length === 0
        ? (s.moreTasks && s.phase !== "Pending" ? `${s.moreTasks} task${s.moreTasks === 1 ? "" : "s"} (ids not recorded)` : "—")
        : [s.taskIds.flatMap((id, i) => (i ? [", ", taskLink(id)] : [taskLink(id)])), s.moreTasks ? ` +${s.moreTasks} more` : ""]),
      h("td", { class: "err" }, s.error ? `${s.error.type}: ${s.error.message}` : s.message || "")));
  }

  async function workflowPage(name) {
    main.append(h("h1", {}, "Workflow ", h("code", {}, name)));
    const head = h("div", { id: "workflow" }, h("p", { class: "muted" }, "Loading…"));
    const legend = h("p", { class: "legend" }, Object.keys(PHASE_COLOURS).map((p) => h("span", { class: `swatch swatch-${p}` }, p)), h("span", { class: "muted" }, "Click a step to open its task."));
    const dagBox = h("div", { id: "dag", class: "dag" });
    const steps = h("div", { id: "workflow-steps" });
    const tail = h("div", { id: "workflow-result" });
    let cy;
    let w;
    let gone = false;
    cleanups.push(() => {
      if (cy) cy.destroy();
      if (window.__cy === cy) window.__cy = undefined;
    });
    await refreshing(async () => {
      try {
        w = await api(`/workflows/${encodeURIComponent(name)}`);
      } catch (e) {
        gone = e.status === 404 || e.status === 503; // not coming back by waiting
        head.replaceChildren(errorBox(e));
        return;
      }
      head.replaceChildren(fields("workflow-fields", [
        ["Phase", h("span", { class: `phase-${w.phase}`, id: "workflow-phase" }, w.phase)],
        ["Steps done", h("span", { id: "workflow-progress" }, `${w.stepsDone}/${w.stepsTotal}`)],
        ["Queue", w.queue],
        w.schedule && ["Schedule", scheduleLink(w.schedule)],
        ["Started", at(w.startTime)],
        ["Finished", at(w.completionTime)],
        w.duration && ["Duration", w.duration],
        w.parallelism !== undefined && ["Parallelism", String(w.parallelism)],
        w.retries && ["Retries", `${w.retries} (retry from failed)`],
        w.message && ["Message", h("span", { class: "err" }, w.message)],
        w.uid && ["Task ids", h("code", {}, `${w.uid}_<step>`)],
      ]));
      if (!main.contains(dagBox)) main.append(head, h("h2", {}, "Steps"), legend, dagBox, steps, tail);
      const depth = new Map();
      const level = (s) => {
        if (depth.has(s.name)) return depth.get(s.name);
        depth.set(s.name, 0);
        const d = s.hook ? 1 + Math.max(0, ...w.steps.filter((x) => !x.hook).map(level)) : 1 + Math.max(-1, ...s.dependsOn.map((n) => level(w.steps.find((x) => x.name === n) || { name: n, dependsOn: [] })));
        depth.set(s.name, d);
        return d;
      };
      const levels = 1 + Math.max(0, ...w.steps.map(level));
      dagBox.style.height = `${Math.min(640, Math.max(200, levels * 90 + 40))}px`;
      if (!cy) {
        try {
          await loadCytoscape();
          if (!dagBox.isConnected) return; // the page was left meanwhile
          cy = drawDag(dagBox, w);
        } catch (e) {
          dagBox.replaceChildren(errorBox(e));
        }
      }
      else {
        for (const s of w.steps) {
          const n = cy.getElementById(s.name);
          n.data({ phase: s.phase, taskIds: s.taskIds, label: `${s.name}\n${s.phase}${s.tasks.total > 1 ? ` ${s.tasks.succeeded}/${s.tasks.total}` : ""}` });
        }
      }
      dagBox.dataset.phases = w.steps.map((s) => `${s.name}=${s.phase}`).join(" ");
      steps.replaceChildren(table(["Step", "Task", "Queue", "Depends on", "Phase", { label: "Tasks", num: true }, { label: "Attempts", num: true }, "Started", "Finished", "Task ids", "Error"], stepRows(w)));
      const parts = [];
      if ("result" in w) parts.push(h("h2", {}, "Result"), h("pre", { id: "workflow-result-json" }, json(w.result)));
      if (w.resultRef) parts.push(h("h2", {}, "Result"), h("p", {}, `Stored apart: results bucket of ${w.resultRef.queue}, key ${w.resultRef.taskId} (${w.resultRef.sizeBytes} bytes)`));
      if (w.conditions.length) parts.push(h("h2", {}, "Conditions"), table(["Type", "Status", "Reason", "Message", "Since"], w.conditions.map((c) => h("tr", {}, h("td", {}, c.type), h("td", {}, c.status), h("td", {}, c.reason || ""), h("td", {}, c.message || ""), timeCell(c.lastTransitionTime, "since")))));
      parts.push(h("p", { class: "muted" }, FINAL.has(w.phase) ? "Finished: not refreshed." : "Refreshed every 3 s until it finishes."));
      tail.replaceChildren(...parts);
    }, () => !gone && (!w || !FINAL.has(w.phase)));
    if (!main.contains(head)) main.append(head);
  }

  const pages = (window.celeriacPages = window.celeriacPages || {});
  pages.schedules = { nav: "schedules", render: schedules };
  pages.schedule = { nav: "schedules", render: (name) => (name ? schedulePage(name) : schedules()) };
  pages.workflows = { nav: "workflows", render: workflows };
  pages.workflow = { nav: "workflows", render: (name) => (name ? workflowPage(name) : workflows()) };
})();
