/**
 * The operator's `TaskPublisher`: publishes Task messages and revokes deleted Tasks over JetStream,
 * with the same code as `celeriac/client` (nats/task-publish.ts).
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { TaskMessage } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import { publishTaskMessage, revokeTask } from "../../nats/task-publish.js";
import type { TaskPublisher } from "./task-reconciler.js";

/** Publishes over JetStream; opens each queue's results bucket once. */
export class JetStreamTaskPublisher implements TaskPublisher {
  readonly #js: JetStreamClient;
  readonly #buckets = new Map<string, Promise<KV>>();

  constructor(js: JetStreamClient) {
    this.#js = js;
  }

  /** @throws Error when JetStream does not confirm within 30 s */
  publish(msg: TaskMessage): Promise<void> {
    return publishTaskMessage(this.#js, queueNames(msg.namespace, msg.queue), msg);
  }

  /** @throws Error when the results bucket cannot be opened or written */
  async revoke(namespace: string, queue: string, id: string): Promise<void> {
    const bucket = queueNames(namespace, queue).resultsBucket;
    let kv = this.#buckets.get(bucket);
    if (!kv) {
      kv = new Kvm(this.#js).open(bucket);
      kv.catch(() => this.#buckets.delete(bucket));
      this.#buckets.set(bucket, kv);
    }
    await revokeTask(await kv, { namespace, queue }, id);
  }
}
