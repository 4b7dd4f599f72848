import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { Counter, Registry } from "prom-client";
import { pino } from "pino";
import { BUILTIN_TYPES, EventRecorder, createObject, listObjects, startHealthServer } from "../../../operator/runtime/index.js";
import type { KubeObject } from "../../../operator/runtime/index.js";
import { TASKS, startCluster, taskObject, type TestCluster } from "./cluster.js";

describe("when the health server runs", () => {
  it("serves /healthz, /readyz following ready(), and /metrics from the registry", async () => {
    const registry = new Registry();
    new Counter({ name: "celeriac_test_total", help: "test", registers: [registry] }).inc(3);
    let ready: boolean | string = false;
    const srv = await startHealthServer({ port: 0, host: "127.0.0.1", registry, ready: () => ready });
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      const hz = await fetch(`${base}/healthz`);
      assert.equal(hz.status, 200);
      assert.equal(await hz.text(), "ok");
      assert.equal((await fetch(`${base}/readyz`)).status, 503);
      ready = "caches not synced";
      const notReady = await fetch(`${base}/readyz`);
      assert.equal(notReady.status, 503);
      assert.equal(await notReady.text(), "caches not synced");
      ready = true;
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      const m = await fetch(`${base}/metrics`);
      assert.equal(m.status, 200);
      assert.match(m.headers.get("content-type") ?? "", /text\/plain/);
      assert.match(await m.text(), /celeriac_test_total 3/);
      assert.equal((await fetch(`${base}/nope`)).status, 404);
    } finally {
      await srv.close();
    }
  });

  it("fails with the verb and port when the port is taken", async () => {
    const a = await startHealthServer({ port: 0, host: "127.0.0.1", ready: () => true });
    try {
      await assert.rejects(startHealthServer({ port: a.port, host: "127.0.0.1", ready: () => true }), new RegExp(`start health server on port ${a.port}`));
    } finally {
      await a.close();
    }
  });
});

describe("when events are recorded", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster(["tasks"]);
    await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: "ev" } }, "test");
  });
  after(async () => {
    await c.close();
  });

  it("creates one Event and aggregates repeats within the window into count/lastTimestamp", async () => {
    let now = Date.parse("2026-11-22T06:00:00Z");
    const rec = new EventRecorder({ kc: c.kc, now: () => now, logger: pino({ level: "silent" }), instance: "op-0" });
    const task = await createObject(c.kc, TASKS, taskObject("ev", "t1"), "test");
    await rec.normal(task, "Published", "published to CELERIAC_DEFAULT");
    now += 60_000;
    await rec.normal(task, "Published", "published to CELERIAC_DEFAULT");
    now += 60_000;
    await rec.normal(task, "Published", "published to CELERIAC_DEFAULT");
    await rec.warning(task, "QueueNotFound", "queue default not found");
    let events = (await listObjects(c.kc, BUILTIN_TYPES.Event, { namespace: "ev" })).items as Array<KubeObject & Record<string, unknown>>;
    assert.equal(events.length, 2);
    const pub = events.find((e) => e.reason === "Published");
    assert.equal(pub?.count, 3);
    assert.equal(pub?.type, "Normal");
    assert.equal(pub?.firstTimestamp, "2026-11-22T06:00:00Z");
    assert.equal(pub?.lastTimestamp, "2026-11-22T06:02:00Z");
    assert.equal(pub?.reportingComponent, "celeriac-operator");
    assert.equal(pub?.reportingInstance, "op-0");
    assert.deepEqual((pub?.involvedObject as Record<string, unknown>).uid, task.metadata?.uid);
    assert.equal((pub?.involvedObject as Record<string, unknown>).kind, "Task");
    // After the 10-minute window a repeat is a new Event.
    now += 11 * 60_000;
    await rec.normal(task, "Published", "published to CELERIAC_DEFAULT");
    events = (await listObjects(c.kc, BUILTIN_TYPES.Event, { namespace: "ev" })).items as Array<KubeObject & Record<string, unknown>>;
    assert.equal(events.filter((e) => e.reason === "Published").length, 2);
  });
});
