/**
 * Trial finding: a Queue name of 56–63 characters passes the CRD's rule (`QUEUE_NAME_RULE`: a DNS-1123
 * label, at most 63), but its worker Deployment `<queue>-workers` is then 64–71 characters, which the
 * API server refuses ("must be no more than 63 characters"). The operator retries for ever, logging
 * the error, while the Queue has no status at all: `kubectl get queues` shows an empty READY column
 * and `kubectl describe` no condition saying why.
 *
 * What this test expects: either `kubectl apply` refuses the name (naming the limit), or the Queue
 * gets a `Ready=False` condition whose message names the Deployment name's length.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, type E2E } from "./helpers.js";

/** 63 characters: a valid DNS-1123 label, so the CRD accepts it. */
const NAME = `q${"x".repeat(61)}z`;

type Condition = { type: string; status: string; reason?: string; message?: string };

describe("when a Queue's name is 63 characters long", { timeout: 180_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E({ processRestartBackoffBaseMs: 200 });
  });
  after(async () => {
    await e?.stop();
  });

  it("is refused by kubectl apply, or reported on the Queue's status (not only in the operator's log)", async () => {
    assert.equal(NAME.length, 63);
    const a = await e.kubectl(["apply", "-f", "-"], queueYaml(NAME, e.eventsLog, "", "    minReplicas: 1\n    maxReplicas: 1\n"));
    if (a.code !== 0) {
      assert.match(a.stderr, /at most|no more than|too long/i, `refused with a message naming the limit: ${a.stderr}`);
      return;
    }
    let conditions: Condition[] = [];
    try {
      await waitFor("a Ready condition on the Queue", async () => {
        const r = await e.kubectl(["get", "queue", NAME, "-o", "json"]);
        conditions = r.code === 0 ? ((JSON.parse(r.stdout) as { status?: { conditions?: Condition[] } }).status?.conditions ?? []) : [];
        return conditions.some((c) => c.type === "Ready");
      }, 45_000, 500);
    } catch {
      // reported below
    }
    const ready = conditions.find((c) => c.type === "Ready");
    assert.ok(ready, `the Queue was accepted but after 45 s has no Ready condition (conditions: ${JSON.stringify(conditions)})`);
    if (ready.status === "False") assert.match(ready.message ?? "", /63|too long|no more than/i, `the Ready=False message names the length: ${ready.message}`);
    else assert.fail(`a Queue whose Deployment cannot be created reports Ready=${ready.status}: ${ready.message}`);
  });
});
