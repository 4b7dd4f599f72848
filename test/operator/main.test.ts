import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { pino } from "pino";
import { CELERIAC_TYPES, type Task } from "../../api/objects.js";
import { BUILTIN_TYPES, createObject, getObject } from "../../kube/k8s-client.js";
import { operatorConfigFrom } from "../../operator/config.js";
import { startOperator, type RunningOperator } from "../../operator/main.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { startCluster, taskObject, type TestCluster } from "./runtime/cluster.js";

/** The samples of one metric in a Prometheus text exposition, as label sets. */
function series(text: string, metric: string): Array<Record<string, string>> {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${metric}{`) || l.startsWith(`${metric} `))
    .map((l) => Object.fromEntries([...l.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!])));
}

describe("when the operator watches two namespaces (--watch-namespaces a,b)", () => {
  let c: TestCluster;
  let nats: NatsServer;
  let op: RunningOperator;
  const logs: Array<Record<string, unknown>> = [];
  before(async () => {
    c = await startCluster(["queues", "tasks", "schedules", "workflows"]);
    nats = await startNatsServer();
    for (const ns of ["watch-a", "watch-b", "watch-c"]) await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: ns } }, "test");
    const config = operatorConfigFrom({ kubeconfig: join(c.dir, "kubeconfig"), nats: nats.url, watchNamespaces: "watch-a,watch-b", port: "0" }, {});
    op = await startOperator(config, pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) }), () => undefined);
  });
  after(async () => {
    await op?.stop();
    await nats?.cleanup();
    await c?.close();
  });

  it("runs one controller per kind, with exactly one workqueue_depth series each", async () => {
    const started = logs.filter((l) => l.msg === "Controller started").map((l) => l.controller).sort();
    assert.deepEqual(started, ["queue", "schedule", "task", "workflow"]);
    const text = await (await fetch(`http://127.0.0.1:${op.port}/metrics`)).text();
    const depth = series(text, "celeriac_workqueue_depth").map((l) => l.name).sort();
    assert.deepEqual(depth, ["queue", "schedule", "task", "workflow"]);
  });

  it("reconciles Tasks in both watched namespaces and leaves the others alone", async () => {
    for (const ns of ["watch-a", "watch-b", "watch-c"]) await createObject(c.kc, CELERIAC_TYPES.Task, taskObject(ns, "t1"), "test");
    for (const ns of ["watch-a", "watch-b"]) {
      const t = await waitFor(`Task ${ns}/t1 Pending`, async () => {
        const live = await getObject<Task>(c.kc, { ...CELERIAC_TYPES.Task, namespace: ns, name: "t1" });
        return live.status?.phase === "Pending" ? live : undefined;
      });
      assert.equal(t.status?.conditions?.[0]?.reason, "QueueNotFound");
    }
    const other = await getObject<Task>(c.kc, { ...CELERIAC_TYPES.Task, namespace: "watch-c", name: "t1" });
    assert.equal(other.status, undefined);
    assert.equal(other.metadata.finalizers, undefined);
    const text = await (await fetch(`http://127.0.0.1:${op.port}/metrics`)).text();
    assert.equal(series(text, "celeriac_workqueue_depth").filter((l) => l.name === "task").length, 1);
  });
});

describe("when a Celeriac CRD is not installed (an upgrade that skipped the chart's crds/)", () => {
  let c: TestCluster;
  let nats: NatsServer;
  before(async () => {
    c = await startCluster(["queues", "tasks", "schedules"]);
    nats = await startNatsServer();
  });
  after(async () => {
    await nats?.cleanup();
    await c?.close();
  });

  it("refuses to start, naming the missing CRD and the command that installs it", async () => {
    const config = operatorConfigFrom({ kubeconfig: join(c.dir, "kubeconfig"), nats: nats.url, port: "0" }, {});
    const t0 = Date.now();
    await assert.rejects(startOperator(config, pino({ level: "silent" }), () => undefined), /CRD workflows\.celeriac\.io not installed: apply the chart's CRDs first \(kubectl apply --server-side -f charts\/celeriac\/crds\//);
    assert.ok(Date.now() - t0 < 15_000, "at once, not after an informer sync timeout");
  });
});
