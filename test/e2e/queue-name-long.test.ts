/**
 * Trial finding, fixed: a Queue name of 56–63 characters passes the CRD's rule (a DNS-1123 label, at
 * most 63), and its worker Deployment `<queue>-workers` is then 64–71 characters. kube-apiserver
 * accepts that (Deployment names are DNS-1123 subdomains, up to 253); the in-memory API server
 * wrongly held Deployments to 63, so the Queue never got workers and showed no condition. A
 * 63-character Queue must run a task like any other.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

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

  it("runs a task: the 71-character Deployment <queue>-workers is accepted, as by kube-apiserver", async () => {
    assert.equal(NAME.length, 63);
    const a = await e.kubectl(["apply", "-f", "-"], queueYaml(NAME, e.eventsLog, "", "    minReplicas: 1\n    maxReplicas: 1\n"));
    assert.equal(a.code, 0, a.stderr);
    await waitFor("the Queue Ready", async () => {
      const r = await e.kubectl(["get", "queue", NAME, "-o", "json"]);
      const conditions: Condition[] = r.code === 0 ? ((JSON.parse(r.stdout) as { status?: { conditions?: Condition[] } }).status?.conditions ?? []) : [];
      return conditions.some((c) => c.type === "Ready" && c.status === "True");
    }, 90_000, 500);
    assert.equal((await e.kubectl(["apply", "-f", "-"], taskYaml("long-queue-task", NAME, "e2e.echo"))).code, 0);
    const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/long-queue-task", "--timeout=90s"]);
    assert.equal(w.code, 0, w.stderr);
  });
});
