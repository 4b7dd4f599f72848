/**
 * Helpers for the end-to-end tests: a platform (`startPlatform`) plus real kubectl against it — or,
 * with `KUBECONFIG` and `CELERIAC_E2E_NATS_URL` set, a real cluster where Celeriac is installed (see
 * docs/testing.md); tests that need local processes or shared files are then skipped with `LOCAL_ONLY`.
 */
import { mkdtempSync, readFileSync, existsSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPlatform, type Platform, type PlatformOptions } from "../../devcluster/platform/platform.js";
import { k8sTools, runTool, type ToolRun } from "../helpers/k8s-tools.js";

/**
 * True when the tests run against a real cluster: `KUBECONFIG` names it and `CELERIAC_E2E_NATS_URL` the
 * NATS its operator uses (reachable from the test machine). Both are needed, so a developer's KUBECONFIG
 * alone never sends the suite to their cluster.
 */
export const REAL_CLUSTER = Boolean(process.env.KUBECONFIG && process.env.CELERIAC_E2E_NATS_URL);

/** `skip` value for tests that need the local dev platform (operator processes, the shared events file). */
export const LOCAL_ONLY: string | false = REAL_CLUSTER ? "needs the local dev platform (operator processes, shared events file)" : false;

/** A platform with a kubectl bound to it. */
export interface E2E {
  platform: Platform;
  dir: string;
  /** File the e2e tasks append their events to. */
  eventsLog: string;
  kubectl(args: string[], stdin?: string): Promise<ToolRun>;
  /** kubectl apply -f - of a YAML document string. */
  apply(yaml: string): Promise<ToolRun>;
  /** Parsed lines of the events log. */
  events(): Array<{ event: string; taskId: string; pid: number; at: number; attempt?: number }>;
  stop(): Promise<void>;
}

/** Starts a platform in a temp dir. */
export async function startE2E(opts: Omit<PlatformOptions, "dir"> = {}): Promise<E2E> {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-e2e-"));
  const eventsLog = join(dir, "events.log");
  const platform = REAL_CLUSTER ? realCluster(dir) : await startPlatform({ dir, restartBackoffBaseMs: 200, ...opts });
  const tools = k8sTools();
  const kubectlBin = tools.kubectl132 ?? tools.kubectl134 ?? "/usr/bin/kubectl";
  const env = { KUBECONFIG: platform.kubeconfigPath, KUBECACHEDIR: join(dir, "kube-cache") };
  const kubectl = async (args: string[], stdin?: string): Promise<ToolRun> => {
    if (stdin === undefined) return runTool(kubectlBin, args, env);
    const f = join(dir, `stdin-${Date.now()}-${Math.random().toString(16).slice(2)}.yaml`);
    writeFileSync(f, stdin);
    return runTool(kubectlBin, args.map((a) => (a === "-" ? f : a)), env);
  };
  return {
    platform,
    dir,
    eventsLog,
    kubectl,
    apply: (yaml) => kubectl(["apply", "-f", "-"], yaml),
    events: () => (existsSync(eventsLog) ? readFileSync(eventsLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []),
    stop: async () => {
      await platform.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A stand-in `Platform` for a real cluster: its kubeconfig and NATS URL; the operations on local
 * processes throw (tests using them are skipped with LOCAL_ONLY).
 */
function realCluster(dir: string): Platform {
  const local = (): never => {
    throw new Error("needs the local dev platform: unset CELERIAC_E2E_NATS_URL");
  };
  return {
    dir,
    kubeconfigPath: (process.env.KUBECONFIG ?? "").split(":")[0]!,
    apiUrl: "",
    natsUrl: process.env.CELERIAC_E2E_NATS_URL!,
    nats: undefined as unknown as Platform["nats"],
    operators: [],
    stopOperator: local,
    startOperator: local,
    stopNats: local,
    startNats: local,
    restarts: () => ({ nats: 0, operators: [] }),
    operatorPorts: [],
    stop: async () => undefined,
  };
}

/**
 * A Queue manifest running the e2e tasks module, logging to `eventsLog`. On a real cluster the worker
 * image is `CELERIAC_E2E_WORKER_IMAGE` (the worker image plus `dist/test/fixtures/e2e/tasks.js`).
 */
export function queueYaml(name: string, eventsLog: string, extra = "", autoscaling = "    minReplicas: 1\n    maxReplicas: 2\n"): string {
  const image = REAL_CLUSTER ? process.env.CELERIAC_E2E_WORKER_IMAGE ?? "celeriac-e2e:dev" : "celeriac-e2e:dev";
  const tasks = REAL_CLUSTER ? "/app/dist/test/fixtures/e2e/tasks.js" : "dist/test/fixtures/e2e/tasks.js";
  return `apiVersion: celeriac.io/v1alpha1
kind: Queue
metadata:
  name: ${name}
spec:
  worker:
    image: ${image}
    command: ["celeriac", "worker"]
    env:
      - name: CELERIAC_TASKS
        value: ${tasks}
      - name: CELERIAC_E2E_LOG
        value: ${eventsLog}
  retry:
    backoff:
      initialSeconds: 0.2
      factor: 1
  autoscaling:
${autoscaling}${extra}`;
}

/** Operator flags for leader-election tests: 3 s lease, 2 s renew deadline, 0.5 s retry. */
export const HA_OPERATOR_ARGS: readonly string[] = ["--lease-duration-seconds", "3", "--renew-deadline-seconds", "2", "--retry-period-seconds", "0.5"];

/** The identity holding the operator's Lease, or `""` when there is none yet. */
export async function leaseHolder(e: E2E): Promise<string> {
  const r = await e.kubectl(["get", "lease", "celeriac-operator", "-o", "jsonpath={.spec.holderIdentity}"]);
  return r.code === 0 ? r.stdout : "";
}

/** A Task manifest. */
export function taskYaml(name: string, queue: string, task: string, spec = ""): string {
  return `apiVersion: celeriac.io/v1alpha1
kind: Task
metadata:
  name: ${name}
spec:
  queue: ${queue}
  task: ${task}
${spec}`;
}
