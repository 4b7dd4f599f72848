/**
 * End-to-end (issue 12 item 13): the local platform and the operator recover like a cluster would.
 * A SIGKILLed operator or nats-server is restarted with back-off (and counted), the operator waits
 * for NATS at startup instead of exiting, and the platform is ready only once the operator is.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

async function readyz(port: number | undefined): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) })).status;
  } catch {
    return 0;
  }
}

describe("when components of the local platform die", { timeout: 240_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E({ processRestartBackoffBaseMs: 200 });
  });
  after(() => e?.stop());

  it("is ready only once the operator is: /readyz answers 200 as soon as the platform has started", async () => {
    assert.equal(await readyz(e.platform.operatorPorts[0]), 200);
  });

  it("restarts a SIGKILLed operator and nats-server with back-off, counts the restarts, and still runs tasks", async () => {
    assert.equal((await e.apply(queueYaml("recover", e.eventsLog))).code, 0);
    const oldPid = e.platform.operators[0]!.pid!;
    process.kill(oldPid, "SIGKILL");
    await waitFor("operator restarted", () => e.platform.restarts().operators[0] === 1 && e.platform.operators[0]!.pid !== oldPid, 20_000, 50);
    await waitFor("restarted operator ready", async () => (await readyz(e.platform.operatorPorts[0])) === 200, 30_000, 100);

    const natsPid = e.platform.nats.child.pid!;
    process.kill(natsPid, "SIGKILL");
    await waitFor("nats-server restarted", () => e.platform.restarts().nats === 1 && e.platform.nats.child.pid !== natsPid, 20_000, 50);

    assert.equal((await e.apply(taskYaml("after-crashes", "recover", "e2e.echo"))).code, 0);
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/after-crashes", "--timeout=60s"]);
    assert.equal(w.code, 0, w.stderr);
  });

  it("starts an operator while NATS is down: it waits with back-off (warn logs, not ready) instead of exiting", async () => {
    await e.platform.stopNats();
    await e.platform.stopOperator(0);
    const logFile = join(e.platform.dir, "logs", "operator-0.log");
    const before = readFileSync(logFile, "utf8").length;
    const child = e.platform.startOperator(0);
    const retries = () =>
      readFileSync(logFile, "utf8").slice(before).split("\n").filter((l) => l.includes("Failed to connect to NATS; retrying")).map((l) => JSON.parse(l) as { level: number; delayMs: number });
    await waitFor("two retry logs", () => retries().length >= 2, 20_000, 100);
    assert.equal(retries()[0]!.level, 40, "logged at warn");
    assert.ok(retries()[1]!.delayMs > retries()[0]!.delayMs, "back-off grows");
    const status = await readyz(e.platform.operatorPorts[0]);
    assert.equal(status, 503, "not ready while waiting for NATS");
    await sleep(500);
    assert.equal(child.exitCode, null, "still running");

    await e.platform.startNats();
    await waitFor("operator ready after NATS is back", async () => (await readyz(e.platform.operatorPorts[0])) === 200, 60_000, 100);
    assert.equal((await e.apply(taskYaml("after-wait", "recover", "e2e.echo"))).code, 0);
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/after-wait", "--timeout=60s"]);
    assert.equal(w.code, 0, w.stderr);
  });
});
