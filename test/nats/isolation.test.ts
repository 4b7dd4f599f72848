/**
 * Tenant isolation on NATS (issue 13): a real nats-server 2.9 in operator mode (memory resolver
 * preloaded with the account JWT), users minted with nats/credentials.ts and the permissions of
 * api/nats-permissions.ts. Team-a's worker is refused every reach into team-b's names; the producer
 * cannot consume; only the unrestricted operator credential creates streams; the real worker and
 * client run every flow under the minted permissions without one permission violation in the
 * server's log; and a worker whose creds expire and are rotated in place keeps running.
 *
 * The limit of one shared account, asserted as it is: JetStream is a confused deputy. The server
 * does not check a request's reply subject against the requester's publish permissions, nor a push
 * consumer's deliver subject (nats-server issue #8274), so a tenant can make JetStream publish — its
 * own pulled messages, API responses, its bucket's entries — onto another tenant's task subject or
 * results bucket, where that tenant's stream captures them; a test shows that it does (so
 * docs/security.md's statement is checked, and the test fails if NATS changes). Subject permissions
 * cannot close this; separate accounts per tenant do: the last describe here, and accounts mode end
 * to end in test/e2e/nats-accounts.test.ts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { controlSubject } from "../../api/control.js";
import { QUEUE_PAUSED_KEY, QUEUE_SETTINGS_KEY, queueNames, type QueueNames } from "../../api/naming.js";
import { inspectQueue, listDelayedTasks } from "../../nats/inspect.js";
import { pauseQueue, resumeQueue } from "../../nats/queue-pause.js";
import { readQueueReport } from "../../nats/queue-report.js";
import { producerPermissions, workerInboxPrefix, workerPermissions, type NatsPermissions } from "../../api/nats-permissions.js";
import { resolveRetryPolicy } from "../../api/policies.js";
import { QUEUE_SETTINGS_VERSION } from "../../api/queue-settings.js";
import { connect as connectClient, TaskFailedError, type CeleriacClient } from "../../client/index.js";
import { connectNats, ensureQueueResources, isPermissionViolation, isStreamNotFound, mintUserCreds, natsSettingsFrom, OperatorCreatesResourcesError, queueSettings } from "../../nats/index.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const silent = pino({ level: "silent" });
const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));

/** Lines of the server log reporting a permission violation. */
function violations(srv: NatsServer): string[] {
  return srv.log().split("\n").filter((l) => /Violation/.test(l));
}

/** Waits for the server to log a violation on `subject` (its log is the authority on refusals). */
async function serverRefused(srv: NatsServer, kind: "Publish" | "Subscription", subject: string): Promise<void> {
  await waitFor(`server log: ${kind} Violation on ${subject}`, () => violations(srv).some((l) => l.includes(`${kind} Violation`) && l.includes(`"${subject}"`)), 5000);
}

describe("when tenants connect with minted credentials to a nats-server in operator mode", () => {
  let srv: NatsServer;
  let dir: string;
  let admin: NatsConnection;
  let adminJsm: JetStreamManager;
  const opened: NatsConnection[] = [];
  const a = { ns: "team-a", q: uniqueQueue("qa") };
  const b = { ns: "team-b", q: uniqueQueue("qb") };
  let an: QueueNames;
  let bn: QueueNames;

  /** Mints a user, writes its creds file and connects through connectNats (inbox prefix read from the creds). */
  async function tenant(name: string, permissions: NatsPermissions | undefined, ttlSeconds = 600): Promise<NatsConnection> {
    const m = await mintUserCreds(srv.operator!.signer, { name, ttlSeconds, ...(permissions ? { permissions } : {}) });
    const file = join(dir, `${name}.creds`);
    writeFileSync(file, m.creds, { mode: 0o600 });
    const nc = await connectNats(natsSettingsFrom({ url: srv.url, name }, { CELERIAC_NATS_CREDS: file }));
    opened.push(nc);
    return nc;
  }

  async function createQueue(ns: string, q: string): Promise<QueueNames> {
    const names = queueNames(ns, q);
    await ensureQueueResources(adminJsm, names, queueSettings({ ackWaitSeconds: 5 }));
    const kv = await new Kvm(jetstream(admin)).open(names.resultsBucket);
    const retry = resolveRetryPolicy({ maxAttempts: 3, backoff: { initialSeconds: 1, factor: 1, maxSeconds: 1, jitter: false } });
    await kv.put(QUEUE_SETTINGS_KEY, JSON.stringify({ v: QUEUE_SETTINGS_VERSION, namespace: ns, queue: q, timeoutSeconds: 30, retry }));
    return names;
  }

  before(async () => {
    srv = await startNatsServer({ operatorMode: true, extraAccounts: ["team-c"] });
    dir = mkdtempSync(join(tmpdir(), "celeriac-isolation-"));
    admin = await connectNats(natsSettingsFrom({ url: srv.url, name: "admin" }, { CELERIAC_NATS_CREDS: srv.operator!.adminCredsFile }));
    adminJsm = await jetstreamManager(admin);
    an = await createQueue(a.ns, a.q);
    bn = await createQueue(b.ns, b.q);
  });

  after(async () => {
    for (const nc of opened) if (!nc.isClosed()) await nc.close();
    await admin?.close();
    await srv?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  describe("when team-a's worker and producer run the real worker and client", () => {
    it("enqueues, runs, waits for results, retries with a countdown, dead-letters and revokes with no permission violation", async () => {
      const before = violations(srv).length;
      const workerNc = await tenant("flow-worker", workerPermissions(a.ns, a.q));
      const producerNc = await tenant("flow-producer", producerPermissions(a.ns, [a.q]));
      let flakyRuns = 0;
      const tasks = [
        defineTask("echo", (args) => args),
        defineTask("flaky", () => {
          if (++flakyRuns === 1) throw new Error("first attempt fails");
          return "second attempt";
        }),
        defineTask("fail", () => {
          throw new RangeError("always");
        }),
      ];
      const worker = new Worker({ nc: workerNc, tasks, queue: a.q, namespace: a.ns, concurrency: 4, logger: silent });
      await worker.start();
      const client: CeleriacClient = await connectClient({ nc: producerNc, queue: a.q, namespace: a.ns });
      try {
        const echo = await client.enqueue("echo", [1, "x"]);
        assert.deepEqual(await echo.result({ timeoutMs: 10_000 }), [1, "x"]);
        const later = await client.enqueue("echo", ["later"], {}, { countdownSeconds: 1 });
        assert.deepEqual(await later.result({ timeoutMs: 10_000 }), ["later"]);
        const flaky = await client.enqueue("flaky", []);
        assert.equal(await flaky.result({ timeoutMs: 15_000 }), "second attempt");
        assert.equal((await flaky.status())?.attempts, 2);
        const dead = await client.enqueue("fail", [], {}, { retry: { maxAttempts: 1 } });
        await assert.rejects(dead.result({ timeoutMs: 10_000 }), (e: unknown) => e instanceof TaskFailedError && e.type === "RangeError");
        await waitFor("dead letter in the DLQ stream", async () => (await adminJsm.streams.info(an.deadLetterStream)).state.messages >= 1);
        const revoked = await client.enqueue("echo", ["never"], {}, { countdownSeconds: 30 });
        await revoked.revoke();
        assert.equal((await revoked.status())?.phase, "Cancelled");
        // the producer pauses and resumes the queue; the worker (watching queue.paused) follows
        const producerKv = await new Kvm(jetstream(producerNc)).open(an.resultsBucket);
        assert.ok("paused" in (await pauseQueue(producerKv, { reason: "isolation" })));
        assert.ok(await resumeQueue(producerKv));
        assert.deepEqual(await (await client.enqueue("echo", ["after resume"])).result({ timeoutMs: 10_000 }), ["after resume"]);
        assert.deepEqual(violations(srv).slice(before), []);
        // celeriac queue status with the producer's credential: what it may not read (held stream,
        // work-stream messages for the oldest age) is left out instead of failing
        const report = await readQueueReport(await jetstreamManager(producerNc, { checkAPI: false }), producerKv, an);
        assert.deepEqual([report.backlog, report.paused, report.held, report.oldestTaskAgeSeconds], [0, false, undefined, undefined]);
      } finally {
        await worker.close();
        await client.close();
      }
    });
  });

  describe("when the celeriac tasks and dlq commands run with team-a's minted producer credential", () => {
    let q: string;
    let names: QueueNames;
    let creds: string;
    let worker: Worker;
    let client: CeleriacClient;
    /** Runs the built CLI as a user with the producer creds file (CELERIAC_NATS_CREDS), stdin closed. */
    const cli = async (...args: string[]) => {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_")));
      const p = run(process.execPath, [BIN, ...args, "--namespace", a.ns, "--nats", srv.url], { cwd: dir, env: { ...env, KUBECONFIG: "/nonexistent", CELERIAC_NATS_CREDS: creds } });
      p.child.stdin?.end();
      return p.then((r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }), (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }));
    };
    before(async () => {
      q = uniqueQueue("qcli");
      names = await createQueue(a.ns, q);
      creds = join(dir, `cli-producer-${q}.creds`);
      writeFileSync(creds, (await mintUserCreds(srv.operator!.signer, { name: `cli-producer-${q}`, ttlSeconds: 600, permissions: producerPermissions(a.ns, [q]) })).creds, { mode: 0o600 });
      const tasks = [
        defineTask("echo", (args) => args),
        defineTask("strict", (args) => {
          if (args[0] !== "ok") throw new UnrecoverableError("bad argument");
          return args;
        }),
      ];
      worker = new Worker({ nc: await tenant(`cli-worker-${q}`, workerPermissions(a.ns, q)), tasks, queue: q, namespace: a.ns, concurrency: 4, logger: silent });
      await worker.start();
      client = await connectClient({ nc: await tenant(`cli-client-${q}`, producerPermissions(a.ns, [q])), queue: q, namespace: a.ns });
      assert.deepEqual(await (await client.enqueue("echo", [1], {}, { taskId: "cli-ok" })).result({ timeoutMs: 10_000 }), [1]);
      await assert.rejects((await client.enqueue("strict", ["bad"], {}, { taskId: "cli-dead" })).result({ timeoutMs: 10_000 }));
      await waitFor("the dead letter", async () => (await adminJsm.streams.info(names.deadLetterStream)).state.messages === 1);
      await client.enqueue("echo", ["later"], {}, { taskId: "cli-later", countdownSeconds: 60 });
    });
    after(async () => {
      await worker?.close();
      await client?.close();
    });

    it("tasks get and list, and dlq list, show and replay work, with no permission violation", async () => {
      const before = violations(srv).length;
      const ok = await cli("tasks", "get", "cli-ok", "--queue", q, "-o", "json");
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as { phase: string }).phase, "Succeeded");
      const dead = await cli("tasks", "get", "cli-dead", "--queue", q, "-o", "json");
      assert.equal(dead.code, 0, dead.stderr);
      assert.deepEqual((JSON.parse(dead.stdout) as { args: unknown[]; argsSource: string }).args, ["bad"]);
      assert.equal((JSON.parse(dead.stdout) as { argsSource: string }).argsSource, "dead-letter");
      const later = await cli("tasks", "get", "cli-later", "--queue", q, "-o", "json");
      assert.equal(later.code, 0, later.stderr);
      assert.equal((JSON.parse(later.stdout) as { phase: string }).phase, "Queued");
      const list = await cli("tasks", "list", "--queue", q, "-o", "json");
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual((JSON.parse(list.stdout) as { items: Array<{ id: string }> }).items.map((r) => r.id).sort(), ["cli-dead", "cli-ok"]);
      const dls = await cli("dlq", "list", "--queue", q, "-o", "json");
      assert.equal(dls.code, 0, dls.stderr);
      const [d] = (JSON.parse(dls.stdout) as { items: Array<{ seq: number; id: string }> }).items;
      assert.equal(d?.id, "cli-dead");
      const show = await cli("dlq", "show", String(d.seq), "--queue", q, "-o", "json");
      assert.equal(show.code, 0, show.stderr);
      const replay = await cli("dlq", "replay", String(d.seq), "--queue", q, "--args", '["ok"]', "-o", "json");
      assert.equal(replay.code, 0, replay.stderr);
      assert.deepEqual((JSON.parse(replay.stdout) as { items: Array<{ outcome: string }> }).items.map((o) => o.outcome), ["Replayed"]);
      assert.deepEqual(await client.get(`cli-dead-r${d.seq}`).result({ timeoutMs: 10_000 }), ["ok"]);
      assert.deepEqual((JSON.parse(replay.stdout) as { items: Array<{ message?: string }> }).items.map((o) => o.message), [undefined], "the replay's link was written");
      const linked = await cli("tasks", "get", `cli-dead-r${d.seq}`, "--queue", q, "-o", "json");
      assert.equal((JSON.parse(linked.stdout) as { retryOf?: string }).retryOf, "cli-dead");
      const retried = await cli("tasks", "retry", "cli-dead", "--queue", q, "-o", "json");
      assert.equal(retried.code, 0, retried.stderr);
      assert.equal((JSON.parse(retried.stdout) as { retryOf: string }).retryOf, "cli-dead");
      assert.deepEqual(violations(srv).slice(before), []);
    });

    it("what the credential may not do fails naming the credential needed", async () => {
      const noQueue = await cli("tasks", "list");
      assert.equal(noQueue.code, 1);
      assert.match(noQueue.stderr, /--queue \(or CELERIAC_QUEUE\) is required with this NATS credential: this NATS credential may not list the account's streams/);
      await assert.rejects((await client.enqueue("strict", ["bad"], {}, { taskId: "cli-dead-2" })).result({ timeoutMs: 10_000 }));
      const d = await waitFor("cli-dead-2's dead letter", async () => (JSON.parse((await cli("dlq", "list", "--queue", q, "-o", "json")).stdout) as { items: Array<{ seq: number; id: string }> }).items.find((x) => x.id === "cli-dead-2"));
      const purge = await cli("dlq", "purge", String(d.seq), "--queue", q, "--yes");
      assert.equal(purge.code, 1);
      assert.match(purge.stderr, /nothing deleted: this NATS credential may not delete dead letters of CELERIAC_team-a_\S+_DLQ \(STREAM.MSG.DELETE, STREAM.PURGE\)/);
      const remove = await cli("dlq", "replay", String(d.seq), "--queue", q, "--remove", "-o", "json");
      assert.equal(remove.code, 1);
      assert.match(remove.stderr, /1 dead letter was replayed but not removed: replayed, not removed: this NATS credential may not delete dead letters .*unrestricted credential/);
      assert.equal((JSON.parse(remove.stdout) as { items: Array<{ removed: boolean }> }).items[0]?.removed, false);
      // the dead letter is kept
      assert.equal((await cli("dlq", "show", String(d.seq), "--queue", q)).code, 0);
    });
  });

  describe("when team-a's worker reaches for team-b's names", () => {
    let nc: NatsConnection;
    before(async () => {
      nc = await tenant("a-worker", workerPermissions(a.ns, a.q));
    });

    it("is refused subscribing to team-b's task subject and team-b's inboxes", async () => {
      for (const subject of [bn.taskSubject, "_INBOX_celeriac_team-b.>", `_INBOX_celeriac_team-b_${b.q}.>`, controlSubject(b.ns, b.q)]) {
        const sub = nc.subscribe(subject);
        await serverRefused(srv, "Subscription", subject);
        const closed = await sub.closed;
        assert.ok(isPermissionViolation(closed), `subscription to ${subject} closed with ${String(closed)}`);
      }
    });

    it("is refused pulling from team-b's worker consumer (MSG.NEXT) and reading its info", async () => {
      await assert.rejects(nc.request(`$JS.API.CONSUMER.MSG.NEXT.${bn.stream}.${bn.workerConsumer}`, JSON.stringify({ batch: 1, expires: 1e9 }), { timeout: 2000 }), isPermissionViolation);
      await assert.rejects(jetstream(nc).consumers.get(bn.stream, bn.workerConsumer), isPermissionViolation);
    });

    it("is refused acking on team-b's consumer", async () => {
      const ack = `$JS.ACK.${bn.stream}.${bn.workerConsumer}.1.1.1.1700000000000000000.0`;
      nc.publish(ack);
      await serverRefused(srv, "Publish", ack);
    });

    it("is refused purging or deleting team-b's stream (and its own)", async () => {
      const jsm = await jetstreamManager(nc, { checkAPI: false });
      await assert.rejects(jsm.streams.purge(bn.stream), isPermissionViolation);
      await assert.rejects(jsm.streams.delete(bn.stream), isPermissionViolation);
      await assert.rejects(jsm.streams.purge(an.stream), isPermissionViolation);
      await assert.rejects(jsm.streams.info(bn.stream), isPermissionViolation);
    });

    it("is refused reading or watching team-b's results bucket", async () => {
      const kv = await new Kvm(jetstream(nc)).open(bn.resultsBucket);
      await assert.rejects(kv.get(QUEUE_SETTINGS_KEY), isPermissionViolation);
      await assert.rejects(
        (async () => {
          const w = await kv.watch({ key: ">" });
          w.stop();
        })(),
        isPermissionViolation,
      );
    });

    it("is refused publishing on team-b's task, delayed and dead-letter subjects and writing its bucket", async () => {
      const js = jetstream(nc);
      for (const subject of [bn.taskSubject, bn.delayedSubject, bn.deadLetterSubject, `$KV.${bn.resultsBucket}.forged`]) {
        await assert.rejects(js.publish(subject, "{}", { timeout: 2000 }), isPermissionViolation, subject);
      }
      const msgs = (await adminJsm.streams.info(bn.stream)).state.messages;
      assert.equal(msgs, 0);
    });

    it("is refused writing revocation markers, queue.settings and queue.paused in its own bucket", async () => {
      const js = jetstream(nc);
      for (const subject of [`$KV.${an.resultsBucket}.revoked.t1`, `$KV.${an.resultsBucket}.${QUEUE_SETTINGS_KEY}`, `$KV.${an.resultsBucket}.${QUEUE_PAUSED_KEY}`]) {
        await assert.rejects(js.publish(subject, "{}", { timeout: 2000 }), isPermissionViolation, subject);
        // the server's log line can come after the client's error: wait, so a later test's violation count starts after it
        await serverRefused(srv, "Publish", subject);
      }
    });
  });

  describe("when team-a's producer inspects workers (celeriac inspect)", () => {
    it("asks its own queue's workers, reads their registry and delayed tasks; the minted worker answers; no permission violation", async () => {
      const before = violations(srv).length;
      const workerNc = await tenant("inspect-worker", workerPermissions(a.ns, a.q));
      const worker = new Worker({ nc: workerNc, tasks: [defineTask("echo", (args) => args)], queue: a.q, namespace: a.ns, workerName: "a-inspected", logger: silent });
      await worker.start();
      const producerNc = await tenant("inspect-producer", producerPermissions(a.ns, [a.q]));
      const client = await connectClient({ nc: producerNc, queue: a.q, namespace: a.ns });
      try {
        const kv = await new Kvm(jetstream(producerNc)).open(an.resultsBucket);
        const r = await inspectQueue(producerNc, kv, controlSubject(a.ns, a.q), "active", 3000);
        assert.deepEqual(r.replies.map((x) => x.report.name), ["a-inspected"], "the worker replied to the producer's inbox (response permission)");
        assert.deepEqual(r.notAnswering, []);
        assert.ok(r.registry.has("a-inspected"), "the worker wrote its registry entry, the producer read it");
        const later = await client.enqueue("echo", ["later"], {}, { countdownSeconds: 60 });
        const d = await listDelayedTasks(await jetstreamManager(producerNc, { checkAPI: false }), an, 100);
        assert.ok(d.tasks.some((t) => t.id === later.id), "inspect scheduled reads the delayed stream by message");
        await later.revoke();
      } finally {
        await worker.close();
        await client.close();
      }
      assert.equal((await new Kvm(jetstream(admin)).open(an.resultsBucket).then((kv) => kv.get("worker.a-inspected")))?.operation, "DEL", "the worker deleted its entry at close");
      assert.deepEqual(violations(srv).slice(before), []);
    });

    it("cannot reach another namespace's control subject", async () => {
      const nc = await tenant("inspect-producer-2", producerPermissions(a.ns, [a.q]));
      const subject = controlSubject(b.ns, b.q);
      await assert.rejects(nc.request(subject, JSON.stringify({ v: 1, command: "ping" }), { timeout: 2000 }), isPermissionViolation);
      await serverRefused(srv, "Publish", subject);
    });
  });

  describe("when a producer tries to consume", () => {
    it("is refused MSG.NEXT and acks on its own namespace's queue", async () => {
      const nc = await tenant("a-producer", producerPermissions(a.ns, [a.q]));
      await assert.rejects(nc.request(`$JS.API.CONSUMER.MSG.NEXT.${an.stream}.${an.workerConsumer}`, JSON.stringify({ batch: 1, expires: 1e9 }), { timeout: 2000 }), isPermissionViolation);
      await assert.rejects(nc.request(`$JS.API.CONSUMER.MSG.NEXT.${an.delayedStream}.${an.delayConsumer}`, JSON.stringify({ batch: 1, expires: 1e9 }), { timeout: 2000 }), isPermissionViolation);
      const ack = `$JS.ACK.${an.stream}.${an.workerConsumer}.1.1.1.1700000000000000000.0`;
      nc.publish(ack);
      await serverRefused(srv, "Publish", ack);
      await assert.rejects(jetstream(nc).publish(bn.taskSubject, "{}", { timeout: 2000 }), isPermissionViolation);
    });
  });

  describe("when a credential tries to create streams", () => {
    it("only the unrestricted operator credential can", async () => {
      const q = uniqueQueue("qc");
      const names = queueNames(a.ns, q);
      for (const [name, perms] of [
        ["c-worker", workerPermissions(a.ns, q)],
        ["c-producer", producerPermissions(a.ns, [q])],
      ] as const) {
        const jsm = await jetstreamManager(await tenant(name, perms), { checkAPI: false });
        await assert.rejects(ensureQueueResources(jsm, names, queueSettings({})), (e: unknown) => e instanceof OperatorCreatesResourcesError && e.kind === "stream" && /operator creates/.test(e.message));
        await assert.rejects(jsm.streams.add({ name: "ROGUE", subjects: ["rogue.>"] }), isPermissionViolation);
      }
      const report = await ensureQueueResources(adminJsm, names, queueSettings({}));
      assert.deepEqual(report.map((r) => r.action), ["created", "created", "created", "created", "created", "created"]);
    });

    it("a minted worker waits for the operator to create its queue, then starts", async () => {
      const q = uniqueQueue("qw");
      const names = queueNames(a.ns, q);
      const nc = await tenant("w-waiter", workerPermissions(a.ns, q));
      const worker = new Worker({ nc, tasks: [defineTask("echo", (args) => args)], queue: q, namespace: a.ns, logger: silent });
      let started = false;
      const starting = worker.start().then(() => (started = true));
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(started, false);
      await ensureQueueResources(adminJsm, names, queueSettings({}));
      await waitFor("worker started", () => started, 15_000);
      await starting;
      await worker.close();
    });
  });

  describe("when a worker's creds expire and the file is rotated in place", () => {
    /**
     * Runs a worker on creds valid `ttlSeconds`, enqueues for `runMs` across the expiry, and rotates
     * the file (an atomic rename, as a Secret volume update) `rotateAfterMs` after the start: before
     * the expiry (the operator's normal rotation) or after it (a Secret update arriving late).
     */
    async function rotation(o: { ttlSeconds: number; rotateAfterMs: number; runMs: number }) {
      const violationsBefore = violations(srv).length;
      const q = uniqueQueue("qr");
      const names = await createQueue(a.ns, q);
      const file = join(dir, `${q}.creds`);
      const mint = async (ttl: number) => (await mintUserCreds(srv.operator!.signer, { name: `rotating-${q}`, ttlSeconds: ttl, permissions: workerPermissions(a.ns, q) })).creds;
      writeFileSync(file, await mint(o.ttlSeconds), { mode: 0o600 });
      const nc = await connectNats(natsSettingsFrom({ url: srv.url, name: "rotating-worker" }, { CELERIAC_NATS_CREDS: file }));
      opened.push(nc);
      let disconnects = 0;
      let reconnects = 0;
      void (async () => {
        for await (const s of nc.status()) {
          if (s.type === "disconnect") disconnects++;
          if (s.type === "reconnect") reconnects++;
        }
      })();
      const runs = new Map<number, number>();
      const worker = new Worker({
        nc,
        tasks: [
          defineTask("count", (args) => {
            const k = args[0] as number;
            runs.set(k, (runs.get(k) ?? 0) + 1);
            return k;
          }),
        ],
        queue: q,
        namespace: a.ns,
        concurrency: 4,
        logger: silent,
      });
      await worker.start();
      const producer = await tenant(`producer-${q}`, producerPermissions(a.ns, [q]));
      const client = await connectClient({ nc: producer, queue: q, namespace: a.ns });
      try {
        const t0 = Date.now();
        let rotated = false;
        const handles = [];
        for (let i = 0; Date.now() - t0 < o.runMs; i++) {
          if (!rotated && Date.now() - t0 >= o.rotateAfterMs) {
            const next = `${file}.next`;
            writeFileSync(next, await mint(600), { mode: 0o600 });
            renameSync(next, file);
            rotated = true;
          }
          handles.push(await client.enqueue("count", [i]));
          await new Promise((r) => setTimeout(r, 50));
        }
        const results = await Promise.all(handles.map((h) => h.result({ timeoutMs: 30_000 })));
        assert.deepEqual(results, handles.map((_, k) => k));
        assert.ok(disconnects >= 1 && reconnects >= 1, `the server dropped the expired user (disconnects ${disconnects}) and the worker came back (reconnects ${reconnects})`);
        assert.ok(worker.ready && !nc.isClosed(), "worker still running");
        assert.deepEqual([...runs.entries()].filter(([, n]) => n > 1), [], "no task ran twice");
        assert.equal(runs.size, handles.length);
        assert.equal((await adminJsm.consumers.info(names.stream, names.workerConsumer)).num_pending, 0);
        // the revocation watch came back too (its ordered consumer is re-created under the same permissions)
        const r = await client.enqueue("count", [-1], {}, { countdownSeconds: 30 });
        await r.revoke();
        assert.equal((await r.status())?.phase, "Cancelled");
        assert.deepEqual(violations(srv).slice(violationsBefore), []);
        return { tasks: handles.length, disconnects, reconnects };
      } finally {
        await worker.close();
        await client.close();
      }
    }

    it("keeps running when the file is rotated before the expiry, and every task completes exactly once", async () => {
      await rotation({ ttlSeconds: 4, rotateAfterMs: 1000, runMs: 7000 });
    });

    it("comes back when the new file arrives after the expiry (a late Secret update), every task exactly once", async () => {
      await rotation({ ttlSeconds: 3, rotateAfterMs: 5000, runMs: 8000 });
    });
  });

  /**
   * Makes JetStream publish into the victim queue on behalf of `nc` (a worker of `ownQueue`): onto
   * its task subject a pulled message (its own forged task) and an API response via the reply
   * subject, and its bucket's entries via a push consumer's deliver subject; into its results bucket
   * an API response as `revoked.victim-task`. Only requests its permissions allow.
   */
  async function confusedDeputy(nc: NatsConnection, ownQueue: string, victimNames: QueueNames): Promise<void> {
    const own = queueNames(a.ns, ownQueue);
    const victim = victimNames.taskSubject;
    // an API response as a PUT of `revoked.<id>` in the victim's bucket: a revocation to its workers
    nc.publish(`$JS.API.STREAM.INFO.${own.stream}`, "", { reply: `$KV.${victimNames.resultsBucket}.revoked.victim-task` });
    await jetstream(nc).publish(own.taskSubject, JSON.stringify({ forged: true }));
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${own.stream}.${own.workerConsumer}`, JSON.stringify({ batch: 1 }), { reply: victim });
    nc.publish(`$JS.API.STREAM.INFO.${own.stream}`, "", { reply: victim });
    const kvStream = `KV_${own.resultsBucket}`;
    nc.publish(`$JS.API.CONSUMER.CREATE.${kvStream}.deputy.$KV.${own.resultsBucket}.>`, JSON.stringify({ stream_name: kvStream, config: { name: "deputy", deliver_subject: victim, deliver_policy: "all", ack_policy: "none", filter_subject: `$KV.${own.resultsBucket}.>` } }), { reply: `${workerInboxPrefix(a.ns, ownQueue)}.x` });
    await nc.flush();
  }

  describe("when team-a's worker uses JetStream to publish for it into team-b (one shared account)", () => {
    // The limit of one shared account, checked so that docs/security.md's statement stays true (and
    // this fails if NATS ever checks reply and deliver subjects): accounts mode, one NATS account per
    // namespace, removes it — see test/e2e/nats-accounts.test.ts and the next describe.
    it("JetStream still publishes for team-a into team-b (the limit of one shared account; accounts mode removes it)", async (t) => {
      const q = uniqueQueue("qx");
      await createQueue(a.ns, q);
      const nc = await tenant("deputy-worker", workerPermissions(a.ns, q));
      const victim = await createQueue(b.ns, uniqueQueue("qv"));
      const before = violations(srv).length;
      await confusedDeputy(nc, q, victim);
      const victimKv = await new Kvm(jetstream(admin)).open(victim.resultsBucket);
      const landed = await waitFor("the deputy's publishes in team-b's work stream and results bucket", async () => {
        const messages = (await adminJsm.streams.info(victim.stream)).state.messages;
        const revoked = await victimKv.get("revoked.victim-task");
        return messages >= 1 && revoked ? { messages, revoked } : undefined;
      });
      assert.ok(landed.messages >= 1, "team-b's work stream captured what JetStream published for team-a");
      assert.ok(landed.revoked.length > 0, "team-b's bucket holds a revocation team-a's worker could never publish itself");
      assert.deepEqual(violations(srv).slice(before), [], "no request team-a made broke its permissions");
      t.diagnostic(`injected into team-b: ${landed.messages} message(s) in its work stream, revoked.victim-task in its bucket`);
    });
  });

  describe("when team-c's queue lives in its own NATS account", () => {
    it("team-a's worker cannot get a message into it by any of those means", async () => {
      const extra = srv.operator!.extraAccounts["team-c"]!;
      const cAdminCreds = await mintUserCreds(extra.signer, { name: "team-c-admin", ttlSeconds: 600 });
      const file = join(dir, "team-c-admin.creds");
      writeFileSync(file, cAdminCreds.creds, { mode: 0o600 });
      const cAdmin = await connectNats(natsSettingsFrom({ url: srv.url, name: "team-c-admin" }, { CELERIAC_NATS_CREDS: file }));
      opened.push(cAdmin);
      const cJsm = await jetstreamManager(cAdmin);
      const victim = queueNames("team-c", uniqueQueue("qv"));
      await ensureQueueResources(cJsm, victim, queueSettings({}));
      const q = uniqueQueue("qx");
      await createQueue(a.ns, q);
      const nc = await tenant("deputy-worker-2", workerPermissions(a.ns, q));
      // JetStream does publish for the deputy, but inside team-a's account: a listener there gets it
      const seen = admin.subscribe(victim.taskSubject);
      let got = 0;
      void (async () => {
        for await (const _ of seen) got++;
      })();
      await admin.flush();
      await confusedDeputy(nc, q, victim);
      await waitFor("the deputy's publishes in team-a's account", () => got >= 2);
      seen.unsubscribe();
      // and team-c's stream and bucket, in its own account, received nothing
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal((await cJsm.streams.info(victim.stream)).state.messages, 0);
      assert.equal((await cJsm.streams.info(`KV_${victim.resultsBucket}`)).state.messages, 0);
      // the same subject in team-a's account has no stream at all
      await assert.rejects(adminJsm.streams.info(victim.stream), isStreamNotFound);
    });
  });
});
