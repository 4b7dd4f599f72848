/**
 * Step-end notices: one KV watch of `wf.>` per results bucket a running Workflow uses. Workers write
 * `wf.<workflow uid>.<task id>` when a step's task ends (api/workflow.ts `WorkflowStepEvent`); each
 * notice is handed to `onNotice`, which records it and enqueues the Workflow — so a dependent step
 * is published a few milliseconds after its dependency finished, with no polling. A broken watch is
 * opened again after a back-off; notices written meanwhile are caught up by the reconciler's
 * periodic re-read of its unfinished tasks.
 */
import { KvWatchInclude, type KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { WORKFLOW_EVENT_PREFIX, type WorkflowStepEvent } from "../../api/workflow.js";
import { keepWatching } from "../runtime/kv-watch.js";

/** What `StepNotices` needs. */
export interface StepNoticesDeps {
  /** The results bucket of a queue. */
  bucket(namespace: string, queue: string): Promise<KV>;
  /** Called with each notice: the Workflow uid and the notice. Never throws (errors are logged). */
  onNotice(namespace: string, uid: string, notice: WorkflowStepEvent): void;
  log?: Logger;
}


/** Watches the step-end notices of the results buckets it is asked to (see the module header). */
export class StepNotices {
  readonly #d: StepNoticesDeps;
  readonly #watches = new Map<string, { stop: () => void }>();
  #stopped = false;

  /** @param deps buckets, the notice callback and a logger */
  constructor(deps: StepNoticesDeps) {
    this.#d = deps;
  }

  /** Starts watching queue `queue`'s results bucket in `namespace` (once; later calls do nothing). */
  watch(namespace: string, queue: string): void {
    const k = `${namespace}/${queue}`;
    if (this.#stopped || this.#watches.has(k)) return;
    this.#watches.set(
      k,
      keepWatching({
        bucket: () => this.#d.bucket(namespace, queue),
        watch: { key: `${WORKFLOW_EVENT_PREFIX}>`, include: KvWatchInclude.UpdatesOnly, ignoreDeletes: true },
        what: "Workflow step-notice watch",
        fields: { namespace, queue },
        ...(this.#d.log ? { log: this.#d.log } : {}),
        onEntry: (e) => {
          if (e.operation !== "PUT") return;
          // wf.<uid>.<task id>
          const rest = e.key.slice(WORKFLOW_EVENT_PREFIX.length);
          const dot = rest.indexOf(".");
          if (dot <= 0) return;
          try {
            this.#d.onNotice(namespace, rest.slice(0, dot), e.json<WorkflowStepEvent>());
          } catch (err) {
            this.#d.log?.warn({ err, key: e.key }, "Ignored a malformed workflow step notice");
          }
        },
      }),
    );
  }

  /** Stops every watch. */
  stop(): void {
    this.#stopped = true;
    for (const w of this.#watches.values()) w.stop();
    this.#watches.clear();
  }
}
