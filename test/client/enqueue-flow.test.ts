// The client's flow-control options: priority / concurrencyKey / unique checked and resolved with
// `messageFlow` against the Queue's producer settings (flow only on flow-controlled queues; a value
// the queue cannot honour refused naming the option), a task definition's defaults, and the
// singleton lock taken before publishing. Pure tables, then a real nats-server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { heldNames, type ProducerFlow } from "../../api/flow.js";
import { parseTaskMessage, type TaskMessage } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import type { QueueSpec } from "../../api/queue.js";
import { InvalidTaskMessageError } from "../../api/task-message.js";
import { buildTaskMessage, connect, UniqueKeyHeldError, type CeleriacClient } from "../../client/index.js";
import { resolveEnqueueFlow } from "../../client/enqueue-flow.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { publishQueueSettings } from "../../operator/queue/queue-settings-publish.js";
import { defineTask } from "../../worker/define-task.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { queueWith } from "../operator/queue/fixtures.js";

const FLOW: ProducerFlow = { levels: 4, defaultPriority: 1, keys: true, keyFrom: "kwargs.tenant" };
const RATED: ProducerFlow = { levels: 1, defaultPriority: 0, keys: false };

/** Asserts `fn` throws an InvalidTaskMessageError (a TypeError) for `field` whose message matches. */
function refuses(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidTaskMessageError && err instanceof TypeError, `a TypeError with a field, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.message, message);
    return true;
  });
}

describe("resolveEnqueueFlow", () => {
  it("sets flow only on a flow-controlled queue: priority, default priority, key from kwargs or explicit", () => {
    assert.deepEqual(resolveEnqueueFlow("q", undefined, {}, [], {}), {});
    assert.deepEqual(resolveEnqueueFlow("q", RATED, {}, [], {}), { flow: { priority: 0 } });
    assert.deepEqual(resolveEnqueueFlow("q", FLOW, {}, [], { tenant: "acme" }), { flow: { priority: 1, key: "acme" } });
    assert.deepEqual(resolveEnqueueFlow("q", FLOW, { priority: 3, concurrencyKey: "b" }, [], { tenant: "acme" }), { flow: { priority: 3, key: "b" } });
    assert.deepEqual(resolveEnqueueFlow("q", FLOW, {}, [], {}), { flow: { priority: 1 } }, "no key: none");
  });

  const table: Array<[string, ProducerFlow | undefined, Parameters<typeof resolveEnqueueFlow>[2], string, RegExp]> = [
    ["a priority beyond the levels", FLOW, { priority: 4 }, "priority", /^priority: 4 is not a level of queue "q": use an integer 0 … 3/],
    ["a negative priority", FLOW, { priority: -1 }, "priority", /^priority: -1 is not a level/],
    ["a fractional priority", FLOW, { priority: 1.5 }, "priority", /^priority: "1\.5" is not an integer: give a priority level such as 0 or 5/],
    ["a priority given as a string", FLOW, { priority: "2" as unknown as number }, "priority", /^priority: "2" is not an integer/],
    ["a priority on a queue without flow control", undefined, { priority: 0 }, "priority", /^priority: queue "q" has no spec\.priorities: add priorities to the Queue/],
    ["a key on a queue without flow control", undefined, { concurrencyKey: "a" }, "concurrencyKey", /^concurrencyKey: queue "q" has no spec\.concurrencyKeys/],
    ["a key on a rate-limited queue without keys", RATED, { concurrencyKey: "a" }, "concurrencyKey", /^concurrencyKey: queue "q" has no spec\.concurrencyKeys: add concurrencyKeys \(limit\)/],
    ["an empty key", FLOW, { concurrencyKey: "" }, "concurrencyKey", /^concurrencyKey: "" is invalid: use 1–128 characters/],
    ["a key with a trailing space", FLOW, { concurrencyKey: "a " }, "concurrencyKey", /^concurrencyKey: "a " is invalid/],
    ["a key too long", FLOW, { concurrencyKey: "k".repeat(129) }, "concurrencyKey", /^concurrencyKey: "k+\.\.\." is invalid/],
    ["unique that is not an object", undefined, { unique: "x" as never }, "unique", /^unique must be an object \{ key, policy\? \}/],
    ["unique without a key", undefined, { unique: {} as never }, "unique.key", /^unique\.key undefined is invalid: use 1-128 printable characters/],
    ["an unknown unique policy", undefined, { unique: { key: "k", policy: "Skip" as never } }, "unique.policy", /^unique\.policy "Skip" is invalid: use one of Reject, Replace, Wait/],
    ["a misspelt unique field", undefined, { unique: { key: "k", polcy: "Wait" } as never }, "unique.polcy", /^unique\.polcy: unknown field of unique: it has key and policy \(Reject, Replace, Wait\)/],
  ];
  for (const [what, flow, o, field, message] of table) it(`refuses ${what}, naming ${field}`, () => refuses(() => resolveEnqueueFlow("q", flow, o, [], {}), field, message));

  it("resolves unique with policy Reject by default, on any queue", () => {
    assert.deepEqual(resolveEnqueueFlow("q", undefined, { unique: { key: "nightly" } }, [], {}), { unique: { key: "nightly", policy: "Reject" } });
    assert.deepEqual(resolveEnqueueFlow("q", FLOW, { unique: { key: "n", policy: "Wait" } }, [], {}), { flow: { priority: 1 }, unique: { key: "n", policy: "Wait" } });
  });

  it("takes a definition's priority and key function as defaults, the enqueue's options first", () => {
    const d = { task: "reports.build", priority: 2, concurrencyKey: ((_a: unknown[], kw: { org?: string }) => kw.org) as never };
    assert.deepEqual(resolveEnqueueFlow("q", FLOW, {}, [], { org: "o1", tenant: "t" }, d), { flow: { priority: 2, key: "o1" } });
    assert.deepEqual(resolveEnqueueFlow("q", FLOW, { priority: 0, concurrencyKey: "x" }, [], { org: "o1" }, d), { flow: { priority: 0, key: "x" } });
    assert.deepEqual(resolveEnqueueFlow("q", FLOW, {}, [], { tenant: "t" }, d), { flow: { priority: 2, key: "t" } }, "undefined from the function: the Queue's keyFrom");
    refuses(() => resolveEnqueueFlow("q", undefined, {}, [], {}, d), "priority", /^priority: queue "q" has no spec\.priorities.*\(the priority is the default of defineTask\("reports\.build"\): change it there or pass priority to enqueue\)$/);
    const bad = { task: "t", concurrencyKey: (() => ({})) as never };
    refuses(() => resolveEnqueueFlow("q", FLOW, {}, [], {}, bad), "concurrencyKey", /^concurrencyKey: the concurrencyKey function of defineTask\("t"\) returned "\{\}": return undefined \(no key\) or a string/);
    const numeric = { task: "t", concurrencyKey: (() => 42) as never };
    assert.deepEqual(resolveEnqueueFlow("q", FLOW, {}, [], {}, numeric), { flow: { priority: 1, key: "42" } }, "a number is its decimal string, as concurrencyKeys.from reads it");
    const throws = { task: "t", concurrencyKey: (() => { throw new Error("no tenant"); }) as never };
    refuses(() => resolveEnqueueFlow("q", FLOW, {}, [], {}, throws), "concurrencyKey", /^concurrencyKey: the concurrencyKey function of defineTask\("t"\) threw: no tenant$/);
  });

  it("builds the message with flow and unique through buildTaskMessage", () => {
    const m = buildTaskMessage("a.b", [], { tenant: "acme" }, { queue: "q", namespace: "default", flow: FLOW, priority: 2, unique: { key: "u" } }, new Date(), () => "id-1");
    assert.deepEqual([m.flow, m.unique], [{ priority: 2, key: "acme" }, { key: "u", policy: "Reject" }]);
    const plain = buildTaskMessage("a.b", [], {}, { queue: "q", namespace: "default" }, new Date(), () => "id-2");
    assert.equal("flow" in plain, false);
  });
});

describe("when a client enqueues to flow-controlled and plain queues", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let client: CeleriacClient;
  let sub: Subscription;
  const NS = "default";
  const flowQueue = uniqueQueue("flow");
  const plainQueue = uniqueQueue("plain");
  /** Every message published on either queue's subjects (work, delayed, held), by task id. */
  const seen = new Map<string, TaskMessage>();

  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    const jsm = await jetstreamManager(nc);
    for (const [q, spec] of [[flowQueue, { priorities: { levels: 3, default: 0 }, concurrencyKeys: { from: "kwargs.tenant", limit: 1 } }], [plainQueue, {}]] as Array<[string, QueueSpec]>) {
      const names = queueNames(NS, q);
      await ensureQueueResources(jsm, names, queueSettings());
      // the held stream, when ensureQueueResources does not make it (before the dispatcher's resources exist)
      const held = heldNames(names);
      await jsm.streams.info(held.stream).catch(() => jsm.streams.add({ name: held.stream, subjects: [`${held.subjectPrefix}.*`] }));
      await publishQueueSettings(jetstream(nc), names, queueWith(spec, q, NS));
    }
    sub = nc.subscribe(`celeriac.${NS}.*.>`, {
      callback: (_err, m) => {
        const p = parseTaskMessage(m.data);
        if (p.ok) seen.set(p.message.id, p.message);
      },
    });
    await nc.flush();
    client = await connect({ nc, namespace: NS });
  });
  after(async () => {
    sub?.unsubscribe();
    await client?.close();
    await nc?.close();
    await srv?.cleanup();
  });
  const published = (id: string) => waitFor(`message ${id}`, () => seen.get(id), 5000);

  it("sets flow from the Queue's producer settings on a flow-controlled queue", async () => {
    const h = await client.enqueue("reports.build", [], { tenant: "acme" }, { queue: flowQueue, priority: 2 });
    assert.deepEqual((await published(h.id)).flow, { priority: 2, key: "acme" });
    const d = await client.enqueue("reports.build", [], {}, { queue: flowQueue });
    assert.deepEqual((await published(d.id)).flow, { priority: 0 }, "the Queue's default priority, no key");
  });

  it("sets no flow on a plain queue, and refuses a priority or key there before publishing", async () => {
    const h = await client.enqueue("reports.build", [], { tenant: "acme" }, { queue: plainQueue });
    assert.equal("flow" in (await published(h.id)), false);
    await assert.rejects(client.enqueue("reports.build", [], {}, { queue: plainQueue, priority: 1, taskId: "refused-prio" }), (err: unknown) => err instanceof TypeError && (err as InvalidTaskMessageError).field === "priority" && /has no spec\.priorities/.test(err.message));
    await assert.rejects(client.enqueue("reports.build", [], {}, { queue: flowQueue, priority: 3, taskId: "refused-level" }), (err: unknown) => err instanceof TypeError && /^priority: 3 is not a level of queue "flow-/.test(err.message));
    await nc.flush();
    assert.equal(seen.has("refused-prio") || seen.has("refused-level"), false, "nothing published");
  });

  it("uses a task definition's priority and key function as defaults", async () => {
    const def = defineTask("reports.build", () => null, { priority: 1, concurrencyKey: (_args, kwargs) => kwargs.org as string | undefined });
    const h = await client.enqueue(def, [], { org: "o-7" }, { queue: flowQueue });
    assert.deepEqual((await published(h.id)).flow, { priority: 1, key: "o-7" });
    const over = await client.enqueue(def, [], { org: "o-7" }, { queue: flowQueue, priority: 2, concurrencyKey: "k" });
    assert.deepEqual((await published(over.id)).flow, { priority: 2, key: "k" });
  });

  it("fails only the bad elements of enqueueManySettled, naming the option", async () => {
    const results = await client.enqueueManySettled([
      { name: "reports.build", options: { queue: flowQueue, priority: 9, taskId: "many-bad" } },
      { name: "reports.build", kwargs: { tenant: "t" }, options: { queue: flowQueue, priority: 1, taskId: "many-ok" } },
    ]);
    assert.equal(results[0]?.ok, false);
    assert.equal(((results[0] as { error: Error }).error as InvalidTaskMessageError).field, "priority");
    assert.equal(results[1]?.ok, true);
    assert.deepEqual((await published("many-ok")).flow, { priority: 1, key: "t" });
  });

  it("takes the unique lock: a second task with the key is rejected naming the holder (Reject), published with Wait", async () => {
    const first = await client.enqueue("reports.nightly", [], {}, { queue: plainQueue, unique: { key: "nightly" } });
    assert.deepEqual((await published(first.id)).unique, { key: "nightly", policy: "Reject" });
    const again = await client.enqueue("reports.nightly", [], {}, { queue: plainQueue, taskId: first.id, unique: { key: "nightly" } });
    assert.equal(again.id, first.id, "the same task id again finds its own lock");
    await assert.rejects(client.enqueue("reports.nightly", [], {}, { queue: plainQueue, taskId: "second", unique: { key: "nightly", policy: "Reject" } }), (err: unknown) => {
      assert.ok(err instanceof UniqueKeyHeldError);
      assert.equal(err.holder, first.id);
      assert.equal(err.policy, "Reject");
      assert.match(err.message, new RegExp(`unique key "nightly" is held by task ${first.id} \\(policy Reject\\): not published`));
      return true;
    });
    const waits = await client.enqueue("reports.nightly", [], {}, { queue: plainQueue, unique: { key: "nightly", policy: "Wait" } });
    assert.deepEqual((await published(waits.id)).unique, { key: "nightly", policy: "Wait" });
    await nc.flush();
    assert.equal(seen.has("second"), false, "the rejected task was not published");
  });
});
