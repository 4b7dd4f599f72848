/**
 * `celeriac workflow retry <name>`: asks the operator to re-run a Failed or Cancelled Workflow from its
 * failed steps (Argo's `argo retry`). It sets the annotation `celeriac.io/retry` (ANNOTATIONS.retry) to
 * the current RFC 3339 time with a conditional merge patch; the operator, seeing a value that differs
 * from `status.retryRequest`, re-runs the failed and never-run steps (new task ids `_g<n>`) and keeps
 * the succeeded ones' results. The spec is not touched (it is immutable).
 */
import type { Command } from "commander";
import { ANNOTATIONS, FIELD_MANAGERS, REASONS } from "../../api/constants.js";
import type { Workflow } from "../../api/objects.js";
import type { KubeClient } from "../../kube/k8s-client.js";

/** Phases a Workflow can be retried from. */
export const RETRYABLE_PHASES: readonly string[] = ["Failed", "Cancelled"];

/** Options of {@link retryWorkflow}. */
export interface RetryOptions {
  /** Workflow name. */
  name: string;
  /** Its namespace. */
  namespace: string;
  /** The time written to the annotation (default: now); written as RFC 3339 with milliseconds. */
  now?: Date;
}

/** What {@link retryWorkflow} did. */
export interface RetryOutcome {
  /** The annotation value written (RFC 3339, e.g. `2026-12-03T14:05:00.123Z`). */
  requestedAt: string;
  /** The phase the Workflow had (Failed or Cancelled). */
  phase: string;
  /** Steps the operator will run again: those not Succeeded, in spec order. */
  steps: string[];
}

/** Refusal of a retry: the Workflow does not exist, or is not Failed or Cancelled. The message says why and what to do. */
export class WorkflowRetryError extends Error {
  override readonly name = "WorkflowRetryError";
}

/** `name (Phase)` list of the Workflows in a namespace, for the not-found message. */
async function existing(kc: KubeClient, namespace: string): Promise<string> {
  const [{ listObjects, isNotFound }, { CELERIAC_TYPES }] = await Promise.all([import("../../kube/k8s-client.js"), import("../../api/objects.js")]);
  try {
    const { items } = await listObjects<Workflow>(kc, CELERIAC_TYPES.Workflow, { namespace });
    if (items.length === 0) return `there are no Workflows in namespace "${namespace}"`;
    const names = items.map((w) => `${w.metadata?.name ?? "?"} (${w.status?.phase ?? "no status"})`).sort();
    return `Workflows in namespace "${namespace}": ${names.slice(0, 20).join(", ")}${names.length > 20 ? `, … (${names.length} in all)` : ""}`;
  } catch (e) {
    if (isNotFound(e)) return "the cluster has no Workflow resource type (install the Celeriac CRDs: crds/ or the Helm chart)";
    throw e;
  }
}

/**
 * Requests a retry-from-failed of one Workflow. Reads it, checks its phase, and patches the annotation
 * conditionally on the resourceVersion it read (a concurrent change is re-read and re-checked, up to
 * 5 times).
 * @param kc cluster access
 * @returns what was written and which steps will run again
 * @throws WorkflowRetryError when the Workflow does not exist (the message lists those that do) or its
 *   phase is not Failed or Cancelled (the message says its phase); other API errors as
 *   `get/patch workflows <ns>/<name>` with the cause
 */
export async function retryWorkflow(kc: KubeClient, opts: RetryOptions): Promise<RetryOutcome> {
  const [{ getObject, mergePatch, isNotFound, isConflict }, { CELERIAC_TYPES }] = await Promise.all([import("../../kube/k8s-client.js"), import("../../api/objects.js")]);
  const ref = { ...CELERIAC_TYPES.Workflow, namespace: opts.namespace, name: opts.name };
  const requestedAt = (opts.now ?? new Date()).toISOString();
  for (let attempt = 1; ; attempt++) {
    let wf: Workflow;
    try {
      wf = await getObject<Workflow>(kc, ref);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      throw new WorkflowRetryError(`workflow "${opts.name}" not found in namespace "${opts.namespace}": ${await existing(kc, opts.namespace)}`, { cause: e });
    }
    const phase = wf.status?.phase;
    if (phase === undefined || !RETRYABLE_PHASES.includes(phase)) {
      const now = phase === undefined ? "has no status yet (the operator has not started it)" : `is ${phase}`;
      const hint = phase === "Succeeded" ? "there is nothing to retry" : "wait until it ends (kubectl wait --for=condition=Failed workflow/" + opts.name + ")";
      throw new WorkflowRetryError(`workflow "${opts.name}" in namespace "${opts.namespace}" ${now}: only a Failed or Cancelled Workflow can be retried; ${hint}`);
    }
    const failed = wf.status?.conditions?.find((c) => c.type === "Failed");
    if (failed?.status === "True" && failed.reason === REASONS.InvalidSpec) {
      throw new WorkflowRetryError(`workflow "${opts.name}" in namespace "${opts.namespace}" failed because its spec is invalid (${failed.message}): a retry runs the same spec, which cannot change; delete it and apply a fixed one (celeriac validate checks it first)`);
    }
    const patch = { metadata: { resourceVersion: wf.metadata?.resourceVersion, annotations: { [ANNOTATIONS.retry]: requestedAt } } };
    try {
      await mergePatch(kc, ref, patch, FIELD_MANAGERS.client);
    } catch (e) {
      if (isConflict(e) && attempt < 5) continue;
      if (isNotFound(e)) throw new WorkflowRetryError(`workflow "${opts.name}" was deleted in namespace "${opts.namespace}" before the retry was requested`, { cause: e });
      throw e;
    }
    const steps = (wf.status?.steps ?? []).filter((s) => s.phase !== "Succeeded").map((s) => s.name);
    return { requestedAt, phase, steps };
  }
}

/** Flags of `celeriac workflow retry`. */
interface RetryFlags {
  namespace?: string;
  kubeconfig?: string;
}

/**
 * Returns the `workflow` group of `program`, creating it on first use.
 * @param program the root `celeriac` command
 */
function workflowGroup(program: Command): Command {
  return program.commands.find((c) => c.name() === "workflow") ?? program.command("workflow").description("act on Workflow resources (DAGs of tasks)");
}

/** Registers `celeriac workflow retry`. */
export function register(program: Command): void {
  workflowGroup(program)
    .command("retry")
    .description(`re-run a Failed or Cancelled Workflow from its failed steps (keeps the succeeded steps' results): sets the ${ANNOTATIONS.retry} annotation to the current time`)
    .argument("<name>", "Workflow name")
    .option("-n, --namespace <ns>", "namespace of the Workflow (default: the kubeconfig context's, else default)")
    .option("--kubeconfig <path>", "kubeconfig file (env KUBECONFIG; default: in-cluster, then ~/.kube/config)")
    .action(async (name: string, flags: RetryFlags) => {
      const { loadKubeConfig } = await import("../../kube/kubeconfig.js");
      const kc = loadKubeConfig(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {});
      const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
      const r = await retryWorkflow(kc, { name, namespace });
      const steps = r.steps.length > 0 ? `; steps to run again: ${r.steps.join(", ")}` : "";
      console.log(`workflow.celeriac.io/${name} retry requested (${ANNOTATIONS.retry}=${r.requestedAt}; was ${r.phase})${steps}`);
    });
}
