// purgeQueue while workers drain the same backlog (nats/queue-purge.ts), against a real nats-server:
// every task either runs or is purged, never both and never neither, and each purged one is
// recorded Cancelled; a flow-controlled queue's held tasks are removed too.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kvm, type KV } from "@nats-io/kv";
import { jetstream } from "@nats-io/jetstream";
import type { TaskRecord } from "../../api/message.js";
import { heldNames, heldSubject } from "../../api/flow.js";
import { newTaskMessage } from "../../api/task-message.js";
import { purgeQueue, purgeable } from "../../nats/queue-purge.js";
import { QUEUE_PURGED_KEY } from "../../api/naming.js";
import { parseQueuePurged } from "../../api/queue-ops.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { defineTask } from "../../worker/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "../worker/fixture.js";

describe("when a queue is purged while workers take from it", { timeout: 60_000 }, () => {
  let srv: NatsServer;
  let f: Fixture;
  let kv: KV;
  const ran = new Set<string>();

  before(async () => {
    srv = await startNatsServer();
    const work = defineTask("purge.work", async (_a, _k, ctx) => {
      ran.add(ctx.taskId);
      await new Promise((r) => setTimeout(r, 5));
      return 1;
    });
    f = await fixture(srv, [work], { concurrency: 4 });
    kv = await new Kvm(f.nc).open(f.names.resultsBucket);
  });
  after(async () => {
    await f?.close();
    await srv?.cleanup();
  });

  async function phase(id: string): Promise<string | undefined> {
    const e = await kv.get(id);
    return e && e.operation === "PUT" ? e.json<TaskRecord>().status.phase : undefined;
  }

  it("runs or purges each of 600 tasks exactly once, recording every purged one Cancelled", async () => {
    await f.startWorker(); // ensures the resources first
    const hs = await Promise.all(Array.from({ length: 600 }, () => f.client.enqueue("purge.work")));
    await waitFor("workers running", () => ran.size > 10, 10_000);
    const t0 = Date.now();
    const r = await purgeQueue(f.jsm, kv, f.names);
    console.log(`# purge while draining: removed ${r.removed} in ${Date.now() - t0} ms, started meanwhile ${r.started}, ran before/while ${ran.size}`);
    await waitFor("the queue empty", async () => {
      const ci = await f.jsm.consumers.info(f.names.stream, f.names.workerConsumer);
      return ci.num_pending + ci.num_ack_pending === 0;
    }, 20_000);
    const purged = new Set(r.ids);
    assert.equal(purged.size, r.removed);
    for (const id of purged) assert.ok(!ran.has(id), `purged ${id} did not run`);
    assert.equal(purged.size + ran.size, 600, "every task ran or was purged");
    const phases = await Promise.all(hs.map((h) => phase(h.id)));
    for (const [i, h] of hs.entries()) assert.equal(phases[i], purged.has(h.id) ? "Cancelled" : "Succeeded", h.id);
    assert.ok(r.removed > 0, "something was still queued");
    // the purge notice the operator watches (it ends purged Task resources Cancelled)
    const notice = await kv.get(QUEUE_PURGED_KEY);
    const parsed = parseQueuePurged(notice!.value);
    assert.ok("purged" in parsed, JSON.stringify(parsed));
    assert.equal(parsed.purged.removed, r.removed);
    assert.ok(Date.parse(parsed.purged.at) >= t0, "written by this purge");
  });

  it("removes a flow-controlled queue's held tasks and records them Cancelled", async () => {
    const names = { ...f.names };
    const held = heldNames(names);
    await ensureQueueResources(f.jsm, names, queueSettings(), { updateOnDrift: true });
    await f.jsm.streams.add({ name: held.stream, subjects: [`${held.subjectPrefix}.*`], retention: "workqueue" as never });
    const js = jetstream(f.nc);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = newTaskMessage({ id: `held-${i}-${Date.now()}`, task: "purge.work", args: [i], queue: names.queue, namespace: names.namespace, origin: { kind: "Client" } }, new Date());
      ids.push(m.id);
      await js.publish(heldSubject(names, 0), JSON.stringify(m), { msgID: m.id });
    }
    assert.equal((await purgeable(f.jsm, names)).held, 3);
    const r = await purgeQueue(f.jsm, kv, names);
    assert.deepEqual([r.removed, r.removedHeld], [3, 3]);
    assert.equal((await f.jsm.streams.info(held.stream)).state.messages, 0);
    for (const id of ids) {
      assert.equal(await phase(id), "Cancelled");
      assert.ok(await kv.get(`revoked.${id}`), "the dispatcher's copy is revoked");
    }
  });
});
