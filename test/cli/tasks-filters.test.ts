// `celeriac tasks list --since/--until/--concurrency-key` and the dashboard's `/api/tasks` with the
// same filters (one parser: cli/commands/tasks.ts taskListFilter): the strict time parser as a
// table, then the built bin and an in-process dashboard against a real nats-server with an
// in-process worker. Tasks with a concurrency key are published to the work stream as a queue's
// dispatcher forwards them (the same body, `flow.key` set); the worker's records carry the key.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { pino } from "pino";
import { chromium } from "playwright-core";
import { taskRecord, type TaskRecord } from "../../api/message.js";
import { newTaskMessage } from "../../api/task-message.js";
import { parseTimeBound, taskListFilter } from "../../cli/commands/tasks.js";
import { openOps, type OpsSession } from "../../cli/session.js";
import { startDashboard, type Dashboard } from "../../dashboard/server.js";
import { matchesFilter } from "../../nats/task-records.js";
import { defineTask } from "../../worker/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "../worker/fixture.js";

const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));
const CWD = mkdtempSync(join(tmpdir(), "celeriac-cwd-"));
after(() => rmSync(CWD, { recursive: true, force: true }));

async function celeriac(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_") && k !== "KUBECONFIG"));
  return run(process.execPath, [BIN, ...args], { cwd: CWD, env }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const NOW = Date.parse("2026-12-03T12:00:00.000Z");

describe("when a time bound is parsed", () => {
  const ok: Array<[string, string]> = [
    ["90s", "2026-12-03T11:58:30.000Z"],
    ["15m", "2026-12-03T11:45:00.000Z"],
    ["1h30m", "2026-12-03T10:30:00.000Z"],
    ["2d", "2026-12-01T12:00:00.000Z"],
    ["1d12h", "2026-12-02T00:00:00.000Z"],
    ["1.5h", "2026-12-03T10:30:00.000Z"],
    ["500ms", "2026-12-03T11:59:59.500Z"],
    ["2026-12-03T10:00:00Z", "2026-12-03T10:00:00.000Z"],
    ["2026-12-03T10:00Z", "2026-12-03T10:00:00.000Z"],
    ["2026-12-03T11:00:00.250+01:00", "2026-12-03T10:00:00.250Z"],
    ["2026-12-03T05:30:00-04:30", "2026-12-03T10:00:00.000Z"],
    ["2026-12-03", "2026-12-03T00:00:00.000Z"],
    ["2024-02-29", "2024-02-29T00:00:00.000Z"],
  ];
  for (const [v, want] of ok) it(`reads ${v}`, () => assert.equal(parseTimeBound(v, "--since", NOW).toISOString(), want));

  const bad: Array<[string, RegExp]> = [
    ["yesterday", /^Error: --since "yesterday": use a duration before now \(90s, 15m, 1h30m, 2d\) or an ISO 8601 time with a zone/],
    ["", /^Error: --since "": use a duration/],
    ["15", /^Error: --since "15": use a duration/],
    ["1h30", /use a duration/],
    ["-5m", /use a duration/],
    ["15M", /use a duration/],
    ["2026-12-03T10:00:00", /^Error: --since "2026-12-03T10:00:00": the time has no zone: add Z \(UTC\) or an offset such as \+01:00$/],
    ["2026-12-03 10:00:00Z", /use a duration/],
    ["2026-02-30", /^Error: --since "2026-02-30": no such date or time$/],
    ["2026-12-03T25:00Z", /no such date or time/],
    ["2026-12-03T10:00+25:00", /no such zone offset/],
    ["1733227200", /use a duration/],
  ];
  for (const [v, want] of bad) it(`refuses ${JSON.stringify(v)}`, () => assert.throws(() => parseTimeBound(v, "--since", NOW), want));
});

describe("when list filters are given", () => {
  const cli = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  it("parses them into one record filter, naming fields as the caller does", () => {
    assert.deepEqual(taskListFilter({ state: "failed,running", task: "t", since: "1h", until: "2026-12-03T11:30:00Z", concurrencyKey: "tenant-a", limit: 5 }, cli, NOW), {
      phases: ["Failed", "Running"], task: "t", since: new Date("2026-12-03T11:00:00Z"), until: new Date("2026-12-03T11:30:00Z"), concurrencyKey: "tenant-a", limit: 5,
    });
    assert.deepEqual(taskListFilter({}, cli, NOW), {});
    assert.throws(() => taskListFilter({ since: "1h", until: "2h" }, cli, NOW), /^Error: --since 1h \(2026-12-03T11:00:00.000Z\) is after --until 2h \(2026-12-03T10:00:00.000Z\): give since before until$/);
    assert.throws(() => taskListFilter({ until: "soon" }, (k) => k, NOW), /^Error: until "soon": use a duration/);
    assert.throws(() => taskListFilter({ concurrencyKey: " padded" }, cli, NOW), /^Error: --concurrency-key " padded": a concurrency key is 1-128 characters/);
    assert.throws(() => taskListFilter({ concurrencyKey: "" }, (k) => k, NOW), /^Error: concurrencyKey "": a concurrency key/);
    assert.throws(() => taskListFilter({ state: "nope" }, (k) => k, NOW), /^Error: state "nope": unknown phase/);
  });

  it("matches a record on its last write time and concurrency key", () => {
    const rec = taskRecord({ id: "a", task: "t", queue: "q", namespace: "default", origin: { kind: "Client" }, flow: { key: "tenant-a" } }, { phase: "Succeeded" }, "2026-12-03T11:00:00.000Z");
    assert.equal(rec.concurrencyKey, "tenant-a");
    assert.equal(taskRecord({ id: "b", task: "t", queue: "q", namespace: "default", origin: { kind: "Client" } }, { phase: "Queued" }).concurrencyKey, undefined);
    const at = (iso: string) => new Date(iso);
    const table: Array<[Parameters<typeof matchesFilter>[1], boolean]> = [
      [{}, true],
      [{ concurrencyKey: "tenant-a" }, true],
      [{ concurrencyKey: "tenant-b" }, false],
      [{ since: at("2026-12-03T11:00:00.000Z") }, true],
      [{ since: at("2026-12-03T11:00:00.001Z") }, false],
      [{ until: at("2026-12-03T11:00:00.000Z") }, true],
      [{ until: at("2026-12-03T10:59:59.999Z") }, false],
      [{ since: at("2026-12-03T10:00:00Z"), until: at("2026-12-03T12:00:00Z"), concurrencyKey: "tenant-a", phases: ["Succeeded"] }, true],
    ];
    for (const [f, want] of table) assert.equal(matchesFilter(rec, f), want, JSON.stringify(f));
    assert.equal(matchesFilter({ ...rec, updatedAt: "garbage" }, { until: at("2030-01-01T00:00:00Z") }), false);
  });
});

describe("celeriac tasks list and the dashboard's task search, by time and concurrency key", () => {
  let srv: NatsServer;
  let f: Fixture;
  let results: KV;
  let session: OpsSession;
  let dash: Dashboard;
  let common: string[];
  let mid: string;
  const batch1: string[] = [];
  const batch2: string[] = [];
  const keyed: Record<string, string[]> = { "tenant-a": [], "tenant-b": [] };
  const phase = async (id: string) => {
    const e = await results.get(id);
    return e && e.operation === "PUT" ? e.json<TaskRecord>().status.phase : undefined;
  };
  const list = async (...args: string[]) => {
    const r = await celeriac(["tasks", "list", ...common, ...args, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { items: TaskRecord[] }).items.map((x) => x.id).sort();
  };
  const search = async (query: string) => {
    const r = await fetch(`${dash.url}api/tasks?queue=${f.queue}&${query}`);
    return { status: r.status, body: (await r.json()) as { items?: TaskRecord[]; error?: string } };
  };

  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, [defineTask("job", (args: unknown[]) => args[0])], { concurrency: 4 });
    await f.startWorker();
    results = await new Kvm(jetstream(f.nc)).open(f.names.resultsBucket);
    common = ["--queue", f.queue, "--namespace", "default", "--nats", srv.url];
    const js = jetstream(f.nc);
    // batch 1: two without a key, three with one (published as the dispatcher forwards them)
    for (let i = 0; i < 2; i++) batch1.push((await f.client.enqueue("job", [i], {}, { taskId: `plain-${i}` })).id);
    for (const [key, n] of [["tenant-a", 2], ["tenant-b", 1]] as const) {
      for (let i = 0; i < n; i++) {
        const m = newTaskMessage({ id: `${key}-${i}`, task: "job", args: [i], queue: f.queue, namespace: "default", origin: { kind: "Client" }, flow: { priority: 0, key } }, new Date());
        await js.publish(f.names.taskSubject, JSON.stringify(m), { msgID: m.id });
        batch1.push(m.id);
        keyed[key]!.push(m.id);
      }
    }
    await waitFor("batch 1 succeeded", async () => (await Promise.all(batch1.map(phase))).every((p) => p === "Succeeded") || undefined, 15_000);
    await new Promise((r) => setTimeout(r, 20));
    mid = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 2; i++) batch2.push((await f.client.enqueue("job", [i], {}, { taskId: `late-${i}` })).id);
    await waitFor("batch 2 succeeded", async () => (await Promise.all(batch2.map(phase))).every((p) => p === "Succeeded") || undefined, 15_000);
    session = await openOps({ namespace: "default", nats: srv.url, devDir: join(CWD, ".celeriac") }, { name: "filters-test" });
    dash = await startDashboard({ session, port: 0, sampleMs: 1000, history: { enabled: false }, logger: pino({ level: "silent" }) });
  });
  after(async () => {
    await dash?.close();
    await session?.close();
    await f?.close();
    await srv?.cleanup();
  });

  it("records the concurrency key the worker ran a task with", async () => {
    const e = await results.get("tenant-a-0");
    assert.equal(e!.json<TaskRecord>().concurrencyKey, "tenant-a");
    assert.equal((await results.get("plain-0"))!.json<TaskRecord>().concurrencyKey, undefined);
  });

  it("tasks list filters by --since, --until and --concurrency-key, and combines them", async () => {
    assert.deepEqual(await list("--until", mid), [...batch1].sort());
    assert.deepEqual(await list("--since", mid), [...batch2].sort());
    assert.deepEqual(await list("--since", "10m"), [...batch1, ...batch2].sort());
    assert.deepEqual(await list("--concurrency-key", "tenant-a"), [...keyed["tenant-a"]!].sort());
    assert.deepEqual(await list("--concurrency-key", "tenant-b", "--until", mid, "--state", "succeeded"), keyed["tenant-b"]);
    assert.deepEqual(await list("--concurrency-key", "tenant-a", "--since", mid), []);
    assert.deepEqual(await list("--since", "2h", "--until", "1h"), []);
    const table = await celeriac(["tasks", "list", ...common, "--concurrency-key", "tenant-c"]);
    assert.equal(table.code, 0);
    assert.match(table.stderr, /No tasks match --concurrency-key tenant-c in queue/);
  });

  it("tasks list refuses bad bounds naming the flag", async () => {
    const noZone = await celeriac(["tasks", "list", ...common, "--until", "2026-12-03T10:00:00"]);
    assert.notEqual(noZone.code, 0);
    assert.match(noZone.stderr, /--until "2026-12-03T10:00:00": the time has no zone: add Z \(UTC\) or an offset/);
    const reversed = await celeriac(["tasks", "list", ...common, "--since", "1h", "--until", "2h"]);
    assert.notEqual(reversed.code, 0);
    assert.match(reversed.stderr, /--since 1h \(.*\) is after --until 2h/);
  });

  it("the dashboard's /api/tasks takes since, until and concurrencyKey, with 400 for bad ones", async () => {
    const ids = (r: { body: { items?: TaskRecord[] } }) => r.body.items!.map((x) => x.id).sort();
    assert.deepEqual(ids(await search(`until=${encodeURIComponent(mid)}`)), [...batch1].sort());
    assert.deepEqual(ids(await search(`since=${encodeURIComponent(mid)}`)), [...batch2].sort());
    assert.deepEqual(ids(await search("concurrencyKey=tenant-a&since=10m")), [...keyed["tenant-a"]!].sort());
    const bad = await search("since=yesterday");
    assert.equal(bad.status, 400);
    assert.match(bad.body.error!, /^since "yesterday": use a duration/);
    const reversed = await search("since=1h&until=2h");
    assert.equal(reversed.status, 400);
    assert.match(reversed.body.error!, /^since 1h .* is after until 2h/);
    assert.equal((await search("concurrencyKey=%20x")).status, 400);
  });

  it("the Tasks page's form searches by since, until and concurrency key, and shows a bad value's reason", async () => {
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("console", (m) => { if (m.type() === "error" && !/400 \(Bad Request\)/.test(m.text())) errors.push(m.text()); });
      const ready = (hash: string) => page.waitForFunction((h) => (globalThis as unknown as { document: { getElementById(id: string): { dataset: Record<string, string | undefined> } | null } }).document.getElementById("main")?.dataset.ready === h, hash);
      const rows = () => page.locator("#task-list tr[data-task]").evaluateAll((trs) => trs.map((tr) => (tr as unknown as { dataset: { task: string } }).dataset.task).sort());
      await page.goto(`${dash.url}#/tasks?queue=${f.queue}`);
      await ready(`#/tasks?queue=${f.queue}`);
      await page.fill("input[name=concurrencyKey]", "tenant-a");
      await page.fill("input[name=since]", "10m");
      await page.click("#filters button[type=submit]");
      const hash = `#/tasks?queue=${f.queue}&since=10m&concurrencyKey=tenant-a&limit=50`;
      await ready(hash);
      assert.deepEqual(await rows(), [...keyed["tenant-a"]!].sort());
      assert.deepEqual(await page.locator("#task-list td[data-field=concurrencyKey]").allInnerTexts(), ["tenant-a", "tenant-a"]);
      assert.equal(await page.inputValue("input[name=since]"), "10m");
      await page.fill("input[name=concurrencyKey]", "");
      await page.fill("input[name=until]", mid);
      await page.click("#filters button[type=submit]");
      await ready(`#/tasks?queue=${f.queue}&since=10m&until=${encodeURIComponent(mid)}&limit=50`);
      assert.deepEqual(await rows(), [...batch1].sort());
      await page.goto(`${dash.url}#/tasks?queue=${f.queue}&since=yesterday`);
      await ready(`#/tasks?queue=${f.queue}&since=yesterday`);
      assert.match(await page.locator("#task-list .err").innerText(), /since "yesterday": use a duration/);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
