/**
 * Watch expiry of the in-memory API server (issue 13, the `watch-expired` fault): a watch from a
 * resourceVersion older than the retained history gets HTTP 200 and one ERROR event carrying a 410
 * `Expired` Status, then the stream ends — like kube-apiserver; a list and a watch from the list's
 * resourceVersion then work. The fault hook `POST /debug/celeriac/compact` compacts the history and
 * ends every open watch the same way.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startApiServer, type ApiServer } from "../../devcluster/server/index.js";
import { COMPACT_PATH } from "../../devcluster/server/http.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are arbitrary JSON
type J = any;

const CMS = "/api/v1/namespaces/default/configmaps";

/** An open watch stream: events as they arrive, and whether the server ended it. */
interface OpenWatch {
  status: number;
  events: J[];
  ended: () => boolean;
  /** Resolves once `pred` holds; rejects after `ms` (default 5000) naming `what`. */
  waitFor(pred: () => boolean, what: string, ms?: number): Promise<void>;
  close(): void;
}

async function openWatch(api: ApiServer, path: string, rv: string): Promise<OpenWatch> {
  const ac = new AbortController();
  const res = await fetch(`${api.url}${path}?watch=true&resourceVersion=${rv}&timeoutSeconds=30`, { signal: ac.signal });
  const events: J[] = [];
  let done = false;
  let buf = "";
  const reader = res.body!.getReader();
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done: d } = await reader.read();
        if (d) break;
        buf += Buffer.from(value).toString("utf8");
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line) events.push(JSON.parse(line));
        }
      }
    } catch {
      // aborted by close()
    } finally {
      done = true;
    }
  })();
  return {
    status: res.status,
    events,
    ended: () => done,
    async waitFor(pred, what, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close() {
      ac.abort();
      void pump;
    },
  };
}

describe("when a watch's resourceVersion has expired", () => {
  let api: ApiServer;
  const watches: OpenWatch[] = [];
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: J }> => {
    const res = await fetch(`${api.url}${path}`, { method, headers: body === undefined ? {} : { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const cm = (name: string): J => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data: { k: name } });
  const watch = async (rv: string): Promise<OpenWatch> => {
    const w = await openWatch(api, CMS, rv);
    watches.push(w);
    return w;
  };
  const listRv = async (): Promise<string> => (await call("GET", CMS)).body.metadata.resourceVersion as string;

  before(async () => {
    api = await startApiServer({});
  });
  after(async () => {
    for (const w of watches) w.close();
    await api.close();
  });

  it("answers a watch from a compacted resourceVersion with one ERROR 410 Expired Status and ends it; list then watch works", async () => {
    assert.equal((await call("POST", CMS, cm("before"))).status, 201);
    const old = await listRv();
    assert.equal((await call("POST", CMS, cm("gap"))).status, 201);
    const compact = await call("POST", COMPACT_PATH);
    assert.equal(compact.status, 200);
    assert.ok(Number(compact.body.compactedTo) > Number(old));

    const w = await watch(old);
    assert.equal(w.status, 200, "kube-apiserver answers 200 and sends the error as an event");
    await w.waitFor(() => w.ended(), "the expired watch to end");
    assert.equal(w.events.length, 1);
    assert.equal(w.events[0].type, "ERROR");
    const st = w.events[0].object;
    assert.deepEqual({ kind: st.kind, apiVersion: st.apiVersion, status: st.status, reason: st.reason, code: st.code }, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410 });
    assert.match(st.message, /too old resource version: \d+ \(\d+\)/);

    const list = await call("GET", CMS);
    const names = list.body.items.map((i: J) => i.metadata.name);
    assert.ok(names.includes("gap"), "the relist holds what the expired watch missed");
    const fresh = await watch(list.body.metadata.resourceVersion);
    assert.equal((await call("POST", CMS, cm("after"))).status, 201);
    await fresh.waitFor(() => fresh.events.some((e) => e.object?.metadata?.name === "after"), "ADDED after");
    assert.deepEqual(fresh.events.map((e) => `${e.type} ${e.object.metadata.name}`), ["ADDED after"]);
  });

  it("keeps serving a watch from exactly the compacted-to resourceVersion", async () => {
    const { body } = await call("POST", COMPACT_PATH);
    const w = await watch(body.compactedTo);
    assert.equal((await call("POST", CMS, cm("edge"))).status, 201);
    await w.waitFor(() => w.events.length >= 1, "an event");
    assert.equal(w.events[0].type, "ADDED");
    assert.equal(w.events[0].object.metadata.name, "edge");
  });

  it("ends every open watch with ERROR 410 Expired when the history is compacted", async () => {
    const a = await watch(await listRv());
    const b = await watch(await listRv());
    assert.equal((await call("POST", CMS, cm("live"))).status, 201);
    await a.waitFor(() => a.events.length === 1, "ADDED live on a");
    await b.waitFor(() => b.events.length === 1, "ADDED live on b");
    const compact = await call("POST", COMPACT_PATH);
    assert.ok(compact.body.watchesEnded >= 2, `watchesEnded ${compact.body.watchesEnded}`);
    for (const w of [a, b]) {
      await w.waitFor(() => w.ended(), "the watch to end");
      assert.deepEqual(w.events.map((e) => e.type), ["ADDED", "ERROR"]);
      const st = w.events[1].object;
      assert.equal(st.code, 410);
      assert.equal(st.reason, "Expired");
      assert.equal(st.message, "The resourceVersion for the provided watch is too old.");
    }
  });

  it("expires resourceVersions older than a bounded history without any compaction call", async () => {
    api.setWatchHistory(3);
    try {
      const old = await listRv();
      for (let i = 0; i < 5; i++) assert.equal((await call("POST", CMS, cm(`bounded-${i}`))).status, 201);
      const w = await watch(old);
      await w.waitFor(() => w.ended(), "the expired watch to end");
      assert.deepEqual(w.events.map((e) => [e.type, e.object.code, e.object.reason]), [["ERROR", 410, "Expired"]]);
      const recent = String(Number(await listRv()) - 2);
      const ok = await watch(recent);
      await ok.waitFor(() => ok.events.length === 2, "the two retained events");
      assert.deepEqual(ok.events.map((e) => `${e.type} ${e.object.metadata.name}`), ["ADDED bounded-3", "ADDED bounded-4"]);
    } finally {
      api.setWatchHistory(10_000);
    }
  });

  it("answers 405 to anything but POST on the fault hook", async () => {
    assert.equal((await call("GET", COMPACT_PATH)).status, 405);
  });
});
