/**
 * What the per-tenant e2e tests (minted-credentials, nats-accounts) share: two tenant namespaces
 * with a Queue each, reading the minted credential Secrets with kubectl, running Tasks in each
 * namespace, and checking that a namespace's producer credential enqueues there only.
 */
import assert from "node:assert/strict";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "node:test";
import { NATS_CREDS_SECRET_KEY, PRODUCER_CREDS_SECRET_NAME } from "../../api/nats-creds-secrets.js";
import { runTool, waitFor, type ToolRun } from "../helpers/k8s-tools.js";
import { queueYaml, taskYaml, type E2E } from "./helpers.js";

const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));

/** The two tenants. */
export const TEAMS = ["team-a", "team-b"] as const;
/** The Queue each tenant has (the same name in both). */
export const TENANT_QUEUE = "work";

/** A Secret as kubectl prints it (the fields the tests read). */
export type Secret = { metadata: { name: string; labels?: Record<string, string> }; data?: Record<string, string> };

/** Creates the tenant namespaces, each with Queue {@link TENANT_QUEUE} (one worker). */
export async function createTenants(e: E2E): Promise<void> {
  for (const ns of TEAMS) {
    const c = await e.kubectl(["create", "namespace", ns]);
    assert.equal(c.code, 0, c.stderr);
    const a = await e.kubectl(["apply", "-n", ns, "-f", "-"], queueYaml(TENANT_QUEUE, e.eventsLog, "", "    minReplicas: 1\n    maxReplicas: 1\n"));
    assert.equal(a.code, 0, a.stderr);
  }
}

/** A Secret read with kubectl, or undefined while it does not exist. */
export async function secretOf(e: E2E, ns: string, name: string): Promise<Secret | undefined> {
  const r = await e.kubectl(["get", "secret", name, "-n", ns, "-o", "json"]);
  return r.code === 0 ? (JSON.parse(r.stdout) as Secret) : undefined;
}

/** The decoded `nats.creds` of a Secret, or undefined while it does not exist. */
export async function credsOf(e: E2E, ns: string, name: string): Promise<string | undefined> {
  const v = (await secretOf(e, ns, name))?.data?.[NATS_CREDS_SECRET_KEY];
  return v ? Buffer.from(v, "base64").toString("utf8") : undefined;
}

/** Waits for a Secret's `nats.creds` (default 60 s). */
export async function waitCreds(e: E2E, ns: string, name: string, timeoutMs = 60_000): Promise<string> {
  return (await waitFor(`${ns}/${name}`, () => credsOf(e, ns, name), timeoutMs, 200)) as string;
}

/** Writes a namespace's producer credential out of its Secret to a 0600 file, as a user would. */
export async function producerCredsFile(e: E2E, ns: string): Promise<string> {
  const file = join(e.dir, `${ns}-producer.creds`);
  writeFileSync(file, await waitCreds(e, ns, PRODUCER_CREDS_SECRET_NAME), { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** `celeriac enqueue e2e.echo [7] --wait` into a tenant's Queue with only `env`'s NATS settings. */
export function enqueueEcho(e: E2E, ns: string, env: Record<string, string>, args: string[] = ["[7]"]): Promise<ToolRun> {
  return runTool(process.execPath, [BIN, "enqueue", "e2e.echo", "--namespace", ns, "--queue", TENANT_QUEUE, "--args", ...args, "--wait", "--timeout", "30", "--nats", e.platform.natsUrl], env, 60_000, {
    dropEnv: (k) => k.startsWith("CELERIAC_NATS_"),
  });
}

/**
 * Applies an echo Task in each tenant with kubectl and waits for Succeeded with its own namespace
 * as the result.
 * @returns how long it took, ms
 */
export async function runEchoInEachTenant(e: E2E, waitSeconds: number): Promise<number> {
  const t0 = Date.now();
  for (const ns of TEAMS) {
    const a = await e.kubectl(["apply", "-n", ns, "-f", "-"], taskYaml(`echo-${ns}`, TENANT_QUEUE, "e2e.echo", `  args: ["${ns}"]`));
    assert.equal(a.code, 0, a.stderr);
  }
  for (const ns of TEAMS) {
    const w = await e.kubectl(["wait", "-n", ns, "--for=condition=Succeeded", `task/echo-${ns}`, `--timeout=${waitSeconds}s`]);
    assert.equal(w.code, 0, `${ns}: ${w.stderr}`);
    const r = await e.kubectl(["get", "task", `echo-${ns}`, "-n", ns, "-o", "jsonpath={.status.result.args[0]}"]);
    assert.equal(r.stdout, ns);
  }
  return Date.now() - t0;
}

/** team-a's producer credential runs a task in team-a and is refused in team-b with a clear error. */
export async function checkProducerStaysInItsNamespace(e: E2E, t: TestContext): Promise<string> {
  const credsA = await producerCredsFile(e, "team-a");
  const ok = await enqueueEcho(e, "team-a", { CELERIAC_NATS_CREDS: credsA });
  assert.equal(ok.code, 0, `enqueue to team-a with team-a's producer creds: ${ok.stderr}`);
  assert.match(ok.stdout, /7/);
  const refused = await enqueueEcho(e, "team-b", { CELERIAC_NATS_CREDS: credsA });
  assert.notEqual(refused.code, 0, `team-a's producer creds must not enqueue to team-b: ${refused.stdout}`);
  assert.match(refused.stderr, /permission|not authori[sz]ed/i, `a clear error: ${refused.stderr}`);
  assert.doesNotMatch(refused.stderr, /^\s+at /m, "no stack trace");
  t.diagnostic(`cross-namespace enqueue refused: ${refused.stderr.trim()}`);
  return credsA;
}
