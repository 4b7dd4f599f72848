/**
 * The desired worker Deployment of a Queue, as a pure function of the Queue and the operator's
 * settings (kubebuilder's `deploymentForMemcached`: data in, object out; no clients, clocks or env).
 *
 * The pod template is built in three layers:
 * 1. the user's `spec.worker.template` (deep-copied) or an empty template;
 * 2. the simple `spec.worker` fields, each filling only what the template leaves unset
 *    (`env`/`envFrom` are appended, `podLabels`/`podAnnotations` sit under the template's);
 * 3. Celeriac's contract on top: labels, the `CELERIAC_*` environment, the `http` port and probes,
 *    NATS secrets by reference, an emptyDir at `/tmp`, and the Pod Security Standards "restricted"
 *    settings on every container.
 */
import type {
  V1Container,
  V1Deployment,
  V1EnvFromSource,
  V1EnvVar,
  V1PodSecurityContext,
  V1PodSpec,
  V1PodTemplateSpec,
  V1Probe,
  V1ResourceRequirements,
  V1SecurityContext,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import { DEFAULT_ACK_WAIT_SECONDS, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT_SECONDS } from "../../api/defaults.js";
import { WORKER_ENV, WORKER_PORT } from "../../api/worker-env.js";
import {
  queueNamespace,
  queueOwnerReference,
  workerDeploymentName,
  workerLabels,
  workerSelectorLabels,
  workerServiceAccountName,
} from "./labels.js";
import type { Queue } from "../../api/objects.js";

/** Where worker pods reach NATS; credentials are Secret references, never values. */
export interface WorkerNatsOptions {
  /** NATS URL(s), comma-separated, as the worker's `CELERIAC_NATS_URL`. */
  url: string;
  /**
   * Secret key holding a `.creds` file; mounted read-only, its path in `CELERIAC_NATS_CREDS`. In
   * minting mode the Queue reconciler passes the Queue's own `<queue>-worker-nats`/`nats.creds`. The
   * volume mounts the directory (no `subPath`), so Kubernetes updates the file in place on rotation.
   */
  credsSecret?: { name: string; key: string };
  /** Secret keys holding user and password; `CELERIAC_NATS_USER`/`_PASSWORD` via `secretKeyRef`. */
  userSecret?: { name: string; userKey: string; passwordKey: string };
  /** Secret key holding the CA certificate (PEM); mounted read-only, its path in `CELERIAC_NATS_TLS_CA`. */
  tlsCaSecret?: { name: string; key: string };
}

/** Operator-side inputs of {@link desiredWorkerDeployment}. */
export interface WorkerDeploymentOptions {
  /** NATS settings handed to workers. */
  nats: WorkerNatsOptions;
  /** Image used when neither `spec.worker.image` nor the template's first container names one. */
  workerImage?: string;
  /**
   * Environment appended for every name the worker container's own env (template or
   * `spec.worker.env`) does not set: the operator-wide OTEL_* export settings (docs/tracing.md).
   */
  defaultEnv?: Readonly<Record<string, string>>;
  /**
   * `spec.replicas` to render. Omit (undefined) to leave the field out, e.g. in KEDA mode where the
   * HPA owns it, or when replicas are changed only through the scale subresource.
   */
  replicas?: number;
}

/** Name of the worker container when the template does not name its first container. */
export const WORKER_CONTAINER_NAME = "worker";
/** Command run when the user gives neither `command` nor `args`. */
export const WORKER_COMMAND: readonly string[] = Object.freeze(["celeriac", "worker"]);
/** Port of the worker's `/healthz`, `/readyz` and `/metrics`: the worker's default (`CELERIAC_PORT`), so it is not set in env. */
export { WORKER_PORT };
/** Name of {@link WORKER_PORT} on the container; the probes refer to it. */
export const WORKER_PORT_NAME = "http";
/** Seconds added to the queue's `timeoutSeconds` for the default termination grace period. */
export const GRACE_MARGIN_SECONDS = 30;
/** Cap of the default termination grace period, in seconds (1 h). */
export const MAX_DEFAULT_GRACE_SECONDS = 3600;
/** Directory the NATS creds Secret is mounted at (read-only). */
export const NATS_CREDS_DIR = "/var/run/secrets/celeriac.io/nats-creds";
/** File name of the creds file inside {@link NATS_CREDS_DIR}. */
export const NATS_CREDS_FILE = "nats.creds";
/** Directory the NATS TLS CA Secret is mounted at (read-only). */
export const NATS_TLS_CA_DIR = "/var/run/secrets/celeriac.io/nats-tls-ca";
/** File name of the CA certificate inside {@link NATS_TLS_CA_DIR}. */
export const NATS_TLS_CA_FILE = "ca.crt";
/** Volume names the operator adds (prefixed so they do not clash with the user's). */
export const WORKER_VOLUMES = Object.freeze({
  tmp: "celeriac-tmp",
  natsCreds: "celeriac-nats-creds",
  natsTlsCa: "celeriac-nats-tls-ca",
});

/** Capabilities the "restricted" profile lets a container add back after dropping ALL. */
const ALLOWED_ADDED_CAPABILITIES = new Set(["NET_BIND_SERVICE"]);
/** Volume sources the "restricted" profile allows. */
const ALLOWED_VOLUME_SOURCES = new Set(["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"]);

/**
 * Thrown when the user's worker settings cannot produce a valid pod: no image anywhere, or a template
 * that explicitly contradicts the Pod Security Standards "restricted" profile. Terminal: the Queue
 * must be fixed; record it as an `InvalidSpec` condition rather than retrying.
 */
export class InvalidWorkerTemplateError extends Error {
  /** Dotted path of the offending field, e.g. `spec.worker.template.spec.hostNetwork`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "InvalidWorkerTemplateError";
    this.field = field;
  }
}

/** True when `err` is an {@link InvalidWorkerTemplateError}. */
export function isInvalidWorkerTemplate(err: unknown): err is InvalidWorkerTemplateError {
  return err instanceof InvalidWorkerTemplateError;
}

/**
 * Default `terminationGracePeriodSeconds` of worker pods: the queue's handler timeout plus
 * {@link GRACE_MARGIN_SECONDS}, capped at {@link MAX_DEFAULT_GRACE_SECONDS}, so a stopping worker
 * can finish the task it is running (issue 7 item 3).
 * @param timeoutSeconds the queue's `spec.timeoutSeconds`, in seconds
 * @returns seconds
 */
export function defaultTerminationGracePeriodSeconds(timeoutSeconds: number): number {
  return Math.min(timeoutSeconds + GRACE_MARGIN_SECONDS, MAX_DEFAULT_GRACE_SECONDS);
}

/**
 * The desired worker Deployment `<queue>-workers` of a Queue.
 *
 * - Controller ownerReference to the Queue; labels `celeriac.io/queue` and `app.kubernetes.io/*`;
 *   selector on `celeriac.io/queue` + `app.kubernetes.io/instance`.
 * - First container (named `worker` unless the template names it) runs `celeriac worker` unless the
 *   user gives `command` or `args`, with the `CELERIAC_*` env (operator values win over user env of
 *   the same name, which is dropped), `POD_NAME`/`POD_NAMESPACE`, port 8080 named `http`, readiness
 *   `/readyz` and liveness `/healthz` probes (the template's own probes are kept).
 * - NATS secrets only by reference: `secretKeyRef` env for user/password, read-only Secret volumes
 *   for the creds file and CA with their paths in `CELERIAC_NATS_CREDS`/`CELERIAC_NATS_TLS_CA`.
 * - `terminationGracePeriodSeconds` from the template, else `spec.worker`, else
 *   {@link defaultTerminationGracePeriodSeconds}; `serviceAccountName` from the template, else
 *   `spec.worker`, else `<queue>-worker`.
 * - Pod Security Standards "restricted" on the pod and every container and init container, plus an
 *   emptyDir at `/tmp` (unless the user mounts something there).
 * - `RollingUpdate` with `maxUnavailable: 0`, `maxSurge: 25%` (at least one): capacity never drops
 *   during a rollout and old pods drain within their grace period; at zero replicas it is a no-op.
 *
 * Deterministic: the same input gives a deep-equal output; the input is not modified.
 * @param queue the Queue (spec with CRD defaults applied)
 * @param opts NATS settings, the default image and the replica count
 * @returns an `apps/v1` Deployment ready to apply (server-side apply or create-or-patch)
 * @throws InvalidWorkerTemplateError when no image is known, or the template sets host namespaces,
 *   hostPath or other disallowed volumes, host ports, `privileged`, `allowPrivilegeEscalation: true`,
 *   `runAsNonRoot: false`, `runAsUser: 0`, an `Unconfined` seccomp profile, or adds capabilities other
 *   than `NET_BIND_SERVICE`
 */
export function desiredWorkerDeployment(queue: Queue, opts: WorkerDeploymentOptions): V1Deployment {
  const name = queue.metadata.name;
  const namespace = queueNamespace(queue);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: workerDeploymentName(name),
      namespace,
      labels: workerLabels(name),
      ownerReferences: [queueOwnerReference(queue)],
    },
    spec: {
      ...(opts.replicas !== undefined ? { replicas: opts.replicas } : {}),
      selector: { matchLabels: workerSelectorLabels(name) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: "25%" } },
      template: desiredWorkerPodTemplate(queue, opts),
    },
  };
}

/**
 * The worker pod template alone (what {@link desiredWorkerDeployment} puts in `spec.template`).
 * Same rules, same errors.
 */
export function desiredWorkerPodTemplate(queue: Queue, opts: WorkerDeploymentOptions): V1PodTemplateSpec {
  const { name } = queue.metadata;
  const w = queue.spec.worker ?? {};
  const userTemplate = (w.template !== undefined ? structuredClone(w.template) : {}) as V1PodTemplateSpec;
  const field = w.template !== undefined ? "spec.worker.template" : "spec.worker";
  const podSpec: V1PodSpec = userTemplate.spec ?? { containers: [] };
  const userContainers = podSpec.containers ?? [];

  checkPodRestricted(podSpec, `${field}.spec`);
  userContainers.forEach((c, i) => checkContainerRestricted(c, `${field}.spec.containers[${i}]`));
  (podSpec.initContainers ?? []).forEach((c, i) => checkContainerRestricted(c, `${field}.spec.initContainers[${i}]`));

  const grace = podSpec.terminationGracePeriodSeconds ?? w.terminationGracePeriodSeconds ?? defaultTerminationGracePeriodSeconds(queue.spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS);

  const first = workerContainer(queue, opts, userContainers[0] ?? { name: WORKER_CONTAINER_NAME }, grace);
  const rest = userContainers.slice(1).map(hardenContainer);

  const volumes: V1Volume[] = [...(podSpec.volumes ?? [])];
  if ((first.volumeMounts ?? []).some((m) => m.name === WORKER_VOLUMES.tmp)) {
    volumes.push({ name: WORKER_VOLUMES.tmp, emptyDir: {} });
  }
  if (opts.nats.credsSecret) {
    volumes.push({
      name: WORKER_VOLUMES.natsCreds,
      secret: { secretName: opts.nats.credsSecret.name, items: [{ key: opts.nats.credsSecret.key, path: NATS_CREDS_FILE }] },
    });
  }
  if (opts.nats.tlsCaSecret) {
    volumes.push({
      name: WORKER_VOLUMES.natsTlsCa,
      secret: { secretName: opts.nats.tlsCaSecret.name, items: [{ key: opts.nats.tlsCaSecret.key, path: NATS_TLS_CA_FILE }] },
    });
  }

  const out: V1PodSpec = { ...podSpec, containers: [first, ...rest] };
  if (podSpec.initContainers) out.initContainers = podSpec.initContainers.map(hardenContainer);
  out.serviceAccountName = workerServiceAccountName(queue);
  setIfAbsent(out, "nodeSelector", w.nodeSelector !== undefined ? { ...w.nodeSelector } : undefined);
  setIfAbsent(out, "tolerations", w.tolerations !== undefined ? (structuredClone(w.tolerations) as V1Toleration[]) : undefined);
  out.terminationGracePeriodSeconds = grace;
  out.securityContext = hardenPodSecurityContext(podSpec.securityContext);
  out.volumes = volumes;

  const meta = userTemplate.metadata ?? {};
  return {
    metadata: {
      ...meta,
      labels: { ...(w.podLabels ?? {}), ...(meta.labels ?? {}), ...workerLabels(name) },
      ...(w.podAnnotations !== undefined || meta.annotations !== undefined
        ? { annotations: { ...(w.podAnnotations ?? {}), ...(meta.annotations ?? {}) } }
        : {}),
    },
    spec: out,
  };
}

/** The first container: the user's (or an empty one) with simple fields filled and Celeriac's contract applied. */
function workerContainer(queue: Queue, opts: WorkerDeploymentOptions, user: V1Container, grace: number): V1Container {
  const w = queue.spec.worker ?? {};
  const c: V1Container = { ...user, name: user.name || WORKER_CONTAINER_NAME };

  const image = c.image ?? w.image ?? opts.workerImage;
  if (image === undefined || image === "") {
    throw new InvalidWorkerTemplateError("spec.worker.image", "no worker image: set spec.worker.image or the template's first container image (the operator has no default worker image)");
  }
  c.image = image;
  setIfAbsent(c, "imagePullPolicy", w.imagePullPolicy);
  // The worker writes its startup error to the termination message; a crash before that (or a
  // custom command) still shows its last log lines in the Pod status, where the operator reads them.
  c.terminationMessagePolicy ??= "FallbackToLogsOnError";
  if (c.command === undefined && c.args === undefined) {
    if (w.command === undefined && w.args === undefined) {
      c.command = [...WORKER_COMMAND];
    } else {
      if (w.command !== undefined) c.command = [...w.command];
      if (w.args !== undefined) c.args = [...w.args];
    }
  }
  setIfAbsent(c, "resources", w.resources !== undefined ? (structuredClone(w.resources) as V1ResourceRequirements) : undefined);

  const ours = celeriacEnv(queue, opts, grace);
  const reserved = new Set(ours.map((e) => e.name));
  const seen = new Set<string>();
  const userEnv: V1EnvVar[] = [];
  for (const e of [...(c.env ?? []), ...((w.env ?? []) as V1EnvVar[])]) {
    if (reserved.has(e.name) || seen.has(e.name)) continue;
    seen.add(e.name);
    userEnv.push(structuredClone(e));
  }
  const defaults = Object.entries(opts.defaultEnv ?? {}).filter(([name]) => !reserved.has(name) && !seen.has(name)).map(([name, value]) => ({ name, value }));
  c.env = [...ours, ...userEnv, ...defaults];
  const envFrom = [...(c.envFrom ?? []), ...((structuredClone(w.envFrom ?? []) as V1EnvFromSource[]))];
  if (envFrom.length > 0) c.envFrom = envFrom;
  else delete c.envFrom;

  c.ports = [
    { name: WORKER_PORT_NAME, containerPort: WORKER_PORT, protocol: "TCP" },
    ...(c.ports ?? []).filter((p) => p.name !== WORKER_PORT_NAME && p.containerPort !== WORKER_PORT),
  ];
  // Readiness every 2 s from 1 s after start: a worker pulls before it is Ready, but the ReplicaSet
  // controller removes not-ready pods first on scale-down, so a busy new worker should turn Ready soon.
  c.readinessProbe ??= probe("/readyz", { initialDelaySeconds: 1, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 3 });
  // Liveness is generous: a worker busy with CPU-bound handlers must not be killed for a slow answer.
  c.livenessProbe ??= probe("/healthz", { periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 3 });

  const mounts: V1VolumeMount[] = [...(c.volumeMounts ?? [])];
  if (!mounts.some((m) => m.mountPath === "/tmp")) mounts.push({ name: WORKER_VOLUMES.tmp, mountPath: "/tmp" });
  if (opts.nats.credsSecret) mounts.push({ name: WORKER_VOLUMES.natsCreds, mountPath: NATS_CREDS_DIR, readOnly: true });
  if (opts.nats.tlsCaSecret) mounts.push({ name: WORKER_VOLUMES.natsTlsCa, mountPath: NATS_TLS_CA_DIR, readOnly: true });
  c.volumeMounts = mounts;

  return hardenContainer(c);
}

/** The operator's environment of the worker container, in a fixed order (names from `api/worker-env.ts`). */
function celeriacEnv(queue: Queue, opts: WorkerDeploymentOptions, grace: number): V1EnvVar[] {
  const s = queue.spec;
  const E = WORKER_ENV;
  const field = (fieldPath: string): V1EnvVar["valueFrom"] => ({ fieldRef: { fieldPath } });
  const env: V1EnvVar[] = [
    { name: E.podName.env, valueFrom: field("metadata.name") },
    { name: E.podNamespace.env, valueFrom: field("metadata.namespace") },
    { name: E.workerName.env, valueFrom: field("metadata.name") },
    { name: E.queue.env, value: queue.metadata.name },
    { name: E.namespace.env, value: queueNamespace(queue) },
    { name: E.concurrency.env, value: String(s.concurrency ?? DEFAULT_CONCURRENCY) },
    { name: E.ackWaitSeconds.env, value: String(s.ackWaitSeconds ?? DEFAULT_ACK_WAIT_SECONDS) },
    { name: E.timeoutSeconds.env, value: String(s.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) },
    { name: E.gracePeriodSeconds.env, value: String(grace) },
    { name: E.natsUrl.env, value: opts.nats.url },
  ];
  if (opts.nats.credsSecret) env.push({ name: E.natsCreds.env, value: `${NATS_CREDS_DIR}/${NATS_CREDS_FILE}` });
  if (opts.nats.userSecret) {
    const u = opts.nats.userSecret;
    env.push({ name: E.natsUser.env, valueFrom: { secretKeyRef: { name: u.name, key: u.userKey } } });
    env.push({ name: E.natsPassword.env, valueFrom: { secretKeyRef: { name: u.name, key: u.passwordKey } } });
  }
  if (opts.nats.tlsCaSecret) env.push({ name: E.natsTlsCa.env, value: `${NATS_TLS_CA_DIR}/${NATS_TLS_CA_FILE}` });
  return env;
}

function probe(path: string, timing: { initialDelaySeconds?: number; periodSeconds: number; timeoutSeconds: number; failureThreshold: number }): V1Probe {
  return { httpGet: { path, port: WORKER_PORT_NAME }, ...timing };
}

/** Applies {@link RESTRICTED_CONTAINER_SECURITY_CONTEXT} over the container's own (already checked) context. */
function hardenContainer(c: V1Container): V1Container {
  const sc = c.securityContext ?? {};
  const add = sc.capabilities?.add;
  return {
    ...c,
    securityContext: {
      ...sc,
      allowPrivilegeEscalation: false,
      capabilities: { ...(add !== undefined && add.length > 0 ? { add: [...add] } : {}), drop: ["ALL"] },
      readOnlyRootFilesystem: sc.readOnlyRootFilesystem ?? true,
      runAsNonRoot: true,
    },
  };
}

function hardenPodSecurityContext(sc: V1PodSecurityContext | undefined): V1PodSecurityContext {
  const seccomp = sc?.seccompProfile?.type === "Localhost" ? { ...sc.seccompProfile } : { type: "RuntimeDefault" };
  return { ...(sc ?? {}), runAsNonRoot: true, seccompProfile: seccomp };
}

function checkSecurityContext(sc: V1SecurityContext | V1PodSecurityContext | undefined, path: string): void {
  if (sc === undefined) return;
  if (sc.runAsNonRoot === false) throw new InvalidWorkerTemplateError(`${path}.securityContext.runAsNonRoot`, "must not be false (Pod Security Standards restricted)");
  if (sc.runAsUser === 0) throw new InvalidWorkerTemplateError(`${path}.securityContext.runAsUser`, "must not be 0 (Pod Security Standards restricted)");
  const seccomp = sc.seccompProfile?.type;
  if (seccomp !== undefined && seccomp !== "RuntimeDefault" && seccomp !== "Localhost") {
    throw new InvalidWorkerTemplateError(`${path}.securityContext.seccompProfile.type`, `"${seccomp}" is not allowed; use RuntimeDefault or Localhost (Pod Security Standards restricted)`);
  }
}

function checkPodRestricted(spec: V1PodSpec, path: string): void {
  for (const key of ["hostNetwork", "hostPID", "hostIPC"] as const) {
    if (spec[key] === true) throw new InvalidWorkerTemplateError(`${path}.${key}`, "host namespaces are not allowed (Pod Security Standards restricted)");
  }
  checkSecurityContext(spec.securityContext, path);
  (spec.volumes ?? []).forEach((v, i) => {
    for (const key of Object.keys(v)) {
      if (key !== "name" && !ALLOWED_VOLUME_SOURCES.has(key)) {
        throw new InvalidWorkerTemplateError(`${path}.volumes[${i}].${key}`, `volume type ${key} is not allowed (Pod Security Standards restricted)`);
      }
    }
  });
}

function checkContainerRestricted(c: V1Container, path: string): void {
  const sc = c.securityContext;
  if (sc?.privileged === true) throw new InvalidWorkerTemplateError(`${path}.securityContext.privileged`, "must not be true (Pod Security Standards restricted)");
  if (sc?.allowPrivilegeEscalation === true) {
    throw new InvalidWorkerTemplateError(`${path}.securityContext.allowPrivilegeEscalation`, "must not be true (Pod Security Standards restricted)");
  }
  for (const cap of sc?.capabilities?.add ?? []) {
    if (!ALLOWED_ADDED_CAPABILITIES.has(cap)) {
      throw new InvalidWorkerTemplateError(`${path}.securityContext.capabilities.add`, `capability ${cap} is not allowed; only NET_BIND_SERVICE (Pod Security Standards restricted)`);
    }
  }
  checkSecurityContext(sc, path);
  (c.ports ?? []).forEach((p, i) => {
    if (p.hostPort !== undefined && p.hostPort !== 0) {
      throw new InvalidWorkerTemplateError(`${path}.ports[${i}].hostPort`, "host ports are not allowed (Pod Security Standards baseline)");
    }
  });
}

function setIfAbsent<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (obj[key] === undefined && value !== undefined) obj[key] = value;
}

/**
 * Whether the Queue's spec tells the worker which tasks module to load: `CELERIAC_TASKS` in the first
 * container's or `spec.worker`'s env, a `--tasks` argument, or any `envFrom` (whose keys are unknown
 * here). False does not make the spec invalid on its own — an image may set `CELERIAC_TASKS` itself —
 * only together with workers that exit at start. Pure.
 */
export function specNamesTasksModule(queue: Queue): boolean {
  const w = queue.spec.worker ?? {};
  const first = ((w.template as V1PodTemplateSpec | undefined)?.spec?.containers ?? [])[0];
  const env = [...(first?.env ?? []), ...((w.env ?? []) as V1EnvVar[])];
  if (env.some((e) => e.name === WORKER_ENV.tasks.env)) return true;
  if ((first?.envFrom ?? []).length > 0 || (w.envFrom ?? []).length > 0) return true;
  const argv = [...(first?.command ?? []), ...(first?.args ?? []), ...(w.command ?? []), ...(w.args ?? [])];
  return argv.some((a) => a === WORKER_ENV.tasks.flag || a.startsWith(`${WORKER_ENV.tasks.flag}=`));
}
