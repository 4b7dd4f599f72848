// The dashboard's history across restarts (dashboard/history-store.ts): a real nats-server in
// operator mode; the dashboards run with minted credentials — a namespace's producer rights, which
// include the history bucket's (api/nats-permissions.ts dashboardHistorySubjects) — and an in-process worker
// runs tasks that succeed and tasks that dead-letter. Dashboard A samples the
// queue and is closed; dashboard B, on the same NATS, serves A's slots from /api/history with their
// times and sample counts, and failed/s > 0. A credential without the bucket's rights falls back to
// memory and says why, in /api/history and on the page (headless Chromium).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { chromium, type Browser } from "playwright-core";
import { pino } from "pino";
import { dashboardBucket, queueNames, type QueueNames } from "../../api/naming.js";
import { dashboardHistorySubjects, producerPermissions, type NatsPermissions } from "../../api/nats-permissions.js";
import type { OpsSession } from "../../cli/session.js";
import { startDashboard, type Dashboard, type QueueSample, type QueueTickItem } from "../../dashboard/server.js";
import { ratesBetween, slotKey, slotPoint, slotStart, parsePoint } from "../../dashboard/history-store.js";
import { connectNats, ensureQueueResources, mintUserCreds, natsSettingsFrom, queueSettings } from "../../nats/index.js";
import { connect, type CeleriacClient } from "../../client/index.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";

const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
const NS = "default";

/** What /api/history answers. */
interface HistoryAnswer {
  sampleMs: number;
  since: string;
  store: "nats" | "memory";
  reason?: string;
  bucket: string;
  windowMs: number;
  resolutionMs: number;
  queues: Record<string, QueueSample[]>;
}

describe("when the dashboard's history is computed", () => {
  it("averages rates and keeps the last gauges per slot, keyed by queue and slot start", () => {
    assert.equal(slotStart(12_345, 10_000), 10_000);
    assert.equal(slotKey("emails", 1_700_000_010_000), "emails.1700000010");
    const p = slotPoint(10_000, [{ t: 10_100, backlog: 5, inFlight: 1, dead: 0, rate: 1, failed: 0 }, { t: 11_100, backlog: 3, inFlight: 2, dead: 1, rate: 2, started: 4, failed: 1 }]);
    assert.deepEqual(p, { t: 10_000, backlog: 3, inFlight: 2, dead: 1, rate: 1.5, started: 4, failed: 0.5, n: 2 });
    assert.deepEqual(parsePoint(JSON.stringify({ v: 1, ...p })), p);
    assert.equal(parsePoint("{\"v\":2,\"t\":1}"), undefined);
    assert.equal(parsePoint("not json"), undefined);
    assert.throws(() => slotPoint(0, []), /no samples/);
  });

  it("counts settled, started and failed per second between two readings", () => {
    const a = { at: 0, last: 10, messages: 10, delivered: 3, deadLast: 1 };
    assert.deepEqual(ratesBetween(a, { at: 2000, last: 20, messages: 12, delivered: 13, deadLast: 5 }), { settled: 4, failed: 2, started: 5 });
    // a re-created stream (counters went down) counts as 0, a missing consumer gives no started/s
    assert.deepEqual(ratesBetween(a, { at: 1000, last: 2, messages: 2, deadLast: 0 }), { settled: 0, failed: 0 });
    assert.deepEqual(ratesBetween(a, { ...a }), { settled: 0, failed: 0, started: 0 });
  });
});

describe("when a dashboard is restarted on the same NATS", () => {
  let srv: NatsServer;
  let dir: string;
  let admin: NatsConnection;
  let adminJsm: JetStreamManager;
  let names: QueueNames;
  let worker: Worker;
  let client: CeleriacClient;
  let browser: Browser | undefined;
  const opened: NatsConnection[] = [];
  const dashboards: Dashboard[] = [];
  const queue = `h${Math.random().toString(36).slice(2, 6)}`; // short: a producer JWT must fit nats-server 2.9's 4096-byte CONNECT line
  const history = { windowMs: 60_000, resolutionMs: 1000 };

  /** An operations session (cli/session.ts shape) as a user minted with `permissions`. */
  async function sessionAs(name: string, permissions: NatsPermissions): Promise<OpsSession> {
    const file = join(dir, `${name}.creds`);
    writeFileSync(file, (await mintUserCreds(srv.operator!.signer, { name, ttlSeconds: 600, permissions })).creds, { mode: 0o600 });
    const nc = await connectNats(natsSettingsFrom({ url: srv.url, name }, { CELERIAC_NATS_CREDS: file }));
    opened.push(nc);
    const js = jetstream(nc);
    const kvm = new Kvm(js);
    const kvs = new Map<string, Promise<KV>>();
    return {
      nc, js, jsm: await jetstreamManager(nc, { checkAPI: false }), namespace: NS, queue, queues: [queue],
      kv: (q) => {
        let p = kvs.get(q);
        if (!p) kvs.set(q, (p = kvm.open(queueNames(NS, q).resultsBucket)));
        return p;
      },
      close: async () => { if (!nc.isClosed()) await nc.close(); },
    };
  }
  /** The minted producer credential's rights, which include the history bucket's. */
  const dashboardCredential = (): NatsPermissions => producerPermissions(NS, [queue]);
  /** The producer's rights without the history bucket's (e.g. a user made with `nsc` from an older list). */
  const withoutHistory = (): NatsPermissions => {
    const p = producerPermissions(NS, [queue]);
    const h = dashboardHistorySubjects(NS);
    return { ...p, pub: { allow: p.pub.allow.filter((s) => !h.includes(s)) } };
  };
  const getHistory = async (d: Dashboard) => (await (await fetch(`${d.url}api/history`)).json()) as HistoryAnswer;
  const getQueues = async (d: Dashboard) => (await (await fetch(`${d.url}api/queues`)).json()) as { items: QueueTickItem[]; error?: string };
  const violations = () => srv.log().split("\n").filter((l) => /Violation/.test(l));

  before(async () => {
    srv = await startNatsServer({ operatorMode: true });
    dir = mkdtempSync(join(tmpdir(), "celeriac-history-"));
    admin = await connectNats(natsSettingsFrom({ url: srv.url, name: "admin" }, { CELERIAC_NATS_CREDS: srv.operator!.adminCredsFile }));
    adminJsm = await jetstreamManager(admin);
    names = queueNames(NS, queue);
    await ensureQueueResources(adminJsm, names, queueSettings({ ackWaitSeconds: 5 }), { updateOnDrift: true });
    const wnc = await connectNats(natsSettingsFrom({ url: srv.url, name: "worker" }, { CELERIAC_NATS_CREDS: srv.operator!.adminCredsFile }));
    opened.push(wnc);
    worker = new Worker({
      nc: wnc,
      queue, logger: quiet, workerName: "hist-w1", concurrency: 4, settings: { ackWaitSeconds: 5 }, shutdownGraceSeconds: 2, fetchExpiresMs: 1000,
      tasks: [
        defineTask("ok", async () => { await new Promise((r) => setTimeout(r, 20)); return 1; }),
        defineTask("bad", () => { throw new UnrecoverableError("bad on purpose"); }),
      ],
    });
    await worker.start();
    client = await connect({ nc: admin, queue });
  });

  after(async () => {
    for (const d of dashboards) await d.close();
    await browser?.close();
    await worker?.close();
    await client?.close();
    for (const nc of opened) if (!nc.isClosed()) await nc.close();
    if (!admin?.isClosed()) await admin?.close();
    await srv?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the earlier dashboard's slots from the bucket, with failed/s and started/s, under a minted credential with the producer's and the bucket's rights", async () => {
    const before = violations().length;
    const a = await startDashboard({ session: await sessionAs("dash-a", dashboardCredential()), port: 0, sampleMs: 200, history, logger: quiet });
    dashboards.push(a);
    const h0 = await getHistory(a);
    assert.equal(h0.store, "nats", h0.reason);
    assert.equal(h0.bucket, dashboardBucket(NS));
    // work: tasks that succeed and tasks that dead-letter, over a few slots
    for (let round = 0; round < 3; round++) {
      await Promise.all([...Array.from({ length: 10 }, (_, i) => client.enqueue("ok", [round, i])), ...Array.from({ length: 2 }, (_, i) => client.enqueue("bad", [round, i]))]);
      const state = async () => `dead letters ${(await adminJsm.streams.info(names.deadLetterStream)).state.messages}, work ${JSON.stringify((await adminJsm.streams.info(names.stream)).state.messages)}, consumer ${JSON.stringify((await adminJsm.consumers.info(names.stream, names.workerConsumer)).delivered)}`;
      await waitFor(`round ${round} dead-lettered`, async () => (await adminJsm.streams.info(names.deadLetterStream)).state.messages === 2 * (round + 1), 15_000).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${await state()}`);
      });
      await new Promise((r) => setTimeout(r, 600)); // spread the rounds over slots (the sampler runs meanwhile)
    }
    const live = await waitFor("a tick with the dead letters", async () => {
      const it = (await getQueues(a)).items.find((x) => x.queue === queue);
      return it && it.dead === 6 && it.backlog === 0 && it.inFlight === 0 ? it : undefined;
    }, 10_000);
    assert.equal(typeof live.failedPerSecond, "number");
    assert.equal(typeof live.startedPerSecond, "number");
    const ha = await getHistory(a);
    const samples = ha.queues[queue]!;
    assert.ok(samples.some((s) => (s.failed ?? 0) > 0), "failed/s > 0 while tasks dead-letter");
    assert.ok(samples.some((s) => (s.started ?? 0) > 0), "started/s > 0 while workers take tasks");
    assert.ok(samples.some((s) => (s.rate ?? 0) > 0), "settled/s > 0");
    await a.close();

    // what A wrote: one key per slot A sampled, nothing else
    const kv = await new Kvm(jetstream(admin)).open(dashboardBucket(NS));
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    const slotsA = [...new Set(samples.map((s) => slotStart(s.t, history.resolutionMs)))];
    for (const t of slotsA) assert.ok(keys.includes(slotKey(queue, t)), `slot ${t} stored`);
    assert.ok(keys.every((k) => k.startsWith(`${queue}.`)), keys.join(" "));

    const started = Date.now();
    const b = await startDashboard({ session: await sessionAs("dash-b", dashboardCredential()), port: 0, sampleMs: 200, history, logger: quiet });
    dashboards.push(b);
    const hb = await getHistory(b);
    assert.equal(hb.store, "nats", hb.reason);
    assert.equal(hb.windowMs, 60_000);
    assert.equal(hb.resolutionMs, 1000);
    const stored = hb.queues[queue]!.filter((p) => p.n !== undefined);
    // every slot of A's samples is served, at the slot's start, averaging that many samples
    for (const t of slotsA) {
      const p = stored.find((x) => x.t === t);
      assert.ok(p, `slot ${new Date(t).toISOString()} served after the restart`);
      const inA = samples.filter((s) => slotStart(s.t, 1000) === t).length;
      // A may have taken one more sample of its last slot after the read above, before closing
      assert.ok(p.n === inA || (t === Math.max(...slotsA) && p.n! >= inA), `slot ${t}: n ${p.n}, A had ${inA}`);
    }
    assert.ok(stored.every((p) => p.t < started && p.t >= started - history.windowMs), "stored points are A's, within the window");
    assert.ok(stored.length >= slotsA.length && stored.length <= slotsA.length + 1, `${stored.length} stored points for ${slotsA.length} slots`);
    assert.ok(stored.some((p) => (p.failed ?? 0) > 0), "failed/s > 0 in the stored points");
    assert.ok(stored.some((p) => (p.started ?? 0) > 0), "started/s in the stored points");
    assert.equal(stored[stored.length - 1]!.dead, 6, "the last slot's gauge");
    assert.ok(stored.every((p, i) => i === 0 || stored[i - 1]!.t < p.t), "oldest first");
    assert.ok(Date.parse(hb.since) <= stored[0]!.t);
    // and B's own samples come after them
    await waitFor("B's first live samples", async () => ((await getHistory(b)).queues[queue]!.filter((p) => p.n === undefined).length >= 2) || undefined, 5000);
    // only the queue listing is refused (a minted credential may not list the account's streams), once per dashboard
    const refused = violations().slice(before);
    assert.ok(refused.length <= 2 && refused.every((l) => l.includes('"$JS.API.STREAM.NAMES"')), `no other permission violation: ${refused.join("\n")}`);
  });

  it("keeps the history in memory, and says why, under a credential without the bucket's rights", async () => {
    const c = await startDashboard({ session: await sessionAs("dash-c", withoutHistory()), port: 0, sampleMs: 200, history, logger: quiet });
    dashboards.push(c);
    const h = await getHistory(c);
    assert.equal(h.store, "memory");
    assert.match(h.reason ?? "", /may not use the history bucket/);
    assert.match(h.reason ?? "", new RegExp(dashboardBucket(NS)));
    assert.ok((h.queues[queue] ?? []).every((x) => x.n === undefined), "no stored points");
    // it keeps sampling
    await waitFor("memory samples", async () => ((await getHistory(c)).queues[queue]?.length ?? 0) >= 3 || undefined, 5000);
    assert.equal((await getQueues(c)).error, undefined);

    // the page says so, and plots the three charts
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    await page.goto(c.url);
    await page.waitForSelector("#history-store[data-store=memory]");
    assert.match(await page.locator("#history-store").innerText(), /in memory.*may not use the history bucket/s);
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll(".chart canvas").length === 3);
    assert.deepEqual(await page.locator(".chart").evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { chart: string } }).dataset.chart)), ["backlog", "throughput", "failures"]);
    assert.ok(await page.locator("#queue-table th", { hasText: "Failed /s" }).count() === 1);
    await page.waitForFunction((q) => {
      const cell = (globalThis as unknown as { document: { querySelector(s: string): { textContent: string | null } | null } }).document.querySelector(`tr[data-queue="${q}"] td[data-field=failedPerSecond]`);
      return cell !== null && cell.textContent !== "";
    }, queue);
    assert.deepEqual(errors, []);
  });
});
