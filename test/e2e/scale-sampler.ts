/**
 * Samples a queue's worker Deployment and Pods over time, for the autoscaling test and bench: when the
 * operator asked for N replicas, when N pods ran, when they were Ready, and which worker processes ran.
 */
import { LABELS } from "../../api/constants.js";

/** One observation of a worker Deployment and its Pods. */
export interface Sample {
  at: number;
  /** Deployment `spec.replicas` (what the operator asked for). */
  spec: number;
  /** Pods in phase Running (process started). */
  running: number;
  /** Pods with condition Ready True. */
  ready: number;
  /** Worker process ids of the Pods (from `containerID: local://<pid>`). */
  pids: number[];
}

/**
 * Samples the worker Deployment and Pods of `queue` every `everyMs` (ms) straight from the dev API server
 * (plain http) until stopped. Failed samples are skipped.
 */
export function sampler(apiUrl: string, queue: string, everyMs = 50, namespace = "default"): { samples: Sample[]; stop(): Promise<void> } {
  const samples: Sample[] = [];
  let stopped = false;
  const deploy = `${apiUrl}/apis/apps/v1/namespaces/${namespace}/deployments/${queue}-workers`;
  const pods = `${apiUrl}/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(`${LABELS.queue}=${queue}`)}`;
  type Pod = { status?: { phase?: string; conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ containerID?: string }> } };
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now();
      try {
        const [d, p] = await Promise.all([fetch(deploy).then((r) => (r.ok ? r.json() : undefined)), fetch(pods).then((r) => r.json())]);
        const items = ((p as { items?: Pod[] }).items ?? []);
        samples.push({
          at,
          spec: (d as { spec?: { replicas?: number } } | undefined)?.spec?.replicas ?? 0,
          running: items.filter((x) => x.status?.phase === "Running").length,
          ready: items.filter((x) => x.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length,
          pids: items.map((x) => Number(/^local:\/\/(\d+)$/.exec(x.status?.containerStatuses?.[0]?.containerID ?? "")?.[1])).filter((n) => n > 0),
        });
      } catch {
        // a failed sample is skipped
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    samples,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

/** Time of the first sample at or after `from` matching `pred`, as ms since `from`. */
export function firstAfter(samples: Sample[], from: number, pred: (s: Sample) => boolean): number | undefined {
  const s = samples.find((x) => x.at >= from && pred(x));
  return s ? s.at - from : undefined;
}

