/**
 * End-to-end (issue 13): the local platform with `natsAuth: "minted"` — nats-server in operator mode,
 * the operator minting per-Queue worker and per-namespace producer credentials as Secrets, the process
 * kubelet mounting them into worker pods. Two tenants, team-a and team-b, each with a Queue of the same
 * name: their Tasks run with their own credentials, a producer credential works for its namespace
 * only, and deleting a Queue removes its Secret.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../helpers/k8s-tools.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";
import { checkProducerStaysInItsNamespace, createTenants, credsOf as credsOfSecret, enqueueEcho, runEchoInEachTenant, TEAMS, TENANT_QUEUE as QUEUE } from "./tenants.js";

const WORKER_SECRET = `${QUEUE}-worker-nats`;
const PRODUCER_SECRET = "celeriac-producer-nats";
const MOUNTED_CREDS = "/var/run/secrets/celeriac.io/nats-creds/nats.creds";

type Pod = {
  metadata: { name: string; uid: string };
  spec: { volumes?: Array<{ name: string; secret?: { secretName: string } }>; containers: Array<{ env?: Array<{ name: string; value?: string }> }> };
  status?: { phase?: string; containerStatuses?: Array<{ ready?: boolean }> };
};

describe("when the local platform mints per-tenant NATS credentials", { timeout: 300_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  const figures: Record<string, number> = {};

  before(async () => {
    const t0 = Date.now();
    e = await startE2E({ natsAuth: "minted" });
    figures.platformStartMs = Date.now() - t0;
    await createTenants(e);
  });
  after(async () => {
    if (Object.keys(figures).length) console.log(`# minted-credentials figures: ${JSON.stringify(figures)}`);
    await e?.stop();
  });

  const credsOf = (ns: string, secret: string) => credsOfSecret(e, ns, secret);
  const enqueue = (ns: string, env: Record<string, string>, args?: string[]) => enqueueEcho(e, ns, env, args);

  it("writes a worker Secret per Queue and a producer Secret per namespace, each a NATS creds file", async () => {
    const t0 = Date.now();
    for (const ns of TEAMS) {
      for (const name of [WORKER_SECRET, PRODUCER_SECRET]) {
        const creds = (await waitFor(`${ns}/${name}`, () => credsOf(ns, name), 60_000, 200)) as string;
        assert.match(creds, /-----BEGIN NATS USER JWT-----[\s\S]+-----BEGIN USER NKEY SEED-----/, `${ns}/${name} holds a .creds file`);
      }
    }
    figures.secretsMs = Date.now() - t0;
    const [a, b] = await Promise.all(TEAMS.map((ns) => credsOf(ns, WORKER_SECRET)));
    assert.notEqual(a, b, "each tenant's worker has its own credential");
  });

  it("runs the worker pods with the creds Secret mounted and materialised by the kubelet", async () => {
    for (const ns of TEAMS) {
      const pod = (await waitFor(`a ready worker pod in ${ns}`, async () => {
        const r = await e.kubectl(["get", "pods", "-n", ns, "-o", "json"]);
        const items = r.code === 0 ? (JSON.parse(r.stdout) as { items: Pod[] }).items : [];
        return items.find((p) => p.status?.phase === "Running" && p.status.containerStatuses?.every((c) => c.ready));
      }, 90_000, 250)) as Pod;
      const vol = pod.spec.volumes?.find((v) => v.secret?.secretName === WORKER_SECRET);
      assert.ok(vol, `the pod mounts ${WORKER_SECRET}: ${JSON.stringify(pod.spec.volumes)}`);
      const env = pod.spec.containers[0]?.env ?? [];
      assert.equal(env.find((x) => x.name === "CELERIAC_NATS_CREDS")?.value, MOUNTED_CREDS);
      const onHost = join(e.dir, "pods", pod.metadata.uid, "volumes", "kubernetes.io~secret", vol.name, "nats.creds");
      await waitFor(`${onHost} to hold the Secret's creds`, async () => existsSync(onHost) && readFileSync(onHost, "utf8") === (await credsOf(ns, WORKER_SECRET)), 10_000, 200);
    }
  });

  it("runs Tasks applied with kubectl to Succeeded in both namespaces", async () => {
    figures.tasksSucceededMs = await runEchoInEachTenant(e, 50);
  });

  it("lets celeriac enqueue with a namespace's producer creds run a task there, and refuses it elsewhere", async (t) => {
    await checkProducerStaysInItsNamespace(e, t);
    const anonymous = await enqueue("team-a", {});
    assert.notEqual(anonymous.code, 0, "anonymous clients are refused");
    assert.match(anonymous.stderr, /authori[sz]ation|not authori[sz]ed|permission/i, anonymous.stderr);
    t.diagnostic(`anonymous enqueue refused: ${anonymous.stderr.trim()}`);
  });

  it("removes a Queue's worker Secret when the Queue is deleted, leaving the other tenant's", async () => {
    const d = await e.kubectl(["delete", "queue", QUEUE, "-n", "team-a", "--wait=true", "--timeout=60s"]);
    assert.equal(d.code, 0, d.stderr);
    await waitFor(`team-a/${WORKER_SECRET} to be deleted`, async () => (await credsOf("team-a", WORKER_SECRET)) === undefined, 30_000, 200);
    assert.ok(await credsOf("team-b", WORKER_SECRET), "team-b's worker Secret stays");
  });
});

describe("when minted credentials expire every few seconds", { timeout: 240_000, skip: LOCAL_ONLY }, () => {
  // 9 s lifetime: the operator re-mints at 2/3 (6 s), the kubelet refreshes the mounted file within ~1 s,
  // and nats-server drops a connection whose JWT has expired, so the worker must reconnect on the new file.
  const TTL_SECONDS = 9;
  let e: E2E;
  before(async () => {
    e = await startE2E({ natsAuth: "minted", operatorEnv: { CELERIAC_NATS_CREDS_TTL_SECONDS: String(TTL_SECONDS) } });
    const a = await e.kubectl(["apply", "-f", "-"], queueYaml(QUEUE, e.eventsLog, "", "    minReplicas: 1\n    maxReplicas: 1\n"));
    assert.equal(a.code, 0, a.stderr);
  });
  after(() => e?.stop());

  const issuedAt = async (): Promise<string> =>
    (await e.kubectl(["get", "secret", WORKER_SECRET, "-o", "jsonpath={.metadata.annotations.celeriac\\.io/nats-creds-issued-at}"])).stdout;

  it("keeps the same worker process running through rotations, and its Tasks succeed after each", async (t) => {
    const pod = (await waitFor("a ready worker pod", async () => {
      const r = await e.kubectl(["get", "pods", "-o", "json"]);
      const items = r.code === 0 ? (JSON.parse(r.stdout) as { items: Pod[] }).items : [];
      return items.find((p) => p.status?.phase === "Running" && p.status.containerStatuses?.every((c) => c.ready));
    }, 90_000, 250)) as Pod;
    const vol = pod.spec.volumes?.find((v) => v.secret?.secretName === WORKER_SECRET);
    assert.ok(vol);
    const onHost = join(e.dir, "pods", pod.metadata.uid, "volumes", "kubernetes.io~secret", vol.name, "nats.creds");
    const seen = new Set<string>([await issuedAt()]);
    const t0 = Date.now();
    for (let round = 1; round <= 3; round++) {
      const next = await waitFor(`rotation ${round}`, async () => {
        const at = await issuedAt();
        return at && !seen.has(at) ? at : undefined;
      }, TTL_SECONDS * 3000, 250);
      seen.add(next as string);
      const secret = await e.kubectl(["get", "secret", WORKER_SECRET, "-o", "jsonpath={.data.nats\\.creds}"]);
      const want = Buffer.from(secret.stdout, "base64").toString("utf8");
      await waitFor(`the rotated creds on the pod's volume (round ${round})`, () => existsSync(onHost) && readFileSync(onHost, "utf8") === want, 5000, 100);
      const a = await e.kubectl(["apply", "-f", "-"], taskYaml(`after-rotation-${round}`, QUEUE, "e2e.echo", `  args: [${round}]`));
      assert.equal(a.code, 0, a.stderr);
      const w = await e.kubectl(["wait", "--for=condition=Succeeded", `task/after-rotation-${round}`, "--timeout=50s"]);
      assert.equal(w.code, 0, `round ${round}: ${w.stderr}`);
    }
    const now = JSON.parse((await e.kubectl(["get", "pod", pod.metadata.name, "-o", "json"])).stdout) as Pod & { status: { containerStatuses: Array<{ restartCount: number }> } };
    assert.equal(now.metadata.uid, pod.metadata.uid, "the same pod");
    assert.equal(now.status.containerStatuses[0]?.restartCount, 0, "the worker was never restarted");
    t.diagnostic(`3 rotations (ttl ${TTL_SECONDS} s) in ${Date.now() - t0} ms, worker restarts 0`);
  });
});
