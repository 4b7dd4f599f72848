/**
 * The operator's informer against the in-memory API server when the watch history is compacted
 * (issue 13, the `watch-expired` fault): an open watch ended by ERROR 410 and a re-watch from a
 * compacted resourceVersion both lead to a relist, and no add, update or delete made meanwhile is
 * missed — the cache ends equal to the server's list and every handler saw every change.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { COMPACT_PATH } from "../../devcluster/server/http.js";
import { apiServerSource, Informer, type ListWatchSource } from "../../operator/runtime/informer.js";
import { createObject, deleteObject, listObjects, mergePatch, type KubeObject } from "../../kube/k8s-client.js";
import { TASKS, eventually, startCluster, taskObject, type TestCluster } from "./runtime/cluster.js";

const NS = "default";

/** What the handlers saw, by object name. */
class Seen {
  adds = new Map<string, number>();
  updates = new Map<string, string[]>();
  deletes = new Map<string, number>();

  attach(inf: Informer<KubeObject>): void {
    inf.on("add", (o) => this.adds.set(o.metadata!.name!, (this.adds.get(o.metadata!.name!) ?? 0) + 1));
    inf.on("update", (_old, o) => this.updates.set(o.metadata!.name!, [...(this.updates.get(o.metadata!.name!) ?? []), o.metadata?.labels?.round ?? ""]));
    inf.on("delete", (o) => this.deletes.set(o.metadata!.name!, (this.deletes.get(o.metadata!.name!) ?? 0) + 1));
  }
}

/** A real API-server source whose watch calls wait for `open()` while closed, and that records each watch's start RV and end. */
class GatedSource implements ListWatchSource<KubeObject> {
  starts: string[] = [];
  ends: unknown[] = [];
  private gate: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;

  constructor(private readonly real: ListWatchSource<KubeObject>) {}

  list(signal: AbortSignal): ReturnType<ListWatchSource<KubeObject>["list"]> {
    return this.real.list(signal);
  }

  async watch(rv: string, onEvent: Parameters<ListWatchSource<KubeObject>["watch"]>[1], onDone: (err: unknown) => void): Promise<() => void> {
    await this.gate;
    this.starts.push(rv);
    return this.real.watch(rv, onEvent, (err) => {
      this.ends.push(err);
      onDone(err);
    });
  }

  close(): void {
    this.gate = new Promise((r) => (this.release = r));
  }

  open(): void {
    this.release?.();
  }
}

describe("when the API server compacts the watch history under the informer", () => {
  let c: TestCluster;
  const informers: Informer<KubeObject>[] = [];
  const compact = async (): Promise<{ compactedTo: string; watchesEnded: number }> => {
    const res = await fetch(`${c.api.url}${COMPACT_PATH}`, { method: "POST" });
    assert.equal(res.status, 200);
    return (await res.json()) as { compactedTo: string; watchesEnded: number };
  };
  const serverNames = async (): Promise<string[]> => (await listObjects<KubeObject>(c.kc, TASKS, { namespace: NS })).items.map((o) => o.metadata!.name!).sort();
  const cacheNames = (inf: Informer<KubeObject>): string[] => inf.list(NS).map((o) => o.metadata!.name!).sort();

  before(async () => {
    c = await startCluster(["tasks"]);
  });
  afterEach(async () => {
    await Promise.all(informers.splice(0).map((i) => i.stop()));
  });
  after(() => c?.close());

  it("relists after an ERROR 410 and again after re-watching from a compacted resourceVersion, missing nothing made in between", async () => {
    for (const n of ["g-keep", "g-gone", "g-change"]) await createObject(c.kc, TASKS, taskObject(NS, n), "test");
    const src = new GatedSource(apiServerSource<KubeObject>(c.kc, TASKS, { namespace: NS, watchTimeoutSeconds: [30, 31] }));
    const inf = new Informer<KubeObject>({ type: TASKS, source: src, initialBackoffMs: 10 });
    informers.push(inf);
    const seen = new Seen();
    seen.attach(inf);
    inf.start();
    await inf.waitForSync(5000);
    await eventually(() => src.starts.length === 1, 5000, "first watch");

    // 1. The open watch is ended by the compaction (ERROR 410): the informer relists, then waits at the gate to watch.
    src.close();
    const first = await compact();
    assert.ok(first.watchesEnded >= 1);
    await eventually(() => inf.listCount === 2, 5000, "relist after the ERROR 410");
    const listedRv = inf.lastResourceVersion();

    // 2. While no watch is open, changes are made and compacted away: the re-watch from the list's RV must get 410.
    await createObject(c.kc, TASKS, taskObject(NS, "g-new"), "test");
    await deleteObject(c.kc, { ...TASKS, namespace: NS, name: "g-gone" });
    await mergePatch(c.kc, { ...TASKS, namespace: NS, name: "g-change" }, { metadata: { labels: { round: "gap" } } }, "test");
    await compact();
    src.open();
    await eventually(() => inf.listCount === 3, 5000, "relist after the re-watch got 410");
    assert.equal(src.starts[1], listedRv, "the re-watch started from the list's resourceVersion");
    await eventually(() => src.starts.length === 3, 5000, "a watch from the new list's resourceVersion");

    assert.deepEqual(cacheNames(inf), await serverNames());
    assert.deepEqual(cacheNames(inf), ["g-change", "g-keep", "g-new"]);
    assert.equal(seen.adds.get("g-new"), 1, "the Task created in the gap was added once");
    assert.equal(seen.deletes.get("g-gone"), 1, "the Task deleted in the gap was deleted once");
    assert.deepEqual(seen.updates.get("g-change"), ["gap"], "the update made in the gap was seen once");
    assert.equal(seen.adds.get("g-keep"), 1, "an unchanged Task is not re-added by a relist");
    assert.equal(seen.updates.get("g-keep"), undefined, "nor updated");

    // 3. And the new watch delivers live events.
    await createObject(c.kc, TASKS, taskObject(NS, "g-live"), "test");
    await eventually(() => seen.adds.get("g-live") === 1, 5000, "live add after the relists");
  });

  it("sees every Task created, changed and deleted while the history is compacted repeatedly under load", async () => {
    const inf = new Informer<KubeObject>({ kc: c.kc, type: TASKS, namespace: NS, initialBackoffMs: 10, watchTimeoutSeconds: [30, 31] });
    informers.push(inf);
    const seen = new Seen();
    seen.attach(inf);
    inf.start();
    await inf.waitForSync(5000);
    const lists = inf.listCount;
    const created: string[] = [];
    const deleted: string[] = [];
    const rounds = 8;
    const deadline = Date.now() + 60_000;
    for (let r = 0; r < rounds && Date.now() < deadline; r++) {
      const names = Array.from({ length: 15 }, (_, i) => `load-${r}-${i}`);
      const writes: Array<Promise<unknown>> = names.map((n) => createObject(c.kc, TASKS, taskObject(NS, n), "test"));
      if (r > 0) {
        writes.push(deleteObject(c.kc, { ...TASKS, namespace: NS, name: `load-${r - 1}-0` }));
        writes.push(mergePatch(c.kc, { ...TASKS, namespace: NS, name: `load-${r - 1}-1` }, { metadata: { labels: { round: String(r) } } }, "test"));
        deleted.push(`load-${r - 1}-0`);
      }
      writes.push(compact());
      await Promise.all(writes);
      created.push(...names);
    }
    const want = await serverNames();
    await eventually(() => JSON.stringify(cacheNames(inf)) === JSON.stringify(want), 10_000, "cache equal to the server's list");
    assert.ok(inf.listCount > lists, `relisted (${inf.listCount - lists} times)`);
    for (const n of created) assert.equal(seen.adds.get(n), 1, `${n} added exactly once`);
    for (const n of deleted) assert.equal(seen.deletes.get(n), 1, `${n} deleted exactly once`);
    for (let r = 1; r < rounds; r++) assert.deepEqual(seen.updates.get(`load-${r - 1}-1`), [String(r)], `load-${r - 1}-1 updated once`);
  });
});
