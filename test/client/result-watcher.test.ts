// ResultWatcher against a real nats-server: waits resolve from the shared watch, tasks announced
// with expect() resolve without a read of the bucket, and a watch that ends leaves no wait hanging.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { TaskRecord } from "../../api/message.js";
import { ResultWatcher } from "../../client/result-watcher.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";

const rec = (id: string, phase: string): TaskRecord =>
  ({ v: 1, id, task: "t", queue: "q", namespace: "default", origin: { kind: "Client" }, status: { phase, attempts: 1 }, updatedAt: new Date().toISOString() }) as unknown as TaskRecord;

/** `kv` with its reads counted. */
function counted(kv: KV): { kv: KV; gets: () => number } {
  let n = 0;
  const proxy = new Proxy(kv, {
    get(target, prop, receiver) {
      if (prop === "get") {
        return (...a: Parameters<KV["get"]>) => {
          n++;
          return target.get(...a);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === "function" ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { kv: proxy, gets: () => n };
}

describe("when results are awaited through a ResultWatcher", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  before(async () => {
    srv = await startNatsServer();
    nc = await connect({ servers: srv.url });
    kv = await new Kvm(nc).create("rw-test");
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
  });

  it("resolves a wait for a task finished before it, by reading its record", async () => {
    const c = counted(kv);
    const w = new ResultWatcher(c.kv);
    await kv.put("done-1", JSON.stringify(rec("done-1", "Succeeded")));
    const r = await w.wait("done-1", 5000, () => new Error("timeout"));
    assert.equal(r.status.phase, "Succeeded");
    assert.equal(c.gets(), 1);
    w.stop();
  });

  it("resolves waits for expected tasks without reading the bucket, whether they finished before or after the wait", async () => {
    const c = counted(kv);
    const w = new ResultWatcher(c.kv);
    const ids = Array.from({ length: 200 }, (_, i) => `exp-${i}`);
    await w.expect(ids);
    // half finish before anyone waits, with a Running record first (not terminal: not kept)
    for (const id of ids.slice(0, 100)) {
      await kv.put(id, JSON.stringify(rec(id, "Running")));
      await kv.put(id, JSON.stringify(rec(id, "Succeeded")));
    }
    const early = ids.slice(0, 100).map((id) => w.wait(id, 5000, () => new Error(`timeout ${id}`)));
    const late = ids.slice(100).map((id) => w.wait(id, 5000, () => new Error(`timeout ${id}`)));
    for (const id of ids.slice(100)) await kv.put(id, JSON.stringify(rec(id, "Failed")));
    const got = await Promise.all([...early, ...late]);
    assert.deepEqual(got.map((r) => r.status.phase), [...Array(100).fill("Succeeded"), ...Array(100).fill("Failed")]);
    assert.equal(c.gets(), 0, "an expected task's wait read the bucket");
    // an id not announced still reads
    await kv.put("other-1", JSON.stringify(rec("other-1", "Succeeded")));
    await w.wait("other-1", 5000, () => new Error("timeout"));
    assert.equal(c.gets(), 1);
    w.stop();
  });

  it("still resolves an expected task whose record was there before it was announced (an id taken already), by a late read", async () => {
    const c = counted(kv);
    const w = new ResultWatcher(c.kv);
    await kv.put("taken-1", JSON.stringify(rec("taken-1", "Succeeded")));
    await w.expect(["taken-1"]);
    const t0 = Date.now();
    const r = await w.wait("taken-1", 10_000, () => new Error("timeout"));
    assert.equal(r.status.phase, "Succeeded");
    assert.ok(Date.now() - t0 >= 2000, "read before the watch had its chance");
    assert.equal(c.gets(), 1);
    w.stop();
  });

  it("falls back to reading the record once the watch an id was announced on has stopped", async () => {
    const c = counted(kv);
    const w = new ResultWatcher(c.kv);
    await w.expect(["gone-1"]);
    w.stop();
    await kv.put("gone-1", JSON.stringify(rec("gone-1", "Succeeded")));
    const r = await w.wait("gone-1", 5000, () => new Error("timeout"));
    assert.equal(r.status.phase, "Succeeded");
    assert.equal(c.gets(), 1);
    w.stop();
  });
});
