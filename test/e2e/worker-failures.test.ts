/**
 * End-to-end (issue 12 item 6): why workers are not running. Worker pods that crash at start show
 * their error in the Pod status (`lastState.terminated.message`, from the worker's termination
 * message) and the Queue's WorkersReady condition says so; a Queue naming no tasks module is InvalidSpec.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, startE2E, type E2E } from "./helpers.js";

type Condition = { type: string; status: string; reason: string; message: string };

function queue(name: string, env: string): string {
  return `apiVersion: celeriac.io/v1alpha1
kind: Queue
metadata:
  name: ${name}
spec:
  worker:
    image: celeriac-e2e:dev
    command: ["celeriac", "worker"]
${env}  autoscaling:
    minReplicas: 1
    maxReplicas: 1
`;
}

async function condition(e: E2E, q: string, type: string): Promise<Condition | undefined> {
  const r = await e.kubectl(["get", "queue", q, "-o", "json"]);
  if (r.code !== 0) return undefined;
  return ((JSON.parse(r.stdout) as { status?: { conditions?: Condition[] } }).status?.conditions ?? []).find((c) => c.type === type);
}

describe("when worker pods cannot start", { timeout: 240_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
  });
  after(() => e?.stop());

  it("reports a tasks module that throws on import as WorkersCrashLooping with the error, also in the Pod's lastState", async () => {
    const r = await e.apply(queue("throws", "    env:\n      - name: CELERIAC_TASKS\n        value: dist/test/e2e/throwing-tasks.js\n"));
    assert.equal(r.code, 0, r.stderr);
    const c = await waitFor("WorkersReady WorkersCrashLooping", async () => {
      const w = await condition(e, "throws", "WorkersReady");
      return w?.reason === "WorkersCrashLooping" ? w : undefined;
    }, 60_000, 250);
    assert.equal(c!.status, "False");
    assert.match(c!.message, /crash-looping.*DATABASE_URL is not set/);
    const msg = await e.kubectl(["get", "pods", "-l", "celeriac.io/queue=throws", "-o", "jsonpath={.items[0].status.containerStatuses[0].lastState.terminated.message}"]);
    assert.match(msg.stdout, /load tasks module dist\/test\/e2e\/throwing-tasks\.js: tasks module failed on purpose/);
  });

  it("reports a missing tasks module as WorkersCrashLooping naming the module", async () => {
    assert.equal((await e.apply(queue("missing", "    env:\n      - name: CELERIAC_TASKS\n        value: dist/no-such-tasks.js\n"))).code, 0);
    const c = await waitFor("WorkersReady WorkersCrashLooping", async () => {
      const w = await condition(e, "missing", "WorkersReady");
      return w?.reason === "WorkersCrashLooping" ? w : undefined;
    }, 60_000, 250);
    assert.match(c!.message, /no-such-tasks/);
  });

  it("marks a Queue whose worker names no tasks module InvalidSpec, with a Warning Event", async () => {
    assert.equal((await e.apply(queue("no-tasks", ""))).code, 0);
    const ready = await waitFor("Ready InvalidSpec", async () => {
      const w = await condition(e, "no-tasks", "Ready");
      return w?.reason === "InvalidSpec" ? w : undefined;
    }, 60_000, 250);
    assert.match(ready!.message, /no tasks module.*CELERIAC_TASKS/);
    const workers = await condition(e, "no-tasks", "WorkersReady");
    assert.equal(workers?.reason, "InvalidSpec");
    const ev = await waitFor("InvalidSpec event", async () => {
      const r = await e.kubectl(["get", "events", "--field-selector", "involvedObject.name=no-tasks,reason=InvalidSpec", "-o", "jsonpath={.items[*].message}"]);
      return r.stdout.includes("no tasks module") ? r.stdout : undefined;
    }, 30_000, 250);
    assert.match(ev!, /CELERIAC_TASKS/);
  });
});
