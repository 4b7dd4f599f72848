/**
 * An account per tenant, created at run time (nats/accounts.ts): against a real nats-server 2.9 in
 * operator mode with a `full` resolver, a tenant account minted with the operator key and pushed
 * through the system account runs the real worker and client under minted users, and team-a's
 * worker in another account cannot get JetStream to publish into it (the confused deputy that one
 * shared account allows, test/nats/isolation.test.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createOperator } from "@nats-io/jwt";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { queueNames } from "../../api/naming.js";
import { producerPermissions, workerInboxPrefix, workerPermissions } from "../../api/nats-permissions.js";
import { connect as connectClient } from "../../client/index.js";
import { connectNats, ensureQueueResources, mintTenantAccount, mintUserCreds, natsSettingsFrom, parseOperatorSigner, pushAccountJwt, queueSettings, type AccountSigner, type MintedAccount } from "../../nats/index.js";
import { defineTask, Worker } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

describe("when each tenant has its own NATS account, pushed at run time", () => {
  let srv: NatsServer;
  let dir: string;
  let sys: NatsConnection;
  let teamD: MintedAccount;
  const opened: NatsConnection[] = [];

  async function user(signer: AccountSigner, name: string, permissions?: ReturnType<typeof workerPermissions>): Promise<NatsConnection> {
    const m = await mintUserCreds(signer, { name, ttlSeconds: 600, ...(permissions ? { permissions } : {}) });
    const file = join(dir, `${name}.creds`);
    writeFileSync(file, m.creds, { mode: 0o600 });
    const nc = await connectNats(natsSettingsFrom({ url: srv.url, name }, { CELERIAC_NATS_CREDS: file }));
    opened.push(nc);
    return nc;
  }

  before(async () => {
    srv = await startNatsServer({ operatorMode: true, resolver: "full" });
    dir = mkdtempSync(join(tmpdir(), "celeriac-accounts-"));
    sys = await connectNats(natsSettingsFrom({ url: srv.url, name: "system" }, { CELERIAC_NATS_CREDS: srv.operator!.systemCredsFile }));
    opened.push(sys);
    teamD = await mintTenantAccount(srv.operator!.operatorSigner, { name: "team-d" });
    await pushAccountJwt(sys, teamD.jwt);
  });

  after(async () => {
    for (const nc of opened) if (!nc.isClosed()) await nc.close();
    await srv?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs the real worker and client in the pushed account under minted users", async () => {
    const q = uniqueQueue("qd");
    const admin = await user(teamD.signer, "team-d-admin");
    await ensureQueueResources(await jetstreamManager(admin), queueNames("team-d", q), queueSettings({}));
    const worker = new Worker({ nc: await user(teamD.signer, "team-d-worker", workerPermissions("team-d", q)), tasks: [defineTask("echo", (args) => args)], queue: q, namespace: "team-d", logger: pino({ level: "silent" }) });
    await worker.start();
    const client = await connectClient({ nc: await user(teamD.signer, "team-d-producer", producerPermissions("team-d", [q])), queue: q, namespace: "team-d" });
    try {
      const h = await client.enqueue("echo", ["d"]);
      assert.deepEqual(await h.result({ timeoutMs: 10_000 }), ["d"]);
    } finally {
      await worker.close();
      await client.close();
    }
  });

  it("re-signing the same account key keeps its streams", async () => {
    const q = uniqueQueue("qk");
    const admin = await user(teamD.signer, "team-d-admin-2");
    const names = queueNames("team-d", q);
    await ensureQueueResources(await jetstreamManager(admin), names, queueSettings({}));
    const again = await mintTenantAccount(srv.operator!.operatorSigner, { name: "team-d", accountSeed: teamD.signer.seed });
    assert.equal(again.publicKey, teamD.publicKey);
    await pushAccountJwt(sys, again.jwt);
    const admin2 = await user(again.signer, "team-d-admin-3");
    assert.equal((await (await jetstreamManager(admin2)).streams.info(names.stream)).config.name, names.stream);
  });

  it("keeps team-a's JetStream publishes (reply and deliver subjects) out of team-d's streams", async () => {
    const qd = uniqueQueue("qv");
    const victim = queueNames("team-d", qd);
    await ensureQueueResources(await jetstreamManager(await user(teamD.signer, "team-d-admin-4")), victim, queueSettings({}));
    const qa = uniqueQueue("qx");
    const own = queueNames("team-a", qa);
    await ensureQueueResources(await jetstreamManager(await user(srv.operator!.signer, "team-a-admin")), own, queueSettings({}));
    const nc = await user(srv.operator!.signer, "team-a-deputy", workerPermissions("team-a", qa));
    await jetstream(nc).publish(own.taskSubject, JSON.stringify({ forged: true }));
    nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${own.stream}.${own.workerConsumer}`, JSON.stringify({ batch: 1 }), { reply: victim.taskSubject });
    nc.publish(`$JS.API.STREAM.INFO.${own.stream}`, "", { reply: victim.resultsBucket });
    const kvStream = `KV_${own.resultsBucket}`;
    nc.publish(`$JS.API.CONSUMER.CREATE.${kvStream}.deputy.$KV.${own.resultsBucket}.>`, JSON.stringify({ stream_name: kvStream, config: { name: "deputy", deliver_subject: victim.taskSubject, deliver_policy: "all", ack_policy: "none", filter_subject: `$KV.${own.resultsBucket}.>` } }), { reply: `${workerInboxPrefix("team-a", qa)}.x` });
    await nc.flush();
    const dJsm = await jetstreamManager(await user(teamD.signer, "team-d-admin-5"));
    // poll for a second: nothing may arrive
    const deadline = Date.now() + 1000;
    while (Date.now() < deadline) {
      assert.equal((await dJsm.streams.info(victim.stream)).state.messages, 0);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it("never lets users of an account signed by an unknown operator in, and rejects bad operator seeds naming the fix", async () => {
    const stranger = parseOperatorSigner(new TextDecoder().decode(createOperator().getSeed()));
    const rogue = await mintTenantAccount(stranger, { name: "rogue" });
    // the full resolver stores what it is given; trust is checked when the account is used
    await pushAccountJwt(sys, rogue.jwt);
    const m = await mintUserCreds(rogue.signer, { name: "rogue-user", ttlSeconds: 60 });
    await assert.rejects(connect({ servers: srv.url, authenticator: credsAuthenticator(new TextEncoder().encode(m.creds)), reconnect: false }), /Authorization Violation/i);
    assert.throws(() => parseOperatorSigner("nothing here"), /holds 0 operator seeds; give exactly one operator \(signing\) key seed/);
    await assert.rejects(mintTenantAccount({ seed: teamD.signer.seed }, { name: "x" }), (e: unknown) => /not an operator seed/.test((e as Error).message) && !(e as Error).message.includes(teamD.signer.seed));
  });

  it("says which resolver setting is missing when no resolver answers", async () => {
    const mem = await startNatsServer({ operatorMode: true });
    try {
      const s = await connectNats(natsSettingsFrom({ url: mem.url, name: "system" }, { CELERIAC_NATS_CREDS: mem.operator!.systemCredsFile }));
      const acc = await mintTenantAccount(mem.operator!.operatorSigner, { name: "team-e" });
      await assert.rejects(pushAccountJwt(s, acc.jwt, 1000), /no resolver answered .*the server needs `resolver: \{ type: full/);
      await s.close();
    } finally {
      await mem.cleanup();
    }
  });

  it("lists the pushed account as a JetStream-enabled account", async () => {
    const nc = await user(teamD.signer, "team-d-info");
    await waitFor("account info", async () => (await (await jetstreamManager(nc)).getAccountInfo()).limits.max_streams === -1);
  });
});
