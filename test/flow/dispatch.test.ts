/**
 * The NATS side of flow control against a real nats-server, without workers: the held stream and
 * its dispatch consumers, routing of flow-controlled tasks (publish and delay mover), and the
 * dispatcher's restart, rebuild, slot release on terminal records, revocation and waiting records.
 * Plus the pure routing and status helpers.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { heldNames, heldSubject, type MessageFlow } from "../../api/flow.js";
import { HEADERS, taskRecord, type TaskMessage, type TaskRecord } from "../../api/message.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import type { QueueSpec } from "../../api/queue.js";
import { newTaskMessage } from "../../api/task-message.js";
import { DelayMover, dueSubject } from "../../nats/delay-mover.js";
import { desiredHeldConsumerConfig, FLOW_WINDOW } from "../../nats/queue-desired.js";
import { ensureQueueResources } from "../../nats/queue-resources.js";
import { queueSettings } from "../../nats/queue-settings.js";
import { publishTaskMessage, revokeTask, subjectFor } from "../../nats/task-publish.js";
import { Dispatcher, readyTarget } from "../../operator/flow/dispatcher.js";
import { JetStreamQueueNats } from "../../operator/queue/queue-nats.js";
import { queueSettingsFromSpec } from "../../operator/queue/queue-settings.js";
import { flowStatusField, scaleBacklog } from "../../operator/queue/queue-status.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "warn" });
const names = queueNames("team-a", "emails");

function msg(id: string, flow?: MessageFlow, extra: Partial<TaskMessage> = {}): TaskMessage {
  return { ...newTaskMessage({ id, task: "t", queue: names.queue, namespace: names.namespace, origin: { kind: "Client" }, ...(flow ? { flow } : {}) }, new Date(0)), ...extra };
}

describe("when routing a task message", () => {
  it("sends a due flow-controlled task to the held subject of its level, others as before", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(subjectFor(names, msg("a"), now), names.taskSubject);
    assert.equal(subjectFor(names, msg("b", { priority: 3 }), now), "celeriac.team-a.emails.held.3");
    assert.equal(subjectFor(names, msg("c", { priority: 1 }, { eta: "2026-01-01T00:00:05Z" }), now), names.delayedSubject);
    assert.equal(subjectFor(names, msg("d", { priority: 1 }, { eta: "2025-12-31T23:59:00Z" }), now), heldSubject(names, 1));
  });

  it("moves a due delayed message with flow to the held subject, anything else to the work subject", () => {
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    assert.equal(dueSubject(names, enc(msg("a", { priority: 2, key: "k" }))), heldSubject(names, 2));
    assert.equal(dueSubject(names, enc(msg("b"))), names.taskSubject);
    assert.equal(dueSubject(names, enc({ flow: { priority: -1 } })), names.taskSubject);
    assert.equal(dueSubject(names, new TextEncoder().encode("not json")), names.taskSubject);
  });

  it("derives the held resources from the Queue spec only when it is flow-controlled", () => {
    assert.equal(queueSettingsFromSpec({}).flow, undefined);
    assert.deepEqual(queueSettingsFromSpec({ rateLimit: { rate: "5/s" } }).flow, { levels: 1 });
    assert.deepEqual(queueSettingsFromSpec({ priorities: { levels: 4 } }).flow, { levels: 4 });
    const c = desiredHeldConsumerConfig(names, 2);
    assert.equal(c.durable_name, "dispatch-2");
    assert.equal(c.filter_subject, "celeriac.team-a.emails.held.2");
    assert.equal(c.max_ack_pending, FLOW_WINDOW);
    assert.equal(readyTarget({ concurrency: 4 }), 16);
    assert.equal(readyTarget({ concurrency: 20 }), 40);
  });

  it("counts only runnable held work as backlog and removes status.flow when flow control is off", () => {
    const flow = { held: 500, runnable: 7, rateLimited: true };
    assert.equal(scaleBacklog({ pending: 3, inFlight: 2, dueDelayed: 1 }, flow), 13);
    assert.equal(scaleBacklog({ pending: 3, inFlight: 2, dueDelayed: 1 }, undefined), 6);
    assert.deepEqual(flowStatusField(true, flow, undefined), { flow });
    assert.deepEqual(flowStatusField(true, undefined, { flow }), {});
    const keyed = { ...flow, keys: [{ key: "a", held: 1, running: 0, limit: 1 }] };
    assert.deepEqual(flowStatusField(true, flow, { flow: keyed }), { flow: { ...flow, keys: null } }, "keys gone: removed with null");
    assert.deepEqual(flowStatusField(false, undefined, { flow }), { flow: null });
    assert.deepEqual(flowStatusField(false, undefined, {}), {});
  });
});

describe("when a flow-controlled queue runs on a real server", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  const running: Dispatcher[] = [];
  before(async () => {
    srv = await startNatsServer();
    nc = await connect({ servers: srv.url });
    js = jetstream(nc);
    jsm = await jetstreamManager(nc);
  });
  after(async () => {
    await Promise.all(running.map((d) => d.stop()));
    await nc.close();
    await srv.cleanup();
  });

  async function queue(spec: QueueSpec): Promise<QueueNames> {
    const n = queueNames("default", uniqueQueue());
    await ensureQueueResources(jsm, n, queueSettingsFromSpec(spec), { updateOnDrift: true });
    return n;
  }
  async function dispatcher(n: QueueNames, spec: QueueSpec): Promise<Dispatcher> {
    const d = new Dispatcher({ js, names: n, spec, log });
    running.push(d);
    await d.start();
    return d;
  }
  const publish = (n: QueueNames, id: string, flow: MessageFlow, extra: Partial<TaskMessage> = {}) =>
    publishTaskMessage(js, n, { ...newTaskMessage({ id, task: "t", queue: n.queue, namespace: n.namespace, origin: { kind: "Client" }, flow }, new Date()), ...extra });
  const inWork = async (n: QueueNames) => (await jsm.streams.info(n.stream)).state.messages;
  const inHeld = async (n: QueueNames) => (await jsm.streams.info(heldNames(n).stream)).state.messages;

  it("creates the held stream and one dispatch consumer per level, none for other queues, and deletes it with the queue", async () => {
    const n = await queue({ priorities: { levels: 3 } });
    const held = heldNames(n).stream;
    assert.deepEqual((await jsm.streams.info(held)).config.subjects, [`${heldNames(n).subjectPrefix}.*`]);
    const consumers: string[] = [];
    for await (const c of jsm.consumers.list(held)) consumers.push(c.name);
    assert.deepEqual(consumers.sort(), ["dispatch-0", "dispatch-1", "dispatch-2"]);
    const again = await ensureQueueResources(jsm, n, queueSettingsFromSpec({ priorities: { levels: 3 } }), { updateOnDrift: true });
    assert.ok(again.every((c) => c.action === "unchanged"), JSON.stringify(again));

    const plain = queueNames("default", uniqueQueue());
    const report = await ensureQueueResources(jsm, plain, queueSettings());
    assert.equal(report.length, 6, "a queue without flow control has exactly its six resources");
    await assert.rejects(jsm.streams.info(heldNames(plain).stream));

    await new JetStreamQueueNats(jsm).remove(n);
    await assert.rejects(jsm.streams.info(held));
  });

  it("holds published flow tasks, and the delay mover moves a due one to the held stream", async () => {
    const n = await queue({ rateLimit: { rate: "1/s" } });
    await publish(n, "held-1", { priority: 0 });
    assert.equal(await inHeld(n), 1);
    assert.equal(await inWork(n), 0);
    const mover = new DelayMover(js, n, log);
    await mover.start();
    try {
      await publish(n, "delayed-1", { priority: 0 }, { eta: new Date(Date.now() + 300).toISOString() });
      assert.equal((await jsm.streams.info(n.delayedStream)).state.messages, 1);
      await waitFor("moved to the held stream", async () => (await inHeld(n)) === 2, 10_000);
      assert.equal(await inWork(n), 0);
    } finally {
      await mover.stop();
    }
  });

  it("releases what a stopped dispatcher held at once when a new one starts", async () => {
    const spec: QueueSpec = { concurrency: 50, concurrencyKeys: { limit: 1, overrides: { paused: 0 } } };
    const n = await queue(spec);
    const first = await dispatcher(n, spec);
    for (let i = 0; i < 30; i++) await publish(n, `r${i}`, { priority: 0, key: "paused" });
    await waitFor("held by the first dispatcher", () => first.heldCount === 30);
    await first.stop();
    // the override changes: a new dispatcher gets every held task at once (its consumers are new), not after the 300 s ack wait
    const open = { ...spec, concurrencyKeys: { limit: 100 } };
    const second = await dispatcher(n, open);
    await waitFor("all released", async () => (await inWork(n)) === 30 && (await inHeld(n)) === 0, 10_000);
    assert.equal(second.heldCount, 0);
  });

  it("counts released tasks in the work stream as running at start, and frees a slot when its record turns terminal", async () => {
    const spec: QueueSpec = { concurrency: 50, concurrencyKeys: { limit: 1 } };
    const n = await queue(spec);
    const kv = await new Kvm(js).open(n.resultsBucket);
    // released earlier (by a dispatcher that is gone): in the work stream, not finished
    const earlier = msg("w1", { priority: 0, key: "x" }, { queue: n.queue, namespace: n.namespace });
    const h = natsHeaders();
    h.set(HEADERS.task, "t");
    await js.publish(n.taskSubject, JSON.stringify(earlier), { msgID: earlier.id, headers: h });
    const d = await dispatcher(n, spec);
    await publish(n, "w2", { priority: 0, key: "x" });
    await waitFor("w2 held", () => d.heldCount === 1);
    // the dispatcher has counted w1's slot and holds w2 for it (its snapshot says so), not released it
    await waitFor("key x: 1 running, 1 held", () => d.status?.keys?.some((k) => k.key === "x" && k.running === 1 && k.held === 1) === true, 5000);
    assert.equal(await inWork(n), 1, "the key's one slot is w1's");
    const rec: TaskRecord = taskRecord({ id: "w1", task: "t", queue: n.queue, namespace: n.namespace, origin: { kind: "Client" } }, { phase: "Succeeded" });
    await kv.put("w1", JSON.stringify(rec));
    await waitFor("w2 released once w1 finished", async () => (await inWork(n)) === 2, 5000);
  });

  it("writes a waiting record for a task held a second, and releases a held task that is revoked", async () => {
    const spec: QueueSpec = { concurrency: 50, concurrencyKeys: { limit: 1, overrides: { paused: 0 } } };
    const n = await queue(spec);
    const kv = await new Kvm(js).open(n.resultsBucket);
    const d = await dispatcher(n, spec);
    await publish(n, "p1", { priority: 0, key: "paused" });
    const rec = await waitFor("waiting record", async () => {
      const e = await kv.get("p1");
      return e?.operation === "PUT" ? e.json<TaskRecord>() : undefined;
    }, 5000, 50);
    assert.equal(rec.status.phase, "Queued");
    assert.ok(rec.status.waiting?.reason, "the record says why it waits");
    assert.ok(rec.status.waiting?.since);
    assert.ok(d.status && d.status.held === 1, JSON.stringify(d.status));
    await revokeTask(kv, { queue: n.queue, namespace: n.namespace }, "p1");
    await waitFor("the revoked task released to its worker", async () => (await inWork(n)) === 1 && (await inHeld(n)) === 0, 5000);
    assert.equal(d.heldCount, 0);
  });
});
