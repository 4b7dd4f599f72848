// `celeriac enqueue --priority / --concurrency-key` as a user runs it: the built bin against a real
// nats-server and a flow-controlled Queue's published producer settings.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { heldNames } from "../../api/flow.js";
import { parseTaskMessage, type TaskMessage } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { publishQueueSettings } from "../../operator/queue/queue-settings-publish.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { queueWith } from "../operator/queue/fixtures.js";

const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));

describe("when celeriac enqueue is given flow-control flags for a flow-controlled Queue", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let sub: Subscription;
  const cwd = mkdtempSync(join(tmpdir(), "celeriac-cwd-"));
  const ns = uniqueQueue("ns");
  const queue = "reports";
  const seen = new Map<string, TaskMessage>();
  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    const jsm = await jetstreamManager(nc);
    const names = queueNames(ns, queue);
    await ensureQueueResources(jsm, names, queueSettings());
    const held = heldNames(names);
    await jsm.streams.info(held.stream).catch(() => jsm.streams.add({ name: held.stream, subjects: [`${held.subjectPrefix}.*`] }));
    await publishQueueSettings(jetstream(nc), names, queueWith({ priorities: { levels: 4 }, concurrencyKeys: { limit: 2 } }, queue, ns));
    sub = nc.subscribe(`celeriac.${ns}.${queue}.>`, {
      callback: (_err, m) => {
        const p = parseTaskMessage(m.data);
        if (p.ok) seen.set(p.message.id, p.message);
      },
    });
    await nc.flush();
  });
  after(async () => {
    sub?.unsubscribe();
    await nc?.close();
    await srv?.cleanup();
    rmSync(cwd, { recursive: true, force: true });
  });

  const enqueue = (args: string[]) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_")));
    return run(process.execPath, [BIN, "enqueue", "reports.build", "--queue", queue, "--namespace", ns, "--nats", srv.url, ...args], { cwd, env }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  };

  it("publishes the task with the priority and key of the flags", async () => {
    const r = await enqueue(["--priority", "3", "--concurrency-key", "tenant-a"]);
    assert.equal(r.code, 0, r.stderr);
    const m = await waitFor("the published message", () => seen.get(r.stdout.trim()), 5000);
    assert.deepEqual(m.flow, { priority: 3, key: "tenant-a" });
  });

  it("refuses a priority the Queue does not have, naming the flag, and publishes nothing", async () => {
    const before = seen.size;
    const r = await enqueue(["--priority", "7"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^--priority: 7 is not a level of queue "reports": use an integer 0 … 3 \(Queue spec\.priorities\.levels is 4\)/);
    await nc.flush();
    assert.equal(seen.size, before);
  });
});
