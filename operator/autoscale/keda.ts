/**
 * KEDA mode (issue 7 item 4): with `spec.autoscaling.provider: keda` the operator renders a KEDA
 * `ScaledObject` with the `nats-jetstream` trigger for the Queue's worker consumer instead of scaling
 * the Deployment itself. Pure.
 *
 * Field mapping and semantics checked against KEDA's scaler (`pkg/scalers/nats_jetstream_scaler.go`):
 * the metric is `num_pending + num_ack_pending` of the consumer, `lagThreshold` is the per-replica
 * target, and the scaler is active when `lag > activationLagThreshold` (strictly greater).
 * Docs: https://keda.sh/docs/latest/scalers/nats-jetstream/ ,
 * https://keda.sh/docs/latest/reference/scaledobject-spec/
 */
import type { V1OwnerReference } from "@kubernetes/client-node";
import { queueNames } from "../../api/naming.js";
import { queueNamespace, queueOwnerReference, workerDeploymentName, workerLabels } from "../queue/labels.js";
import { resolveAutoscaling } from "./policy.js";
import type { Queue } from "../../api/objects.js";

/** `apiVersion` of KEDA's ScaledObject. */
export const KEDA_API_VERSION = "keda.sh/v1alpha1";
/** Annotation that makes KEDA scale the target to the given count and stop autoscaling (used for `suspend`). */
export const KEDA_PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas";
/** Account name of a NATS server without accounts configured (KEDA's documented default). */
export const NATS_GLOBAL_ACCOUNT = "$G";

/** The subset of KEDA's `ScaledObject` (keda.sh/v1alpha1) that Celeriac renders. */
export interface ScaledObject {
  apiVersion: typeof KEDA_API_VERSION;
  kind: "ScaledObject";
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences: V1OwnerReference[];
  };
  spec: {
    scaleTargetRef: { apiVersion: "apps/v1"; kind: "Deployment"; name: string };
    /** Seconds between KEDA's checks of the trigger (KEDA default 30). */
    pollingInterval: number;
    /** Seconds after the last active trigger before scaling to zero (KEDA default 300). */
    cooldownPeriod: number;
    minReplicaCount: number;
    maxReplicaCount: number;
    advanced: {
      horizontalPodAutoscalerConfig: {
        behavior: {
          scaleUp: { stabilizationWindowSeconds: number; selectPolicy: "Max"; policies: Array<{ type: "Pods"; value: number; periodSeconds: number }> };
          scaleDown: { stabilizationWindowSeconds: number };
        };
      };
    };
    triggers: Array<{ type: "nats-jetstream"; metadata: Record<string, string> }>;
  };
}

/** Where KEDA reads JetStream consumer state. */
export interface KedaOptions {
  /** `host:port` of the NATS monitoring endpoint KEDA polls, e.g. `nats.nats.svc.cluster.local:8222`. */
  natsMonitoringEndpoint: string;
  /** NATS account holding the stream. Default `$G` (no accounts configured). */
  account?: string;
  /** Poll the monitoring endpoint over HTTPS. Default false (field omitted). */
  useHttps?: boolean;
}

/**
 * The ScaledObject `<queue>-workers` scaling the Deployment `<queue>-workers`:
 * - trigger `nats-jetstream` on the queue's stream and worker consumer (`api/naming.ts`), with
 *   `lagThreshold` = `targetBacklogPerReplica` and `activationLagThreshold` = `activationBacklog - 1`
 *   (KEDA activates on lag strictly greater than the threshold; Celeriac on backlog ≥ activation);
 * - `minReplicaCount`/`maxReplicaCount`, `pollingInterval`, `cooldownPeriod` from the policy;
 * - HPA behavior: scale-down stabilization window = `scaleDownStabilizationSeconds`; scale-up with no
 *   stabilization and up to `maxReplicas` pods per 15 s, so KEDA scales up at once like the builtin mode;
 * - `spec.suspend` → annotation `autoscaling.keda.sh/paused-replicas: "0"` (KEDA scales to 0 and pauses);
 * - the Queue's controller ownerReference and the worker labels.
 *
 * Differences from the builtin mode (documented in docs/autoscaling.md): due delayed tasks are not
 * counted, and KEDA's metric is read from the monitoring endpoint rather than the stream leader.
 * @param queue the Queue (spec with CRD defaults applied)
 * @param opts the NATS monitoring endpoint and account
 * @throws Error when the Queue's name or namespace is not a DNS-1123 label (from `queueNames`)
 */
export function desiredScaledObject(queue: Queue, opts: KedaOptions): ScaledObject {
  const name = queue.metadata.name;
  const namespace = queueNamespace(queue);
  const policy = resolveAutoscaling(queue.spec);
  const names = queueNames(namespace, name);
  const trigger: Record<string, string> = {
    natsServerMonitoringEndpoint: opts.natsMonitoringEndpoint,
    account: opts.account ?? NATS_GLOBAL_ACCOUNT,
    stream: names.stream,
    consumer: names.workerConsumer,
    lagThreshold: String(policy.targetBacklogPerReplica),
    activationLagThreshold: String(Math.max(1, policy.activationBacklog) - 1),
  };
  if (opts.useHttps === true) trigger.useHttps = "true";
  return {
    apiVersion: KEDA_API_VERSION,
    kind: "ScaledObject",
    metadata: {
      name: workerDeploymentName(name),
      namespace,
      labels: workerLabels(name),
      ...(queue.spec.suspend === true ? { annotations: { [KEDA_PAUSED_REPLICAS_ANNOTATION]: "0" } } : {}),
      ownerReferences: [queueOwnerReference(queue)],
    },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: workerDeploymentName(name) },
      pollingInterval: policy.pollingIntervalSeconds,
      cooldownPeriod: policy.cooldownSeconds,
      minReplicaCount: policy.minReplicas,
      maxReplicaCount: policy.maxReplicas,
      advanced: {
        horizontalPodAutoscalerConfig: {
          behavior: {
            scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: "Max", policies: [{ type: "Pods", value: policy.maxReplicas, periodSeconds: 15 }] },
            scaleDown: { stabilizationWindowSeconds: policy.scaleDownStabilizationSeconds },
          },
        },
      },
      triggers: [{ type: "nats-jetstream", metadata: trigger }],
    },
  };
}
