/**
 * Benchmark of the in-memory API server: startup time (target < 300 ms) and 1,000 custom resources created
 * while 3 watchers receive them (target < 2 s). Prints the figures; not a timed test.
 * Run: `npm run build && node dist/bench/apiserver.bench.js`.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { startApiServer } from "../devcluster/server/index.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const N = 1000;
const WATCHERS = 3;

async function main(): Promise<void> {
  const t0 = performance.now();
  const api = await startApiServer({});
  const startupMs = performance.now() - t0;
  const crd = parse(readFileSync(join(ROOT, "test", "fixtures", "k8s", "manifests", "crd.yaml"), "utf8"));
  await fetch(`${api.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(crd) });
  const path = `${api.url}/apis/example.com/v1/namespaces/default/tasks`;
  const ctrl = new AbortController();
  const counts = new Array<number>(WATCHERS).fill(0);
  const done = counts.map(async (_, i) => {
    const res = await fetch(`${path}?watch=true`, { signal: ctrl.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const dec = new TextDecoder();
    let buf = "";
    while (counts[i]! < N) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      counts[i]! += lines.filter((l) => l.includes('"ADDED"')).length;
    }
  });
  const t1 = performance.now();
  const CONCURRENCY = 16;
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        const body = { apiVersion: "example.com/v1", kind: "Task", metadata: { name: `t${i}` }, spec: { image: "busybox" } };
        const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        if (r.status !== 201) throw new Error(`create t${i}: HTTP ${r.status}`);
        await r.arrayBuffer();
      }
    }),
  );
  const createdMs = performance.now() - t1;
  await Promise.all(done);
  const watchedMs = performance.now() - t1;
  ctrl.abort();
  await api.close();
  console.log(`startup: ${startupMs.toFixed(1)} ms (target < 300 ms)`);
  console.log(`${N} custom resources created: ${createdMs.toFixed(0)} ms`);
  console.log(`${N} custom resources created and seen by ${WATCHERS} watchers: ${watchedMs.toFixed(0)} ms (target < 2000 ms); events per watcher: ${counts.join(", ")}`);
}

await main();
