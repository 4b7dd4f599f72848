import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { desiredScaledObject, KEDA_PAUSED_REPLICAS_ANNOTATION } from "../../../operator/autoscale/index.js";
import { queueWith } from "../queue/fixtures.js";

const endpoint = { natsMonitoringEndpoint: "nats.nats.svc.cluster.local:8222" };

describe("when a Queue uses KEDA mode with the default policy", () => {
  const q = queueWith({ worker: { image: "i" }, autoscaling: { provider: "keda" } });
  const so = desiredScaledObject(q, endpoint);

  it("renders the ScaledObject <queue>-workers with the Queue as controller owner", () => {
    assert.equal(so.apiVersion, "keda.sh/v1alpha1");
    assert.equal(so.kind, "ScaledObject");
    assert.equal(so.metadata.name, "emails-workers");
    assert.equal(so.metadata.namespace, "shop");
    assert.deepEqual(so.metadata.ownerReferences, [
      { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", name: "emails", uid: "uid-shop-emails", controller: true, blockOwnerDeletion: true },
    ]);
    assert.equal(so.metadata.labels["app.kubernetes.io/managed-by"], "celeriac-operator");
    assert.equal(so.metadata.labels["celeriac.io/queue"], "emails");
    assert.equal(so.metadata.annotations, undefined);
  });

  it("targets the worker Deployment", () => {
    assert.deepEqual(so.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: "emails-workers" });
  });

  it("uses a nats-jetstream trigger on the queue's stream and worker consumer", () => {
    assert.deepEqual(so.spec.triggers, [
      {
        type: "nats-jetstream",
        metadata: {
          natsServerMonitoringEndpoint: "nats.nats.svc.cluster.local:8222",
          account: "$G",
          stream: "CELERIAC_shop_emails",
          consumer: "workers",
          lagThreshold: "10",
          activationLagThreshold: "0",
        },
      },
    ]);
  });

  it("maps min/max, polling, cooldown and the scale-down window", () => {
    assert.equal(so.spec.minReplicaCount, 0);
    assert.equal(so.spec.maxReplicaCount, 10);
    assert.equal(so.spec.pollingInterval, 2);
    assert.equal(so.spec.cooldownPeriod, 300);
    assert.deepEqual(so.spec.advanced.horizontalPodAutoscalerConfig.behavior, {
      scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: "Max", policies: [{ type: "Pods", value: 10, periodSeconds: 15 }] },
      scaleDown: { stabilizationWindowSeconds: 60 },
    });
  });

  it("renders deep-equal objects twice", () => {
    assert.deepStrictEqual(desiredScaledObject(q, endpoint), desiredScaledObject(q, endpoint));
  });
});

describe("when the Queue sets its own policy", () => {
  const q = queueWith({
    autoscaling: { provider: "keda", minReplicas: 1, maxReplicas: 20, targetBacklogPerReplica: 25, activationBacklog: 5, pollingIntervalSeconds: 10, scaleDownStabilizationSeconds: 120, cooldownSeconds: 600 },
  });
  const so = desiredScaledObject(q, { ...endpoint, account: "TASKS", useHttps: true });

  /** [field, actual, expected] */
  const table: Array<[string, unknown, unknown]> = [
    ["lagThreshold = targetBacklogPerReplica", so.spec.triggers[0]?.metadata.lagThreshold, "25"],
    ["activationLagThreshold = activationBacklog - 1 (KEDA activates on lag > threshold)", so.spec.triggers[0]?.metadata.activationLagThreshold, "4"],
    ["account", so.spec.triggers[0]?.metadata.account, "TASKS"],
    ["useHttps", so.spec.triggers[0]?.metadata.useHttps, "true"],
    ["minReplicaCount", so.spec.minReplicaCount, 1],
    ["maxReplicaCount", so.spec.maxReplicaCount, 20],
    ["pollingInterval", so.spec.pollingInterval, 10],
    ["cooldownPeriod", so.spec.cooldownPeriod, 600],
    ["scaleDown window", so.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds, 120],
    ["scaleUp pods per period = maxReplicas", so.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies[0]?.value, 20],
  ];
  for (const [field, actual, expected] of table) {
    it(`sets ${field} to ${String(expected)}`, () => {
      assert.equal(actual, expected);
    });
  }

  it("writes every trigger metadata value as a string, as KEDA requires", () => {
    for (const v of Object.values(so.spec.triggers[0]?.metadata ?? {})) assert.equal(typeof v, "string");
  });
});

describe("when the Queue is suspended in KEDA mode", () => {
  it("pauses KEDA at zero replicas with the paused-replicas annotation", () => {
    const so = desiredScaledObject(queueWith({ suspend: true, autoscaling: { provider: "keda" } }), endpoint);
    assert.deepEqual(so.metadata.annotations, { [KEDA_PAUSED_REPLICAS_ANNOTATION]: "0" });
    assert.equal(KEDA_PAUSED_REPLICAS_ANNOTATION, "autoscaling.keda.sh/paused-replicas");
  });
});
