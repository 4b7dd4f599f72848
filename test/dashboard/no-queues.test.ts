// `celeriac dashboard` started before the namespace has any queue (as the chart's pod may be, right
// after `helm install`): the built bin starts, says there are none yet, serves an empty overview,
// and shows a queue created afterwards — against a real nats-server.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { queueNames } from "../../api/naming.js";
import { ensureQueueResources, queueSettings } from "../../nats/index.js";
import { startNatsServer, uniqueQueue, waitFor, type NatsServer } from "../helpers/nats-server.js";

const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));

describe("when the dashboard starts in a namespace without queues", () => {
  let srv: NatsServer;
  let nc: NatsConnection;
  let child: ChildProcess | undefined;
  let out = "";
  let url = "";
  const cwd = mkdtempSync(join(tmpdir(), "celeriac-dash-empty-"));
  const namespace = `empty${process.pid}`;

  before(async () => {
    srv = await startNatsServer();
    nc = await natsConnect({ servers: srv.url });
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_") && k !== "KUBECONFIG")), KUBECONFIG: "/nonexistent" };
    child = spawn(process.execPath, [BIN, "dashboard", "--port", "0", "--nats", srv.url, "-n", namespace], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    url = await waitFor("the dashboard's URL", () => /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 15_000);
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    await nc?.close();
    await srv?.cleanup();
    rmSync(cwd, { recursive: true, force: true });
  });

  it("starts, says there are no queues yet, and serves an empty overview", async () => {
    await waitFor("the no-queues line", () => out.includes(`No queues in namespace "${namespace}" yet`), 5_000);
    const r = await fetch(new URL("api/queues", url));
    assert.equal(r.status, 200);
    const body = (await r.json()) as { namespace: string; items: unknown[] };
    assert.equal(body.namespace, namespace);
    assert.deepEqual(body.items, []);
  });

  it("shows a queue created after it started", async () => {
    const q = uniqueQueue("late");
    await ensureQueueResources(await jetstreamManager(nc), queueNames(namespace, q), queueSettings(), { updateOnDrift: true });
    const items = await waitFor(`queue ${q} on the overview`, async () => {
      const body = (await (await fetch(new URL("api/queues", url))).json()) as { items: Array<{ queue: string; backlog: number }> };
      return body.items.some((i) => i.queue === q) ? body.items : undefined;
    }, 15_000, 200);
    assert.equal(items.find((i) => i.queue === q)?.backlog, 0);
  });
});
