// Orphaned producer Secrets: the pure selection (orphanProducerNamespaces) as a table, and
// QueueCredentials.sweepOrphanProducers against the in-memory API server: a producer Secret left
// in a namespace whose last Queue went while the operator was down is deleted; one in a namespace
// with a Queue, and a user's Secret of the same name, are kept.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createAccount } from "@nats-io/nkeys";
import { pino } from "pino";
import { LABELS, MANAGED_BY } from "../../api/constants.js";
import { NATS_CREDS_LABELS, PRODUCER_CREDS_SECRET_NAME } from "../../api/nats-creds-secrets.js";
import type { Queue } from "../../api/objects.js";
import { BUILTIN_TYPES, createObject, getObject, isNotFound, listObjects, type KubeObject } from "../../kube/k8s-client.js";
import { CredentialMinter, orphanProducerNamespaces, QueueCredentials, type CredsSecret } from "../../operator/credentials/index.js";
import { parseAccountSigner } from "../../nats/credentials.js";
import { queueWith } from "./queue/fixtures.js";
import { startCluster, type TestCluster } from "./runtime/cluster.js";

const log = pino({ level: "silent" });

const secret = (namespace: string, name: string, labels: Record<string, string>): CredsSecret =>
  ({ metadata: { namespace, name, labels } }) as CredsSecret;
const minted = { [LABELS.managedBy]: MANAGED_BY, [NATS_CREDS_LABELS.role]: "producer" };

describe("when orphaned producer Secrets are selected", () => {
  const rows: Array<{ name: string; secrets: CredsSecret[]; withQueues: string[]; want: string[] }> = [
    { name: "a minted producer Secret in a namespace without Queues", secrets: [secret("a", PRODUCER_CREDS_SECRET_NAME, minted)], withQueues: [], want: ["a"] },
    { name: "one in a namespace with a Queue", secrets: [secret("a", PRODUCER_CREDS_SECRET_NAME, minted)], withQueues: ["a"], want: [] },
    { name: "a worker Secret", secrets: [secret("a", "emails-worker-nats", { ...minted, [NATS_CREDS_LABELS.role]: "worker" })], withQueues: [], want: [] },
    { name: "a user's Secret of the producer's name", secrets: [secret("a", PRODUCER_CREDS_SECRET_NAME, { [NATS_CREDS_LABELS.role]: "producer" })], withQueues: [], want: [] },
    { name: "several namespaces, sorted", secrets: [secret("c", PRODUCER_CREDS_SECRET_NAME, minted), secret("b", PRODUCER_CREDS_SECRET_NAME, minted), secret("a", PRODUCER_CREDS_SECRET_NAME, minted)], withQueues: ["b"], want: ["a", "c"] },
  ];
  for (const r of rows) {
    it(`selects ${JSON.stringify(r.want)} for ${r.name}`, () => {
      assert.deepEqual(orphanProducerNamespaces(r.secrets, (ns) => r.withQueues.includes(ns)), r.want);
    });
  }
});

describe("when the operator sweeps orphaned producer Secrets", () => {
  const GONE = "orphan-gone";
  const KEPT = "orphan-kept";
  const USER = "orphan-user";
  let c: TestCluster;
  let creds: QueueCredentials;
  const queues = new Map<string, Queue[]>();
  const cache = new Map<string, CredsSecret>();
  // The informer cache (label celeriac.io/nats-credentials), refreshed from the API server.
  const refresh = async () => {
    cache.clear();
    for (const s of (await listObjects<CredsSecret & KubeObject>(c.kc, BUILTIN_TYPES.Secret, { labelSelector: NATS_CREDS_LABELS.role })).items) {
      cache.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
    }
  };
  const exists = async (namespace: string, name: string) => {
    try {
      await getObject(c.kc, { ...BUILTIN_TYPES.Secret, namespace, name });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  };

  before(async () => {
    c = await startCluster([], { controllers: { garbageCollector: false } });
    for (const ns of [GONE, KEPT, USER]) await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: ns } }, "test");
    creds = new QueueCredentials({
      kc: c.kc, minterFor: ((m) => async () => m)(new CredentialMinter(parseAccountSigner(new TextDecoder().decode(createAccount().getSeed())))), ttlSeconds: 3600,
      getSecret: (ns, name) => cache.get(`${ns}/${name}`), listQueues: (ns) => queues.get(ns) ?? [],
      listSecrets: () => [...cache.values()],
      events: { event: () => undefined },
    });
  });
  after(() => c?.close());

  it("deletes the producer Secret of a namespace whose last Queue went while it was down, and keeps the others", async () => {
    for (const ns of [GONE, KEPT]) {
      queues.set(ns, [queueWith({}, "emails", ns)]);
      await creds.ensure(queues.get(ns)![0]!, log);
    }
    await createObject(c.kc, BUILTIN_TYPES.Secret, { metadata: { name: PRODUCER_CREDS_SECRET_NAME, namespace: USER, labels: { [NATS_CREDS_LABELS.role]: "producer" } }, data: { x: "eQ==" } } as KubeObject, "test");
    // the operator was down when GONE's Queue was deleted: no remove() ran
    queues.set(GONE, []);
    await refresh();
    assert.ok(cache.has(`${GONE}/${PRODUCER_CREDS_SECRET_NAME}`), "the orphan is there before the sweep");

    assert.deepEqual(await creds.sweepOrphanProducers(log), [GONE]);
    assert.equal(await exists(GONE, PRODUCER_CREDS_SECRET_NAME), false);
    assert.equal(await exists(KEPT, PRODUCER_CREDS_SECRET_NAME), true);
    assert.equal(await exists(USER, PRODUCER_CREDS_SECRET_NAME), true, "a Secret the operator did not mint is kept");

    // the sweep is idempotent
    await refresh();
    assert.deepEqual(await creds.sweepOrphanProducers(log), []);
    assert.equal(await exists(KEPT, PRODUCER_CREDS_SECRET_NAME), true);
  });
});
