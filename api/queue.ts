/**
 * The `Queue` resource (celeriac.io/v1alpha1): a named task queue — a JetStream stream, its dead-letter
 * stream and results bucket — and the autoscaled worker Deployment that drains it.
 */
import { Type, type Static } from "@sinclair/typebox";
import {
  DEFAULT_ACK_WAIT_SECONDS,
  DEFAULT_AUTOSCALING,
  DEFAULT_CONCURRENCY,
  DEFAULT_DEAD_LETTER_MAX_AGE,
  DEFAULT_DUPLICATE_WINDOW,
  DEFAULT_RESULTS_TTL_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
} from "./defaults.js";
import { QUEUE_FLOW_FIELDS, QueueFlowStatusSchema } from "./flow.js";
import { retryPolicySchema } from "./policies.js";
import { Conditions, Duration, FreeObject, Quantity, StringEnum, StringMap, Timestamp } from "./schema-helpers.js";

const EnvVarSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: "Variable name." }),
    value: Type.Optional(Type.String({ description: "Literal value." })),
    valueFrom: Type.Optional(FreeObject({ description: "Source of the value (core/v1 EnvVarSource: secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef)." })),
  },
  { description: "An environment variable (core/v1 EnvVar)." },
);

/** Schema of `Queue.spec.worker`. */
export const WorkerTemplateSchema = Type.Object(
  {
    image: Type.Optional(Type.String({ minLength: 1, description: "Worker container image, built FROM the celeriac worker base image with your tasks module. Required unless template is given." })),
    imagePullPolicy: Type.Optional(StringEnum(["Always", "IfNotPresent", "Never"] as const, { description: "Image pull policy." })),
    command: Type.Optional(Type.Array(Type.String(), { description: "Container entrypoint. Default: the image's (celeriac worker)." })),
    args: Type.Optional(Type.Array(Type.String(), { description: "Container arguments." })),
    env: Type.Optional(Type.Array(EnvVarSchema, { description: "Extra environment variables; CELERIAC_* variables for the queue and NATS are added by the operator." })),
    envFrom: Type.Optional(Type.Array(FreeObject({ description: "core/v1 EnvFromSource." }), { description: "ConfigMaps/Secrets whose keys become environment variables." })),
    resources: Type.Optional(
      Type.Object(
        {
          requests: Type.Optional(Type.Unsafe<Record<string, string | number>>({ type: "object", additionalProperties: Quantity(), description: "Minimum resources, e.g. {cpu: 100m, memory: 128Mi}." })),
          limits: Type.Optional(Type.Unsafe<Record<string, string | number>>({ type: "object", additionalProperties: Quantity(), description: "Maximum resources, e.g. {memory: 512Mi}." })),
        },
        { description: "Compute resources of the worker container (core/v1 ResourceRequirements)." },
      ),
    ),
    serviceAccountName: Type.Optional(Type.String({ description: "ServiceAccount of worker pods. Default: <queue>-worker, created by the operator with permission to patch tasks/status only." })),
    nodeSelector: Type.Optional(StringMap({ description: "Node labels worker pods must match." })),
    tolerations: Type.Optional(Type.Array(FreeObject({ description: "core/v1 Toleration." }), { description: "Tolerations of worker pods." })),
    terminationGracePeriodSeconds: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 86400, description: "Seconds a stopping worker gets to finish in-flight tasks before SIGKILL. Default: the queue's timeoutSeconds plus 30, capped at 3600." }),
    ),
    podLabels: Type.Optional(StringMap({ description: "Extra labels on worker pods." })),
    podAnnotations: Type.Optional(StringMap({ description: "Extra annotations on worker pods." })),
    template: Type.Optional(
      FreeObject({ description: "A full core/v1 PodTemplateSpec for the workers, for anything the fields above do not cover. Its first container runs the worker; the operator adds the CELERIAC_* env, labels and security defaults to it." }),
    ),
  },
  { description: "How worker pods are run. Give image (and optionally the other fields), or a full pod template.", default: {} },
);

/** Schema of `Queue.spec`. */
export const QueueSpecSchema = Type.Object(
  {
    worker: Type.Optional(WorkerTemplateSchema),
    concurrency: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10000, default: DEFAULT_CONCURRENCY, description: "Tasks each worker runs at once (handlers in flight per pod)." }),
    ),
    stream: Type.Optional(
      Type.Object(
        {
          storage: Type.Optional(StringEnum(["file", "memory"] as const, { default: "file", description: "JetStream storage: file (survives a NATS restart) or memory." })),
          replicas: Type.Optional(Type.Integer({ minimum: 1, maximum: 5, default: 1, description: "Stream replicas in a clustered NATS (use 3 in production)." })),
          maxAge: Type.Optional(Duration({ description: "Drop tasks older than this (Go duration, e.g. 168h). Unset: no limit." })),
          maxMessages: Type.Optional(Type.Integer({ minimum: -1, default: -1, description: "Most tasks the stream holds; -1: no limit. When full, new enqueues are refused (discard new), never silently dropped." })),
          maxBytes: Type.Optional(Type.Integer({ minimum: -1, default: -1, description: "Most bytes the stream holds; -1: no limit. When full, new enqueues are refused." })),
          duplicateWindow: Type.Optional(Duration({ default: DEFAULT_DUPLICATE_WINDOW, description: "Window in which a second enqueue with the same task id is ignored (Go duration)." })),
        },
        { description: "Settings of the queue's JetStream stream.", default: {} },
      ),
    ),
    retry: Type.Optional(retryPolicySchema(true)),
    timeoutSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 604800, default: DEFAULT_TIMEOUT_SECONDS, description: "Default handler time limit in seconds; a Task's timeoutSeconds overrides it." }),
    ),
    ackWaitSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 3600, default: DEFAULT_ACK_WAIT_SECONDS, description: "Seconds JetStream waits for a worker's ack or heartbeat before redelivering a task; workers heartbeat at a third of it." }),
    ),
    deadLetter: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean({ default: true, description: "Keep failed and unprocessable messages in the dead-letter stream." })),
          maxAge: Type.Optional(Duration({ default: DEFAULT_DEAD_LETTER_MAX_AGE, description: "How long dead letters are kept (Go duration)." })),
        },
        { description: "The dead-letter stream: where exhausted, invalid and unknown tasks go, with their reason.", default: {} },
      ),
    ),
    results: Type.Optional(
      Type.Object(
        {
          ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 31536000, default: DEFAULT_RESULTS_TTL_SECONDS, description: "Seconds task results and states stay in the results bucket (Celery result_expires)." })),
        },
        { description: "The result backend (a NATS KV bucket).", default: {} },
      ),
    ),
    autoscaling: Type.Optional(
      Type.Object(
        {
          provider: Type.Optional(StringEnum(["builtin", "keda"] as const, { default: DEFAULT_AUTOSCALING.provider, description: "builtin: the operator scales the worker Deployment itself; keda: render a KEDA ScaledObject instead." })),
          minReplicas: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000, default: DEFAULT_AUTOSCALING.minReplicas, description: "Fewest workers; 0 scales to zero when idle. Must not exceed maxReplicas." })),
          maxReplicas: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: DEFAULT_AUTOSCALING.maxReplicas, description: "Most workers." })),
          targetBacklogPerReplica: Type.Optional(Type.Integer({ minimum: 1, default: DEFAULT_AUTOSCALING.targetBacklogPerReplica, description: "Backlog (pending + in flight) each worker should have: desired = ceil(backlog / target)." })),
          activationBacklog: Type.Optional(Type.Integer({ minimum: 1, default: DEFAULT_AUTOSCALING.activationBacklog, description: "Backlog needed to scale from zero to one worker." })),
          pollingIntervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600, default: DEFAULT_AUTOSCALING.pollingIntervalSeconds, description: "Seconds between backlog reads." })),
          scaleDownStabilizationSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, default: DEFAULT_AUTOSCALING.scaleDownStabilizationSeconds, description: "Seconds of lower recommendations before scaling down (the highest in the window wins, as the HPA does)." })),
          cooldownSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86400, default: DEFAULT_AUTOSCALING.cooldownSeconds, description: "Seconds of empty backlog and nothing in flight before scaling to zero." })),
        },
        {
          description: "Scaling of worker replicas by queue depth.",
          default: {},
          "x-kubernetes-validations": [{ rule: "self.minReplicas <= self.maxReplicas", message: "minReplicas must not exceed maxReplicas" }],
        },
      ),
    ),
    ...QUEUE_FLOW_FIELDS,
    suspend: Type.Optional(Type.Boolean({ default: false, description: "Stop dispatching: workers scale to zero and enqueued tasks wait in the stream." })),
    deletionPolicy: Type.Optional(
      StringEnum(["Retain", "Delete"] as const, { default: "Retain", description: "What deleting the Queue does to its streams and results: Retain keeps them (and their tasks) in NATS; Delete removes them." }),
    ),
  },
  { description: "Desired state of the queue: its workers, stream, task defaults and scaling." },
);
/** `Queue.spec`. */
export type QueueSpec = Static<typeof QueueSpecSchema>;

/** Schema of `Queue.status`. */
export const QueueStatusSchema = Type.Object(
  {
    conditions: Type.Optional(Conditions("Ready, StreamReady and WorkersReady conditions (metav1.Condition).")),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, description: "The .metadata.generation last reconciled." })),
    streamName: Type.Optional(Type.String({ description: "Name of the JetStream stream holding ready tasks." })),
    backlog: Type.Optional(Type.Integer({ minimum: 0, description: "Tasks waiting plus in flight on the worker consumer (plus delayed tasks now due): the autoscaler's figure. celeriac queue status's backlog is the waiting ones only." })),
    inFlight: Type.Optional(Type.Integer({ minimum: 0, description: "Tasks delivered to workers and not yet acknowledged." })),
    delayed: Type.Optional(Type.Integer({ minimum: 0, description: "Tasks waiting for their countdown/eta." })),
    deadLetters: Type.Optional(Type.Integer({ minimum: 0, description: "Messages in the dead-letter stream." })),
    replicas: Type.Optional(Type.Integer({ minimum: 0, description: "Worker pods running." })),
    readyReplicas: Type.Optional(Type.Integer({ minimum: 0, description: "Worker pods ready." })),
    desiredReplicas: Type.Optional(Type.Integer({ minimum: 0, description: "Worker pods the autoscaler wants." })),
    lastScaleTime: Type.Optional(Timestamp({ description: "When the worker count last changed." })),
    flow: Type.Optional(QueueFlowStatusSchema),
    paused: Type.Optional(
      Type.Object(
        {
          at: Timestamp({ description: "When the queue was paused." }),
          by: Type.Optional(Type.String({ description: "Who paused it (user@host of `celeriac queue pause`)." })),
          reason: Type.Optional(Type.String({ description: "The reason given with `celeriac queue pause --reason`." })),
        },
        {
          description:
            "Set while the queue is paused (`celeriac queue pause`: results-bucket key queue.paused): workers pull nothing, running tasks finish, and the operator holds the worker count. Absent when it runs. Unlike spec.suspend, workers keep running.",
        },
      ),
    ),
  },
  { description: "Observed state of the queue." },
);
/** `Queue.status`. */
export type QueueStatus = Static<typeof QueueStatusSchema>;

/** Printer columns of `kubectl get queues`. */
export const QUEUE_PRINTER_COLUMNS = [
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: "Ready condition." },
  { name: "Backlog", type: "integer", jsonPath: ".status.backlog", description: "Pending plus in-flight tasks (the autoscaler's figure; IN-FLIGHT is the part being run)." },
  { name: "In-Flight", type: "integer", jsonPath: ".status.inFlight", description: "Tasks running." },
  { name: "Workers", type: "integer", jsonPath: ".status.replicas", description: "Worker pods." },
  { name: "Desired", type: "integer", jsonPath: ".status.desiredReplicas", description: "Worker pods wanted." },
  { name: "Held", type: "integer", jsonPath: ".status.flow.held", priority: 1, description: "Tasks held back by flow control (rate, key limits, priorities)." },
  { name: "Rate-Limited", type: "boolean", jsonPath: ".status.flow.rateLimited", priority: 1, description: "A rate limit is holding tasks back now." },
  { name: "Dead", type: "integer", jsonPath: ".status.deadLetters", priority: 1, description: "Dead letters." },
  { name: "Suspended", type: "boolean", jsonPath: ".spec.suspend", priority: 1 },
  { name: "Paused", type: "string", jsonPath: ".status.paused.at", priority: 1, description: "Since when the queue is paused (celeriac queue pause): workers pull nothing." },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];
