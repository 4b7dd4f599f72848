/**
 * A KV put through the pipelined publisher: a put is a publish to the key's subject
 * (`$KV.<bucket>.<key>`, as @nats-io/kv builds it, mirrors and API prefixes included) confirmed by
 * the bucket's stream `KV_<bucket>` — so it costs what an enqueue costs, not a nats.js request.
 */
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { PipelinedPublisher } from "./pipelined-publisher.js";

/** What this module reads of @nats-io/kv's bucket implementation (its public JS members). */
interface BucketImpl {
  js?: { nc?: NatsConnection };
  encodeKey?: (k: string) => string;
  validateKey?: (k: string) => void;
  subjectForKey?: (k: string, edit?: boolean) => string;
  codec?: { value?: { encode?: (v: Uint8Array | string) => Uint8Array } };
}

/** How a bucket's puts are published; undefined when `kv` is not @nats-io/kv's bucket (use `kv.put`). */
export interface KvPutTarget {
  /** The publisher of the bucket's connection. */
  readonly publisher: PipelinedPublisher;
  /**
   * The subject a put of `key` is published to.
   * @throws Error "invalid key: …" (from @nats-io/kv) for a key KV refuses
   */
  subject(key: string): string;
}

/**
 * The put target of a bucket opened with @nats-io/kv (`new Kvm(js).open(name)`): its subject
 * builder and the pipelined publisher of its connection. Undefined for any other `KV` (a test
 * double, a custom codec): callers then use `kv.put`.
 */
export function kvPutTarget(kv: KV): KvPutTarget | undefined {
  const b = kv as unknown as BucketImpl;
  const nc = b.js?.nc;
  const { encodeKey, validateKey, subjectForKey } = b;
  if (!nc || typeof encodeKey !== "function" || typeof validateKey !== "function" || typeof subjectForKey !== "function") return undefined;
  // a custom value codec changes the bytes: only the no-op codec's bytes are known here
  const probe = b.codec?.value?.encode?.("x");
  if (!(probe instanceof Uint8Array) || probe.length !== 1 || probe[0] !== 0x78) return undefined;
  return {
    publisher: PipelinedPublisher.for(nc),
    subject(key: string): string {
      const ek = encodeKey.call(b, key);
      validateKey.call(b, ek);
      return subjectForKey.call(b, ek, true);
    },
  };
}

/** Put targets per bucket object, so the probe above runs once per bucket. */
const targets = new WeakMap<KV, KvPutTarget | null>();

/**
 * Puts `value` under `key` and resolves with the entry's revision once the bucket's stream stored
 * it (what `kv.put` does, through {@link PipelinedPublisher}; falls back to `kv.put` for a bucket
 * that is not @nats-io/kv's).
 * @param timeoutMs how long to wait for the stream's confirmation, ms (default the publisher's, 5000)
 * @throws (rejects) as `PipelinedPublisher.publish` (a `TimeoutError`, `PublishInterruptedError`,
 *   a JetStream API error), or Error "invalid key" for a key KV refuses
 */
export async function kvPut(kv: KV, key: string, value: string | Uint8Array, timeoutMs?: number): Promise<number> {
  let t = targets.get(kv);
  if (t === undefined) {
    t = kvPutTarget(kv) ?? null;
    targets.set(kv, t);
  }
  if (!t) return kv.put(key, value, timeoutMs === undefined ? {} : { timeout: timeoutMs });
  const pa = await t.publisher.publish(t.subject(key), value, timeoutMs === undefined ? {} : { timeoutMs });
  return pa.seq;
}
