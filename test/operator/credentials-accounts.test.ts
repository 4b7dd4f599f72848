// The operator in accounts mode (one NATS account per namespace) against the in-memory API server
// and a real nats-server 2.9 in operator mode with a `full` resolver: it connects as the system
// user, creates and stores an account key per namespace (Secret celeriac-nats-account-<ns> in its
// own namespace), pushes the account, creates each Queue's streams inside its namespace's account,
// mints worker and producer users of that account that run real tasks, keeps managing streams after
// its own per-tenant credential expired and was renewed (TTL 9 s), keeps the same accounts across a
// restart, reads the servers' max_control_line through its system user (so no false
// NatsCredentialsTooLarge Warning), and never logs a seed.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { accountSeedSecretName, NATS_ACCOUNT_LABEL, NATS_ACCOUNT_SEED_KEY, NATS_CREDS_SECRET_KEY, PRODUCER_CREDS_SECRET_NAME, workerCredsSecretName } from "../../api/nats-creds-secrets.js";
import { queueNames } from "../../api/naming.js";
import { producerInboxPrefix, workerInboxPrefix } from "../../api/nats-permissions.js";
import { CELERIAC_TYPES } from "../../api/objects.js";
import { connect as connectClient } from "../../client/index.js";
import { BUILTIN_TYPES, createObject, getObject, isNotFound, listObjects, type KubeObject } from "../../kube/k8s-client.js";
import { credsIdentity, isStreamNotFound, mintUserCreds } from "../../nats/index.js";
import { operatorConfigFrom } from "../../operator/config.js";
import { keyFrom, type CredsSecret } from "../../operator/credentials/index.js";
import { startOperator, type RunningOperator } from "../../operator/main.js";
import { defineTask, Worker } from "../../worker/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { queueObject, startCluster, type TestCluster } from "./runtime/cluster.js";

const A = "acct-a";
const B = "acct-b";
const KEYS_NS = "celeriac-system";
const TTL_SECONDS = 9;
const SEED = /\bS[OAU][A-Z2-7]{50,}\b/;

describe("when the operator gives each namespace its own NATS account (full resolver, TTL 9 s)", () => {
  let c: TestCluster;
  let nats: NatsServer;
  let op: RunningOperator | undefined;
  let dir: string;
  const lines: string[] = [];
  const opened: NatsConnection[] = [];
  let config: ReturnType<typeof operatorConfigFrom>;

  const maybe = async <T extends KubeObject>(ref: Parameters<typeof getObject>[1]): Promise<T | undefined> => {
    try {
      return await getObject<T>(c.kc, ref);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const secret = (namespace: string, name: string) => maybe<CredsSecret & KubeObject>({ ...BUILTIN_TYPES.Secret, namespace, name });
  const credsIn = (s: CredsSecret) => Buffer.from(s.data?.[NATS_CREDS_SECRET_KEY] ?? "", "base64").toString("utf8");
  const start = async () => {
    op = await startOperator(config, pino({ level: "debug" }, { write: (line: string) => void lines.push(line) }), () => undefined);
  };
  /** An unrestricted user of tenant `ns`'s account, minted from the stored account key (as an admin would). */
  const tenantAdmin = async (ns: string): Promise<NatsConnection> => {
    const key = keyFrom((await secret(KEYS_NS, accountSeedSecretName(ns)))!, ns);
    const m = await mintUserCreds({ seed: key.seed, account: key.publicKey }, { name: `${ns}-admin`, ttlSeconds: 600 });
    const nc = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(m.creds)), reconnect: false });
    opened.push(nc);
    return nc;
  };

  before(async () => {
    c = await startCluster(["queues", "tasks", "schedules", "workflows"]);
    nats = await startNatsServer({ operatorMode: true, resolver: "full" });
    dir = mkdtempSync(join(tmpdir(), "celeriac-accounts-op-"));
    for (const name of [A, B, KEYS_NS]) await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name } }, "test");
    const keyFile = join(dir, "operator-signing-key.nk");
    writeFileSync(keyFile, `${nats.operator!.operatorSigner.seed}\n`, { mode: 0o600 });
    config = operatorConfigFrom({ kubeconfig: join(c.dir, "kubeconfig"), nats: nats.url, watchNamespaces: `${A},${B}`, port: "0" }, {
      CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: keyFile,
      CELERIAC_NATS_SYSTEM_CREDS: nats.operator!.systemCredsFile,
      CELERIAC_NATS_ACCOUNTS_NAMESPACE: KEYS_NS,
      CELERIAC_NATS_CREDS_TTL_SECONDS: String(TTL_SECONDS),
      CELERIAC_RESYNC_SECONDS: "300",
    });
    await start();
  });
  after(async () => {
    await op?.stop();
    for (const nc of opened) if (!nc.isClosed()) await nc.close();
    if (process.env.DUMP_LOG) writeFileSync(process.env.DUMP_LOG, lines.join(""));
    await nats?.cleanup();
    await c?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stores one account key per namespace in its own namespace and mints each namespace's users in that account", async () => {
    await createObject(c.kc, CELERIAC_TYPES.Queue, queueObject(A, "jobs"), "test");
    await createObject(c.kc, CELERIAC_TYPES.Queue, queueObject(B, "jobs"), "test");
    const keys = await Promise.all([A, B].map((ns) => waitFor(`account key of ${ns}`, () => secret(KEYS_NS, accountSeedSecretName(ns)))));
    const [ka, kb] = keys.map((s, i) => keyFrom(s, [A, B][i]!));
    assert.notEqual(ka!.publicKey, kb!.publicKey);
    assert.equal(keys[0]!.metadata.labels?.[NATS_ACCOUNT_LABEL], A);
    assert.ok(keys[0]!.data?.[NATS_ACCOUNT_SEED_KEY]);
    for (const [ns, key] of [[A, ka!], [B, kb!]] as const) {
      const worker = await waitFor(`worker Secret in ${ns}`, () => secret(ns, workerCredsSecretName("jobs")));
      const producer = await waitFor(`producer Secret in ${ns}`, () => secret(ns, PRODUCER_CREDS_SECRET_NAME));
      for (const s of [worker, producer]) {
        const id = credsIdentity(credsIn(s));
        assert.equal(id.account, key.publicKey, `${s.metadata.name} is a user of ${ns}'s account`);
        assert.equal(id.issuer, key.signingPublicKey, "signed by the account's signing key, not its identity key");
        assert.notEqual(id.account, nats.operator!.accountPublicKey, "not the shared Celeriac account");
      }
      // No tenant namespace holds an account key.
      assert.equal(await secret(ns, accountSeedSecretName(ns)), undefined);
    }
  });

  it("creates each Queue's streams inside its namespace's account only, and the minted users run a task there", async () => {
    const names = queueNames(A, "jobs");
    const aJsm = await jetstreamManager(await tenantAdmin(A));
    await waitFor("team A's stream", async () => (await aJsm.streams.info(names.stream).catch(() => undefined))?.config.name === names.stream);
    const bJsm = await jetstreamManager(await tenantAdmin(B));
    await assert.rejects(bJsm.streams.info(names.stream), isStreamNotFound, "A's stream is not in B's account");
    const shared = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode((await import("node:fs")).readFileSync(nats.operator!.adminCredsFile, "utf8"))), reconnect: false });
    opened.push(shared);
    await assert.rejects((await jetstreamManager(shared)).streams.info(names.stream), isStreamNotFound, "nor in the shared Celeriac account");

    const workerCreds = credsIn((await secret(A, workerCredsSecretName("jobs")))!);
    const producerCreds = credsIn((await secret(A, PRODUCER_CREDS_SECRET_NAME))!);
    const wnc = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(workerCreds)), inboxPrefix: workerInboxPrefix(A, "jobs") });
    const pnc = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(producerCreds)), inboxPrefix: producerInboxPrefix(A) });
    opened.push(wnc, pnc);
    const worker = new Worker({ nc: wnc, tasks: [defineTask("echo", (args) => args)], queue: "jobs", namespace: A, logger: pino({ level: "silent" }) });
    await worker.start();
    const client = await connectClient({ nc: pnc, queue: "jobs", namespace: A });
    try {
      const h = await client.enqueue("echo", ["in its own account"]);
      assert.deepEqual(await h.result({ timeoutMs: 10_000 }), ["in its own account"]);
    } finally {
      await worker.close();
      await client.close();
    }
  });

  it("keeps managing a namespace's streams after its own per-tenant credential expired and was renewed", async () => {
    // Past the first credential's expiry (TTL 9 s; renewed at 6 s): the server has closed any
    // connection still on it, so a new Queue's streams prove the renewed credential is in use.
    const since = Date.now();
    await waitFor("the first credential's lifetime to pass", () => Date.now() - since > (TTL_SECONDS + 1) * 1000 || undefined, (TTL_SECONDS + 5) * 1000, 200);
    await createObject(c.kc, CELERIAC_TYPES.Queue, queueObject(A, "later"), "test");
    const aJsm = await jetstreamManager(await tenantAdmin(A));
    const names = queueNames(A, "later");
    await waitFor("the later Queue's stream", async () => (await aJsm.streams.info(names.stream).catch(() => undefined))?.config.name === names.stream, 15_000, 100);
    assert.ok(lines.some((l) => l.includes("Renewed operator NATS credential") && l.includes(`"namespace":"${A}"`)), "the per-tenant credential was renewed");
  });

  it("reads the servers' max_control_line through the system user, so a two-Queue producer gets no NatsCredentialsTooLarge Warning", async () => {
    // told nothing (CELERIAC_NATS_MAX_CONTROL_LINE unset: 4096), it asked the server, which runs Celeriac's 256 KiB
    const read = lines.map((l) => JSON.parse(l) as { msg: string; maxControlLine?: number; configured?: number; servers?: number }).find((l) => l.msg === "Read the NATS servers' max_control_line");
    assert.deepEqual(read && [read.maxControlLine, read.configured, read.servers], [262144, 4096, 1]);
    // namespace A has two Queues (jobs, later): its producer JWT is over 4096 bytes
    const producer = await waitFor("A's producer Secret for both Queues", async () => {
      const p = await secret(A, PRODUCER_CREDS_SECRET_NAME);
      return p?.metadata.ownerReferences?.length === 2 ? p : undefined;
    });
    assert.ok(Buffer.byteLength(/-----BEGIN NATS USER JWT-----\s*(\S+)/.exec(credsIn(producer))![1]!) > 4096);
    const events = (await listObjects<KubeObject & { reason: string }>(c.kc, BUILTIN_TYPES.Event, { namespace: A })).items;
    assert.ok(events.some((e) => e.reason === "NatsCredentialsIssued"), "Events are recorded");
    assert.deepEqual(events.filter((e) => e.reason === "NatsCredentialsTooLarge"), []);
  });

  it("keeps the same accounts across an operator restart", async () => {
    const before = keyFrom((await secret(KEYS_NS, accountSeedSecretName(B)))!, B).publicKey;
    await op!.stop();
    op = undefined;
    await start();
    await createObject(c.kc, CELERIAC_TYPES.Queue, queueObject(B, "after-restart"), "test");
    const worker = await waitFor("worker Secret after the restart", () => secret(B, workerCredsSecretName("after-restart")));
    assert.equal(credsIdentity(credsIn(worker)).account, before);
    const names = queueNames(B, "after-restart");
    const bJsm = await jetstreamManager(await tenantAdmin(B));
    await waitFor("the stream in the same account", async () => (await bJsm.streams.info(names.stream).catch(() => undefined))?.config.name === names.stream);
    // and the Queue created before the restart still has its stream there
    assert.equal((await bJsm.streams.info(queueNames(B, "jobs").stream)).config.name, queueNames(B, "jobs").stream);
  });

  it("never logs a seed", () => {
    assert.ok(lines.length > 20, "the operator logged");
    const leaked = lines.filter((l) => SEED.test(l));
    assert.deepEqual(leaked, []);
  });
});
