/**
 * Helpers for the end-to-end tests: a platform (`startPlatform`) plus real kubectl against it.
 */
import { mkdtempSync, readFileSync, existsSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPlatform, type Platform, type PlatformOptions } from "../../devcluster/platform/platform.js";
import { k8sTools, runTool, type ToolRun } from "../helpers/k8s-tools.js";

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
  const platform = await startPlatform({ dir, restartBackoffBaseMs: 200, ...opts });
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

/** A Queue manifest running the e2e tasks module, logging to `eventsLog`. */
export function queueYaml(name: string, eventsLog: string, extra = ""): string {
  return `apiVersion: celeriac.io/v1alpha1
kind: Queue
metadata:
  name: ${name}
spec:
  worker:
    image: celeriac-e2e:dev
    command: ["celeriac", "worker"]
    env:
      - name: CELERIAC_TASKS
        value: dist/test/fixtures/e2e/tasks.js
      - name: CELERIAC_E2E_LOG
        value: ${eventsLog}
  retry:
    backoff:
      initialSeconds: 0.2
      factor: 1
  autoscaling:
    minReplicas: 1
    maxReplicas: 2
${extra}`;
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
