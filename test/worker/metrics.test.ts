import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { defineTask } from "../../worker/index.js";
import { createWorkerMetrics, QueueMetrics, queueWaitSeconds } from "../../worker/metrics.js";
import { serveWorkerHttp, type HttpServer } from "../../worker/http.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "./fixture.js";

const tasks = [
  defineTask("ok", () => "fine"),
  defineTask("fails", () => {
    throw new Error("always");
  }),
];

/** The `celeriac_tasks_total` samples, as `task/outcome` → value. */
function tasksTotal(text: string, queue: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = /^celeriac_tasks_total\{queue="([^"]*)",task="([^"]*)",outcome="([^"]*)"\} (\d+)$/gm;
  for (const m of text.matchAll(re)) if (m[1] === queue) out.set(`${m[2]}/${m[3]}`, Number(m[4]));
  return out;
}

describe("when the worker's metrics are scraped", () => {
  let srv: NatsServer;
  let f: Fixture;
  let http: HttpServer;
  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks);
    const w = await f.startWorker({ concurrency: 3 });
    http = await serveWorkerHttp(0, w.metrics.registry, () => w.ready);
  });
  after(async () => {
    await http?.close();
    await f?.close();
    await srv?.cleanup();
  });
  const text = async () => (await fetch(`http://127.0.0.1:${http.port}/metrics`)).text();
  const scrape = async () => tasksTotal(await text(), f.queue);


  it("counts each attempt once: a final failure is failed, not also dead_lettered", async () => {
    const h = await f.client.enqueue("fails", [], {}, { retry: { maxAttempts: 2, backoff: { initialSeconds: 0.05, factor: 1, maxSeconds: 0.05, jitter: false } } });
    await h.result({ timeoutMs: 10_000 }).catch(() => undefined);
    await (await f.client.enqueue("ok", [])).result({ timeoutMs: 10_000 });
    const m = await waitFor("counted", async () => {
      const s = await scrape();
      return s.get("fails/failed") === 1 && s.get("ok/succeeded") === 1 ? s : undefined;
    });
    assert.deepEqual(Object.fromEntries(m), { "fails/retried": 1, "fails/failed": 1, "ok/succeeded": 1 });
  });

  it("gives every unregistered task name one shared task label", async () => {
    const names = Array.from({ length: 5 }, (_, i) => `garbage.${Date.now().toString(36)}.${i}`);
    await Promise.all(names.map((n) => f.client.enqueue(n, []).then((h) => h.result({ timeoutMs: 10_000 }).catch(() => undefined))));
    const m = await waitFor("counted", async () => {
      const s = await scrape();
      return s.get("<unregistered>/dead_lettered") === 5 ? s : undefined;
    });
    for (const k of m.keys()) assert.ok(!k.startsWith("garbage."), `a label value per garbage name: ${k}`);
  });

  it("exports the worker's slots and each first attempt's queue wait", async () => {
    await (await f.client.enqueue("ok", [])).result({ timeoutMs: 10_000 });
    const t = await waitFor("queue wait observed", async () => {
      const s = await text();
      return new RegExp(`^celeriac_task_queue_wait_seconds_count\\{queue="${f.queue}",task="ok"\\} [1-9]`, "m").test(s) ? s : undefined;
    });
    assert.match(t, new RegExp(`^celeriac_worker_slots\\{queue="${f.queue}"\\} 3$`, "m"));
  });
});

describe("when a queue wait is computed", () => {
  const cases: Array<[string, { createdAt: string; eta?: string }, string, number | undefined]> = [
    ["counts from creation", { createdAt: "2026-01-01T00:00:00.000Z" }, "2026-01-01T00:00:02.500Z", 2.5],
    ["counts from the eta when there is one", { createdAt: "2026-01-01T00:00:00Z", eta: "2026-01-01T00:01:00Z" }, "2026-01-01T00:01:00.250Z", 0.25],
    ["is 0 when the producer's clock is ahead", { createdAt: "2026-01-01T00:00:05Z" }, "2026-01-01T00:00:00Z", 0],
    ["is undefined for a time that does not parse", { createdAt: "yesterday" }, "2026-01-01T00:00:00Z", undefined],
  ];
  for (const [name, message, start, want] of cases) it(name, () => assert.equal(queueWaitSeconds(message, start), want));
});

describe("when a queue's metric handles are used", () => {
  it("observes queue waits under the task label and sets the slots", async () => {
    const m = createWorkerMetrics();
    const q = new QueueMetrics(m, "emails", ["send"]);
    q.observeWait("send", 0.2);
    q.observeWait("garbage", 7);
    q.setSlots(8);
    const text = await m.registry.metrics();
    assert.match(text, /^celeriac_task_queue_wait_seconds_count\{queue="emails",task="send"\} 1$/m);
    assert.match(text, /^celeriac_task_queue_wait_seconds_bucket\{le="0.5",queue="emails",task="send"\} 1$/m);
    assert.match(text, /^celeriac_task_queue_wait_seconds_count\{queue="emails",task="<unregistered>"\} 1$/m);
    assert.match(text, /^celeriac_worker_slots\{queue="emails"\} 8$/m);
  });
});
