/**
 * Benchmark of the in-memory API server: startup time (target < 300 ms) and 1,000 custom resources created
 * while 3 watchers receive them (target < 2 s). Prints the figures; not a timed test.
 * Run: `npm run build && node dist/bench/apiserver.bench.js`.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { startApiServer } from "../devcluster/server/index.js";

const ROOT = resolve(import.meta.dirname, "..", "..");
const N = 1000;
const WATCHERS = 3;

/**
 * Time from spawning `celeriac dev apiserver --port 0` to its first answered `GET /version`, in ms:
 * node's own start, loading the CLI and the server, listening, one request.
 */
async function processStartupMs(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-bench-"));
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(ROOT, "bin", "celeriac.js"), "dev", "apiserver", "--port", "0", "--kubeconfig", join(dir, "kubeconfig")], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error("celeriac dev apiserver printed no URL within 10 s")), 10_000);
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = out.match(/http:\/\/127\.0\.0\.1:\d+/);
        if (m) {
          clearTimeout(timer);
          resolveUrl(m[0]);
        }
      });
    });
    const res = await fetch(`${url}/version`);
    if (res.status !== 200) throw new Error(`GET /version: HTTP ${res.status}`);
    return performance.now() - t0;
  } finally {
    child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const processMs: number[] = [];
  for (let i = 0; i < 3; i++) processMs.push(await processStartupMs());
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
  console.log(`startup: ${startupMs.toFixed(1)} ms in process (target < 300 ms)`);
  console.log(`startup as a process (spawn → first /version answered), 3 runs: ${processMs.map((m) => m.toFixed(0)).join(", ")} ms`);
  console.log(`${N} custom resources created: ${createdMs.toFixed(0)} ms`);
  console.log(`${N} custom resources created and seen by ${WATCHERS} watchers: ${watchedMs.toFixed(0)} ms (target < 2000 ms); events per watcher: ${counts.join(", ")}`);
}

await main();
