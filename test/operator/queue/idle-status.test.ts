// With the operator running on the dev platform and one idle worker, an unchanged Queue's status is
// not rewritten between resyncs: the scale loop writes only values that changed, and the reconcile
// runs on spec and child changes (plus the resync), not on every depth read (counted on /metrics).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { CELERIAC_TYPES, type Queue } from "../../../api/objects.js";
import { Informer, loadKubeConfig, type KubeObject } from "../../../operator/runtime/index.js";
import { waitFor } from "../../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, type E2E } from "../../e2e/helpers.js";

const WINDOW_MS = 10_000;

describe("when a Queue with an idle worker does not change", { timeout: 120_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  let queues: Informer<Queue & KubeObject>;
  let metricsPort: number;
  /** `celeriac_reconcile_total{controller="queue"}` summed over results, from the operator's /metrics. */
  const queueReconciles = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return text.split("\n").filter((l) => l.startsWith("celeriac_reconcile_total{") && l.includes('controller="queue"')).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  };
  before(async () => {
    e = await startE2E();
    metricsPort = e.platform.operatorPorts[0]!;
    queues = new Informer<Queue & KubeObject>({ kc: loadKubeConfig({ kubeconfig: e.platform.kubeconfigPath, env: {} }), type: CELERIAC_TYPES.Queue, namespace: "default" });
    queues.start();
    await queues.waitForSync(10_000);
  });
  after(async () => {
    await queues?.stop();
    await e?.stop();
  });

  it(`writes no status and runs no reconcile in ${WINDOW_MS / 1000} s but the one resync that may fall in it (30 s interval)`, async () => {
    assert.equal((await e.apply(queueYaml("idle", e.eventsLog, "", "    minReplicas: 1\n    maxReplicas: 2\n    pollingIntervalSeconds: 1\n"))).code, 0);
    await waitFor("the Queue Ready with one ready worker", () => {
      const q = queues.get("default", "idle");
      return q?.status?.readyReplicas === 1 && q.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") && q.status.desiredReplicas === 1;
    }, 60_000, 100);
    await new Promise((r) => setTimeout(r, 1500)); // let the last writes of start-up land

    const writes: Array<{ at: number; rv: string | undefined; changed: string[] }> = [];
    const onUpdate = (old: Queue & KubeObject, obj: Queue & KubeObject) => {
      if (obj.metadata.name !== "idle") return;
      const changed = Object.keys({ ...old.status, ...obj.status }).filter((k) => JSON.stringify((old.status as Record<string, unknown> | undefined)?.[k]) !== JSON.stringify((obj.status as Record<string, unknown> | undefined)?.[k]));
      writes.push({ at: Date.now(), rv: obj.metadata.resourceVersion, changed });
    };
    queues.on("update", onUpdate);
    const reconcilesBefore = await queueReconciles();
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const reconciles = (await queueReconciles()) - reconcilesBefore;
    // At most one resync could fall in the window; it writes nothing either when nothing changed.
    assert.deepEqual(writes, [], `status writes of an idle Queue: ${JSON.stringify(writes)}`);
    // The depth reads (every second here) are the scale loop's, not reconciles: at most the one resync.
    assert.ok(reconciles <= 1, `${reconciles} Queue reconciles in ${WINDOW_MS / 1000} s`);
    assert.equal(queues.get("default", "idle")?.status?.readyReplicas, 1, "the worker is still up");
  });
});
