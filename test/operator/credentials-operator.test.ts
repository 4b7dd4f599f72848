// The operator in minting mode against the in-memory API server and a real nats-server in operator
// mode: it connects on a user it mints for itself, writes a worker credential Secret per Queue and a
// producer credential Secret per namespace whose JWT permissions are exactly api/nats-permissions.ts,
// re-mints the producer when the namespace's Queues change, rotates every credential before it
// expires (TTL 9 s here), deletes the Secrets with their Queues — itself: the API server runs without
// its garbage collector — and never logs a credential.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decode } from "@nats-io/jwt";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { pino } from "pino";
import { NATS_CREDS_ANNOTATIONS, NATS_CREDS_SECRET_KEY, PRODUCER_CREDS_SECRET_NAME, workerCredsSecretName } from "../../api/nats-creds-secrets.js";
import { producerInboxPrefix, producerPermissions, workerInboxPrefix, workerPermissions, type NatsPermissions } from "../../api/nats-permissions.js";
import { CELERIAC_TYPES, type Queue } from "../../api/objects.js";
import { BUILTIN_TYPES, createObject, deleteObject, getObject, isNotFound, listObjects, type KubeObject } from "../../kube/k8s-client.js";
import { REASONS } from "../../api/constants.js";
import { operatorConfigFrom } from "../../operator/config.js";
import { startOperator, type RunningOperator } from "../../operator/main.js";
import type { CredsSecret } from "../../operator/credentials/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { queueObject, startCluster, type TestCluster } from "./runtime/cluster.js";

const NS = "creds-a";
const TTL_SECONDS = 9;

interface UserClaims {
  pub?: { allow?: string[]; deny?: string[] };
  sub?: { allow?: string[]; deny?: string[] };
  issuer_account?: string;
}

/** The creds text, JWT claims and annotations of a credential Secret. */
function credsOf(s: CredsSecret): { creds: string; claims: ReturnType<typeof decode<UserClaims>>; annotations: Record<string, string> } {
  const creds = Buffer.from(s.data?.[NATS_CREDS_SECRET_KEY] ?? "", "base64").toString("utf8");
  const jwt = /-----BEGIN NATS USER JWT-----\s*(\S+)/.exec(creds)?.[1];
  assert.ok(jwt, `Secret ${s.metadata.name} holds a creds file`);
  return { creds, claims: decode<UserClaims>(jwt), annotations: s.metadata.annotations ?? {} };
}

/** The JWT's permissions in the shape of api/nats-permissions.ts (empty deny lists dropped). */
function permissionsOf(claims: UserClaims): NatsPermissions {
  const side = (p: { allow?: string[]; deny?: string[] } | undefined) => ({ allow: p?.allow ?? [], ...(p?.deny?.length ? { deny: p.deny } : {}) });
  return { pub: side(claims.pub), sub: side(claims.sub) };
}
const normalised = (p: NatsPermissions): NatsPermissions => permissionsOf(p);

describe("when the operator mints NATS credentials (NATS in operator mode, TTL 9 s)", () => {
  let c: TestCluster;
  let nats: NatsServer;
  let op: RunningOperator;
  const lines: string[] = [];
  const secret = (name: string) => getObject<CredsSecret & KubeObject>(c.kc, { ...BUILTIN_TYPES.Secret, namespace: NS, name });
  const maybeSecret = async (name: string) => {
    try {
      return await secret(name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const queue = (name: string) => getObject<Queue>(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name });

  before(async () => {
    // No garbage collector: the operator must delete the Secrets itself.
    c = await startCluster(["queues", "tasks", "schedules", "workflows"], { controllers: { garbageCollector: false } });
    nats = await startNatsServer({ operatorMode: true });
    await createObject(c.kc, BUILTIN_TYPES.Namespace, { metadata: { name: NS } }, "test");
    const m = nats.operator!;
    const config = operatorConfigFrom({ kubeconfig: join(c.dir, "kubeconfig"), nats: nats.url, watchNamespaces: NS, port: "0" }, {
      CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: m.signingKeyFile,
      CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: m.accountPublicKey,
      CELERIAC_NATS_CREDS_TTL_SECONDS: String(TTL_SECONDS),
      CELERIAC_RESYNC_SECONDS: "300",
    });
    // Every line the operator logs, at debug, as written.
    op = await startOperator(config, pino({ level: "debug" }, { write: (line: string) => void lines.push(line) }), () => undefined);
  });
  after(async () => {
    await op?.stop();
    if (process.env.DUMP_LOG) (await import("node:fs")).writeFileSync(process.env.DUMP_LOG, lines.join(""));
    await nats?.cleanup();
    await c?.close();
  });

  it("writes <queue>-worker-nats and celeriac-producer-nats with working creds whose permissions are exactly the Queue's and the namespace's", async () => {
    // (one Queue of short names: both fit 4096 bytes, so no NatsCredentialsTooLarge Warning, checked below)
    await createObject(c.kc, CELERIAC_TYPES.Queue, queueObject(NS, "emails"), "test");
    const worker = await waitFor("worker Secret", () => maybeSecret(workerCredsSecretName("emails")));
    const producer = await waitFor("producer Secret", () => maybeSecret(PRODUCER_CREDS_SECRET_NAME));
    const q = await queue("emails");

    const w = credsOf(worker);
    assert.deepEqual(permissionsOf(w.claims.nats), normalised(workerPermissions(NS, "emails")));
    assert.equal(w.claims.nats.issuer_account, nats.operator!.accountPublicKey);
    // iat is the signing second, exp counts from the operator's clock read just before: 0-1 s apart
    assert.ok(Math.abs(w.claims.exp! - w.claims.iat! - TTL_SECONDS) <= 1, `lifetime ${w.claims.exp! - w.claims.iat!} s`);
    assert.equal(w.annotations[NATS_CREDS_ANNOTATIONS.user], w.claims.sub);
    assert.deepEqual(worker.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]), [["Queue", "emails", q.metadata.uid, true]]);

    const p = credsOf(producer);
    assert.deepEqual(permissionsOf(p.claims.nats), normalised(producerPermissions(NS, ["emails"])));
    assert.deepEqual(producer.metadata.ownerReferences?.map((r) => [r.name, r.controller]), [["emails", undefined]]);

    // Both are accepted by the server (with their own inbox prefix).
    for (const [creds, inboxPrefix] of [[w.creds, workerInboxPrefix(NS, "emails")], [p.creds, producerInboxPrefix(NS)]] as const) {
      const nc = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)), inboxPrefix, reconnect: false });
      await nc.flush();
      await nc.close();
    }

    // The worker Deployment mounts the Queue's own Secret.
    const d = await waitFor("worker Deployment", async () => {
      try {
        return await getObject<KubeObject & { spec: { template: { spec: { volumes?: Array<{ secret?: { secretName: string } }> } } } }>(c.kc, { ...BUILTIN_TYPES.Deployment, namespace: NS, name: "emails-workers" });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    });
    assert.ok(d.spec.template.spec.volumes?.some((v) => v.secret?.secretName === "emails-worker-nats"), "worker pods mount emails-worker-nats");
    const tooLarge = (await listObjects<KubeObject & { reason: string }>(c.kc, BUILTIN_TYPES.Event, { namespace: NS })).items.filter((e) => e.reason === REASONS.NatsCredentialsTooLarge);
    assert.deepEqual(tooLarge, [], "one Queue's credentials fit the default max_control_line");
  });

  it("re-mints the producer credential when a second Queue joins the namespace", async () => {
    const before = credsOf(await secret(PRODUCER_CREDS_SECRET_NAME));
    // deletionPolicy Delete: a finalizer, so its deletion goes through the finalizer path.
    await createObject(c.kc, CELERIAC_TYPES.Queue, queueObject(NS, "orders", { deletionPolicy: "Delete" }), "test");
    await waitFor("worker Secret of orders", () => maybeSecret(workerCredsSecretName("orders")));
    const after = await waitFor("producer Secret listing both Queues", async () => {
      const s = credsOf(await secret(PRODUCER_CREDS_SECRET_NAME));
      return s.annotations[NATS_CREDS_ANNOTATIONS.permissionsHash] !== before.annotations[NATS_CREDS_ANNOTATIONS.permissionsHash] ? s : undefined;
    });
    assert.deepEqual(permissionsOf(after.claims.nats), normalised(producerPermissions(NS, ["emails", "orders"])));
    assert.notEqual(after.claims.sub, before.claims.sub, "a new user");
    const owners = (await secret(PRODUCER_CREDS_SECRET_NAME)).metadata.ownerReferences?.map((r) => r.name);
    assert.deepEqual(owners, ["emails", "orders"]);

    // The operator was told nats-server's default max_control_line (4096, CELERIAC_NATS_MAX_CONTROL_LINE
    // unset), which two Queues' producer JWT exceeds: a Warning on each Queue, naming size, limit and fix
    // (this test's server allows 256 KiB, so the credential itself works).
    const jwtBytes = Buffer.byteLength(/-----BEGIN NATS USER JWT-----\s*(\S+)/.exec(after.creds)![1]!);
    const warnings = await waitFor("NatsCredentialsTooLarge on both Queues", async () => {
      const evs = (await listObjects<KubeObject & { involvedObject: { name: string }; type: string; reason: string; message: string }>(c.kc, BUILTIN_TYPES.Event, { namespace: NS })).items
        .filter((e) => e.reason === REASONS.NatsCredentialsTooLarge);
      return new Set(evs.map((e) => e.involvedObject.name)).size === 2 ? evs : undefined;
    });
    for (const e of warnings) {
      assert.equal(e.type, "Warning");
      assert.match(e.message, new RegExp(`^The NATS producer credential \\(2 Queues of the namespace\\) in Secret celeriac-producer-nats has a ${jwtBytes}-byte user JWT: .* over the NATS server's max_control_line of 4096 bytes .*set max_control_line: 262144 in the NATS server config`));
    }
    assert.ok(lines.some((l) => l.includes("Minted NATS credential exceeds max_control_line") && l.includes(`"jwtBytes":${jwtBytes}`)), "and a warn log line with the sizes");
  });

  it("rotates the worker and producer credentials before they expire, and the operator keeps working on its own renewed user", async () => {
    for (const name of [workerCredsSecretName("emails"), PRODUCER_CREDS_SECRET_NAME]) {
      const first = credsOf(await secret(name));
      const rotated = await waitFor(`${name} rotated`, async () => {
        const s = credsOf(await secret(name));
        return s.claims.sub !== first.claims.sub ? { s, seenAt: Date.now() } : undefined;
      }, (TTL_SECONDS + 2) * 1000);
      assert.ok(rotated.s.claims.iat! < first.claims.exp!, `${name}: the new credential was issued (${rotated.s.claims.iat}) before the old one expired (${first.claims.exp})`);
      assert.ok(rotated.seenAt < first.claims.exp! * 1000, `${name}: rotated before expiry`);
    }
    // Past the operator's own first expiry (9 s after start), a new Queue still gets its streams.
    await waitFor("the operator renewed its own credential", () => lines.some((l) => l.includes("Renewed operator NATS credential")), (TTL_SECONDS + 2) * 1000);
    await createObject(c.kc, CELERIAC_TYPES.Queue, queueObject(NS, "late"), "test");
    await waitFor("Queue late StreamReady", async () => (await queue("late")).status?.conditions?.find((x) => x.type === "StreamReady" && x.status === "True"), 15_000);
  });

  it("deletes the worker Secret with its Queue, and the producer Secret with the namespace's last Queue", async () => {
    await deleteObject(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name: "emails" });
    await waitFor("emails-worker-nats gone", async () => (await maybeSecret(workerCredsSecretName("emails"))) === undefined || undefined);
    await waitFor("producer without emails", async () => {
      const s = credsOf(await secret(PRODUCER_CREDS_SECRET_NAME));
      return JSON.stringify(permissionsOf(s.claims.nats)) === JSON.stringify(normalised(producerPermissions(NS, ["late", "orders"]))) || undefined;
    }, 20_000);
    for (const name of ["orders", "late"]) await deleteObject(c.kc, { ...CELERIAC_TYPES.Queue, namespace: NS, name });
    await waitFor("producer Secret gone", async () => (await maybeSecret(PRODUCER_CREDS_SECRET_NAME)) === undefined || undefined, 20_000);
    for (const name of ["orders", "late"]) await waitFor(`${name}-worker-nats gone`, async () => (await maybeSecret(workerCredsSecretName(name))) === undefined || undefined);
    await waitFor("Queue orders released by its finalizer", async () => {
      try {
        await queue("orders");
        return undefined;
      } catch (err) {
        return isNotFound(err) || undefined;
      }
    });
  });

  it("never logs a credential: no nkey seed, no JWT, no creds text in anything the operator wrote", () => {
    const text = lines.join("");
    // The run did mint and rotate (so the check below covers those paths).
    assert.ok(lines.some((l) => l.includes("Minted operator NATS credential")));
    assert.ok(lines.filter((l) => l.includes("\"Minted NATS credential\"")).length >= 6, "minted and rotated worker and producer credentials");
    assert.ok(lines.some((l) => l.includes("\"reason\":\"Expiring\"")), "a rotation was logged");
    // Idempotent: reconciles and resyncs re-mint only for a reason (no Unreadable or LifetimeChanged), each Secret created once.
    const mints = lines.map((l) => JSON.parse(l) as { msg: string; secret?: string; reason?: string }).filter((l) => l.msg === "Minted NATS credential");
    assert.deepEqual([...new Set(mints.map((m) => m.reason))].sort(), ["Expiring", "Missing", "PermissionsChanged"]);
    const created = mints.filter((m) => m.reason === "Missing").map((m) => m.secret).sort();
    assert.deepEqual(created, ["celeriac-producer-nats", "emails-worker-nats", "late-worker-nats", "orders-worker-nats"]);
    const seeds = text.match(/S[UAOCNX][A-Z2-7]{54,}/g) ?? [];
    assert.deepEqual(seeds, [], "nkey seeds (SU…, SA…, SO…)");
    const jwts = text.match(/eyJ[A-Za-z0-9_-]{10,}/g) ?? [];
    assert.deepEqual(jwts, [], "JWTs");
    assert.ok(!/BEGIN NATS USER JWT|BEGIN USER NKEY SEED|NKEY SEED/i.test(text), "creds file text");
    assert.ok(!text.includes(nats.operator!.signer.seed), "the account signing key");
  });
});
