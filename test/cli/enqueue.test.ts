// `celeriac enqueue` as a user runs it: the built bin against a real nats-server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { queueNames } from "../../api/naming.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `celeriac <args>` without CELERIAC_* variables from the test's environment. */
export async function celeriac(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Ran> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_")));
  const p = run(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? process.cwd(), env: { ...env, ...opts.env }, maxBuffer: 16 * 1024 * 1024 });
  if (opts.input !== undefined) {
    p.child.stdin?.end(opts.input);
  }
  return p.then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe("when celeriac enqueue names a queue", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    jsm = await jetstreamManager(nc);
  });
  after(async () => {
    await nc?.close();
    await srv?.cleanup();
  });

  it("fails at once on a typo of a managed Queue's name, naming the queues that exist", async () => {
    const ns = uniqueQueue("ns");
    await ensureQueueResources(jsm, queueNames(ns, "thumbnails"), queueSettings(), { updateOnDrift: true });
    const r = await celeriac(["enqueue", "images.resize", "--queue", "thumbnail", "--namespace", ns, "--wait", "--timeout", "10", "--nats", srv.url]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `queue "thumbnail" does not exist in namespace "${ns}"; existing queues: thumbnails`);
    await assert.rejects(jsm.streams.info(queueNames(ns, "thumbnail").stream), /stream not found/);
  });

  it("creates the queue with --create-queue", async () => {
    const ns = uniqueQueue("ns");
    const r = await celeriac(["enqueue", "x", "--queue", "adhoc", "--namespace", ns, "--create-queue", "--nats", srv.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await jsm.streams.info(queueNames(ns, "adhoc").stream)).state.messages, 1);
  });
});
