/**
 * Singleton tasks (unique-while-active, design §5 of issue 15): the lock of a unique key, kept in the
 * queue's results bucket, and the operations on it: `claimUnique` (producers, before they publish),
 * `confirmUnique` (producers, after the publish's PubAck), `checkUnique` (the worker, before it runs
 * a task) and `releaseUnique` (the worker, at the task's final settle). Each decision
 * is a pure function of what was read (`decideClaim`, `decideCheck`, `decideRelease`,
 * `decideConfirm`); the KV I/O around them is a read, one compare-and-set write, and a bounded retry
 * when another process wrote in between.
 *
 * The lock: key `unique.<base64url(key)>` (base64url keeps any key within KV's key alphabet
 * `[-/=.\w]`), value `{"v":1,"id":"<holder>","policy":"<policy>"}` plus optional fields:
 * - `id` is the **holder**: the one task of the key that may run (or runs, or waits for its retry);
 * - `next` (Replace only) is the one task queued to run after a holder that has already started; a
 *   later Replace task revokes it and takes its place, so only the latest runs after the holder;
 * - `eta` is the holder's eta (RFC 3339) when it was claimed with one; `published` / `nextPublished`
 *   (true) say the holder's / next's message is known to be in a stream (`confirmUnique` after the
 *   PubAck, or a worker that took the lock: it holds the message).
 *
 * A lock is **stale** when its holder can no longer run: the holder's record (results bucket key =
 * its id) is terminal (`isTerminalPhase`), or there is none, it is not known `published`, and the
 * lock was last written (or the holder's eta passed) more than the grace (`UNIQUE_STALE_GRACE_MS`,
 * 30 s) ago — the producer claimed and never published (it crashed, or its publish failed). A stale
 * lock passes to its `next` if it has one, else to whoever finds it (compare-and-set on its
 * revision). Lock age is measured against the KV entry's stream timestamp (the server's clock):
 * clock skew between a producer and the server shortens or lengthens the grace by the skew.
 *
 * Without `confirmUnique` (a producer that does not call it), a holder that was published but has
 * no record for longer than the grace (no worker took it yet: workers scaled to zero, a long
 * backlog) looks like one never published, and its lock is taken over by the next claim. The old
 * holder then does not run while the new one holds the lock (the worker's `checkUnique` makes it
 * wait), so two never run at once, but a Reject claim in that window is accepted and both run, one
 * after the other (a Replace claim revokes the old holder, as it would one that has not started).
 *
 * Ordering against a concurrent Replace: the worker writes the task's `Running` record *before* its
 * compare-and-set of the lock (`checkUnique`'s `beforeTake`), and the producer reads the holder's
 * record after reading the lock and writes the lock with that lock's revision. Either the worker's
 * write lands first — the producer's write then fails, and its next read sees `Running` (the new task
 * waits) — or the producer's does — the worker's fails, and it sees the lock moved (the task does not
 * run, and is revoked).
 */
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { isTerminalPhase } from "../api/constants.js";
import { UNIQUE_POLICIES, type UniquePolicy } from "../api/flow.js";
import type { TaskMessage, TaskRecord } from "../api/message.js";
import { revokeTask } from "./task-publish.js";

/** Key prefix of unique locks in the results bucket. */
export const UNIQUE_PREFIX = "unique.";

/** How long a lock whose holder has no record is kept before it is stale, in ms (30 s). */
export const UNIQUE_STALE_GRACE_MS = 30_000;

/** Most read-decide-write rounds of one operation (each lost compare-and-set costs one) before it gives up. */
export const UNIQUE_MAX_TRIES = 20;

/** The results-bucket key of the lock of unique key `key`: `unique.<base64url(UTF-8 key)>`. Pure. */
export function uniqueLockKey(key: string): string {
  return UNIQUE_PREFIX + Buffer.from(key, "utf8").toString("base64url");
}

/** The value of a unique lock (JSON in the results bucket). */
export interface UniqueLock {
  /** Version of the value: 1. */
  readonly v: 1;
  /** The holder's task id. */
  readonly id: string;
  /** The holder's policy (informational; the claimant's own policy decides a claim). */
  readonly policy: UniquePolicy;
  /** Replace: the task queued to run after the holder (it has not started). */
  readonly next?: string;
  /** The holder's eta (RFC 3339), when it was claimed with one: its lock ages only from then. */
  readonly eta?: string;
  /** True when the holder's message is known to be in a stream (never stale for want of a record). */
  readonly published?: true;
  /** True when the next's message is known to be in a stream. */
  readonly nextPublished?: true;
}

/** A lock as read. */
export interface LockView {
  /** The value; undefined when the entry holds something that is not a lock (it is overwritten). */
  readonly value: UniqueLock | undefined;
  /** The entry's revision (for compare-and-set). */
  readonly revision: number;
  /** Time since the lock was last written, or since the holder's `eta` when later, ms (server timestamp vs the reader's clock). */
  readonly ageMs: number;
}

/**
 * What the holder's record says: `missing` (no record), `notStarted` (Queued or Pending, or a record
 * with no phase), `started` (Running or Retrying: it ran at least once), `finished` (terminal).
 */
export type HolderState = "missing" | "notStarted" | "started" | "finished";

/** The holder state of a record phase (undefined: no record). Pure. */
export function holderState(phase: string | undefined, exists = true): HolderState {
  if (!exists) return "missing";
  if (isTerminalPhase(phase)) return "finished";
  return phase === "Running" || phase === "Retrying" ? "started" : "notStarted";
}

/** The lock value in an entry's JSON, or undefined when it is not a v1 lock. Pure; never throws. */
export function parseLock(value: unknown): UniqueLock | undefined {
  if (value === null || typeof value !== "object") return undefined;
  const o = value as Record<string, unknown>;
  if (o.v !== 1 || typeof o.id !== "string" || o.id === "" || !(UNIQUE_POLICIES as readonly unknown[]).includes(o.policy)) return undefined;
  if (o.next !== undefined && (typeof o.next !== "string" || o.next === "")) return undefined;
  if (o.eta !== undefined && (typeof o.eta !== "string" || Number.isNaN(Date.parse(o.eta)))) return undefined;
  return {
    v: 1,
    id: o.id,
    policy: o.policy as UniquePolicy,
    ...(o.next !== undefined ? { next: o.next as string } : {}),
    ...(o.eta !== undefined ? { eta: o.eta as string } : {}),
    ...(o.published === true ? { published: true as const } : {}),
    ...(o.nextPublished === true ? { nextPublished: true as const } : {}),
  };
}

/** What the decisions look at. */
export interface UniqueSituation {
  /** The task deciding (the claimant, or the task the worker is about to run). */
  readonly self: string;
  /** Its policy. */
  readonly policy: UniquePolicy;
  /** The lock, or undefined when there is none. */
  readonly lock: LockView | undefined;
  /** The state of the lock holder's record; read only when the holder is another task (else undefined). */
  readonly holder: HolderState | undefined;
  /** The stale grace, ms. */
  readonly graceMs: number;
  /** The claimant's eta (RFC 3339), recorded in a lock it takes (claims only). */
  readonly eta?: string | undefined;
}

/** A write of the lock: create (no lock) or update at `revision`, or delete at `revision`. */
export type LockWrite =
  | { readonly op: "create"; readonly value: UniqueLock }
  | { readonly op: "update"; readonly value: UniqueLock; readonly revision: number }
  | { readonly op: "delete"; readonly revision: number };

/**
 * One step of a decision: the write to make (compare-and-set; on a conflict, read and decide again),
 * the task to revoke once the write succeeded, and the result — or `again` (read and decide again
 * after the write: a stale holder's lock was passed to its `next`).
 */
export interface UniqueStep<R> {
  readonly write?: LockWrite;
  readonly revoke?: string;
  readonly result: R | "again";
}

/** Outcome of `claimUnique`. `holder` is the task that holds the key (rejected, wait) or the one revoked (replaced). */
export type ClaimOutcome = { outcome: "claimed" } | { outcome: "rejected"; holder: string } | { outcome: "wait"; holder: string } | { outcome: "replaced"; holder: string };

/** Outcome of `checkUnique`. */
export type CheckOutcome = { run: true } | { run: false; holder: string };

/** What `releaseUnique` did: deleted the lock, passed it to `next`, removed this task as `next`, or nothing (not held). */
export type ReleaseOutcome = "deleted" | "passed" | "dequeued" | "notHeld";

/** A lock value, the optional parts only when given. */
function lockOf(id: string, policy: UniquePolicy, more: { next?: string | undefined; eta?: string | undefined; published?: boolean | undefined; nextPublished?: boolean | undefined } = {}): UniqueLock {
  return {
    v: 1,
    id,
    policy,
    ...(more.next !== undefined ? { next: more.next } : {}),
    ...(more.eta !== undefined ? { eta: more.eta } : {}),
    ...(more.published ? { published: true as const } : {}),
    ...(more.next !== undefined && more.nextPublished ? { nextPublished: true as const } : {}),
  };
}

/** The lock passed to its next: the next is the holder (published when it was known to be). */
function promoted(v: UniqueLock): UniqueLock {
  return lockOf(v.next!, "Replace", { published: v.nextPublished });
}

/**
 * True when the lock's holder can no longer run: its record is terminal, or missing — the holder
 * not known to be published — for longer than the grace. Pure.
 * @param ageMs the lock's age (LockView.ageMs), ms
 * @param graceMs the grace, ms
 * @param published the lock's `published`
 */
export function isStale(holder: HolderState | undefined, ageMs: number, graceMs: number, published = false): boolean {
  return holder === "finished" || (holder === "missing" && !published && ageMs >= graceMs);
}

/**
 * A producer's claim of the key for task `self`, before it publishes. Pure; never throws.
 * - no lock, or one that is not a lock → take it → `claimed`;
 * - the lock names `self` → `claimed` (a republish); `self` is its `next` → `wait`;
 * - stale → pass it to its `next` and decide again, or take it → `claimed` (Replace, when the holder
 *   has no record: it may yet be in the stream, so it is revoked → `replaced`);
 * - held: Reject → `rejected`; Wait → `wait` (publish; the worker holds the task back);
 *   Replace → a holder that has not started (no record within the grace, or Queued) is revoked and
 *   the lock moves to `self` (`replaced`, holder = the revoked task); a started holder keeps the lock
 *   and `self` becomes its `next`, revoking the previous `next` (`replaced`, holder = that one) or,
 *   when there was none, `wait`.
 */
export function decideClaim(s: UniqueSituation): UniqueStep<ClaimOutcome> {
  const { self, policy, lock } = s;
  const mine = lockOf(self, policy, { eta: s.eta });
  if (!lock) return { write: { op: "create", value: mine }, result: { outcome: "claimed" } };
  const v = lock.value;
  const update = (value: UniqueLock): LockWrite => ({ op: "update", value, revision: lock.revision });
  if (!v) return { write: update(mine), result: { outcome: "claimed" } };
  if (v.id === self) return { result: { outcome: "claimed" } };
  if (v.next === self) return { result: { outcome: "wait", holder: v.id } };
  if (isStale(s.holder, lock.ageMs, s.graceMs, v.published)) {
    if (v.next !== undefined) return { write: update(promoted(v)), result: "again" };
    // a holder with no record may yet be in the stream, unstarted: Replace revokes it to be sure
    if (policy === "Replace" && s.holder === "missing") return { write: update(mine), revoke: v.id, result: { outcome: "replaced", holder: v.id } };
    return { write: update(mine), result: { outcome: "claimed" } };
  }
  if (policy === "Reject") return { result: { outcome: "rejected", holder: v.id } };
  if (policy === "Wait") return { result: { outcome: "wait", holder: v.id } };
  if (s.holder !== "started") return { write: update(lockOf(self, policy, { eta: s.eta, next: v.next, nextPublished: v.nextPublished })), revoke: v.id, result: { outcome: "replaced", holder: v.id } };
  const behind = lockOf(v.id, v.policy, { eta: v.eta, published: v.published, next: self });
  if (v.next !== undefined) return { write: update(behind), revoke: v.next, result: { outcome: "replaced", holder: v.next } };
  return { write: update(behind), result: { outcome: "wait", holder: v.id } };
}

/**
 * A worker's check before it runs task `self` (whatever its policy). Pure; never throws.
 * - no lock, or one that is not a lock → take it → run;
 * - the lock names `self` → write it again (the compare-and-set that orders this start against a
 *   concurrent Replace claim) → run;
 * (a lock the worker writes for `self` says `published`: it holds the message);
 * - stale → pass it to its `next` (when that is another task) and decide again, or take it → run;
 * - held by another live task (`self` may be its `next`) → do not run.
 */
export function decideCheck(s: UniqueSituation): UniqueStep<CheckOutcome> {
  const { self, policy, lock } = s;
  // the worker holds the message: a lock it writes for itself says published
  const mine = lockOf(self, policy, { published: true });
  if (!lock) return { write: { op: "create", value: mine }, result: { run: true } };
  const v = lock.value;
  const update = (value: UniqueLock): LockWrite => ({ op: "update", value, revision: lock.revision });
  if (!v) return { write: update(mine), result: { run: true } };
  if (v.id === self) return { write: update(lockOf(v.id, v.policy, { next: v.next, nextPublished: v.nextPublished, published: true })), result: { run: true } };
  if (isStale(s.holder, lock.ageMs, s.graceMs, v.published)) {
    if (v.next !== undefined && v.next !== self) return { write: update(promoted(v)), result: "again" };
    return { write: update(mine), result: { run: true } };
  }
  return { result: { run: false, holder: v.id } };
}

/**
 * The final settle of task `self` (a terminal outcome): the holder deletes the lock, or passes it to
 * its `next`; a `next` removes itself; anyone else leaves the lock alone. Pure; never throws.
 */
export function decideRelease(self: string, lock: LockView | undefined): UniqueStep<ReleaseOutcome> {
  const v = lock?.value;
  if (!lock || !v) return { result: "notHeld" };
  if (v.id === self) {
    if (v.next !== undefined) return { write: { op: "update", value: promoted(v), revision: lock.revision }, result: "passed" };
    return { write: { op: "delete", revision: lock.revision }, result: "deleted" };
  }
  if (v.next === self) return { write: { op: "update", value: lockOf(v.id, v.policy, { eta: v.eta, published: v.published }), revision: lock.revision }, result: "dequeued" };
  return { result: "notHeld" };
}

/** What `confirmUnique` did: marked the holder or the next published, or nothing (already marked, or not in the lock). */
export type ConfirmOutcome = "holder" | "next" | "none";

/**
 * A producer's confirmation, after the PubAck, that task `self` is in a stream: a lock naming it as
 * holder or next says so (`published` / `nextPublished`), so the lock is never taken as stale for
 * want of the task's record (a backlog, workers scaled to zero). Pure; never throws.
 */
export function decideConfirm(self: string, lock: LockView | undefined): UniqueStep<ConfirmOutcome> {
  const v = lock?.value;
  if (!lock || !v) return { result: "none" };
  if (v.id === self && !v.published) return { write: { op: "update", value: { ...v, published: true }, revision: lock.revision }, result: "holder" };
  if (v.next === self && !v.nextPublished) return { write: { op: "update", value: { ...v, nextPublished: true }, revision: lock.revision }, result: "next" };
  return { result: "none" };
}

/** Options of the lock operations (tests shorten the grace and move the clock). */
export interface UniqueOptions {
  /** The stale grace, ms; default `UNIQUE_STALE_GRACE_MS`. */
  graceMs?: number;
  /** The clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
}

/** True for JetStream's compare-and-set failure (wrong last subject sequence). */
function isConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

/** Reads the lock under `key` (a deleted or purged entry is no lock). */
async function readLock(kv: KV, key: string, nowMs: number): Promise<LockView | undefined> {
  const e = await kv.get(key);
  if (!e || e.operation !== "PUT") return undefined;
  let value: UniqueLock | undefined;
  try {
    value = parseLock(e.json());
  } catch {
    value = undefined;
  }
  const eta = value?.eta !== undefined ? Date.parse(value.eta) : NaN;
  return { value, revision: e.revision, ageMs: nowMs - Math.max(e.created.getTime(), Number.isNaN(eta) ? 0 : eta) };
}

/** The holder state of task `id`, from its record. */
async function readHolder(kv: KV, id: string): Promise<HolderState> {
  const e = await kv.get(id);
  if (!e || e.operation !== "PUT") return "missing";
  let phase: string | undefined;
  try {
    phase = e.json<TaskRecord>()?.status?.phase;
  } catch {
    phase = undefined; // a record we cannot read: counted as not started (never stale)
  }
  return holderState(phase);
}

/** Makes a lock write; false on a compare-and-set conflict. */
async function writeLock(kv: KV, key: string, w: LockWrite): Promise<boolean> {
  try {
    if (w.op === "create") await kv.create(key, JSON.stringify(w.value));
    else if (w.op === "update") await kv.update(key, JSON.stringify(w.value), w.revision);
    else await kv.delete(key, { previousSeq: w.revision });
    return true;
  } catch (err) {
    if (isConflict(err)) return false;
    throw err;
  }
}

/**
 * Reads, decides and writes until a decision is final and its write (if any) succeeded, in at most
 * `UNIQUE_MAX_TRIES` rounds. `beforeWrite` runs before a write whose result is final (not `again`).
 */
async function loop<R>(
  kv: KV,
  key: string,
  what: string,
  opts: UniqueOptions,
  decide: (lock: LockView | undefined, holder: HolderState | undefined) => UniqueStep<R>,
  needsHolder: (lock: UniqueLock) => boolean,
  beforeWrite?: (step: UniqueStep<R>) => Promise<void>,
): Promise<UniqueStep<R>> {
  const now = opts.now ?? Date.now;
  try {
    for (let i = 0; i < UNIQUE_MAX_TRIES; i++) {
      const lock = await readLock(kv, key, now());
      const holder = lock?.value && needsHolder(lock.value) ? await readHolder(kv, lock.value.id) : undefined;
      const step = decide(lock, holder);
      if (step.write) {
        if (step.result !== "again") await beforeWrite?.(step);
        if (!(await writeLock(kv, key, step.write))) continue; // another process wrote first: read again
      }
      if (step.result !== "again") return step;
    }
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
  }
  throw new Error(`${what}: the lock ${key} kept changing (${UNIQUE_MAX_TRIES} reads, each overtaken by another writer); try again`);
}

/**
 * Claims unique key `unique.key` for task `msg` before it is published (client enqueue, the
 * operator's Task publisher); see `decideClaim` for the rules. On `replaced`, the replaced task was
 * revoked (`revokeTask`: a Cancelled record when it has not started) after the lock moved.
 * The caller publishes the task on `claimed`, `wait` and `replaced`, and refuses it on `rejected`
 * (client: an EnqueueError naming the holder; Task: phase Failed, reason UniqueKeyHeld).
 * @param kv the queue's results bucket
 * @param msg the task (its id, queue and namespace)
 * @param unique the key and the policy (the message's `unique`)
 * @param opts the stale grace and the clock (tests)
 * @throws Error `claim unique key "<key>" for task <id>: …` on a KV failure, or when the lock kept
 *   changing for `UNIQUE_MAX_TRIES` rounds; nothing is published then (a lock already moved to
 *   this task goes stale after the grace)
 */
export async function claimUnique(kv: KV, msg: TaskMessage, unique: { key: string; policy: UniquePolicy }, opts: UniqueOptions = {}): Promise<ClaimOutcome> {
  const graceMs = opts.graceMs ?? UNIQUE_STALE_GRACE_MS;
  const what = `claim unique key ${JSON.stringify(unique.key)} for task ${msg.id}`;
  const step = await loop(
    kv,
    uniqueLockKey(unique.key),
    what,
    opts,
    (lock, holder) => decideClaim({ self: msg.id, policy: unique.policy, lock, holder, graceMs, eta: msg.eta }),
    (l) => l.id !== msg.id && l.next !== msg.id,
  );
  if (step.revoke !== undefined) {
    try {
      await revokeTask(kv, msg, step.revoke);
    } catch (err) {
      throw new Error(`${what}: revoke task ${step.revoke} it replaces: ${(err as Error).message}`, { cause: err });
    }
  }
  return step.result as ClaimOutcome;
}

/** Options of `checkUnique`. */
export interface CheckUniqueOptions extends UniqueOptions {
  /**
   * Called once, before the lock write that lets the task run (the worker writes the task's
   * `Running` record here: see the module header); a throw ends the check with that error.
   */
  beforeTake?: () => Promise<void>;
}

/**
 * The worker's check before it runs task `msg`: may it run now? Yes when the lock names it, or is
 * absent or stale — then the lock is (re)written to name it, so a Wait task becomes the holder; no
 * when another live task holds the key. A message without `unique` always runs. See `decideCheck`.
 * @param kv the queue's results bucket
 * @param msg the task about to run
 * @returns `{run: true}`, or `{run: false, holder}` with the holder's task id
 * @throws Error `check unique key "<key>" for task <id>: …` on a KV failure (or from `beforeTake`):
 *   the message is then left for redelivery
 */
export async function checkUnique(kv: KV, msg: TaskMessage, opts: CheckUniqueOptions = {}): Promise<CheckOutcome> {
  const u = msg.unique;
  if (!u) return { run: true };
  const graceMs = opts.graceMs ?? UNIQUE_STALE_GRACE_MS;
  let took = false;
  const step = await loop(
    kv,
    uniqueLockKey(u.key),
    `check unique key ${JSON.stringify(u.key)} for task ${msg.id}`,
    opts,
    (lock, holder) => decideCheck({ self: msg.id, policy: u.policy, lock, holder, graceMs }),
    (l) => l.id !== msg.id,
    async () => {
      if (took || !opts.beforeTake) return;
      took = true;
      await opts.beforeTake();
    },
  );
  return step.result as CheckOutcome;
}

/**
 * Releases task `msg`'s hold on its unique key at its final settle (a terminal outcome; never a
 * retry): deletes the lock when it names the task (`kv.delete` with the revision read, so a lock
 * that moved meanwhile is kept), passes it to the lock's `next` if there is one, or removes the task
 * as `next`. A message without `unique` does nothing. See `decideRelease`.
 * @param kv the queue's results bucket
 * @param msg the settled task
 * @throws Error `release unique key "<key>" for task <id>: …` on a KV failure; the lock is then
 *   stale (its holder's record is terminal) and the next claim or check takes it over
 */
export async function releaseUnique(kv: KV, msg: Pick<TaskMessage, "id" | "unique">, opts: UniqueOptions = {}): Promise<ReleaseOutcome> {
  const u = msg.unique;
  if (!u) return "notHeld";
  const step = await loop(
    kv,
    uniqueLockKey(u.key),
    `release unique key ${JSON.stringify(u.key)} for task ${msg.id}`,
    opts,
    (lock) => decideRelease(msg.id, lock),
    () => false,
  );
  return step.result as ReleaseOutcome;
}

/**
 * Confirms, after the PubAck of task `msg`'s publish, that it is in a stream (see `decideConfirm`):
 * call it after publishing a task whose claim was `claimed`, `wait` or `replaced`. Optional but
 * recommended: without it, a holder nobody has taken after the grace (30 s) is taken as never
 * published. A message without `unique` does nothing.
 * @param kv the queue's results bucket
 * @param msg the published task
 * @throws Error `confirm unique key "<key>" for task <id>: …` on a KV failure (the task is published:
 *   report the error but do not fail the enqueue for it)
 */
export async function confirmUnique(kv: KV, msg: Pick<TaskMessage, "id" | "unique">, opts: UniqueOptions = {}): Promise<ConfirmOutcome> {
  const u = msg.unique;
  if (!u) return "none";
  const step = await loop(kv, uniqueLockKey(u.key), `confirm unique key ${JSON.stringify(u.key)} for task ${msg.id}`, opts, (lock) => decideConfirm(msg.id, lock), () => false);
  return step.result as ConfirmOutcome;
}
