// The Queue reconciler's credentials sub-step (QueueCredentials) against the in-memory API server,
// reconcile-twice style: a second ensure changes nothing, two Queues racing on the namespace's
// producer Secret mint it once, a credential over max_control_line is warned about once per Queue,
// removal deletes what the operator minted and nothing else.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createAccount } from "@nats-io/nkeys";
import { pino } from "pino";
import { REASONS } from "../../api/constants.js";
import { NATS_CREDS_ANNOTATIONS, PRODUCER_CREDS_SECRET_NAME } from "../../api/nats-creds-secrets.js";
import type { Queue } from "../../api/objects.js";
import { BUILTIN_TYPES, createObject, getObject, isNotFound, listObjects, type KubeObject } from "../../kube/k8s-client.js";
import { CredentialMinter, QueueCredentials, type CredsSecret } from "../../operator/credentials/index.js";
import { parseAccountSigner } from "../../nats/credentials.js";
import { queueWith } from "./queue/fixtures.js";
import { startCluster, type TestCluster } from "./runtime/cluster.js";

const NS = "step-a";
const log = pino({ level: "silent" });

describe("when the credentials sub-step runs against the API server", () => {
  let c: TestCluster;
  let creds: QueueCredentials;
  let minter: CredentialMinter;
  let queues: Queue[] = [];
  const cache = new Map<string, CredsSecret>();
  const events: Array<{ reason: string; message: string }> = [];
  // The informer cache, refreshed from the API server before each step (no watch needed here).
  const refresh = async () => {
    cache.clear();
    for (const s of (await listObjects<CredsSecret & KubeObject>(c.kc, BUILTIN_TYPES.Secret, { namespace: NS })).items) cache.set(s.metadata.name, s);
  };
  const secret = async (name: string) => {
    try {
      return await getObject<CredsSecret & KubeObject>(c.kc, { ...BUILTIN_TYPES.Secret, namespace: NS, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const user = (s: CredsSecret | undefined) => s?.metadata.annotations?.[NATS_CREDS_ANNOTATIONS.user];

  before(async () => {
    // No garbage collector: the fixture Queues that own the Secrets exist only in this test.
    c = await startCluster([], { controllers: { garbageCollector: false } });
    await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: NS } }, "test");
    const account = createAccount();
    minter = new CredentialMinter(parseAccountSigner(new TextDecoder().decode(account.getSeed())));
    creds = new QueueCredentials({
      kc: c.kc, minterFor: async () => minter, ttlSeconds: 3600, maxControlLine: 262144,
      getSecret: (_ns, name) => cache.get(name), listQueues: () => queues,
      events: { event: (_o, _t, reason, message) => void events.push({ reason, message }) },
    });
  });
  after(() => c?.close());

  it("mints once: a second ensure with the same Queues keeps both Secrets", async () => {
    queues = [queueWith({}, "emails", NS)];
    await refresh();
    const first = await creds.ensure(queues[0]!, log);
    await refresh();
    const w1 = user(cache.get("emails-worker-nats"));
    const p1 = user(cache.get(PRODUCER_CREDS_SECRET_NAME));
    assert.ok(w1 && p1);
    const second = await creds.ensure(queues[0]!, log);
    assert.equal(user(await secret("emails-worker-nats")), w1);
    assert.equal(user(await secret(PRODUCER_CREDS_SECRET_NAME)), p1);
    assert.deepEqual(second.renewAt, first.renewAt);
    assert.equal(events.filter((e) => e.reason === REASONS.NatsCredentialsIssued).length, 2);
    // renewAt at 2/3 of the hour
    const issued = Date.parse((await secret("emails-worker-nats"))!.metadata.annotations![NATS_CREDS_ANNOTATIONS.issuedAt]!);
    assert.ok(Math.abs(first.renewAt.getTime() - (issued + 2400_000)) <= 1000, `renewAt ${first.renewAt.toISOString()}`);
  });

  it("mints the producer once when two Queues' reconciles race on it, even with a stale cache", async () => {
    queues = [queueWith({}, "emails", NS), queueWith({}, "orders", NS)];
    events.length = 0;
    // the cache is not refreshed between the two: each sees the producer as it was
    await Promise.all([creds.ensure(queues[0]!, log), creds.ensure(queues[1]!, log)]);
    const producerMints = events.filter((e) => e.reason === REASONS.NatsCredentialsIssued && e.message.includes(PRODUCER_CREDS_SECRET_NAME));
    assert.equal(producerMints.length, 1, JSON.stringify(events));
    assert.match(producerMints[0]!.message, /PermissionsChanged/);
    const p = await secret(PRODUCER_CREDS_SECRET_NAME);
    assert.deepEqual(p?.metadata.ownerReferences?.map((r) => r.name), ["emails", "orders"]);
  });

  it("warns once per minted user on each Queue when the producer's CONNECT line exceeds max_control_line, also for a kept credential after a restart", async () => {
    await refresh();
    const p = user(cache.get(PRODUCER_CREDS_SECRET_NAME));
    // a new instance (an operator restart), told nats-server's default 4096: two Queues' producer JWT exceeds it
    const seen: Array<{ queue: string; type: string; reason: string; message: string }> = [];
    const restarted = (maxControlLine: number) => new QueueCredentials({
      kc: c.kc, minterFor: async () => minter, ttlSeconds: 3600, maxControlLine,
      getSecret: (_ns, name) => cache.get(name), listQueues: () => queues,
      events: { event: (o, type, reason, message) => void seen.push({ queue: o.metadata?.name ?? "", type, reason, message }) },
    });
    const small = restarted(4096);
    await small.ensure(queues[0]!, log);
    await small.ensure(queues[1]!, log);
    assert.equal(user(await secret(PRODUCER_CREDS_SECRET_NAME)), p, "kept, not re-minted");
    const tooLarge = seen.filter((e) => e.reason === REASONS.NatsCredentialsTooLarge);
    assert.deepEqual(tooLarge.map((e) => [e.queue, e.type]).sort(), [["emails", "Warning"], ["orders", "Warning"]], "once per Queue, not once per reconcile");
    assert.match(tooLarge[0]!.message, /^The NATS producer credential \(2 Queues of the namespace\) in Secret celeriac-producer-nats has a \d+-byte user JWT: .*max_control_line of 4096 bytes/);
    // told the limit Celeriac's configs set: nothing to warn about
    seen.length = 0;
    await restarted(262144).ensure(queues[0]!, log);
    assert.deepEqual(seen.filter((e) => e.reason === REASONS.NatsCredentialsTooLarge), []);
  });

  it("removes the worker Secret of a gone Queue, re-mints the producer without it, and deletes it with the last Queue", async () => {
    await refresh();
    queues = [queueWith({}, "orders", NS)];
    await creds.remove(NS, "emails", log);
    assert.equal(await secret("emails-worker-nats"), undefined);
    assert.deepEqual((await secret(PRODUCER_CREDS_SECRET_NAME))?.metadata.ownerReferences?.map((r) => r.name), ["orders"]);
    await refresh();
    queues = [];
    await creds.remove(NS, "orders", log);
    assert.equal(await secret("orders-worker-nats"), undefined);
    assert.equal(await secret(PRODUCER_CREDS_SECRET_NAME), undefined);
  });

  it("leaves a Secret it did not mint alone", async () => {
    await createObject(c.kc, BUILTIN_TYPES.Secret, { metadata: { name: "billing-worker-nats", namespace: NS }, data: { x: "eQ==" } } as KubeObject, "test");
    await refresh();
    await creds.remove(NS, "billing", log);
    assert.ok(await secret("billing-worker-nats"), "a user's Secret of that name is kept");
  });
});
