// Accounts mode's key store (operator/credentials/account-keys.ts) against the in-memory API server:
// one stored key per tenant, read back by a restarted operator; a Secret deleted by hand is written
// back from memory; and a missing Secret beside credentials of an existing account is refused
// (a new key would strand the tenant's streams) with an error naming both ways out.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { accountSeedSecretName } from "../../api/nats-creds-secrets.js";
import { BUILTIN_TYPES, createObject, deleteObject, getObject, isNotFound } from "../../kube/k8s-client.js";
import { AccountKeyStore, keyFrom } from "../../operator/credentials/index.js";
import { startCluster, type TestCluster } from "./runtime/cluster.js";

const KEYS_NS = "keys";

describe("when the operator keeps each tenant's NATS account key in a Secret", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster([]);
    await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: KEYS_NS } }, "test");
  });
  after(() => c?.close());
  const ref = (tenant: string) => ({ ...BUILTIN_TYPES.Secret, namespace: KEYS_NS, name: accountSeedSecretName(tenant) });

  it("creates one key per tenant (identity and signing key) and a restarted store reads the same", async () => {
    const a = await new AccountKeyStore(c.kc, KEYS_NS).keyOf("t1");
    assert.match(a.publicKey, /^A/);
    assert.notEqual(a.signingPublicKey, a.publicKey);
    const again = await new AccountKeyStore(c.kc, KEYS_NS).keyOf("t1");
    assert.deepEqual(again, a);
    assert.deepEqual(keyFrom(await getObject(c.kc, ref("t1")), "t1"), a);
  });

  it("writes a deleted Secret back from memory", async () => {
    const store = new AccountKeyStore(c.kc, KEYS_NS);
    const k = await store.keyOf("t2");
    assert.deepEqual(await store.restoreMissing(), [], "nothing to restore while the Secret exists");
    await deleteObject(c.kc, ref("t2"));
    await assert.rejects(getObject(c.kc, ref("t2")), isNotFound);
    assert.deepEqual(await store.restoreMissing(), ["t2"]);
    assert.deepEqual(keyFrom(await getObject(c.kc, ref("t2")), "t2"), k);
  });

  it("refuses a new key when the tenant's credentials name an account whose key Secret is gone", async () => {
    const store = new AccountKeyStore(c.kc, KEYS_NS, (t) => (t === "t3" ? "AOLDACCOUNT" : undefined));
    await assert.rejects(store.keyOf("t3"), /Secret keys\/celeriac-nats-account-t3 is missing, but the NATS credentials in namespace t3 belong to account AOLDACCOUNT.*restore the Secret from a backup.*delete the Secrets labelled celeriac\.io\/nats-credentials in t3/);
    await assert.rejects(getObject(c.kc, ref("t3")), isNotFound, "no new key was stored");
    // without such credentials (a namespace new to accounts mode, e.g. coming from minting in one account) a key is made
    assert.match((await store.keyOf("t4")).publicKey, /^A/);
  });
});
