/**
 * Unique locks (nats/unique.ts): the pure decisions as tables, then claim / check / release against
 * a results bucket on a real nats-server.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { UniquePolicy } from "../../api/flow.js";
import { taskRecord, type TaskMessage } from "../../api/message.js";
import { newTaskMessage } from "../../api/task-message.js";
import { REVOKED_PREFIX } from "../../api/naming.js";
import {
  checkUnique,
  claimUnique,
  confirmUnique,
  decideCheck,
  decideClaim,
  decideConfirm,
  decideRelease,
  holderState,
  isStale,
  parseLock,
  releaseUnique,
  uniqueLockKey,
  type HolderState,
  type LockView,
  type UniqueLock,
  type UniqueSituation,
} from "../../nats/unique.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";

const GRACE = 30_000;
const lock = (id: string, policy: UniquePolicy = "Reject", next?: string, ageMs = 0, revision = 7): LockView => ({ value: { v: 1, id, policy, ...(next ? { next } : {}) }, revision, ageMs });
const sit = (self: string, policy: UniquePolicy, l: LockView | undefined, holder?: HolderState): UniqueSituation => ({ self, policy, lock: l, holder, graceMs: GRACE });
const up = (value: UniqueLock, revision = 7) => ({ op: "update" as const, value, revision });
const v = (id: string, policy: UniquePolicy, next?: string): UniqueLock => ({ v: 1, id, policy, ...(next ? { next } : {}) });
/** A lock a worker wrote for the task it runs: published. */
const pv = (id: string, policy: UniquePolicy, next?: string): UniqueLock => ({ ...v(id, policy, next), published: true });

describe("when a producer's claim is decided", () => {
  const cases: [string, UniqueSituation, ReturnType<typeof decideClaim>][] = [
    ["no lock: take it", sit("b", "Reject", undefined), { write: { op: "create", value: v("b", "Reject") }, result: { outcome: "claimed" } }],
    ["a value that is not a lock: overwrite it", sit("b", "Wait", { value: undefined, revision: 3, ageMs: 0 }), { write: up(v("b", "Wait"), 3), result: { outcome: "claimed" } }],
    ["the lock names the claimant (a republish)", sit("a", "Reject", lock("a")), { result: { outcome: "claimed" } }],
    ["the claimant is the lock's next (a republish)", sit("n", "Replace", lock("a", "Replace", "n"), "started"), { result: { outcome: "wait", holder: "a" } }],
    ["Reject, holder running", sit("b", "Reject", lock("a"), "started"), { result: { outcome: "rejected", holder: "a" } }],
    ["Reject, holder not started", sit("b", "Reject", lock("a"), "notStarted"), { result: { outcome: "rejected", holder: "a" } }],
    ["Reject, holder has no record yet (within the grace)", sit("b", "Reject", lock("a", "Reject", undefined, GRACE - 1), "missing"), { result: { outcome: "rejected", holder: "a" } }],
    ["Reject, holder never published (no record past the grace): stale, taken", sit("b", "Reject", lock("a", "Reject", undefined, GRACE), "missing"), { write: up(v("b", "Reject")), result: { outcome: "claimed" } }],
    ["Replace, holder with no record past the grace: stale, taken, and revoked in case it is still in the stream", sit("b", "Replace", lock("a", "Reject", undefined, GRACE), "missing"), { write: up(v("b", "Replace")), revoke: "a", result: { outcome: "replaced", holder: "a" } }],
    ["Replace, holder finished: stale, taken, nothing to revoke", sit("b", "Replace", lock("a"), "finished"), { write: up(v("b", "Replace")), result: { outcome: "claimed" } }],
    ["any policy, holder finished: stale, taken", sit("b", "Wait", lock("a"), "finished"), { write: up(v("b", "Wait")), result: { outcome: "claimed" } }],
    ["stale holder with a next: passed to the next, decide again", sit("b", "Reject", lock("a", "Replace", "n"), "finished"), { write: up(v("n", "Replace")), result: "again" }],
    ["Wait, holder running: wait, lock unchanged", sit("b", "Wait", lock("a"), "started"), { result: { outcome: "wait", holder: "a" } }],
    ["Wait, holder not started: wait", sit("b", "Wait", lock("a"), "notStarted"), { result: { outcome: "wait", holder: "a" } }],
    ["Replace, holder not started: revoke it, take the lock", sit("b", "Replace", lock("a", "Wait"), "notStarted"), { write: up(v("b", "Replace")), revoke: "a", result: { outcome: "replaced", holder: "a" } }],
    ["Replace, holder has no record yet: revoke it, take the lock", sit("b", "Replace", lock("a"), "missing"), { write: up(v("b", "Replace")), revoke: "a", result: { outcome: "replaced", holder: "a" } }],
    ["Replace, holder running, no next: become its next, wait", sit("b", "Replace", lock("a", "Reject"), "started"), { write: up(v("a", "Reject", "b")), result: { outcome: "wait", holder: "a" } }],
    ["Replace, holder running, a next: revoke the next, take its place", sit("c", "Replace", lock("a", "Reject", "b"), "started"), { write: up(v("a", "Reject", "c")), revoke: "b", result: { outcome: "replaced", holder: "b" } }],
  ];
  for (const [name, s, want] of cases) it(name, () => assert.deepEqual(decideClaim(s), want));
});

describe("when a worker's check is decided", () => {
  const cases: [string, UniqueSituation, ReturnType<typeof decideCheck>][] = [
    ["no lock: take it (published: the worker holds the message), run", sit("b", "Wait", undefined), { write: { op: "create", value: pv("b", "Wait") }, result: { run: true } }],
    ["the lock names it: write it again (orders the start against a Replace), run", sit("a", "Replace", lock("a", "Replace", "n")), { write: up(pv("a", "Replace", "n")), result: { run: true } }],
    ["held by a running task: wait", sit("b", "Wait", lock("a"), "started"), { result: { run: false, holder: "a" } }],
    ["held by a task with no record yet: wait", sit("b", "Wait", lock("a"), "missing"), { result: { run: false, holder: "a" } }],
    ["it is the next of a running holder: wait", sit("n", "Replace", lock("a", "Reject", "n"), "started"), { result: { run: false, holder: "a" } }],
    ["stale (holder finished): take it, run", sit("b", "Wait", lock("a"), "finished"), { write: up(pv("b", "Wait")), result: { run: true } }],
    ["stale (holder never published): take it, run", sit("b", "Wait", lock("a", "Reject", undefined, GRACE + 1), "missing"), { write: up(pv("b", "Wait")), result: { run: true } }],
    ["a holder confirmed published is never stale for want of a record", { ...sit("b", "Wait", { ...lock("a", "Reject", undefined, GRACE * 100), value: pv("a", "Reject") }, "missing") }, { result: { run: false, holder: "a" } }],
    ["stale with another next: pass it on, decide again", sit("b", "Wait", lock("a", "Reject", "n"), "finished"), { write: up(v("n", "Replace")), result: "again" }],
    ["stale and it is the next: take it, run", sit("n", "Replace", lock("a", "Reject", "n"), "finished"), { write: up(pv("n", "Replace")), result: { run: true } }],
  ];
  for (const [name, s, want] of cases) it(name, () => assert.deepEqual(decideCheck(s), want));
});

describe("when a claim is decided with an eta or a confirmed holder", () => {
  it("records the claimant's eta in the lock it takes", () => {
    assert.deepEqual(decideClaim({ ...sit("b", "Reject", undefined), eta: "2026-01-01T00:10:00.000Z" }).write, { op: "create", value: { ...v("b", "Reject"), eta: "2026-01-01T00:10:00.000Z" } });
  });
  it("keeps a confirmed holder with no record past the grace", () => {
    const l: LockView = { value: { ...v("a", "Reject"), published: true }, revision: 7, ageMs: GRACE * 100 };
    assert.deepEqual(decideClaim(sit("b", "Reject", l, "missing")), { result: { outcome: "rejected", holder: "a" } });
  });
  it("passes a confirmed next on as a confirmed holder", () => {
    const l: LockView = { value: { ...v("a", "Reject", "n"), nextPublished: true }, revision: 7, ageMs: 0 };
    assert.deepEqual(decideRelease("a", l), { write: up(pv("n", "Replace")), result: "passed" });
  });
});

describe("when a producer's confirmation is decided", () => {
  it("marks the holder published", () => assert.deepEqual(decideConfirm("a", lock("a")), { write: up(pv("a", "Reject")), result: "holder" }));
  it("marks the next published", () => assert.deepEqual(decideConfirm("n", lock("a", "Reject", "n")), { write: up({ ...v("a", "Reject", "n"), nextPublished: true }), result: "next" }));
  it("does nothing when already marked, or not in the lock", () => {
    assert.deepEqual(decideConfirm("a", { ...lock("a"), value: pv("a", "Reject") }), { result: "none" });
    assert.deepEqual(decideConfirm("z", lock("a", "Reject", "n")), { result: "none" });
    assert.deepEqual(decideConfirm("z", undefined), { result: "none" });
  });
});

describe("when a final settle's release is decided", () => {
  it("deletes the lock its holder holds, at the revision read", () => assert.deepEqual(decideRelease("a", lock("a")), { write: { op: "delete", revision: 7 }, result: "deleted" }));
  it("passes it to the next", () => assert.deepEqual(decideRelease("a", lock("a", "Reject", "n")), { write: up(v("n", "Replace")), result: "passed" }));
  it("removes a next that ended", () => assert.deepEqual(decideRelease("n", lock("a", "Wait", "n")), { write: up(v("a", "Wait")), result: "dequeued" }));
  it("leaves another task's lock alone", () => assert.deepEqual(decideRelease("b", lock("a")), { result: "notHeld" }));
  it("does nothing without a lock", () => assert.deepEqual(decideRelease("b", undefined), { result: "notHeld" }));
});

describe("when lock keys, values and holder states are read", () => {
  it("encodes any key into KV's key alphabet", () => {
    for (const k of ["report:2026-01 / ü €", "a", "x".repeat(128), "tenant.a>*"]) assert.match(uniqueLockKey(k), /^unique\.[-\w]+$/);
    assert.equal(uniqueLockKey("abc"), "unique.YWJj");
  });
  it("parses a v1 lock and refuses anything else", () => {
    assert.deepEqual(parseLock({ v: 1, id: "a", policy: "Wait" }), v("a", "Wait"));
    assert.deepEqual(parseLock({ v: 1, id: "a", policy: "Replace", next: "b" }), v("a", "Replace", "b"));
    assert.deepEqual(parseLock({ v: 1, id: "a", policy: "Wait", eta: "2026-01-01T00:00:00Z", published: true, nextPublished: false }), { ...v("a", "Wait"), eta: "2026-01-01T00:00:00Z", published: true });
    for (const bad of [{ v: 1, id: "a", policy: "Wait", eta: "soon" }, null, "x", { v: 2, id: "a", policy: "Wait" }, { v: 1, id: "", policy: "Wait" }, { v: 1, id: "a", policy: "Maybe" }, { v: 1, id: "a", policy: "Wait", next: 3 }]) assert.equal(parseLock(bad), undefined, JSON.stringify(bad));
  });
  it("classifies holder records", () => {
    assert.equal(holderState(undefined, false), "missing");
    assert.equal(holderState("Queued"), "notStarted");
    assert.equal(holderState(undefined), "notStarted");
    assert.equal(holderState("Running"), "started");
    assert.equal(holderState("Retrying"), "started");
    for (const p of ["Succeeded", "Failed", "Cancelled", "Expired"]) assert.equal(holderState(p), "finished");
  });
  it("calls a lock stale only for a finished holder or one missing past the grace", () => {
    assert.equal(isStale("finished", 0, GRACE), true);
    assert.equal(isStale("missing", GRACE, GRACE), true);
    assert.equal(isStale("missing", GRACE - 1, GRACE), false);
    assert.equal(isStale("started", GRACE * 10, GRACE), false);
    assert.equal(isStale("notStarted", GRACE * 10, GRACE), false);
    assert.equal(isStale("missing", GRACE * 10, GRACE, true), false, "a confirmed holder went stale");
    assert.equal(isStale("finished", 0, GRACE, true), true);
  });
});

describe("when unique keys are claimed, checked and released in a results bucket", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let kv: KV;
  let n = 0;
  const msg = (id: string, key: string, policy: UniquePolicy): TaskMessage =>
    newTaskMessage({ id, task: "t", queue: "q", namespace: "default", origin: { kind: "Client" }, unique: { key, policy } }, new Date());
  const fresh = () => `key-${++n}`;
  const readLock = async (key: string) => {
    const e = await kv.get(uniqueLockKey(key));
    return e?.operation === "PUT" ? { value: e.json<UniqueLock>(), revision: e.revision } : undefined;
  };
  const setRecord = (id: string, phase: "Queued" | "Running" | "Succeeded") => kv.put(id, JSON.stringify(taskRecord({ id, task: "t", queue: "q", namespace: "default", origin: { kind: "Client" } }, { phase })));
  const phaseOf = async (id: string) => (await kv.get(id))?.json<{ status: { phase: string } }>()?.status.phase;

  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    kv = await new Kvm(jetstream(nc)).create("unique_test", { history: 1 });
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
  });

  it("claims a free key, and a republish of the holder is claimed again", async () => {
    const k = fresh();
    const a = msg("a1", k, "Reject");
    assert.deepEqual(await claimUnique(kv, a, a.unique!), { outcome: "claimed" });
    assert.deepEqual((await readLock(k))?.value, { v: 1, id: "a1", policy: "Reject" });
    assert.deepEqual(await claimUnique(kv, a, a.unique!), { outcome: "claimed" });
  });

  it("rejects (Reject) and waits (Wait) while the key is held, leaving the lock as it was", async () => {
    const k = fresh();
    await claimUnique(kv, msg("h", k, "Wait"), { key: k, policy: "Wait" });
    const before = await readLock(k);
    assert.deepEqual(await claimUnique(kv, msg("r", k, "Reject"), { key: k, policy: "Reject" }), { outcome: "rejected", holder: "h" });
    assert.deepEqual(await claimUnique(kv, msg("w", k, "Wait"), { key: k, policy: "Wait" }), { outcome: "wait", holder: "h" });
    assert.deepEqual(await readLock(k), before);
  });

  it("replaces a holder that has not started: revoked (Cancelled record, revocation marker), lock moved", async () => {
    const k = fresh();
    await claimUnique(kv, msg("old", k, "Replace"), { key: k, policy: "Replace" });
    assert.deepEqual(await claimUnique(kv, msg("new", k, "Replace"), { key: k, policy: "Replace" }), { outcome: "replaced", holder: "old" });
    assert.equal((await readLock(k))?.value.id, "new");
    assert.equal(await phaseOf("old"), "Cancelled");
    assert.equal((await kv.get(`${REVOKED_PREFIX}old`))?.operation, "PUT");
  });

  it("queues one Replace task behind a running holder, replacing the one queued before it", async () => {
    const k = fresh();
    await claimUnique(kv, msg("run", k, "Reject"), { key: k, policy: "Reject" });
    await setRecord("run", "Running");
    assert.deepEqual(await claimUnique(kv, msg("n1", k, "Replace"), { key: k, policy: "Replace" }), { outcome: "wait", holder: "run" });
    assert.deepEqual(await claimUnique(kv, msg("n2", k, "Replace"), { key: k, policy: "Replace" }), { outcome: "replaced", holder: "n1" });
    assert.deepEqual((await readLock(k))?.value, { v: 1, id: "run", policy: "Reject", next: "n2" });
    assert.equal(await phaseOf("n1"), "Cancelled");
    assert.equal(await phaseOf("run"), "Running", "the running holder was revoked");
    // the holder's final settle passes the lock to the next
    await setRecord("run", "Succeeded");
    assert.equal(await releaseUnique(kv, msg("run", k, "Reject")), "passed");
    assert.deepEqual((await readLock(k))?.value, { v: 1, id: "n2", policy: "Replace" });
  });

  it("takes over a lock whose holder finished, or never got a record within the grace", async () => {
    const k = fresh();
    await claimUnique(kv, msg("done", k, "Reject"), { key: k, policy: "Reject" });
    await setRecord("done", "Succeeded");
    assert.deepEqual(await claimUnique(kv, msg("b", k, "Reject"), { key: k, policy: "Reject" }), { outcome: "claimed" });
    assert.equal((await readLock(k))?.value.id, "b");
    // b has no record: within the grace it holds; 31 s later (the clock moved) it is stale
    assert.deepEqual(await claimUnique(kv, msg("c", k, "Reject"), { key: k, policy: "Reject" }), { outcome: "rejected", holder: "b" });
    assert.deepEqual(await claimUnique(kv, msg("c", k, "Reject"), { key: k, policy: "Reject" }, { now: () => Date.now() + 31_000 }), { outcome: "claimed" });
    assert.equal((await readLock(k))?.value.id, "c");
  });

  it("passes a stale lock to its next before deciding a claim", async () => {
    const k = fresh();
    await claimUnique(kv, msg("h", k, "Reject"), { key: k, policy: "Reject" });
    await setRecord("h", "Running");
    await claimUnique(kv, msg("nx", k, "Replace"), { key: k, policy: "Replace" });
    await setRecord("nx", "Queued");
    await setRecord("h", "Succeeded"); // finished, but its release never happened (crash)
    assert.deepEqual(await claimUnique(kv, msg("late", k, "Reject"), { key: k, policy: "Reject" }), { outcome: "rejected", holder: "nx" });
    assert.deepEqual((await readLock(k))?.value, { v: 1, id: "nx", policy: "Replace" });
  });

  it("keeps a confirmed holder's lock however long it has no record", async () => {
    const k = fresh();
    const a = msg("conf", k, "Reject");
    await claimUnique(kv, a, a.unique!);
    assert.equal(await confirmUnique(kv, a), "holder");
    assert.equal(await confirmUnique(kv, a), "none");
    assert.equal((await readLock(k))?.value.published, true);
    assert.deepEqual(await claimUnique(kv, msg("x", k, "Reject"), { key: k, policy: "Reject" }, { now: () => Date.now() + 3_600_000 }), { outcome: "rejected", holder: "conf" });
  });

  it("ages the lock of a task with an eta from its eta", async () => {
    const k = fresh();
    const later = newTaskMessage({ id: "eta1", task: "t", queue: "q", namespace: "default", origin: { kind: "Client" }, countdownSeconds: 60, unique: { key: k, policy: "Reject" } }, new Date());
    await claimUnique(kv, later, later.unique!);
    assert.equal((await readLock(k))?.value.eta, later.eta);
    const other = msg("eta2", k, "Reject");
    assert.deepEqual(await claimUnique(kv, other, other.unique!, { now: () => Date.now() + 45_000 }), { outcome: "rejected", holder: "eta1" });
    assert.deepEqual(await claimUnique(kv, other, other.unique!, { now: () => Date.now() + 95_000 }), { outcome: "claimed" });
  });

  it("gives a free key to exactly one of 10 concurrent claims", async () => {
    const k = fresh();
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => claimUnique(kv, msg(`c${i}`, k, "Reject"), { key: k, policy: "Reject" })));
    const claimed = out.flatMap((o, i) => (o.outcome === "claimed" ? [`c${i}`] : []));
    assert.equal(claimed.length, 1, JSON.stringify(out));
    assert.ok(out.every((o) => o.outcome === "claimed" || (o.outcome === "rejected" && o.holder === claimed[0])), JSON.stringify(out));
  });

  it("lets a worker run the holder, take a free or stale key, and hold back the others", async () => {
    const k = fresh();
    let took = 0;
    const beforeTake = async () => void took++;
    assert.deepEqual(await checkUnique(kv, msg("w1", k, "Wait"), { beforeTake }), { run: true });
    assert.equal(took, 1);
    assert.equal((await readLock(k))?.value.id, "w1");
    const rev = (await readLock(k))!.revision;
    assert.deepEqual(await checkUnique(kv, msg("w1", k, "Wait"), { beforeTake }), { run: true });
    assert.ok((await readLock(k))!.revision > rev, "the holder's check did not write the lock again");
    await setRecord("w1", "Running");
    assert.deepEqual(await checkUnique(kv, msg("w2", k, "Wait"), { beforeTake }), { run: false, holder: "w1" });
    assert.equal(took, 2, "beforeTake ran for a task that does not run");
    await setRecord("w1", "Succeeded");
    assert.deepEqual(await checkUnique(kv, msg("w2", k, "Wait"), { beforeTake }), { run: true });
    assert.equal((await readLock(k))?.value.id, "w2");
    assert.deepEqual(await checkUnique(kv, { ...msg("plain", k, "Wait"), unique: undefined } as TaskMessage), { run: true });
  });

  it("lets exactly one of 10 concurrent checks of a free key run", async () => {
    const k = fresh();
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => checkUnique(kv, msg(`k${i}`, k, "Wait"))));
    assert.equal(out.filter((o) => o.run).length, 1, JSON.stringify(out));
  });

  it("releases only a lock that names the task", async () => {
    const k = fresh();
    await claimUnique(kv, msg("h", k, "Wait"), { key: k, policy: "Wait" });
    assert.equal(await releaseUnique(kv, msg("other", k, "Wait")), "notHeld");
    assert.equal((await readLock(k))?.value.id, "h");
    assert.equal(await releaseUnique(kv, msg("h", k, "Wait")), "deleted");
    assert.equal(await readLock(k), undefined);
    assert.equal(await releaseUnique(kv, msg("h", k, "Wait")), "notHeld");
    // a deleted lock is free again
    assert.deepEqual(await claimUnique(kv, msg("again", k, "Reject"), { key: k, policy: "Reject" }), { outcome: "claimed" });
  });

  it("removes a next that ended before its holder", async () => {
    const k = fresh();
    await claimUnique(kv, msg("h", k, "Reject"), { key: k, policy: "Reject" });
    await setRecord("h", "Running");
    await claimUnique(kv, msg("nx", k, "Replace"), { key: k, policy: "Replace" });
    assert.equal(await releaseUnique(kv, msg("nx", k, "Replace")), "dequeued");
    assert.deepEqual((await readLock(k))?.value, { v: 1, id: "h", policy: "Reject" });
  });
});
