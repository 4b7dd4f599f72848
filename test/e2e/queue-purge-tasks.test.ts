/**
 * End-to-end: `celeriac queue purge` of a paused queue ends the purged Task resources Cancelled
 * (condition Succeeded=False reason Purged) — no worker ever sees a purged message, so the operator
 * does it on the queue's purge notice — and a `concurrencyPolicy: Forbid` Schedule whose active run
 * was purged fires again; a Task created after the purge is not touched and runs once the queue
 * is resumed. Dev platform (in-memory API server, real nats-server, operator, worker
 * process), real kubectl and the real CLI.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { runTool, waitFor, type ToolRun } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

const NS = "default";
const QUEUE = "orders";
const BIN = join(REPO_ROOT, "bin", "celeriac.js");
const SCHEDULE_LABEL = "celeriac.io/schedule";

interface TaskView {
  metadata: { name: string; creationTimestamp: string };
  status?: {
    phase?: string;
    completionTime?: string;
    error?: { type: string; message: string };
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
}

describe("when a paused queue holding Task resources is purged", { timeout: 150_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  let cwd: string;
  const figures: Record<string, number> = {};

  const celeriac = (args: string[]): Promise<ToolRun> =>
    runTool(process.execPath, [BIN, ...args, "-n", NS, "--nats", e.platform.natsUrl], {}, 60_000, { cwd, dropEnv: (k) => k.startsWith("CELERIAC_") || k === "KUBECONFIG" });

  const getJson = async <T>(args: string[]): Promise<T> => {
    const r = await e.kubectl(["get", ...args, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };
  const task = (name: string) => getJson<TaskView>(["task", name]);
  const runsOf = async (schedule: string) =>
    (await getJson<{ items: TaskView[] }>(["tasks", "-l", `${SCHEDULE_LABEL}=${schedule}`])).items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const activeOf = async (schedule: string) => ((await getJson<{ status?: { active?: Array<{ name: string }> } }>(["schedule", schedule])).status?.active ?? []).map((a) => a.name);

  before(async () => {
    e = await startE2E();
    cwd = mkdtempSync(join(tmpdir(), "celeriac-purge-cwd-"));
    // no worker until the resume (min 0; a paused queue is not scaled up): nothing pulls a message,
    // so every Task below stays in the work stream — what purge removes
    assert.equal((await e.apply(queueYaml(QUEUE, e.eventsLog, "", "    minReplicas: 0\n    maxReplicas: 1\n"))).code, 0);
    await waitFor("queue pause (once the Queue's results bucket exists)", async () => (await celeriac(["queue", "pause", QUEUE])).code === 0, 30_000, 200);
  });

  after(async () => {
    console.log(JSON.stringify({ queuePurgeTasksE2E: figures }));
    await e?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it("ends a purged Task Cancelled with reason Purged, and a Forbid Schedule whose active run was purged fires again", async () => {
    assert.equal((await e.apply(taskYaml("purge-me", QUEUE, "e2e.echo", "  args: [1]\n"))).code, 0);
    const schedule = `apiVersion: celeriac.io/v1alpha1
kind: Schedule
metadata:
  name: nightly
spec:
  schedule: "@every 2s"
  concurrencyPolicy: Forbid
  taskTemplate:
    spec:
      queue: ${QUEUE}
      task: e2e.echo
`;
    assert.equal((await e.apply(schedule)).code, 0);
    await waitFor("Task purge-me Queued", async () => (await task("purge-me")).status?.phase === "Queued", 20_000, 100);
    // the Schedule's first run waits in the paused queue and blocks the next ones (Forbid)
    const first = (await waitFor("the Schedule's first run Queued and active", async () => {
      const runs = await runsOf("nightly");
      const active = await activeOf("nightly");
      return runs.length === 1 && runs[0]!.status?.phase === "Queued" && active.length === 1 ? runs[0]!.metadata.name : undefined;
    }, 20_000, 100))!;
    // two more periods: still one run (Forbid), still Queued (paused)
    await waitFor("two Forbid-skipped periods", async () => {
      const s = await getJson<{ status?: { lastMissedTime?: string; missedRuns?: number } }>(["schedule", "nightly"]);
      return (s.status?.missedRuns ?? 0) >= 1;
    }, 15_000, 200);
    assert.equal((await runsOf("nightly")).length, 1, "Forbid: no second run while the first is active");
    assert.equal((await task("purge-me")).status?.phase, "Queued", "the queue is paused: the Task waits");

    const t0 = Date.now();
    const r = await celeriac(["queue", "purge", QUEUE, "--yes", "-o", "json"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as { removed: number; ids: string[] };
    assert.ok(out.removed >= 2, `removed ${out.removed}: the Task and the Schedule's run: ${r.stdout} ${r.stderr}`);

    const ended = (await waitFor("Task purge-me Cancelled", async () => {
      const t = await task("purge-me");
      return t.status?.phase === "Cancelled" ? t : undefined;
    }, 10_000, 50))!;
    figures.purgeToTaskCancelledMs = Date.now() - t0;
    const succeeded = ended.status?.conditions?.find((c) => c.type === "Succeeded");
    assert.equal(succeeded?.status, "False");
    assert.equal(succeeded?.reason, "Purged");
    assert.match(succeeded?.message ?? "", /queue purge/);
    assert.equal(ended.status?.conditions?.find((c) => c.type === "Accepted")?.status, "True", "the operator's Accepted condition stays");
    assert.equal(ended.status?.error?.type, "CancelledError");
    assert.match(ended.status?.error?.message ?? "", /purged/);
    assert.ok(ended.status?.completionTime, "completionTime is set");

    await waitFor("the Schedule's purged run Cancelled, off the active list", async () => {
      const run = await task(first);
      return run.status?.phase === "Cancelled" && !(await activeOf("nightly")).includes(first);
    }, 10_000, 50);
    figures.purgeToScheduleRunCancelledMs = Date.now() - t0;
    // Forbid no longer blocks: the Schedule fires again (the new run waits in the paused queue)
    await waitFor("a new run after the purge", async () => {
      const runs = await runsOf("nightly");
      return runs.some((x) => x.metadata.name !== first && Date.parse(x.metadata.creationTimestamp) >= t0 - 1000);
    }, 15_000, 100);
    figures.purgeToNextRunMs = Date.now() - t0;

    // a purge is not replayed onto later Tasks: one created after it stays Queued (the queue is paused)
    assert.equal((await e.apply(taskYaml("after-purge", QUEUE, "e2e.echo", "  args: [2]\n"))).code, 0);
    await waitFor("Task after-purge Queued", async () => (await task("after-purge")).status?.phase === "Queued", 20_000, 100);
    const resumed = await celeriac(["queue", "resume", QUEUE]);
    assert.equal(resumed.code, 0, resumed.stderr);
    await waitFor("Task after-purge Succeeded after the resume", async () => (await task("after-purge")).status?.phase === "Succeeded", 60_000, 100);
    assert.equal((await task("purge-me")).status?.phase, "Cancelled", "the purged Task stays Cancelled");
  });
});
