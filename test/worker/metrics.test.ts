import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { defineTask } from "../../worker/index.js";
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
    const w = await f.startWorker();
    http = await serveWorkerHttp(0, w.metrics.registry, () => w.ready);
  });
  after(async () => {
    await http?.close();
    await f?.close();
    await srv?.cleanup();
  });
  const scrape = async () => tasksTotal(await (await fetch(`http://127.0.0.1:${http.port}/metrics`)).text(), f.queue);

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
});
