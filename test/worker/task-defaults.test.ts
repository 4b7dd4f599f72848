// defineTask's flow-control options (rateLimit, priority, concurrencyKey) are checked when the task
// is defined, and a starting worker publishes the rate limits of its tasks to the results bucket
// (`task-defaults.<base64url(name)>`) for the queue's dispatcher. The publish runs against a real
// nats-server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { pino } from "pino";
import { parseTaskDefaults, taskDefaultsKey } from "../../api/flow.js";
import { defineTask } from "../../worker/index.js";
import { collectTasks } from "../../worker/define-task.js";
import { publishTaskDefaults, taskDefaultsEntries } from "../../worker/task-defaults.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

const noop = () => null;

describe("defineTask flow-control options", () => {
  it("accepts a Celery rate, a priority 0–9 and a key function, keeping the other options", () => {
    const d = defineTask("mail.send", noop, { rateLimit: "100/m", priority: 9, concurrencyKey: (_a, kw) => kw.tenant as string, timeoutSeconds: 5 });
    assert.deepEqual([d.options.rateLimit, d.options.priority, d.options.timeoutSeconds], ["100/m", 9, 5]);
    assert.equal(d.options.concurrencyKey?.([], { tenant: "acme" }), "acme");
    assert.doesNotThrow(() => defineTask("a", noop, { rateLimit: 5, priority: 0 }));
  });
  const bad: Array<[string, Parameters<typeof defineTask>[2], RegExp]> = [
    ["a malformed rate", { rateLimit: "10 per second" }, /^task "t": rateLimit: "10 per second" is not a rate: use "<n>\/s", "<n>\/m" or "<n>\/h" with n > 0/],
    ["a zero rate", { rateLimit: "0/s" }, /^task "t": rateLimit: "0\/s" is not a rate/],
    ["priority 10", { priority: 10 }, /^task "t": priority 10 is invalid: use an integer 0 … 9/],
    ["a fractional priority", { priority: 0.5 }, /^task "t": priority 0\.5 is invalid/],
    ["a key that is not a function", { concurrencyKey: "tenant" as never }, /^task "t": concurrencyKey must be a function \(args, kwargs\) => string \| undefined/],
  ];
  for (const [what, opts, message] of bad) it(`refuses ${what} with a TypeError naming the option`, () => assert.throws(() => defineTask("t", noop, opts), (err: unknown) => err instanceof TypeError && message.test(err.message)));
});

describe("taskDefaultsEntries", () => {
  it("lists the tasks with a rate limit, in name order, keyed by base64url of the name", () => {
    const tasks = collectTasks([defineTask("b.slow", noop, { rateLimit: 2 }), defineTask("plain", noop), defineTask("a.mail", noop, { rateLimit: "10/s" })]);
    assert.deepEqual(taskDefaultsEntries(tasks), [
      { key: "task-defaults.YS5tYWls", value: { v: 1, task: "a.mail", rateLimit: "10/s" } },
      { key: "task-defaults.Yi5zbG93", value: { v: 1, task: "b.slow", rateLimit: "2" } },
    ]);
    assert.equal(taskDefaultsKey("a:b-c_d"), `task-defaults.${Buffer.from("a:b-c_d").toString("base64url")}`);
    assert.ok(/^task-defaults\.[A-Za-z0-9_-]+$/.test(taskDefaultsKey("ünïcode.näme")), "within the KV key alphabet");
  });
  it("round-trips through parseTaskDefaults, which names bad fields", () => {
    assert.deepEqual(parseTaskDefaults('{"v":1,"task":"a","rateLimit":"10/s","extra":1}'), { defaults: { v: 1, task: "a", rateLimit: "10/s" } });
    assert.deepEqual(parseTaskDefaults('{"v":2}'), { error: "v: Unsupported value: 2: supported values: 1" });
    assert.match((parseTaskDefaults('{"v":1,"task":"a","rateLimit":"fast"}') as { error: string }).error, /^rateLimit: "fast" is not a rate/);
  });
});

describe("when a worker with rate-limited tasks starts", () => {
  let srv: NatsServer;
  let f: Fixture;
  const tasks = [defineTask("mail.send", noop, { rateLimit: "100/m" }), defineTask("reports.build", noop)];
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks);
    await f.startWorker();
  });
  after(async () => {
    await f?.close();
    await srv?.cleanup();
  });

  it("has published each rate-limited task's defaults to the results bucket before it runs anything", async () => {
    const kv = await new Kvm(jetstream(f.nc)).open(f.names.resultsBucket);
    const e = await kv.get(taskDefaultsKey("mail.send"));
    assert.equal(e?.operation, "PUT");
    assert.deepEqual(JSON.parse(e!.string()), { v: 1, task: "mail.send", rateLimit: "100/m" });
    assert.equal(await kv.get(taskDefaultsKey("reports.build")), null, "no entry for a task without a rate limit");
  });

  it("does not rewrite an unchanged value (a second worker's start)", async () => {
    const kv = await new Kvm(jetstream(f.nc)).open(f.names.resultsBucket);
    const before = (await kv.get(taskDefaultsKey("mail.send")))!.revision;
    const written = await publishTaskDefaults(kv, f.names.resultsBucket, collectTasks(tasks), pino({ level: "silent" }));
    assert.deepEqual(written, []);
    assert.equal((await kv.get(taskDefaultsKey("mail.send")))!.revision, before);
    const changed = await publishTaskDefaults(kv, f.names.resultsBucket, collectTasks([defineTask("mail.send", noop, { rateLimit: "5/s" })]), pino({ level: "silent" }));
    assert.deepEqual(changed, [taskDefaultsKey("mail.send")]);
    assert.equal(JSON.parse((await kv.get(taskDefaultsKey("mail.send")))!.string()).rateLimit, "5/s");
  });
});
