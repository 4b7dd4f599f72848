/**
 * End-to-end (issue 12 item 3): a Task applied while nats-server is down is never shown Queued, says
 * it waits on NATS, and runs exactly once when NATS is back — after an outage longer than the Queue's
 * duplicate window; a Workflow whose step ends during an outage finishes once NATS is back, every
 * step run once.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

type Task = { status?: { phase?: string; conditions?: Array<{ type: string; status: string; reason: string; message: string }> } };

async function task(e: E2E, name: string): Promise<Task | undefined> {
  const r = await e.kubectl(["get", "task", name, "-o", "json"]);
  return r.code === 0 ? (JSON.parse(r.stdout) as Task) : undefined;
}

describe("when NATS is down while a Task is applied", { timeout: 240_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
    // A 3 s duplicate window, so the outage below outlasts it.
    const r = await e.apply(queueYaml("outage", e.eventsLog, "  stream:\n    duplicateWindow: 3s\n"));
    assert.equal(r.code, 0, r.stderr);
    const w = await e.kubectl(["wait", "--for=condition=Ready", "queue/outage", "--timeout=90s"]);
    assert.equal(w.code, 0, w.stderr);
  });
  after(() => e?.stop());

  it("keeps it Pending with NatsUnavailable (never Queued) and runs it once when NATS is back", async () => {
    await e.platform.stopNats();
    assert.equal((await e.apply(taskYaml("during", "outage", "e2e.echo"))).code, 0);
    let waiting: { reason: string; message: string } | undefined;
    const phases = new Set<string>();
    const outageMs = 10_000; // > the 3 s duplicate window
    const end = Date.now() + outageMs;
    while (Date.now() < end) {
      const t = await task(e, "during");
      phases.add(t?.status?.phase ?? "");
      const a = t?.status?.conditions?.find((c) => c.type === "Accepted");
      if (a?.reason === "NatsUnavailable") waiting = a;
      await sleep(250);
    }
    assert.ok(!phases.has("Queued"), `never Queued while NATS is down (saw ${[...phases].join(", ")})`);
    assert.ok(waiting, "Accepted=False reason NatsUnavailable");
    assert.match(waiting.message, /NATS/);

    await e.platform.startNats();
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/during", "--timeout=60s"]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal((await e.apply(taskYaml("after", "outage", "e2e.echo"))).code, 0);
    const w2 = await e.kubectl(["wait", "--for=condition=Succeeded", "task/after", "--timeout=60s"]);
    assert.equal(w2.code, 0, w2.stderr);

    const uid = (await e.kubectl(["get", "task", "during", "-o", "jsonpath={.metadata.uid}"])).stdout;
    await sleep(2000); // a duplicate would be delivered by now
    await waitFor("the events log", () => e.events().some((x) => x.taskId === uid), 5000, 100);
    assert.equal(e.events().filter((x) => x.event === "start" && x.taskId === uid).length, 1, "ran exactly once");
  });

  it("finishes a Workflow whose step ended while NATS was down, each step once", async () => {
    const r = await e.apply(`apiVersion: celeriac.io/v1alpha1
kind: Workflow
metadata:
  name: across-outage
spec:
  queue: outage
  steps:
    - {name: slow, task: e2e.sleep, kwargs: {ms: 1500}}
    - {name: next, task: e2e.echo, dependsOn: [slow]}
`);
    assert.equal(r.code, 0, r.stderr);
    const uid = (await e.kubectl(["get", "workflow", "across-outage", "-o", "jsonpath={.metadata.uid}"])).stdout;
    await waitFor("the slow step started", () => e.events().some((x) => x.event === "start" && x.taskId === `${uid}_slow`), 60_000, 50);
    await e.platform.stopNats();
    // the slow step's handler ends during the outage; its record and notice wait for NATS
    await waitFor("the slow step's handler finished", () => e.events().some((x) => x.event === "finish" && x.taskId === `${uid}_slow`), 30_000, 50);
    await e.platform.startNats();
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "workflow/across-outage", "--timeout=90s"]);
    assert.equal(w.code, 0, `${w.stderr}${(await e.kubectl(["get", "workflow", "across-outage", "-o", "yaml"])).stdout}`);
    for (const step of ["slow", "next"]) {
      assert.equal(e.events().filter((x) => x.event === "start" && x.taskId === `${uid}_${step}`).length, 1, `${step} ran exactly once`);
    }
  });
});
