/**
 * End-to-end (issue 13, accounts mode): the local platform with `natsAuth: "accounts"` — nats-server
 * in operator mode with a `full` resolver, the operator given the NATS operator key and a system user
 * (CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE, CELERIAC_NATS_SYSTEM_CREDS) creating one NATS account per
 * tenant namespace. Two tenants, team-a and team-b, each with a Queue of the same name: their Tasks
 * run; their worker credentials are users of two different accounts, neither the platform's own
 * Celeriac account; the account identity seeds are kept in Secrets in the operator's namespace; team-a's
 * worker cannot get JetStream to publish into team-b's work stream or results bucket by the
 * confused-deputy moves that one shared account allows (test/nats/isolation.test.ts); and a SIGKILLed
 * operator, restarted by the platform, keeps the same accounts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { fromSeed } from "@nats-io/jwt";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { queueNames, type QueueNames } from "../../api/naming.js";
import { workerInboxPrefix } from "../../api/nats-permissions.js";
import { credsIdentity, mintUserCreds, type AccountSigner } from "../../nats/credentials.js";
import { connectNats, natsSettingsFrom } from "../../nats/index.js";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";
import { checkProducerStaysInItsNamespace, createTenants, credsOf as credsOfTenant, runEchoInEachTenant, secretOf as secretOfTenant, TEAMS, TENANT_QUEUE as QUEUE, waitCreds as waitTenantCreds, type Secret } from "./tenants.js";

const WORKER_SECRET = `${QUEUE}-worker-nats`;
const PRODUCER_SECRET = "celeriac-producer-nats";
/** Where the operator keeps the account seeds: its lease namespace, `default` on the local platform. */
const OPERATOR_NAMESPACE = "default";
const accountSecret = (ns: string) => `celeriac-nats-account-${ns}`;


describe("when the local platform runs one NATS account per namespace", { timeout: 360_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  const opened: NatsConnection[] = [];
  const figures: Record<string, number> = {};
  /** Each namespace's account public key, as read from its first worker creds. */
  const accountOf: Record<string, string> = {};

  before(async () => {
    const t0 = Date.now();
    e = await startE2E({ natsAuth: "accounts", processRestartBackoffBaseMs: 200 });
    figures.platformStartMs = Date.now() - t0;
    await createTenants(e);
  });
  after(async () => {
    for (const nc of opened) if (!nc.isClosed()) await nc.close();
    if (Object.keys(figures).length) console.log(`# nats-accounts figures: ${JSON.stringify(figures)}`);
    await e?.stop();
  });

  const secretOf = (ns: string, name: string) => secretOfTenant(e, ns, name);
  const credsOf = (ns: string, name: string) => credsOfTenant(e, ns, name);
  const waitCreds = (ns: string, name: string, timeoutMs?: number) => waitTenantCreds(e, ns, name, timeoutMs);

  /** Connects with a creds text (written to a 0600 file), through connectNats (inbox prefix read from the creds). */
  async function connectWith(name: string, creds: string): Promise<NatsConnection> {
    const file = join(e.dir, `${name}.creds`);
    writeFileSync(file, creds, { mode: 0o600 });
    chmodSync(file, 0o600);
    const nc = await connectNats(natsSettingsFrom({ url: e.platform.natsUrl, name }, { CELERIAC_NATS_CREDS: file }));
    opened.push(nc);
    return nc;
  }

  /** The account signer kept in `celeriac-nats-account-<ns>` (identity seed; the account is its public key). */
  async function accountSigner(ns: string): Promise<AccountSigner> {
    const s = (await waitFor(`${OPERATOR_NAMESPACE}/${accountSecret(ns)}`, () => secretOf(OPERATOR_NAMESPACE, accountSecret(ns)), 30_000, 200)) as Secret;
    const seed = Buffer.from(s.data?.seed ?? "", "base64").toString("utf8").trim();
    return { seed, account: fromSeed(new TextEncoder().encode(seed)).getPublicKey() };
  }

  /** An unrestricted user of a namespace's account, minted from the seed in its account Secret. */
  async function accountAdmin(ns: string): Promise<NatsConnection> {
    const m = await mintUserCreds(await accountSigner(ns), { name: `${ns}-test-admin`, ttlSeconds: 600 });
    return connectWith(`${ns}-test-admin`, m.creds);
  }

  it("runs Tasks applied with kubectl to Succeeded in both namespaces", async () => {
    figures.tasksSucceededMs = await runEchoInEachTenant(e, 90);
  });

  it("runs a two-step Workflow in a tenant namespace: the worker's minted creds write the step-end notice the operator watches through that namespace's account", async () => {
    const ns = TEAMS[0];
    const r = await e.kubectl(["apply", "-n", ns, "-f", "-"], `apiVersion: celeriac.io/v1alpha1
kind: Workflow
metadata:
  name: tenant-dag
spec:
  queue: ${QUEUE}
  steps:
    - name: first
      task: e2e.echo
      args: [1]
    - name: second
      task: e2e.echo
      dependsOn: [first]
`);
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    const w = await e.kubectl(["wait", "-n", ns, "--for=condition=Succeeded", "workflow/tenant-dag", "--timeout=90s"]);
    assert.equal(w.code, 0, `${w.stderr} ${(await e.kubectl(["get", "-n", ns, "workflow/tenant-dag", "-o", "yaml"])).stdout}`);
    figures.workflowSucceededMs = Date.now() - t0;
    const st = JSON.parse((await e.kubectl(["get", "-n", ns, "workflow/tenant-dag", "-o", "json"])).stdout) as { status: { result: { kwargs: { first: { args: number[] } } } } };
    assert.deepEqual(st.status.result.kwargs.first.args, [1], "the second step got the first one's result by name");
  });

  it("issues each namespace's worker and producer creds under its own account, not the platform's Celeriac account", async (t) => {
    const celeriac = e.platform.natsAuth?.accountPublicKey;
    assert.ok(celeriac?.startsWith("A"), `the platform reports its Celeriac account: ${String(celeriac)}`);
    for (const ns of TEAMS) {
      const worker = credsIdentity(await waitCreds(ns, WORKER_SECRET));
      const producer = credsIdentity(await waitCreds(ns, PRODUCER_SECRET));
      assert.match(worker.account, /^A[A-Z2-7]{55}$/, `${ns}: the worker's account is an account key`);
      assert.equal(producer.account, worker.account, `${ns}: producer and worker are users of one account`);
      assert.notEqual(worker.account, celeriac, `${ns}: not the platform's Celeriac account`);
      accountOf[ns] = worker.account;
    }
    assert.notEqual(accountOf["team-a"], accountOf["team-b"], "two namespaces, two accounts");
    t.diagnostic(`accounts: team-a ${accountOf["team-a"]}, team-b ${accountOf["team-b"]}, celeriac ${celeriac}`);
  });

  it("keeps each account's identity seed in Secret celeriac-nats-account-<namespace> in the operator's namespace", async () => {
    for (const ns of TEAMS) {
      const s = (await secretOf(OPERATOR_NAMESPACE, accountSecret(ns)))!;
      assert.ok(s, `${OPERATOR_NAMESPACE}/${accountSecret(ns)} exists`);
      assert.equal(s.metadata.labels?.["app.kubernetes.io/managed-by"], "celeriac-operator");
      assert.equal(s.metadata.labels?.["celeriac.io/nats-account"], ns);
      const signer = await accountSigner(ns);
      assert.match(signer.seed, /^SA[A-Z2-7]{50,}$/, "an account seed");
      assert.equal(signer.account, accountOf[ns], `${ns}: the seed is the key of the account its creds are in`);
      assert.equal(await secretOf(ns, accountSecret(ns)), undefined, `the seed is not in the tenant namespace ${ns}`);
    }
  });

  it("lets celeriac enqueue with a namespace's producer creds run a task there, and refuses it elsewhere", async (t) => {
    await checkProducerStaysInItsNamespace(e, t);
  });

  /**
   * The confused-deputy moves of test/nats/isolation.test.ts (`confusedDeputy`), by a worker of
   * `own`, aimed at `victim`: an API response as a PUT of `revoked.victim-task` in the victim's
   * bucket; its own pulled (forged) task and an API response onto the victim's task subject through
   * the reply subject; its own bucket's entries onto it through a push consumer's deliver subject.
   * Only requests the worker's permissions allow.
   */
  async function confusedDeputy(nc: NatsConnection, own: QueueNames, victim: QueueNames, ownInboxPrefix: string): Promise<void> {
    nc.publish(`$JS.API.STREAM.INFO.${own.stream}`, "", { reply: `$KV.${victim.resultsBucket}.revoked.victim-task` });
    await jetstream(nc).publish(own.taskSubject, JSON.stringify({ forged: true }));
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${own.stream}.${own.workerConsumer}`, JSON.stringify({ batch: 1 }), { reply: victim.taskSubject });
    nc.publish(`$JS.API.STREAM.INFO.${own.stream}`, "", { reply: victim.taskSubject });
    const kvStream = `KV_${own.resultsBucket}`;
    nc.publish(
      `$JS.API.CONSUMER.CREATE.${kvStream}.deputy.$KV.${own.resultsBucket}.>`,
      JSON.stringify({ stream_name: kvStream, config: { name: "deputy", deliver_subject: victim.taskSubject, deliver_policy: "all", ack_policy: "none", filter_subject: `$KV.${own.resultsBucket}.>` } }),
      { reply: `${ownInboxPrefix}.deputy` },
    );
    await nc.flush();
  }

  it("does not let team-a's worker get a message into team-b's work stream or results bucket through a reply or deliver subject", async (t) => {
    const own = queueNames("team-a", QUEUE);
    const victim = queueNames("team-b", QUEUE);
    const workerCreds = await waitCreds("team-a", WORKER_SECRET);
    const inbox = workerInboxPrefix("team-a", QUEUE);
    const deputy = await connectWith("team-a-deputy", workerCreds);

    const aAdmin = await accountAdmin("team-a");
    const bAdmin = await accountAdmin("team-b");
    const bJsm = await jetstreamManager(bAdmin);
    const bKvStream = `KV_${victim.resultsBucket}`;
    // every publish in team-b's account onto its task subject or bucket, whoever consumes it afterwards
    let inB = 0;
    for (const subject of [victim.taskSubject, `$KV.${victim.resultsBucket}.>`]) {
      const sub = bAdmin.subscribe(subject);
      void (async () => {
        for await (const _ of sub) inB++;
      })();
    }
    // the same subjects in team-a's account: JetStream does publish for the deputy, but there
    let inA = 0;
    const seen = aAdmin.subscribe(victim.taskSubject);
    void (async () => {
      for await (const _ of seen) inA++;
    })();
    await Promise.all([aAdmin.flush(), bAdmin.flush()]);
    const kvBefore = (await bJsm.streams.info(bKvStream)).state.messages;

    await confusedDeputy(deputy, own, victim, inbox);
    await waitFor("the deputy's publishes in team-a's own account", () => inA >= 2, 10_000, 50);
    // poll for two seconds: nothing may arrive in team-b's account
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline) {
      assert.equal(inB, 0, "no publish reached team-b's task subject or bucket");
      assert.equal((await bJsm.streams.info(victim.stream)).state.messages, 0, "team-b's work stream holds 0 messages");
      assert.equal((await bJsm.streams.info(bKvStream)).state.messages, kvBefore, "team-b's results bucket stream got nothing new");
      await sleep(100);
    }
    assert.equal(await (await new Kvm(jetstream(bAdmin)).open(victim.resultsBucket)).get("revoked.victim-task"), null, "no forged revocation in team-b's bucket");
    seen.unsubscribe();
    figures.deputyPublishesInTeamA = inA;
    t.diagnostic(`deputy publishes seen in team-a's account: ${inA}; in team-b's: ${inB}; team-b's KV stream: ${kvBefore} messages (the operator's queue.settings and the task result), unchanged`);
  });

  it("keeps the same accounts when the operator is SIGKILLed and restarted, and runs a task applied after it", async () => {
    const oldPid = e.platform.operators[0]!.pid!;
    const restartsBefore = e.platform.restarts().operators[0] ?? 0;
    process.kill(oldPid, "SIGKILL");
    await waitFor("operator restarted by the platform", () => (e.platform.restarts().operators[0] ?? 0) > restartsBefore && e.platform.operators[0]!.pid !== oldPid, 20_000, 50);
    await waitFor("restarted operator ready", async () => {
      try {
        return (await fetch(`http://127.0.0.1:${e.platform.operatorPorts[0]}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
      } catch {
        return false;
      }
    }, 60_000, 100);

    // re-minted creds: a deleted worker Secret comes back, and a new Queue gets its own; both in the same accounts
    const oldB = await waitCreds("team-b", WORKER_SECRET);
    const d = await e.kubectl(["delete", "secret", WORKER_SECRET, "-n", "team-b"]);
    assert.equal(d.code, 0, d.stderr);
    const newB = (await waitFor("team-b's worker Secret re-minted", async () => {
      const c = await credsOf("team-b", WORKER_SECRET);
      return c && c !== oldB ? c : undefined;
    }, 60_000, 200)) as string;
    assert.equal(credsIdentity(newB).account, accountOf["team-b"], "team-b's re-minted worker is in the same account");
    const a = await e.kubectl(["apply", "-n", "team-a", "-f", "-"], queueYaml("later", e.eventsLog, "", "    minReplicas: 1\n    maxReplicas: 1\n"));
    assert.equal(a.code, 0, a.stderr);
    const later = await waitCreds("team-a", "later-worker-nats");
    assert.equal(credsIdentity(later).account, accountOf["team-a"], "team-a's new Queue's worker is in the same account");
    for (const ns of TEAMS) assert.equal((await accountSigner(ns)).account, accountOf[ns], `${ns}: the account Secret is unchanged`);

    for (const [ns, q] of [["team-a", "later"], ["team-a", QUEUE], ["team-b", QUEUE]] as const) {
      const name = `after-restart-${q}`;
      const ap = await e.kubectl(["apply", "-n", ns, "-f", "-"], taskYaml(name, q, "e2e.echo", `  args: ["${ns}/${q}"]`));
      assert.equal(ap.code, 0, ap.stderr);
      const w = await e.kubectl(["wait", "-n", ns, "--for=condition=Succeeded", `task/${name}`, "--timeout=90s"]);
      assert.equal(w.code, 0, `${ns}/${name}: ${w.stderr}`);
    }
  });

  it("keeps the accounts when nats-server is SIGKILLed and restarted (account JWTs in the platform dir), and runs a task after it", async () => {
    const natsPid = e.platform.nats.child.pid!;
    const before = e.platform.restarts().nats;
    process.kill(natsPid, "SIGKILL");
    await waitFor("nats-server restarted by the platform", () => e.platform.restarts().nats > before && e.platform.nats.child.pid !== natsPid, 20_000, 50);
    // a user of team-b's account gets in and sees its stream: the restarted server knows the account
    const bAdmin = await waitFor("team-b's account on the restarted server", async () => {
      try {
        return await accountAdmin("team-b");
      } catch {
        return undefined;
      }
    }, 30_000, 200);
    assert.equal((await (await jetstreamManager(bAdmin!)).streams.info(queueNames("team-b", QUEUE).stream)).config.name, queueNames("team-b", QUEUE).stream);
    for (const ns of TEAMS) {
      const name = `after-nats-restart-${ns}`;
      const ap = await e.kubectl(["apply", "-n", ns, "-f", "-"], taskYaml(name, QUEUE, "e2e.echo", `  args: ["${ns}"]`));
      assert.equal(ap.code, 0, ap.stderr);
      const w = await e.kubectl(["wait", "-n", ns, "--for=condition=Succeeded", `task/${name}`, "--timeout=90s"]);
      assert.equal(w.code, 0, `${ns}/${name}: ${w.stderr}`);
      assert.equal(credsIdentity((await credsOf(ns, WORKER_SECRET))!).account, accountOf[ns], `${ns}: same account`);
    }
  });
});
