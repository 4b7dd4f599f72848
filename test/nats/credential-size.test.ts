/**
 * Minted credentials against nats-server's `max_control_line` (api/nats-control-line.ts): a user JWT
 * travels in the CONNECT line, and the producer's grows with every Queue of its namespace. On a real
 * nats-server 2.9 in operator mode with the config Celeriac generates (256 KiB), the producer
 * credential of a namespace of five Queues connects and publishes a task to each Queue's work
 * stream, with no permission violation; on a server left at nats-server's default (4096 bytes) the
 * same credential is refused ("maximum control line exceeded") while a one-Queue producer of short
 * names connects —
 * and the operator's check (operator/credentials/connect-line.ts) says so for both. A system-account
 * user reads each server's limit from `$SYS.REQ.SERVER.PING.VARZ` (nats/server-limits.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { queueNames } from "../../api/naming.js";
import { CELERIAC_NATS_MAX_CONTROL_LINE, credsJwt, NATS_DEFAULT_MAX_CONTROL_LINE } from "../../api/nats-control-line.js";
import { producerInboxPrefix, producerPermissions } from "../../api/nats-permissions.js";
import { connectNats, ensureQueueResources, mintUserCreds, natsSettingsFrom, queueSettings, readServersMaxControlLine } from "../../nats/index.js";
import { connectLineCheck } from "../../operator/credentials/connect-line.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const NS = "size-a";

/** Connects with `creds` text once (no reconnect), failing after `timeoutMs`. */
function connectWith(srv: NatsServer, creds: string, timeoutMs = 5000): Promise<NatsConnection> {
  return connect({ servers: srv.url, name: "credential-size", authenticator: credsAuthenticator(new TextEncoder().encode(creds)), timeout: timeoutMs, maxReconnectAttempts: 0, reconnect: false, inboxPrefix: producerInboxPrefix(NS) });
}

describe("when a namespace's producer credential covers five Queues", () => {
  let raised: NatsServer;
  let stock: NatsServer;
  const queues = Array.from({ length: 5 }, (_, i) => uniqueQueue(`s${i}`));
  let five: string;
  let one: string;
  const opened: NatsConnection[] = [];

  before(async () => {
    [raised, stock] = await Promise.all([startNatsServer({ operatorMode: true }), startNatsServer({ operatorMode: true, maxControlLine: NATS_DEFAULT_MAX_CONTROL_LINE })]);
    five = (await mintUserCreds(raised.operator!.signer, { name: `celeriac-producer.${NS}`, ttlSeconds: 600, permissions: producerPermissions(NS, queues) })).creds;
    // one Queue of a short name: about 3,000 bytes (a one-Queue producer with longer names, about 25
    // characters of namespace and Queue name together, outgrows the default too)
    one = (await mintUserCreds(stock.operator!.signer, { name: `celeriac-producer.${NS}`, ttlSeconds: 600, permissions: producerPermissions(NS, ["q"]) })).creds;
    // the operator's own (unrestricted) user creates the streams
    const admin = await connect({ servers: raised.url, authenticator: credsAuthenticator(new TextEncoder().encode((await mintUserCreds(raised.operator!.signer, { name: "admin", ttlSeconds: 600 })).creds)) });
    opened.push(admin);
    const jsm = await jetstreamManager(admin);
    for (const q of queues) await ensureQueueResources(jsm, queueNames(NS, q), queueSettings({}));
  });
  after(async () => {
    for (const nc of opened) await nc.close().catch(() => undefined);
    await Promise.all([raised?.cleanup(), stock?.cleanup()]);
  });

  it("has a JWT over nats-server's default limit and within Celeriac's, as the operator's check says", () => {
    const jwtBytes = Buffer.byteLength(credsJwt(five)!);
    assert.ok(jwtBytes > NATS_DEFAULT_MAX_CONTROL_LINE, `five Queues: ${jwtBytes} bytes`);
    const input = { role: "producer" as const, secretName: "celeriac-producer-nats", jwtBytes, queues: 5 };
    assert.equal(connectLineCheck({ ...input, maxControlLine: NATS_DEFAULT_MAX_CONTROL_LINE }).fits, false);
    assert.equal(connectLineCheck({ ...input, maxControlLine: CELERIAC_NATS_MAX_CONTROL_LINE }).fits, true);
    assert.equal(connectLineCheck({ ...input, jwtBytes: Buffer.byteLength(credsJwt(one)!), queues: 1, maxControlLine: NATS_DEFAULT_MAX_CONTROL_LINE }).fits, true);
  });

  it("connects to a server with Celeriac's max_control_line and publishes a task to each Queue's work stream", async () => {
    const nc = await connectWith(raised, five);
    opened.push(nc);
    const js = jetstream(nc);
    for (const q of queues) {
      const n = queueNames(NS, q);
      const ack = await js.publish(n.taskSubject, "{}", { msgID: `t-${q}` });
      assert.equal(ack.stream, n.stream);
      assert.equal(ack.seq, 1);
    }
    await nc.flush();
    assert.deepEqual(raised.log().split("\n").filter((l) => /Violation|control line/.test(l)), []);
  });

  it("reads each server's max_control_line through a system-account user, and nothing through another user", async () => {
    for (const [srv, want] of [[raised, CELERIAC_NATS_MAX_CONTROL_LINE], [stock, NATS_DEFAULT_MAX_CONTROL_LINE]] as const) {
      const sys = await connect({ servers: srv.url, authenticator: credsAuthenticator(readFileSync(srv.operator!.systemCredsFile)) });
      opened.push(sys);
      assert.deepEqual(await readServersMaxControlLine(sys), { maxControlLine: want, servers: 1 });
    }
    const tenant = await connectWith(raised, five);
    opened.push(tenant);
    // a tenant's user may not publish on $SYS subjects: refused, not answered
    await assert.rejects(readServersMaxControlLine(tenant, { maxWaitMs: 500 }));
  });

  it("is refused by a server left at the default 4096 bytes, which a one-Queue producer still passes", async () => {
    const small = await connectWith(stock, one);
    opened.push(small);
    await small.flush();
    // the operator mode state (account) is the stock server's own, so mint the five-Queue user there too
    const big = (await mintUserCreds(stock.operator!.signer, { name: `celeriac-producer.${NS}`, ttlSeconds: 600, permissions: producerPermissions(NS, queues) })).creds;
    await assert.rejects(connectWith(stock, big, 1500));
    await waitFor("the server's refusal in its log", () => /maximum control line exceeded/.test(stock.log()), 5000);
    // the client sees only a timeout: connectNats says what the credential's size may mean
    const dir = mkdtempSync(join(tmpdir(), "celeriac-big-creds-"));
    try {
      const file = join(dir, "big.creds");
      writeFileSync(file, big, { mode: 0o600 });
      await assert.rejects(connectNats(natsSettingsFrom({ url: stock.url }, { CELERIAC_NATS_CREDS: file }), { timeout: 1500, maxReconnectAttempts: 0 }), (err: Error) => {
        assert.match(err.message, /makes a CONNECT line of about \d+ bytes, over nats-server's default max_control_line of 4096: .*raise max_control_line/);
        assert.ok(!err.message.includes(credsJwt(big)!), "no credential in the message");
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
