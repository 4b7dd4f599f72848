/**
 * The pipelined publisher (nats/pipelined-publisher.ts) against a real nats-server: PubAcks and
 * their errors are parsed as `js.publish` parses them (compared side by side on the same server),
 * a PubAck that never comes times out, a reconnect fails what was pending, reply subjects honour
 * the connection's `inboxPrefix`, and a KV put through it is a real put.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect as natsConnect, headers as natsHeaders, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { kvPut, PipelinedPublisher, PublishInterruptedError } from "../../nats/index.js";
import { isNoResponders } from "../../client/queue-lookup.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

/** The outcome of a publish, reduced to what callers look at (class, message, API codes, cause chain). */
async function outcome(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    const v = (await p) as Record<string, unknown>;
    return { ok: true, ...v };
  } catch (err) {
    const e = err as Error & { code?: number; status?: number };
    const chain: string[] = [];
    for (let c: unknown = e.cause; c instanceof Error; c = c.cause) chain.push(c.constructor.name);
    return { ok: false, class: e.constructor.name, message: e.message, status: e.status, errCode: e.code, chain, noResponders: isNoResponders(e) };
  }
}


describe("when the pipelined publisher publishes to JetStream", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let pub: PipelinedPublisher;
  const stream = uniqueQueue("S").toUpperCase().replace(/-/g, "_");
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url, noAsyncTraces: true });
    js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`], duplicate_window: 60_000_000_000 });
    pub = new PipelinedPublisher(nc, { timeoutMs: 2000, sweepMs: 50 });
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
  });

  it("resolves with the stream's PubAck, as js.publish does", async () => {
    const a = await pub.publish(`${stream}.a`, "one");
    const b = await js.publish(`${stream}.a`, "two");
    assert.deepEqual({ stream: a.stream, duplicate: a.duplicate }, { stream, duplicate: false });
    assert.equal(b.seq, a.seq + 1);
  });

  it("reports a repeat Nats-Msg-Id as duplicate: true with the first message's sequence", async () => {
    const first = await pub.publish(`${stream}.d`, "x", { msgID: "dedup-1" });
    const again = await pub.publish(`${stream}.d`, "x", { msgID: "dedup-1" });
    const viaJs = await js.publish(`${stream}.d`, "x", { msgID: "dedup-1" });
    assert.equal(first.duplicate, false);
    assert.deepEqual({ seq: again.seq, duplicate: again.duplicate }, { seq: first.seq, duplicate: true });
    assert.deepEqual({ seq: viaJs.seq, duplicate: viaJs.duplicate }, { seq: first.seq, duplicate: true });
  });

  it("keeps the caller's headers beside Nats-Msg-Id", async () => {
    const h = natsHeaders();
    h.set("Celeriac-Task", "add");
    const pa = await pub.publish(`${stream}.h`, "x", { msgID: "hdr-1", headers: h });
    const m = await (await jetstreamManager(nc)).streams.getMessage(stream, { seq: pa.seq });
    assert.equal(m?.header.get("Celeriac-Task"), "add");
    assert.equal(m?.header.get("Nats-Msg-Id"), "hdr-1");
  });

  it("rejects a stream error ({\"error\":…}) with the class, message and codes js.publish gives", async () => {
    const expect = { streamName: "NOT_THIS_ONE" };
    const mine = await outcome(pub.publish(`${stream}.e`, "x", { expect }));
    const theirs = await outcome(js.publish(`${stream}.e`, "x", { expect }));
    assert.equal(mine.ok, false);
    assert.equal(mine.class, "JetStreamApiError");
    assert.deepEqual([mine.status, mine.errCode], [400, 10060]); // expected stream does not match
    assert.deepEqual(mine, theirs);
  });

  it("rejects a failed compare-and-set (wrong last subject sequence) as js.publish does", async () => {
    const expect = { lastSubjectSequence: 999_999 };
    const mine = await outcome(pub.publish(`${stream}.cas`, "x", { expect }));
    const theirs = await outcome(js.publish(`${stream}.cas`, "x", { expect }));
    assert.equal(mine.ok, false);
    assert.deepEqual(mine, theirs);
  });

  it("rejects a publish no stream stores (503 no responders) as js.publish does", async () => {
    const mine = await outcome(pub.publish("nobody.listens.here", "x"));
    const theirs = await outcome(js.publish("nobody.listens.here", "x"));
    assert.equal(mine.ok, false);
    assert.equal(mine.noResponders, true, "the client's isNoResponders must recognise it");
    assert.equal(mine.class, "JetStreamNotEnabled");
    assert.deepEqual(mine, theirs);
  });

  it("rejects with TimeoutError when the PubAck never arrives, and ignores a late one", async () => {
    const subject = `silent.${uniqueQueue()}`;
    let replyTo = "";
    const sub = nc.subscribe(subject, { callback: (_e, m) => void (replyTo = m.reply ?? "") }); // receives, never answers
    await nc.flush();
    const t0 = Date.now();
    const r = await outcome(pub.publish(subject, "x", { timeoutMs: 400 }));
    const took = Date.now() - t0;
    assert.equal(r.ok, false);
    assert.equal(r.class, TimeoutError.name);
    assert.ok(took >= 390 && took < 1500, `timed out after ${took} ms (timeout 400 ms, sweep 50 ms)`);
    assert.equal(pub.pending, 0);
    assert.ok(replyTo !== "", "the message was delivered");
    nc.publish(replyTo, JSON.stringify({ stream: "LATE", seq: 1 })); // too late: nothing to resolve
    await nc.flush();
    sub.unsubscribe();
  });

  it("parses a responder's ack and error bodies and rejects one without a stream", async () => {
    const subject = `fake.${uniqueQueue()}`;
    const replies = [JSON.stringify({ stream: "FAKE", seq: 7 }), JSON.stringify({ error: { code: 503, err_code: 10077, description: "maximum messages exceeded" } }), JSON.stringify({ seq: 1 })];
    let n = 0;
    const sub = nc.subscribe(subject, { callback: (_e, m) => void m.respond(replies[n++]!) });
    await nc.flush();
    assert.deepEqual(await pub.publish(subject, "x"), { stream: "FAKE", seq: 7, duplicate: false });
    const err = await outcome(pub.publish(subject, "x"));
    assert.deepEqual([err.class, err.status, err.errCode, err.message], ["JetStreamApiError", 503, 10077, "maximum messages exceeded"]);
    const invalid = await outcome(pub.publish(subject, "x"));
    assert.deepEqual([invalid.class, invalid.message], ["JetStreamError", "invalid ack response"]);
    sub.unsubscribe();
  });

  it("pipelines many publishes and resolves each with its own sequence", async () => {
    const acks = await Promise.all(Array.from({ length: 2000 }, (_, i) => pub.publish(`${stream}.many`, String(i), { msgID: `many-${i}` })));
    const seqs = acks.map((a) => a.seq);
    assert.equal(new Set(seqs).size, 2000);
    const jsm = await jetstreamManager(nc);
    const m = await jsm.streams.getMessage(stream, { seq: acks[1234]!.seq });
    assert.equal(new TextDecoder().decode(m?.data), "1234");
  });

  it("puts a KV value as kv.put does (revision = the stream sequence)", async () => {
    const kv = await new Kvm(js).create(uniqueQueue("b"), { history: 1 });
    const rev = await kvPut(kv, "task-1", JSON.stringify({ phase: "Succeeded" }));
    const e = await kv.get("task-1");
    assert.equal(e?.revision, rev);
    assert.deepEqual(e?.json(), { phase: "Succeeded" });
    await assert.rejects(kvPut(kv, "bad key with spaces", "x"), /invalid key/);
  });
});

describe("when the connection has an inboxPrefix", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url, inboxPrefix: "_INBOX_celeriac_team-a" });
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
  });

  it("sends reply subjects under it", async () => {
    let reply = "";
    const sub = nc.subscribe("svc.ack", { callback: (_e, m) => void ((reply = m.reply ?? ""), m.respond(JSON.stringify({ stream: "X", seq: 1 }))) });
    await nc.flush();
    await PipelinedPublisher.for(nc).publish("svc.ack", "x");
    assert.match(reply, /^_INBOX_celeriac_team-a\.[A-Za-z0-9]+\.[0-9a-z]+$/);
    sub.unsubscribe();
  });
});

describe("when the connection reconnects while PubAcks are pending", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
  });

  it("rejects them with PublishInterruptedError at the reconnect, not after their timeout", async () => {
    const sub = nc.subscribe("silent.reconnect", { callback: () => undefined });
    await nc.flush();
    const pub = PipelinedPublisher.for(nc);
    const pending = outcome(pub.publish("silent.reconnect", "x", { timeoutMs: 60_000 }));
    await waitFor("publish pending", () => pub.pending === 1 || undefined);
    await srv.kill();
    await srv.restart();
    const t0 = Date.now();
    const r = await pending;
    assert.equal(r.class, PublishInterruptedError.name);
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(pub.pending, 0);
    // the publisher works on the new connection
    const replier = nc.subscribe("svc.after", { callback: (_e, m) => void m.respond(JSON.stringify({ stream: "X", seq: 2 })) });
    await nc.flush();
    assert.equal((await pub.publish("svc.after", "x")).seq, 2);
    replier.unsubscribe();
    sub.unsubscribe();
  });

  it("rejects what is pending when the connection closes", async () => {
    const sub = nc.subscribe("silent.close", { callback: () => undefined });
    await nc.flush();
    const pub = PipelinedPublisher.for(nc);
    const pending = outcome(pub.publish("silent.close", "x", { timeoutMs: 60_000 }));
    await waitFor("publish pending", () => pub.pending === 1 || undefined);
    await nc.close();
    const r = await pending;
    assert.equal(r.class, "ClosedConnectionError");
    void sub;
  });
});
