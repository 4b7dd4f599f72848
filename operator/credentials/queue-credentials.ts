/**
 * The Queue reconciler's credentials sub-step (minting mode): keeps a Queue's worker Secret
 * `<queue>-worker-nats` and its namespace's producer Secret `celeriac-producer-nats` in line with
 * the desired credential (credential-spec.ts) and the rotation rule (rotation.ts), and deletes them
 * when their Queue, or the namespace's last Queue, is gone; a periodic sweep deletes producer
 * Secrets left in namespaces without a Queue (orphan-producers.ts). Thin I/O around the pure parts: read the
 * live Secret from the informer cache, decide, mint, write one Secret.
 *
 * Writes: `create` when the cache has no Secret (then `patch` on AlreadyExists), JSON merge `patch`
 * of data, labels, annotations and ownerReferences otherwise (then `create` on NotFound), `delete`
 * when gone. Never logs or
 * records a credential: only Secret names, user public keys, reasons and times.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { FIELD_MANAGERS, REASONS } from "../../api/constants.js";
import { queueNames } from "../../api/naming.js";
import { PRODUCER_CREDS_SECRET_NAME, workerCredsSecretName } from "../../api/nats-creds-secrets.js";
import type { Queue } from "../../api/objects.js";
import { BUILTIN_TYPES, createObject, deleteObject, isAlreadyExists, isNotFound, mergePatch, type EventSink, type KubeObject, type ObjectRef } from "../runtime/index.js";
import { producerCredentialSpec, workerCredentialSpec, type CredentialSpec } from "./credential-spec.js";
import { credsOwnerReferences, desiredCredsSecret, isMintedCredsSecret, liveCredential, type CredsSecret } from "./desired-secrets.js";
import type { CredentialMinter } from "./minter.js";
import { renewAt, rotationDecision } from "./rotation.js";
import { orphanProducerNamespaces } from "./orphan-producers.js";
import { NATS_CREDS_ANNOTATIONS, NATS_CREDS_SECRET_KEY } from "../../api/nats-creds-secrets.js";
import { credsJwt, NATS_DEFAULT_MAX_CONTROL_LINE } from "../../api/nats-control-line.js";
import { connectLineCheck } from "./connect-line.js";

/** Dependencies of {@link QueueCredentials}. */
export interface QueueCredentialsDeps {
  kc: KubeConfig;
  /**
   * The minter of a namespace's users: the one account's in minting mode, the namespace's own
   * account's in accounts mode (tenant-accounts.ts).
   * @throws Error when the namespace's account cannot be had (the reconcile is retried)
   */
  minterFor(namespace: string): Promise<CredentialMinter>;
  /** Lifetime of each credential, in seconds. */
  ttlSeconds: number;
  /** A minted Secret from the informer cache (label `celeriac.io/nats-credentials`). */
  getSecret(namespace: string, name: string): CredsSecret | undefined;
  /** The Queues of a namespace from the informer cache. */
  listQueues(namespace: string): Queue[];
  /** Every minted Secret in the informer cache, for {@link QueueCredentials.sweepOrphanProducers}. */
  listSecrets?(): CredsSecret[];
  events: EventSink;
  /** Accounts mode: annotate each Secret with its namespace's account (`celeriac.io/nats-tenant-account`). */
  tenantAccounts?: boolean;
  /**
   * The NATS server's `max_control_line`, in bytes (`CELERIAC_NATS_MAX_CONTROL_LINE`, or in accounts
   * mode the servers' own, read through the system account; default 4096, nats-server's), or a
   * function read at each check: a credential whose CONNECT line would exceed it gets a Warning Event
   * (`NatsCredentialsTooLarge`) on each Queue using it, once per minted user per operator process.
   */
  maxControlLine?: number | (() => number);
  now?: () => number;
}

/** Outcome of {@link QueueCredentials.ensure}: when the next rotation falls due. */
export interface CredentialsOutcome {
  /** The earliest renewal time of the Queue's worker and its namespace's producer credential. */
  renewAt: Date;
}

/** Keeps the minted credential Secrets of Queues. One instance per operator. */
export class QueueCredentials {
  readonly #d: QueueCredentialsDeps;
  readonly #now: () => number;
  /** Secrets this instance wrote, by `ns/name`: newer than the cache until the watch catches up. */
  readonly #written = new Map<string, CredsSecret>();
  /** One producer update at a time per namespace (two Queue reconciles may race on it). */
  readonly #locks = new Map<string, Promise<unknown>>();
  /** The user public key last checked against max_control_line, by `ns/secret`: one Warning per minted user. */
  readonly #sizeChecked = new Map<string, string>();

  constructor(deps: QueueCredentialsDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /**
   * Ensures the worker Secret of `q` and the producer Secret of its namespace.
   * @param q a live Queue (not being deleted) read from the API server (it has a uid)
   * @param log the reconcile's logger
   * @throws Error on API failures (retried by the controller)
   */
  async ensure(q: Queue, log: Logger): Promise<CredentialsOutcome> {
    const ns = q.metadata.namespace!;
    const minter = await this.#d.minterFor(ns);
    const worker = workerCredentialSpec(ns, q.metadata.name, minter.account);
    const w = await this.#ensureSecret(minter, worker, [q], q, log);
    const p = await this.ensureProducer(ns, log, { about: q });
    return { renewAt: p && p < w ? p : w };
  }

  /**
   * Public key (`A…`) of the NATS account `namespace`'s streams and users live in (the one account
   * in minting mode, the namespace's own in accounts mode): what KEDA's `nats-jetstream` trigger
   * names as `account`.
   * @throws Error when the namespace's account cannot be had
   */
  async accountOf(namespace: string): Promise<string> {
    return (await this.#d.minterFor(namespace)).account;
  }

  /**
   * The Queue `name` is being deleted or is gone: deletes its worker Secret (when the operator minted
   * it) and updates the producer Secret without it (deleting it when no Queue is left). Explicit,
   * not left to garbage collection, so a cluster without a garbage collector is cleaned up too.
   * @param q the Queue when it still exists (being deleted), for Events
   * @throws Error on API failures
   */
  async remove(namespace: string, name: string, log: Logger, q?: Queue): Promise<void> {
    const secretName = workerCredsSecretName(name);
    const live = this.#live(namespace, secretName);
    if (live && isMintedCredsSecret(live)) {
      await this.#delete(namespace, secretName, log);
      if (q) this.#d.events.event(q, "Normal", REASONS.NatsCredentialsDeleted, `Deleted NATS credential Secret ${secretName}`);
    }
    await this.ensureProducer(namespace, log, { excluding: name, ...(q ? { about: q } : {}) });
  }

  /**
   * Ensures the producer Secret of `namespace` for its live Queues (minus `excluding`), or deletes it
   * when there are none.
   * @returns its renewal time, undefined when it was deleted
   */
  async ensureProducer(namespace: string, log: Logger, o: { excluding?: string; about?: Queue } = {}): Promise<Date | undefined> {
    const prev = this.#locks.get(namespace) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(() => this.#producer(namespace, log, o));
    this.#locks.set(namespace, run);
    try {
      return await run;
    } finally {
      if (this.#locks.get(namespace) === run) this.#locks.delete(namespace);
    }
  }

  /**
   * Deletes the producer Secrets the operator minted in namespaces that have no live Queue (their
   * last Queue went while the operator was down). Call once the caches have synced, then on each
   * resync. Each namespace is re-checked under its producer lock, so a racing Queue reconcile wins.
   * @returns the namespaces whose producer Secret was found orphaned
   * @throws Error on API failures (the first; the other namespaces are still swept)
   */
  async sweepOrphanProducers(log: Logger): Promise<string[]> {
    const orphaned = orphanProducerNamespaces(this.#d.listSecrets?.() ?? [], (ns) => this.#liveQueues(ns).length > 0);
    let first: unknown;
    for (const ns of orphaned) {
      try {
        await this.ensureProducer(ns, log.child({ namespace: ns }));
      } catch (err) {
        first ??= new Error(`delete orphaned producer Secret in ${ns}`, { cause: err });
      }
    }
    if (first) throw first;
    return orphaned;
  }

  /** The Queues of `namespace` that get credentials: not being deleted, valid names, not `excluding`. */
  #liveQueues(namespace: string, excluding?: string): Queue[] {
    return this.#d.listQueues(namespace).filter((q) => !q.metadata.deletionTimestamp && q.metadata.name !== excluding && validName(namespace, q.metadata.name));
  }

  async #producer(namespace: string, log: Logger, o: { excluding?: string; about?: Queue }): Promise<Date | undefined> {
    const queues = this.#liveQueues(namespace, o.excluding);
    if (queues.length === 0) {
      const live = this.#live(namespace, PRODUCER_CREDS_SECRET_NAME);
      if (live && isMintedCredsSecret(live)) {
        await this.#delete(namespace, PRODUCER_CREDS_SECRET_NAME, log);
        if (o.about) this.#d.events.event(o.about, "Normal", REASONS.NatsCredentialsDeleted, `Deleted NATS credential Secret ${PRODUCER_CREDS_SECRET_NAME}: no Queue is left in the namespace`);
      }
      return undefined;
    }
    const minter = await this.#d.minterFor(namespace);
    const spec = producerCredentialSpec(namespace, queues.map((q) => q.metadata.name), minter.account);
    return this.#ensureSecret(minter, spec, queues, o.about, log);
  }

  /** Mints and writes `spec`'s Secret when the rotation decision says so; fixes drifted owners. */
  async #ensureSecret(minter: CredentialMinter, spec: CredentialSpec, owners: readonly Queue[], about: Queue | undefined, log: Logger): Promise<Date> {
    const live = this.#live(spec.namespace, spec.secretName);
    const now = new Date(this.#now());
    const refs = credsOwnerReferences(spec, owners);
    const decision = rotationDecision({ live: liveCredential(live), hash: spec.hash, issuer: minter.issuer, ttlSeconds: this.#d.ttlSeconds, now });
    if (decision.action === "keep" && live) {
      if (!sameOwners(live.metadata.ownerReferences, refs)) {
        const patched = await mergePatch<KubeObject>(this.#d.kc, this.#ref(spec.namespace, spec.secretName), { metadata: { ownerReferences: refs } }, FIELD_MANAGERS.operator);
        this.#remember(patched as CredsSecret);
      }
      // After an operator restart: the kept credential is checked once too.
      const creds = live.data?.[NATS_CREDS_SECRET_KEY];
      const user = live.metadata.annotations?.[NATS_CREDS_ANNOTATIONS.user];
      if (creds && user) this.#checkSize(spec, () => Buffer.from(creds, "base64").toString("utf8"), user, owners, log);
      return decision.renewAt;
    }
    const reason = decision.action === "mint" ? decision.reason : "Missing";
    const minted = await minter.mint({ name: spec.userName, permissions: spec.permissions, ttlSeconds: this.#d.ttlSeconds, now });
    const desired = desiredCredsSecret(spec, minted, refs, this.#d.tenantAccounts ? { tenantAccount: minter.account } : {});
    const written = await this.#write(desired, live);
    this.#remember(written);
    // From the JWT's own times, as the keep path computes it (the annotation is cut to whole seconds).
    const renew = renewAt(minted.issuedAt, minted.expiresAt);
    log.info({ secret: spec.secretName, role: spec.role, reason, user: minted.userPublicKey, expiresAt: minted.expiresAt.toISOString(), renewAt: renew.toISOString() }, "Minted NATS credential");
    if (about) this.#d.events.event(about, "Normal", REASONS.NatsCredentialsIssued, `Minted NATS ${spec.role} credential into Secret ${spec.secretName} (${reason}), expires ${minted.expiresAt.toISOString()}`);
    this.#checkSize(spec, () => minted.creds, minted.userPublicKey, owners, log);
    return renew;
  }

  /**
   * Checks a credential's CONNECT line against max_control_line, once per minted user: over it, a
   * Warning Event on each Queue in `owners` and a warn log line (sizes only, never the credential).
   */
  #checkSize(spec: CredentialSpec, creds: () => string, user: string, owners: readonly Queue[], log: Logger): void {
    const key = `${spec.namespace}/${spec.secretName}`;
    if (this.#sizeChecked.get(key) === user) return;
    this.#sizeChecked.set(key, user);
    const jwt = credsJwt(creds());
    if (!jwt) return;
    const limit = this.#d.maxControlLine ?? NATS_DEFAULT_MAX_CONTROL_LINE;
    const maxControlLine = typeof limit === "function" ? limit() : limit;
    const check = connectLineCheck({ role: spec.role, secretName: spec.secretName, jwtBytes: Buffer.byteLength(jwt), queues: spec.role === "producer" ? owners.length : 1, maxControlLine });
    if (check.fits) return;
    log.warn({ secret: spec.secretName, role: spec.role, jwtBytes: Buffer.byteLength(jwt), connectBytes: check.connectBytes, maxControlLine, queues: owners.length }, "Minted NATS credential exceeds max_control_line");
    for (const q of owners) this.#d.events.event(q, "Warning", REASONS.NatsCredentialsTooLarge, check.message!);
  }

  /** Creates the Secret, or merge-patches the live one. */
  async #write(desired: CredsSecret, live: CredsSecret | undefined): Promise<CredsSecret> {
    const ref = this.#ref(desired.metadata.namespace!, desired.metadata.name);
    const patch = () => mergePatch<KubeObject>(this.#d.kc, ref, { metadata: { labels: desired.metadata.labels, annotations: desired.metadata.annotations, ownerReferences: desired.metadata.ownerReferences }, type: desired.type, data: desired.data }, FIELD_MANAGERS.operator);
    if (live) {
      try {
        return (await patch()) as CredsSecret;
      } catch (err) {
        // The cache was stale (deleted meanwhile, e.g. by garbage collection): create it again.
        if (!isNotFound(err)) throw err;
      }
    }
    try {
      return (await createObject<KubeObject>(this.#d.kc, BUILTIN_TYPES.Secret, desired as KubeObject, FIELD_MANAGERS.operator)) as CredsSecret;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      return (await patch()) as CredsSecret;
    }
  }

  async #delete(namespace: string, name: string, log: Logger): Promise<void> {
    const deleted = await deleteObject(this.#d.kc, this.#ref(namespace, name));
    this.#written.delete(`${namespace}/${name}`);
    this.#sizeChecked.delete(`${namespace}/${name}`);
    if (deleted) log.info({ secret: name }, "Deleted NATS credential Secret");
  }

  /** The live Secret: the cache's, unless this instance wrote a newer one since. */
  #live(namespace: string, name: string): CredsSecret | undefined {
    const key = `${namespace}/${name}`;
    const cached = this.#d.getSecret(namespace, name);
    const mine = this.#written.get(key);
    if (!mine) return cached;
    if (cached && cached.metadata.uid === mine.metadata.uid && cached.metadata.resourceVersion === mine.metadata.resourceVersion) {
      this.#written.delete(key); // the cache has caught up
      return cached;
    }
    if (!cached) return mine;
    const issued = (s: CredsSecret) => Date.parse(s.metadata.annotations?.[NATS_CREDS_ANNOTATIONS.issuedAt] ?? "") || 0;
    return issued(mine) >= issued(cached) ? mine : cached;
  }

  #remember(s: CredsSecret): void {
    this.#written.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
  }

  #ref(namespace: string, name: string): ObjectRef {
    return { group: "", version: "v1", plural: "secrets", namespace, name };
  }
}

/** True when `namespace/name` makes valid NATS names (an invalid Queue gets no credential). */
function validName(namespace: string, name: string): boolean {
  try {
    queueNames(namespace, name);
    return true;
  } catch {
    return false;
  }
}

/** Same owners by uid, name, controller and blockOwnerDeletion, in order. */
function sameOwners(a: CredsSecret["metadata"]["ownerReferences"], b: CredsSecret["metadata"]["ownerReferences"]): boolean {
  const k = (l: typeof a) => JSON.stringify((l ?? []).map((r) => [r.uid, r.name, r.kind, r.controller === true, r.blockOwnerDeletion === true]));
  return k(a) === k(b);
}
