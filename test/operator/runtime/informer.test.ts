import { describe, it, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { Informer, MultiNamespaceInformer, namespacedInformer } from "../../../operator/runtime/informer.js";
import type { ListWatchSource, WatchEventType } from "../../../operator/runtime/informer.js";
import { createObject, deleteObject, mergePatch } from "../../../kube/k8s-client.js";
import type { KubeObject, ObjectList } from "../../../kube/k8s-client.js";
import { TASKS, eventually, startCluster, taskObject, type TestCluster } from "./cluster.js";

function obj(name: string, rv: string, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: "v1", kind: "Thing", metadata: { namespace: "ns", name, resourceVersion: rv }, ...extra };
}

/** A scripted list/watch source: each list and watch call takes the next step the test queued. */
class FakeSource implements ListWatchSource<KubeObject> {
  lists: Array<() => ObjectList<KubeObject> | Error> = [];
  watches: Array<{ rv: string; emit: (t: WatchEventType, o: unknown) => void; done: (e: unknown) => void }> = [];
  listCalls = 0;

  async list(): Promise<ObjectList<KubeObject>> {
    this.listCalls++;
    const step = this.lists.shift();
    if (!step) throw new Error("no list scripted");
    const r = step();
    if (r instanceof Error) throw r;
    return r;
  }

  async watch(rv: string, onEvent: (t: WatchEventType, o: unknown) => void, onDone: (e: unknown) => void): Promise<() => void> {
    let ended = false;
    const w = {
      rv,
      emit: onEvent,
      done: (e: unknown) => {
        if (ended) return;
        ended = true;
        onDone(e);
      },
    };
    this.watches.push(w);
    return () => w.done(new Error("aborted"));
  }

  current(): (typeof this.watches)[number] {
    const w = this.watches[this.watches.length - 1];
    if (!w) throw new Error("no watch");
    return w;
  }
}

function track<T extends Informer>(i: T): T {
  started.push(i);
  return i;
}

const THINGS = { group: "", version: "v1", plural: "things", kind: "Thing", namespaced: true };

const started: Informer[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((i) => i.stop()));
});

describe("when the informer lists and watches (fake source)", () => {
  it("strips managedFields from listed and watched objects by default, and keeps them with transform: null", async () => {
    const managed = { managedFields: [{ manager: "kubectl", operation: "Update", fieldsV1: { "f:spec": {} } }] };
    const withManaged = (name: string, rv: string): KubeObject => ({ ...obj(name, rv), metadata: { ...obj(name, rv).metadata, ...managed } });
    const src = new FakeSource();
    src.lists.push(() => ({ items: [withManaged("a", "1")], resourceVersion: "5" }));
    const inf = track(new Informer({ type: THINGS, source: src, initialBackoffMs: 5 }));
    const added: KubeObject[] = [];
    inf.on("add", (o) => added.push(o));
    inf.start();
    await inf.waitForSync(2000);
    await eventually(() => src.watches.length === 1);
    src.current().emit("ADDED", withManaged("b", "6"));
    await eventually(() => inf.get("ns", "b") !== undefined);
    for (const n of ["a", "b"]) {
      assert.equal(inf.get("ns", n)?.metadata?.managedFields, undefined, `${n} stripped in the cache`);
      assert.equal(inf.get("ns", n)?.metadata?.resourceVersion !== undefined, true, "the rest of metadata kept");
    }
    assert.ok(added.every((o) => o.metadata?.managedFields === undefined), "handlers get the stripped object");

    const raw = new FakeSource();
    raw.lists.push(() => ({ items: [withManaged("a", "1")], resourceVersion: "5" }));
    const keep = track(new Informer({ type: THINGS, source: raw, initialBackoffMs: 5, transform: null }));
    keep.start();
    await keep.waitForSync(2000);
    assert.deepEqual(keep.get("ns", "a")?.metadata?.managedFields, managed.managedFields);
  });

  it("syncs, applies events, dedupes identical resourceVersions and calls handlers", async () => {
    const src = new FakeSource();
    src.lists.push(() => ({ items: [obj("a", "1")], resourceVersion: "5" }));
    const inf = track(new Informer({ type: THINGS, source: src, initialBackoffMs: 5 }));
    const seen: string[] = [];
    inf.on("add", (o) => seen.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`));
    inf.on("update", (a, b) => seen.push(`update ${b.metadata?.name} ${a.metadata?.resourceVersion}->${b.metadata?.resourceVersion}`));
    inf.on("delete", (o) => seen.push(`delete ${o.metadata?.name}`));
    inf.start();
    await inf.waitForSync(2000);
    await eventually(() => src.watches.length === 1);
    assert.equal(src.current().rv, "5");
    src.current().emit("ADDED", obj("b", "6"));
    src.current().emit("MODIFIED", obj("a", "7"));
    src.current().emit("MODIFIED", obj("a", "7"));
    src.current().emit("DELETED", obj("b", "8"));
    src.current().emit("BOOKMARK", { kind: "Thing", apiVersion: "v1", metadata: { resourceVersion: "9" } });
    assert.deepEqual(seen, ["add a@1", "add b@6", "update a 1->7", "delete b"]);
    assert.equal(inf.get("ns", "a")?.metadata?.resourceVersion, "7");
    assert.equal(inf.get("ns", "b"), undefined);
    assert.equal(inf.list().length, 1);
    assert.equal(inf.lastResourceVersion(), "9");
    await inf.stop();
  });

  it("re-watches from the last resourceVersion after a clean close", async () => {
    const src = new FakeSource();
    src.lists.push(() => ({ items: [], resourceVersion: "10" }));
    const inf = track(new Informer({ type: THINGS, source: src, initialBackoffMs: 5 }));
    inf.start();
    await eventually(() => src.watches.length === 1);
    src.current().emit("ADDED", obj("a", "11"));
    src.current().done(null);
    await eventually(() => src.watches.length === 2, 3000, "re-watch");
    assert.equal(src.current().rv, "11");
    assert.equal(src.listCalls, 1, "no relist for a clean close");
    await inf.stop();
  });

  it("relists on a 410 ERROR event and reconciles the cache with the new list", async () => {
    const src = new FakeSource();
    src.lists.push(() => ({ items: [obj("a", "1"), obj("b", "2")], resourceVersion: "2" }));
    src.lists.push(() => ({ items: [obj("a", "30"), obj("c", "31")], resourceVersion: "31" }));
    const inf = track(new Informer({ type: THINGS, source: src, initialBackoffMs: 5 }));
    const seen: string[] = [];
    inf.on("add", (o) => seen.push(`add ${o.metadata?.name}`));
    inf.on("update", (_a, b) => seen.push(`update ${b.metadata?.name}`));
    inf.on("delete", (o) => seen.push(`delete ${o.metadata?.name}`));
    inf.start();
    await eventually(() => src.watches.length === 1);
    src.current().emit("ERROR", { kind: "Status", status: "Failure", reason: "Expired", code: 410, message: "too old" });
    src.current().done(null);
    await eventually(() => src.watches.length === 2, 3000, "watch after relist");
    assert.equal(src.listCalls, 2);
    assert.equal(src.current().rv, "31");
    assert.deepEqual(seen, ["add a", "add b", "update a", "add c", "delete b"]);
    await inf.stop();
  });

  it("relists on an HTTP 410 when starting the watch", async () => {
    const src = new FakeSource();
    src.lists.push(() => ({ items: [], resourceVersion: "1" }));
    src.lists.push(() => ({ items: [], resourceVersion: "50" }));
    const inf = track(new Informer({ type: THINGS, source: src, initialBackoffMs: 5 }));
    inf.start();
    await eventually(() => src.watches.length === 1);
    src.current().done(Object.assign(new Error("Gone"), { statusCode: 410 }));
    await eventually(() => src.watches.length === 2);
    assert.equal(src.current().rv, "50");
    await inf.stop();
  });

  it("keeps retrying with back-off after list and watch errors (never stops for good)", async () => {
    const src = new FakeSource();
    src.lists.push(() => new Error("connect ECONNREFUSED"));
    src.lists.push(() => new Error("connect ECONNREFUSED"));
    src.lists.push(() => ({ items: [obj("a", "1")], resourceVersion: "1" }));
    const inf = track(new Informer({ type: THINGS, source: src, initialBackoffMs: 5, maxBackoffMs: 20 }));
    inf.start();
    await inf.waitForSync(3000);
    assert.equal(src.listCalls, 3);
    await eventually(() => src.watches.length === 1);
    src.current().done(Object.assign(new Error("Internal Server Error"), { statusCode: 500 }));
    await eventually(() => src.watches.length === 2, 3000, "re-watch after 500");
    assert.equal(src.current().rv, "1");
    await inf.stop();
  });

  it("times out waitForSync with the verb and type", async () => {
    const src = new FakeSource();
    for (let i = 0; i < 100; i++) src.lists.push(() => new Error("down"));
    const inf = track(new Informer({ type: THINGS, source: src, initialBackoffMs: 5 }));
    inf.start();
    await assert.rejects(inf.waitForSync(50), /wait for things informer sync/);
    await inf.stop();
  });
});

describe("when the informer runs against the in-memory API server", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster(["tasks"]);
  });
  after(async () => {
    await c.close();
  });

  it("syncs, sees changes, and recovers after the server closes the watch", async () => {
    await createObject(c.kc, TASKS, taskObject("inf", "pre"), "test").catch(async () => {
      await createObject(c.kc, { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false }, { metadata: { name: "inf" } }, "test");
      await createObject(c.kc, TASKS, taskObject("inf", "pre"), "test");
    });
    const inf = track(new Informer({ kc: c.kc, type: TASKS, namespace: "inf", initialBackoffMs: 10, watchTimeoutSeconds: [1, 1] }));
    const updates: string[] = [];
    inf.on("update", (_a, b) => updates.push(b.metadata?.name ?? ""));
    inf.start();
    try {
      await inf.waitForSync(5000);
      assert.ok(inf.get("inf", "pre"));
      await createObject(c.kc, TASKS, taskObject("inf", "live"), "test");
      await eventually(() => inf.get("inf", "live"), 3000, "live task in cache");
      const watchesBefore = inf.watchCount;
      await eventually(() => inf.watchCount > watchesBefore, 5000, "re-watch after server timeout");
      await mergePatch(c.kc, { ...TASKS, namespace: "inf", name: "pre" }, { metadata: { labels: { after: "close" } } }, "test");
      await eventually(() => inf.get("inf", "pre")?.metadata?.labels?.after === "close", 3000, "update after re-watch");
      await deleteObject(c.kc, { ...TASKS, namespace: "inf", name: "live" });
      await eventually(() => !inf.get("inf", "live"), 3000, "delete seen");
      assert.equal(inf.listCount, 1, "clean closes do not relist");
    } finally {
      await inf.stop();
    }
  });

  it("relists when the server answers 410 for an expired resourceVersion", async () => {
    const inf = track(new Informer({ kc: c.kc, type: TASKS, namespace: "default", initialBackoffMs: 10, watchTimeoutSeconds: [1, 1] }));
    inf.start();
    try {
      await inf.waitForSync(5000);
      // Shrink the history, and write enough while the informer is between watches to expire its RV.
      c.api.setWatchHistory(2);
      const w = inf.watchCount;
      await eventually(() => inf.watchCount > w, 5000, "first re-watch");
      for (let i = 0; i < 10; i++) {
        await mergePatch(c.kc, { group: "", version: "v1", plural: "namespaces", name: "default" }, { metadata: { labels: { n: String(i) } } }, "test");
      }
      await eventually(() => inf.listCount >= 2, 5000, "relist after 410");
      await createObject(c.kc, TASKS, taskObject("default", "after-expiry"), "test");
      await eventually(() => inf.get("default", "after-expiry"), 5000, "object seen after relist");
    } finally {
      c.api.setWatchHistory(10_000);
      await inf.stop();
    }
  });
});

describe("when one informer watches several namespaces", () => {
  it("lists and watches each namespace and presents one cache and one set of handlers", async () => {
    const sources = new Map<string, FakeSource>();
    for (const ns of ["a", "b"]) {
      const src = new FakeSource();
      src.lists.push(() => ({ items: [{ ...obj("x", "1"), metadata: { namespace: ns, name: "x", resourceVersion: "1" } }], resourceVersion: "1" }));
      sources.set(ns, src);
    }
    const inf = new MultiNamespaceInformer({ type: THINGS, namespaces: ["a", "b"], source: (ns) => sources.get(ns)!, initialBackoffMs: 5 });
    for (const i of inf.informers.values()) track(i);
    const seen: string[] = [];
    inf.on("add", (o) => seen.push(`add ${o.metadata?.namespace}/${o.metadata?.name}`));
    inf.start();
    await inf.waitForSync(2000);
    assert.equal(inf.hasSynced(), true);
    await eventually(() => sources.get("b")!.watches.length === 1);
    sources.get("b")!.current().emit("ADDED", { ...obj("y", "2"), metadata: { namespace: "b", name: "y", resourceVersion: "2" } });
    assert.deepEqual(seen.sort(), ["add a/x", "add b/x", "add b/y"]);
    assert.equal(inf.get("a", "x")?.metadata?.namespace, "a");
    assert.equal(inf.get("c", "x"), undefined, "a namespace not watched");
    assert.deepEqual(inf.list("b").map((o) => o.metadata?.name).sort(), ["x", "y"]);
    assert.equal(inf.list().length, 3);
    await inf.stop();
  });

  it("is a plain Informer for all namespaces or one, and fans out for more", () => {
    const kc = new KubeConfig();
    assert.ok(namespacedInformer({ kc, type: THINGS, namespaces: [] }) instanceof Informer);
    assert.ok(namespacedInformer({ kc, type: THINGS, namespaces: ["a"] }) instanceof Informer);
    assert.ok(namespacedInformer({ kc, type: THINGS, namespaces: ["a", "b"] }) instanceof MultiNamespaceInformer);
  });
});
