import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1EnvVar } from "@kubernetes/client-node";
import { WORKER_ENV, WORKER_PORT } from "../../api/worker-env.js";
import { desiredWorkerDeployment, type WorkerNatsOptions } from "../../operator/queue/desired-workers.js";
import { parseWorkerConfig } from "../../worker/config.js";
import { queueWith } from "../operator/queue/fixtures.js";

const POD = { name: "mail-workers-7d9c-abcde", namespace: "shop" };
const SECRETS: Record<string, Record<string, string>> = { "nats-user": { user: "alice", password: "s3cret" } };

/** What the kubelet would put in the container's environment for `env` (fieldRef and secretKeyRef resolved). */
function resolve(env: V1EnvVar[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    if (e.value !== undefined) out[e.name] = e.value;
    else if (e.valueFrom?.fieldRef) out[e.name] = ({ "metadata.name": POD.name, "metadata.namespace": POD.namespace } as Record<string, string>)[e.valueFrom.fieldRef.fieldPath]!;
    else if (e.valueFrom?.secretKeyRef) out[e.name] = SECRETS[e.valueFrom.secretKeyRef.name!]![e.valueFrom.secretKeyRef.key]!;
  }
  return out;
}

describe("when a Queue's worker Deployment is rendered and its env parsed by the worker", () => {
  const queue = queueWith({
    concurrency: 7, ackWaitSeconds: 45, timeoutSeconds: 120,
    worker: { image: "w:1", env: [{ name: "CELERIAC_TASKS", value: "dist/tasks.js" }, { name: "CELERIAC_QUEUE", value: "ignored" }] },
  }, "mail", "shop");
  const nats: WorkerNatsOptions = {
    url: "nats://a:4222,nats://b:4222",
    credsSecret: { name: "nats-creds", key: "creds" },
    userSecret: { name: "nats-user", userKey: "user", passwordKey: "password" },
    tlsCaSecret: { name: "nats-ca", key: "ca.crt" },
  };
  const d = desiredWorkerDeployment(queue, { nats });
  const container = d.spec!.template.spec!.containers[0]!;
  const env = resolve(container.env ?? []);
  const config = parseWorkerConfig({}, env);

  it("keeps every setting", () => {
    assert.deepEqual({ ...config, nats: { ...config.nats } }, {
      tasks: "dist/tasks.js",
      queue: "mail",
      namespace: "shop",
      concurrency: 7,
      port: WORKER_PORT,
      ackWaitSeconds: 45,
      timeoutSeconds: 120,
      gracePeriodSeconds: d.spec!.template.spec!.terminationGracePeriodSeconds,
      workerName: POD.name,
      logLevel: "info",
      nats: {
        servers: ["nats://a:4222", "nats://b:4222"],
        credsFile: "/var/run/secrets/celeriac.io/nats-creds/nats.creds",
        user: "alice",
        password: "s3cret",
        tlsCaFile: "/var/run/secrets/celeriac.io/nats-tls-ca/ca.crt",
        name: `celeriac-worker ${POD.name}`,
      },
    });
    assert.equal(config.gracePeriodSeconds, 150, "timeoutSeconds + 30");
  });

  it("serves probes on the port the worker listens on", () => {
    assert.deepEqual(container.ports?.find((p) => p.name === "http")?.containerPort, config.port);
    assert.equal(container.readinessProbe?.httpGet?.port, "http");
  });

  it("renders only names from the table, and all of them but the tasks module (the user's), the port and the log level (defaults)", () => {
    const bare = desiredWorkerDeployment(queueWith({ worker: { image: "w:1" } }, "mail", "shop"), { nats });
    const rendered = new Set((bare.spec!.template.spec!.containers[0]!.env ?? []).map((e) => e.name));
    const table = new Set<string>(Object.values(WORKER_ENV).map((e) => e.env));
    // the inbox prefix is read from a minted creds file's JWT, so the operator need not render it
    const notRendered = [WORKER_ENV.tasks.env, WORKER_ENV.port.env, WORKER_ENV.logLevel.env, WORKER_ENV.natsInboxPrefix.env];
    assert.deepEqual([...table].filter((n) => !rendered.has(n)).sort(), [...notRendered].sort());
    assert.deepEqual([...rendered].filter((n) => !table.has(n)), []);
  });
});
