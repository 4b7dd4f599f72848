/**
 * The connection every operations command (`celeriac tasks`, `dlq`, `queue`, `inspect`) opens: the
 * namespace (cli/namespace.ts), the NATS target (cli/nats-target.ts; credentials from
 * `CELERIAC_NATS_*`, as `celeriac enqueue`), the queue(s) the command acts on — checked to exist,
 * with an error that lists the ones that do — and the confirmation prompt of destructive commands.
 */
import { createInterface } from "node:readline/promises";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { queueNames } from "../api/naming.js";

/** The flags of cli/output.ts `opsFlags`. */
export interface OpsFlags {
  namespace?: string;
  queue?: string;
  nats?: string;
  devDir?: string;
  output?: string;
}

/** An open connection and the queues a command acts on. */
export interface OpsSession {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  namespace: string;
  /** The queue given (`--queue` or `CELERIAC_QUEUE`), or undefined: then `queues` are all the namespace's. */
  queue?: string;
  /** The queues acted on: `[queue]`, or every queue of the namespace (sorted). */
  queues: string[];
  /** The results bucket of `queue` (opened once per queue). @throws the nats.js error when it does not exist */
  kv(queue: string): Promise<KV>;
  /** Closes the connection (idempotent). */
  close(): Promise<void>;
}

/** Most names a message lists before "… (N in all)". */
const SHOWN = 20;

/** `a, b, c`, or the first 20 and the count. */
export function listed(xs: readonly string[]): string {
  return xs.length > SHOWN ? `${xs.slice(0, SHOWN).join(", ")}, … (${xs.length} in all)` : xs.join(", ");
}

/** Namespaces that have queues (from the work streams' names, `CELERIAC_<ns>_<queue>`), sorted. */
export async function namespacesWithQueues(jsm: JetStreamManager): Promise<string[]> {
  const out = new Set<string>();
  for await (const name of jsm.streams.names("celeriac.*.*.tasks")) {
    const parts = name.split("_");
    if (parts.length === 3 && parts[0] === "CELERIAC") out.add(parts[1]!);
  }
  return [...out].sort();
}

/** "namespace x has no queues; namespaces with queues: … (pass --namespace)". */
export async function noQueuesMessage(jsm: JetStreamManager, namespace: string): Promise<string> {
  const ns = await namespacesWithQueues(jsm);
  return `namespace "${namespace}" has no queues${ns.length ? `; namespaces with queues: ${listed(ns)} (pass --namespace)` : " (no namespace has any: create a Queue, or enqueue with --create-queue)"}`;
}

/**
 * Connects for `f` and resolves the queues.
 * @param o `name`: the NATS connection name; `requireQueue`: fail when no queue is given (listing
 *   the namespace's queues) instead of acting on all of them; `allowNoQueues`: a namespace without
 *   queues is not an error (`queues` is then empty: the dashboard waits for the first one);
 *   `reconnect`: for a long-running command (the dashboard): after the connection is lost, reconnect
 *   every second for ever (nats.js `maxReconnectAttempts: -1`, `reconnectTimeWait: 1000`) instead of
 *   closing; the session's JetStream client, manager and KV handles keep working over the same
 *   connection object. The first connect still fails at once when NATS is unreachable.
 * @throws Error naming a bad or unknown queue (and the namespace's queues), a namespace without
 *   queues (and the namespaces that have some), or an unreachable NATS (and what to do); without
 *   a queue, under a credential that may not list streams (a minted one), that `--queue` is needed
 */
export async function openOps(f: OpsFlags, o: { name: string; requireQueue?: boolean; allowNoQueues?: boolean; reconnect?: boolean }): Promise<OpsSession> {
  const [{ jetstream, jetstreamManager }, { Kvm }, nats, { listQueues, queueStreamExists }, target, { commandNamespace }] = await Promise.all([
    import("@nats-io/jetstream"),
    import("@nats-io/kv"),
    import("../nats/connection.js"),
    import("../client/queue-lookup.js"),
    import("./nats-target.js"),
    import("./namespace.js"),
  ]);
  const namespace = await commandNamespace(f.namespace);
  const queue = f.queue ?? process.env.CELERIAC_QUEUE;
  if (queue) queueNames(namespace, queue); // a bad name fails before connecting
  const t = await target.natsTarget(f.nats, process.env, f.devDir);
  const nc = await nats.connectNats(nats.natsSettingsFrom({ url: t.url, name: o.name }), o.reconnect ? { maxReconnectAttempts: -1, reconnectTimeWait: 1000, waitOnFirstConnect: false } : { maxReconnectAttempts: 0, waitOnFirstConnect: false }).catch((err: unknown) => {
    throw target.natsConnectError(t, err);
  });
  try {
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    // listing the namespace's queues needs STREAM.NAMES, which a minted (per-namespace) credential
    // may not use: with --queue the queue is checked by name, and the list is only for messages
    const { isPermissionViolation } = await import("../nats/queue-resources.js");
    const cannotList = (err: unknown) => isPermissionViolation(err) ? `this NATS credential may not list the account's streams (a minted credential reaches its own queues by name only)` : undefined;
    if (queue && !(await queueStreamExists(jsm, queueNames(namespace, queue)))) {
      const all = await listQueues(jsm, namespace).catch((err: unknown) => {
        throw new Error(`queue "${queue}" does not exist in namespace "${namespace}"; ${cannotList(err) ?? (err as Error).message}, so the queues that do are not listed here (kubectl get queues -n ${namespace} lists them)`, { cause: err });
      });
      throw new Error(all.length ? `queue "${queue}" does not exist in namespace "${namespace}"; existing queues: ${listed(all)}` : `queue "${queue}" does not exist: ${await noQueuesMessage(jsm, namespace)}`);
    }
    const all = queue ? [queue] : await listQueues(jsm, namespace).catch((err: unknown) => {
      const why = cannotList(err);
      if (why) throw new Error(`--queue (or CELERIAC_QUEUE) is required with this NATS credential: ${why}; kubectl get queues -n ${namespace} lists the namespace's queues`, { cause: err });
      throw err;
    });
    if (!queue && o.requireQueue) {
      throw new Error(`--queue (or CELERIAC_QUEUE) is required: ${all.length ? `queues of namespace "${namespace}": ${listed(all)}` : await noQueuesMessage(jsm, namespace)}`);
    }
    if (!queue && all.length === 0 && !o.allowNoQueues) throw new Error(await noQueuesMessage(jsm, namespace));
    const kvm = new Kvm(js);
    const kvs = new Map<string, Promise<KV>>();
    return {
      nc,
      js,
      jsm,
      namespace,
      ...(queue ? { queue } : {}),
      queues: queue ? [queue] : all,
      kv: (q) => {
        let p = kvs.get(q);
        if (!p) kvs.set(q, (p = kvm.open(queueNames(namespace, q).resultsBucket)));
        return p;
      },
      close: async () => {
        if (!nc.isClosed()) await nc.close();
      },
    };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

/**
 * Asks `question [y/N]` on the terminal (stderr), for destructive commands without `--yes`.
 * @returns true on `y`/`yes`
 * @throws Error saying to pass `--yes` when standard input is not a terminal (scripts never hang on a prompt)
 */
export async function confirm(question: string, what: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new Error(`refusing to ${what} without confirmation: standard input is not a terminal; pass --yes`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}
