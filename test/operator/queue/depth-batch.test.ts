// Many queues' depths in one pass: `depthMany` (one STREAM.LIST, consumer info only where streams
// hold messages) gives what `depth` gives queue by queue, against a real nats-server; the batcher
// gathers reads into one pass; the scale loops' grid keeps reads an interval apart.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { queueNames, type QueueNames } from "../../../api/naming.js";
import { SharedTenantNats } from "../../../operator/credentials/tenant-connections.js";
import { depthKey, JetStreamQueueNats, LIST_THRESHOLD, subjectFilter, TenantQueueNats, type DepthResults, type QueueDepth } from "../../../operator/queue/queue-nats.js";
import { DepthBatcher, nextGridTick } from "../../../operator/queue/scale-loop.js";
import { ensureQueueResources } from "../../../nats/queue-resources.js";
import { queueSettings } from "../../../nats/queue-settings.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../../helpers/nats-server.js";

describe("when many queues' depths are read in one pass", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  const names: QueueNames[] = [];
  let publishedFrom = 0;
  let publishedTo = 0;

  before(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
    for (const ns of ["alpha", "beta"]) {
      for (let i = 0; i < LIST_THRESHOLD + 2; i++) {
        const n = queueNames(ns, uniqueQueue(`d${i}`));
        await ensureQueueResources(jsm, n, queueSettings(), { updateOnDrift: true });
        names.push(n);
      }
    }
    // queue 0: 3 pending; queue 1: 2 pending, 1 taken and not acked; queue 2: a delayed task;
    // queue 3: a dead letter; the rest idle
    publishedFrom = Date.now();
    for (let i = 0; i < 3; i++) await js.publish(names[0]!.taskSubject, `{"id":"a${i}"}`, { msgID: `a${i}` });
    publishedTo = Date.now();
    for (let i = 0; i < 3; i++) await js.publish(names[1]!.taskSubject, `{"id":"b${i}"}`, { msgID: `b${i}` });
    const c = await js.consumers.get(names[1]!.stream, names[1]!.workerConsumer);
    const m = await c.next({ expires: 2000 });
    assert.ok(m, "one message taken");
    await js.publish(names[2]!.delayedSubject, JSON.stringify({ id: "late", eta: new Date(Date.now() + 3_600_000).toISOString() }), { msgID: "late" });
    await js.publish(names[3]!.deadLetterSubject, `{"id":"dead"}`, { msgID: "dead" });
  });
  after(async () => {
    await nc?.drain();
    await nats?.cleanup();
  });

  const byQueue = async (q: JetStreamQueueNats, list: QueueNames[]): Promise<Map<string, QueueDepth>> => {
    const out = new Map<string, QueueDepth>();
    for (const n of list) out.set(depthKey(n), await q.depth(n));
    return out;
  };

  it("gives every queue the depth its own read gives (pending, in flight, delayed, dead letters, oldest message)", async () => {
    const q = new JetStreamQueueNats(jsm);
    const many = await q.depthMany(names);
    assert.deepEqual(many, await byQueue(q, names));
    const { oldestMs: oldest0, ...first } = many.get(depthKey(names[0]!)) as QueueDepth;
    assert.deepEqual(first, { pending: 3, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 });
    assert.ok(oldest0 !== undefined && oldest0 >= publishedFrom - 1000 && oldest0 <= publishedTo + 1000, `oldest message of queue 0 stored while publishing: ${oldest0}`);
    const { oldestMs: oldest1, ...second } = many.get(depthKey(names[1]!)) as QueueDepth;
    assert.deepEqual(second, { pending: 2, inFlight: 1, delayed: 0, dueDelayed: 0, deadLetters: 0 });
    assert.ok(oldest1 !== undefined && oldest1 >= oldest0, "queue 1's oldest (in flight) message counts");
    assert.equal((many.get(depthKey(names[2]!)) as QueueDepth).delayed, 1);
    assert.equal((many.get(depthKey(names[3]!)) as QueueDepth).deadLetters, 1);
    assert.deepEqual(many.get(depthKey(names.at(-1)!)), { pending: 0, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 });
  });

  it("reads a namespace's queues through a listing filtered to that namespace, and a small batch queue by queue", async () => {
    const alpha = names.filter((n) => n.namespace === "alpha");
    assert.equal(subjectFilter(alpha), "celeriac.alpha.>");
    assert.equal(subjectFilter(names), "celeriac.>");
    const q = new JetStreamQueueNats(jsm);
    assert.deepEqual(await q.depthMany(alpha), await byQueue(q, alpha));
    const few = names.slice(0, 2);
    assert.deepEqual(await q.depthMany(few), await byQueue(q, few));
  });

  it("counts a queue whose streams are gone as empty", async () => {
    const gone = queueNames("alpha", uniqueQueue("gone"));
    const many = await new JetStreamQueueNats(jsm).depthMany([...names, gone]);
    assert.deepEqual(many.get(depthKey(gone)), { pending: 0, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 });
  });

  it("routes each namespace to its connection and maps a namespace without one to its Error", async () => {
    const shared = new SharedTenantNats(nc, jsm);
    const tenants = {
      forNamespace: async (ns: string) => {
        if (ns === "beta") throw new Error("connect namespace beta: refused");
        return shared.forNamespace();
      },
    };
    const many = await new TenantQueueNats(tenants).depthMany(names);
    for (const n of names) {
      const r = many.get(depthKey(n));
      if (n.namespace === "beta") assert.match((r as Error).message, /refused/);
      else assert.deepEqual(r, await new JetStreamQueueNats(jsm).depth(n));
    }
  });
});

describe("when reads are batched", () => {
  it("reads every queue asked for within the window in one pass and shares a queue's result", async () => {
    const passes: string[][] = [];
    const b = new DepthBatcher(async (list) => {
      passes.push(list.map((n) => n.queue));
      const out: DepthResults = new Map();
      for (const n of list) out.set(depthKey(n), n.queue === "bad" ? new Error("read depth of bad: boom") : { pending: n.queue.length, inFlight: 0, delayed: 0, dueDelayed: 0, deadLetters: 0 });
      return out;
    }, 10);
    const [a, a2, bb, bad] = await Promise.allSettled([
      b.depth(queueNames("ns", "a")), b.depth(queueNames("ns", "a")), b.depth(queueNames("ns", "bb")), b.depth(queueNames("ns", "bad")),
    ]);
    assert.deepEqual(passes, [["a", "bb", "bad"]]);
    assert.equal(a.status === "fulfilled" && a.value.pending, 1);
    assert.equal(a2.status === "fulfilled" && a2.value.pending, 1);
    assert.equal(bb.status === "fulfilled" && bb.value.pending, 2);
    assert.equal(bad.status === "rejected" && (bad.reason as Error).message, "read depth of bad: boom");
    await b.depth(queueNames("ns", "a"));
    assert.equal(passes.length, 2, "a later read is a new pass");
  });

  it("rejects every read of a pass that fails", async () => {
    const b = new DepthBatcher(async () => {
      throw new Error("list streams: timeout");
    }, 5);
    const r = await Promise.allSettled([b.depth(queueNames("ns", "a")), b.depth(queueNames("ns", "b"))]);
    assert.deepEqual(r.map((x) => x.status === "rejected" && (x.reason as Error).message), ["list streams: timeout", "list streams: timeout"]);
  });
});

describe("when a scale loop schedules its next read", () => {
  const table: Array<[string, number, number, number | undefined, number]> = [
    ["after a timer's read, the next grid instant one interval on, however late the read ran", 10_300, 2000, 10_000, 12_000],
    ["after a read that took longer than the interval, the next grid instant after now", 12_100, 2000, 10_000, 14_000],
    ["after an off-grid read (a new Queue, a spec change), the next grid instant, less than an interval later", 11_500, 2000, 11_400, 12_000],
    ["on the grid instant an interval after an off-grid read", 11_000, 2000, 10_000, 12_000],
    ["without a previous read, the next grid instant", 4_999, 5000, undefined, 5000],
  ];
  for (const [what, now, interval, last, at] of table) {
    it(what, () => assert.deepEqual(nextGridTick(now, interval, last), { at, delayMs: at - now }));
  }
});
