/**
 * Trial finding, fixed (accounts mode): deleting a tenant's account seed Secret
 * `celeriac-nats-account-<ns>` (in the operator's namespace) while the namespace has a Queue used to
 * move the namespace to a NEW account at the next operator restart, stranding everything stored in
 * the old one (a delayed Task stayed Queued for ever). Now the running operator, which holds the
 * key, writes the Secret back (same key) at its next resync (30 s), so a restart keeps the account
 * and the delayed Task published before the deletion runs. (A restart before the write-back is
 * refused with a StreamReady=False message instead: test/operator/account-keys.test.ts.)
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { credsIdentity } from "../../nats/credentials.js";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

const NS = "team-a";
const QUEUE = "work";
const OPERATOR_NAMESPACE = "default";
const SEED_SECRET = `celeriac-nats-account-${NS}`;
const PUBLIC_KEY_ANNOTATION = "celeriac.io/nats-account-public-key";

type Secret = { metadata: { annotations?: Record<string, string> }; data?: Record<string, string> };
type Condition = { type: string; status: string; reason?: string; message?: string };
type TaskObj = { status?: { phase?: string; conditions?: Condition[] } };

describe("when a tenant's account seed Secret is deleted in accounts mode", { timeout: 300_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  let account = "";

  before(async () => {
    e = await startE2E({ natsAuth: "accounts", processRestartBackoffBaseMs: 200 });
    const c = await e.kubectl(["create", "namespace", NS]);
    assert.equal(c.code, 0, c.stderr);
    const a = await e.kubectl(["apply", "-n", NS, "-f", "-"], queueYaml(QUEUE, e.eventsLog, "", "    minReplicas: 0\n    maxReplicas: 1\n    cooldownSeconds: 5\n"));
    assert.equal(a.code, 0, a.stderr);
  });
  after(async () => {
    await e?.stop();
  });

  async function get<T>(ns: string, kind: string, name: string): Promise<T | undefined> {
    const r = await e.kubectl(["get", kind, name, "-n", ns, "-o", "json"]);
    return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
  }
  async function workerAccount(): Promise<string | undefined> {
    const v = (await get<Secret>(NS, "secret", `${QUEUE}-worker-nats`))?.data?.["nats.creds"];
    return v ? credsIdentity(Buffer.from(v, "base64").toString("utf8")).account : undefined;
  }

  it("restores the Secret with the same account key, keeps the account over an operator restart, and runs a Task published before", async () => {
    const seed = (await waitFor("the account seed Secret", () => get<Secret>(OPERATOR_NAMESPACE, "secret", SEED_SECRET), 60_000, 200))!;
    account = seed.metadata.annotations?.[PUBLIC_KEY_ANNOTATION] ?? "";
    assert.match(account, /^A[A-Z2-7]{55}$/);
    assert.equal(await waitFor("worker creds", workerAccount, 60_000, 200), account);

    // a delayed task, stored in the namespace's account until it is due
    const ap = await e.kubectl(["apply", "-n", NS, "-f", "-"], taskYaml("delayed", QUEUE, "e2e.echo", `  args: ["delayed"]\n  countdownSeconds: 75`));
    assert.equal(ap.code, 0, ap.stderr);
    await waitFor("the delayed Task accepted", async () => (await get<TaskObj>(NS, "task", "delayed"))?.status?.conditions?.some((c) => c.type === "Accepted" && c.status === "True"), 30_000, 200);

    const d = await e.kubectl(["delete", "secret", SEED_SECRET, "-n", OPERATOR_NAMESPACE]);
    assert.equal(d.code, 0, d.stderr);
    // the operator still holds the seed in memory: it should write it back (same key) rather than forget it
    let restored: Secret | undefined;
    try {
      restored = await waitFor("the seed Secret written back", () => get<Secret>(OPERATOR_NAMESPACE, "secret", SEED_SECRET), 45_000, 500);
    } catch {
      restored = undefined;
    }

    // an operator restart (a crash, an upgrade, a rescheduled pod) must not move the namespace to a new account
    const oldPid = e.platform.operators[0]!.pid!;
    const restartsBefore = e.platform.restarts().operators[0] ?? 0;
    process.kill(oldPid, "SIGKILL");
    await waitFor("operator restarted", () => (e.platform.restarts().operators[0] ?? 0) > restartsBefore && e.platform.operators[0]!.pid !== oldPid, 20_000, 50);
    await waitFor("restarted operator ready", async () => {
      try {
        return (await fetch(`http://127.0.0.1:${e.platform.operatorPorts[0]}/readyz`, { signal: AbortSignal.timeout(1000) })).ok;
      } catch {
        return false;
      }
    }, 60_000, 100);
    const afterRestart = (await waitFor("the seed Secret after the restart", () => get<Secret>(OPERATOR_NAMESPACE, "secret", SEED_SECRET), 60_000, 200))!;

    // the delayed Task either runs, or says why it cannot: never Queued/Accepted=True for ever
    let last: TaskObj | undefined;
    try {
      await waitFor("the delayed Task finished", async () => {
        last = await get<TaskObj>(NS, "task", "delayed");
        return last?.status?.phase === "Succeeded";
      }, 120_000, 500);
    } catch {
      // reported below
    }
    const conds = (last?.status?.conditions ?? []).map((c) => `${c.type}=${c.status} ${c.reason ?? ""}: ${c.message ?? ""}`).join("; ");
    const wrong: string[] = [];
    if (!restored) wrong.push(`the operator did not write ${OPERATOR_NAMESPACE}/${SEED_SECRET} back within 45 s (one resync), though it holds the seed`);
    const now = afterRestart.metadata.annotations?.[PUBLIC_KEY_ANNOTATION];
    if (now !== account) wrong.push(`after an operator restart ${NS} moved to a new NATS account ${String(now)} (its streams stay in ${account})`);
    const w = await workerAccount();
    if (w !== account) wrong.push(`the worker creds were re-minted in account ${String(w)}, not ${account}`);
    if (last?.status?.phase !== "Succeeded") wrong.push(`the delayed Task published before the deletion did not run: phase ${String(last?.status?.phase)}, conditions: ${conds}`);
    assert.deepEqual(wrong, []);
  });
});
