/* The dashboard's task and queue actions (docs/dashboard.md "Actions"): Revoke on a task's page,
 * Pause/Resume/Purge on the overview, "all matching" replay/purge in Dead letters. Each asks for a
 * confirmation (a queue purge: type the queue's name) and is shown only when actions are allowed.
 * Uses app.js's h, api, csrf, errorBox and session (one global scope; called after both loaded). */
/* global window, document, URLSearchParams, sessionStorage, h, api, csrf, errorBox, session */
"use strict";

const CRED_KEY = "celeriac-action-token";

/** The credential input: the action token, or the user's Kubernetes token with --auth kubernetes. */
function credentialInput() {
  const k8s = session.auth === "kubernetes";
  const input = h("input", { type: "password", name: "token", class: "credential", placeholder: k8s ? "your Kubernetes token" : "action token", autocomplete: "off", value: sessionStorage.getItem(CRED_KEY) || "" });
  input.addEventListener("change", () => sessionStorage.setItem(CRED_KEY, input.value));
  return h("label", { title: k8s ? "e.g. kubectl create token <serviceaccount>, or your OIDC token; kept in this tab only" : "printed by celeriac dashboard; kept in this tab only" }, k8s ? "Kubernetes token " : "Action token ", input);
}

/** POSTs an action with the credential and the CSRF token. */
async function postAction(path, body) {
  const cred = (document.querySelector("input.credential") || {}).value || sessionStorage.getItem(CRED_KEY) || "";
  sessionStorage.setItem(CRED_KEY, cred);
  return api(path, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${cred}`, "X-CSRF-Token": csrf() }, body: JSON.stringify(body || {}) });
}

const notice = (text) => h("p", { class: "notice", id: "action-result" }, text);

/**
 * Revoke on a task's page. `after()` runs once a revoke answered (the page re-reads the task); the
 * bar's `update(v)` takes a newer read (the button is disabled once the task ended).
 */
function revokeBar(v, after) {
  let cur = v;
  const out = h("div", { id: "revoke-result" });
  const go = async () => {
    if (!window.confirm(`Revoke task ${cur.id} (${cur.phase || "queued"}) in ${cur.queue}? ${cur.phase === "Running" ? "Its handler's signal is aborted." : "It never runs."} It ends Cancelled.`)) return;
    try {
      const r = await postAction(`/tasks/${encodeURIComponent(cur.id)}/revoke`, { queue: cur.queue });
      const o = r.items[0];
      out.replaceChildren(notice(`Task ${o.id}: ${o.action}${o.before ? ` (was ${o.before})` : ""}${r.warning ? `; ${r.warning}` : ""}`));
      if (after) await after();
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  const button = h("button", { type: "button", id: "revoke", class: "danger", onclick: go }, "Revoke");
  const bar = h("div", { class: "actions", id: "task-actions" }, credentialInput(), button, out);
  bar.update = (nv) => {
    cur = nv;
    const ended = ["Succeeded", "Failed", "Cancelled", "Expired"].includes(nv.phase);
    button.disabled = ended;
    if (ended) button.title = "it already ended";
    else button.removeAttribute("title");
  };
  bar.update(v);
  return bar;
}

/** Pause / Resume / Purge for one queue chosen from the overview's list. */
function queueBar(queues) {
  const out = h("div", { id: "queue-action-result" });
  const pick = h("select", { name: "action-queue", id: "action-queue" }, queues.map((q) => h("option", { value: q }, q)));
  const reason = h("input", { name: "reason", id: "pause-reason", placeholder: "reason (for pause)", size: 24 });
  const run = async (what) => {
    const q = pick.value;
    if (what === "purge") {
      const typed = window.prompt(`Purge the queued tasks of ${session.namespace}/${q}? They are recorded Cancelled; running tasks finish. This cannot be undone. Type the queue's name to confirm:`);
      if (typed === null) return;
      if (typed !== q) {
        out.replaceChildren(errorBox(new Error(`Not purged: "${typed}" is not the queue's name (${q}).`)));
        return;
      }
    } else if (!window.confirm(what === "pause" ? `Pause ${session.namespace}/${q}? Workers pull nothing until resumed; running tasks finish.` : `Resume ${session.namespace}/${q}?`)) return;
    try {
      const r = await postAction(`/queues/${encodeURIComponent(q)}/${what}`, what === "pause" && reason.value ? { reason: reason.value } : {});
      out.replaceChildren(notice(what === "purge"
        ? `Purged ${r.removed} task${r.removed === 1 ? "" : "s"} of ${q} (recorded Cancelled); ${r.started} had started and are left running.`
        : `${q} ${r.paused ? "paused" : "running"}${r.changed ? "" : " (nothing changed)"}${r.pausedReason ? `: ${r.pausedReason}` : ""}.`));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    }
  };
  return h("div", { class: "actions", id: "queue-actions" }, h("label", {}, "Queue ", pick), credentialInput(), reason,
    h("button", { type: "button", id: "pause", onclick: () => run("pause") }, "Pause"),
    h("button", { type: "button", id: "resume", onclick: () => run("resume") }, "Resume"),
    h("button", { type: "button", id: "queue-purge", class: "danger", onclick: () => run("purge") }, "Purge queued tasks"), out);
}

/** "All matching" in Dead letters: count a filter's matches server-side, then replay or purge them. */
function filterBar(queue, notify, reload) {
  const reason = h("input", { name: "f-reason", id: "f-reason", placeholder: "reason (exact)", size: 14 });
  const task = h("input", { name: "f-task", id: "f-task", placeholder: "task name (exact)", size: 16 });
  const error = h("input", { name: "f-error", id: "f-error", placeholder: "error contains", size: 20 });
  const count = h("span", { id: "f-count", class: "muted" });
  let matched;
  const filter = () => Object.fromEntries([["reason", reason.value], ["task", task.value], ["error", error.value]].filter(([, x]) => x.trim() !== ""));
  const replayAll = h("button", { type: "button", id: "replay-matching", disabled: true, onclick: () => act("replay") }, "Replay all matching");
  const purgeAll = h("button", { type: "button", id: "purge-matching", class: "danger", disabled: true, onclick: () => act("purge") }, "Purge all matching");
  const countIt = async () => {
    matched = undefined;
    replayAll.disabled = purgeAll.disabled = true;
    const f = filter();
    if (Object.keys(f).length === 0) {
      count.textContent = "Give a reason, a task name or error text.";
      return;
    }
    try {
      const r = await api(`/dlq-matching?${new URLSearchParams({ queue, ...f })}`);
      matched = { f, n: r.matching };
      count.textContent = r.more ? `More than ${r.limit} match: narrow the filter.` : `${r.matching} dead letter${r.matching === 1 ? " matches" : "s match"}.`;
      replayAll.disabled = purgeAll.disabled = r.more || r.matching === 0;
    } catch (e) {
      count.textContent = e.message;
    }
  };
  const act = async (what) => {
    if (!matched) return;
    const { f, n } = matched;
    const desc = Object.entries(f).map(([k, x]) => `${k} ${k === "error" ? "contains" : "="} "${x}"`).join(", ");
    if (!window.confirm(what === "replay" ? `Replay all ${n} dead letters of ${queue} where ${desc}, as new tasks? The dead letters are kept; one already replayed is skipped.` : `Delete all ${n} dead letters of ${queue} where ${desc}? This cannot be undone.`)) return;
    try {
      const r = await postAction(`/dlq/${encodeURIComponent(queue)}/${what}`, { filter: f });
      notify(notice(what === "replay"
        ? `Replayed ${r.items.filter((o) => o.outcome === "Replayed").length} of ${r.items.length} matching; ${r.items.filter((o) => o.outcome !== "Replayed").length} skipped.`
        : `Deleted ${r.deleted} dead letter${r.deleted === 1 ? "" : "s"}.`));
      await reload();
      await countIt();
    } catch (e) {
      notify(errorBox(e));
    }
  };
  return h("form", { class: "filters", id: "dlq-filter", onsubmit: (e) => {
    e.preventDefault();
    void countIt();
  } }, h("span", {}, "All matching:"), reason, task, error, h("button", { type: "submit", id: "f-count-button" }, "Count"), count, replayAll, purgeAll);
}

window.celeriacActions = { credentialInput, postAction, revokeBar, queueBar, filterBar };
