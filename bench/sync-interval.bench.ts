/**
 * What JetStream's `sync_interval: always` costs Celeriac: no-op task throughput (`client.enqueue` →
 * Worker → result stored in the results bucket) and the raw publish+consume+ack ceiling, against two
 * nats-servers of the same binary started for the run — one with `jetstream { sync_interval: always }`
 * (fsync before every acknowledgement), one with the default (fsync every 2 min) — as ratios
 * measured in the same run, rounds interleaved (A, B, then B, A, …) so load from other processes
 * hits both alike.
 *
 *   npm run build && node dist/bench/sync-interval.bench.js [--nats-server <path>] [--rounds 3]
 *     [--count 3000] [--raw-count 3000] [--concurrency 256] [--dir <store parent dir>]
 *
 * Any 2.10+ binary will do, e.g. Debian 13's `nats-server` package (2.10.27) unpacked with
 * `apt-get download nats-server && dpkg-deb -x nats-server_*.deb /opt/nats` on Debian 13 (then
 * `--nats-server /opt/nats/usr/sbin/nats-server`); without `--nats-server`, the one on PATH.
 *
 * `sync_interval` exists from nats-server 2.10 (server/opts.go parses `sync`/`sync_interval`, with
 * `always` setting `SyncAlways`). Given an older binary, the bench says so and measures the default
 * alone: 2.9 refuses the key as an unknown field and has no equivalent, server-wide or per stream —
 * its stream file stores sync every 2 min, hard-coded (server/stream.go `fsCfg.SyncInterval`).
 * The setting each server really runs with is read back from its `/varz` (`jetstream.config`).
 * Bounded: every phase stops after 60 s; the servers and their temp dirs are removed at the end.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { freePort } from "../devcluster/platform/nats-process.js";
import { celeriac, ceiling, natsOpts, numberArg, taskPayloads } from "./throughput-phases.js";

const stringArg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const BINARY = stringArg("nats-server", "nats-server");
const DIR = stringArg("dir", tmpdir());
const ROUNDS = numberArg("rounds", 3);
const COUNT = numberArg("count", 3000);
const RAW_COUNT = numberArg("raw-count", 3000);
const CONCURRENCY = numberArg("concurrency", 256);
const WARMUP = 300;

/** `nats-server --version` parsed: `v2.10.27` → [2, 10, 27]. */
function serverVersion(binary: string): { text: string; parts: [number, number, number] } {
  const r = spawnSync(binary, ["--version"], { encoding: "utf8" });
  const m = /v(\d+)\.(\d+)\.(\d+)\S*/.exec(`${r.stdout ?? ""}${r.stderr ?? ""}`);
  if (r.error || !m) throw new Error(`run ${binary} --version: ${r.error?.message ?? r.stdout + r.stderr}`);
  return { text: m[0], parts: [Number(m[1]), Number(m[2]), Number(m[3])] };
}

/** `binary` as a path: itself when it has a slash, else the first match on PATH. */
function onPath(binary: string): string {
  if (binary.includes("/")) return binary;
  const found = (process.env.PATH ?? "").split(delimiter).map((d) => join(d, binary)).find((f) => existsSync(f));
  if (!found) throw new Error(`${binary} is not on PATH`);
  return found;
}

/** The mount (and its filesystem type) holding `dir`, from /proc/mounts: fsync on tmpfs costs nothing. */
function filesystemOf(dir: string): string {
  try {
    const mounts = readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" "));
    const best = mounts.filter((m) => m[1] && (dir === m[1] || dir.startsWith(m[1].endsWith("/") ? m[1] : `${m[1]}/`))).sort((a, b) => (b[1]?.length ?? 0) - (a[1]?.length ?? 0))[0];
    return best ? `${best[2]} (${best[0]} on ${best[1]})` : "unknown";
  } catch {
    return "unknown";
  }
}

/** A nats-server started by this bench. */
interface Server {
  label: string;
  url: string;
  nc: NatsConnection;
  /** `jetstream.config` from `/varz`: what the server really runs with. */
  js: { sync_interval?: number; sync_always?: boolean };
  stop(): Promise<void>;
}

/** Starts `binary -js` on free loopback ports with a temp store; with `syncAlways`, a config file sets `sync_interval: always`. */
async function startServer(binary: string, label: string, syncAlways: boolean): Promise<Server> {
  const dir = mkdtempSync(join(DIR, `celeriac-sync-${label}-`));
  const [port, monitor] = [await freePort(), await freePort()];
  const args = ["-js", "-a", "127.0.0.1", "-p", String(port), "-m", String(monitor), "-sd", join(dir, "store")];
  if (syncAlways) {
    writeFileSync(join(dir, "nats.conf"), "jetstream {\n  sync_interval: always\n}\n");
    args.push("-c", join(dir, "nats.conf"));
  }
  let stderr = "";
  const child: ChildProcess = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((res) => child.once("exit", res));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let varz: { jetstream?: { config?: Server["js"] } } | undefined;
    for (let i = 0; i < 200 && !varz?.jetstream?.config; i++) {
      if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
      await new Promise((res) => setTimeout(res, 50));
      varz = await fetch(`http://127.0.0.1:${monitor}/varz`).then((r) => r.json() as Promise<typeof varz>, () => undefined);
    }
    if (!varz?.jetstream?.config) throw new Error("no JetStream in /varz within 10 s");
    const url = `nats://127.0.0.1:${port}`;
    return { label, url, nc: await natsConnect(natsOpts(url)), js: varz.jetstream.config, stop };
  } catch (err) {
    await stop();
    throw new Error(`start ${binary} (${label}): ${stderr}`, { cause: err });
  }
}

const describeSync = (js: Server["js"]): string =>
  js.sync_interval === undefined ? "has no sync fields (before 2.10: streams fsync every 2 min, fixed)" : `sync_always=${js.sync_always === true}, sync_interval=${js.sync_interval / 1e9} s`;
const range = (xs: number[], digits = 0): string => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** One round on one server: the raw ceiling, then Celeriac. */
async function round(s: Server, r: number, payloads: ReturnType<typeof taskPayloads>): Promise<{ raw: number; tasks: number }> {
  const raw = await ceiling(s.nc, `SYNC_RAW_${s.label.toUpperCase()}_${r}`, false, payloads);
  const run = await celeriac(s.url, `bench-sync-${s.label}-${r}`, CONCURRENCY);
  try {
    return { raw, tasks: (await run.run(COUNT)).perSecond };
  } finally {
    await run.close();
  }
}

async function main(): Promise<void> {
  const v = serverVersion(BINARY);
  const binarySha = createHash("sha256").update(readFileSync(onPath(BINARY))).digest("hex");
  const supported = v.parts[0] > 2 || (v.parts[0] === 2 && v.parts[1] >= 10);
  console.log(`nats-server ${v.text} (${BINARY}, sha256 ${binarySha.slice(0, 16)}…) · node ${process.version} · ${cpus().length} CPUs ${cpus()[0]?.model ?? ""} · Linux ${release()}`);
  console.log(`store: ${filesystemOf(DIR)} · ${ROUNDS} rounds × (${RAW_COUNT} raw messages + ${COUNT} tasks) per server · worker concurrency ${CONCURRENCY}`);
  console.log(`load average before ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  if (!supported) {
    console.log(
      `nats-server ${v.text} is older than 2.10: sync_interval is unsupported there (2.9 refuses it as an unknown field) and has no equivalent —\n` +
        `2.9's stream file stores fsync every 2 min, hard-coded (server/stream.go), with no server or per-stream option to fsync before acknowledging.\n` +
        `Measuring the default alone; give a 2.10+ binary with --nats-server for the always/default ratio.`,
    );
  }
  const servers: Server[] = [];
  try {
    const dflt = await startServer(BINARY, "default", false);
    servers.push(dflt);
    const always = supported ? await startServer(BINARY, "always", true) : undefined;
    if (always) servers.push(always);
    for (const s of servers) console.log(`${s.label.padEnd(8)} ${s.url}: /varz jetstream.config ${describeSync(s.js)}`);
    if (always && always.js.sync_always !== true) throw new Error(`the "always" server does not run with sync_always (${describeSync(always.js)})`);
    if (dflt.js.sync_always === true) throw new Error("the default server runs with sync_always");

    const payloads = taskPayloads(RAW_COUNT);
    for (const s of servers) {
      const w = await celeriac(s.url, `bench-sync-${s.label}-warmup`, CONCURRENCY);
      await w.run(WARMUP);
      await w.close();
    }
    const results = new Map<string, Array<{ raw: number; tasks: number }>>(servers.map((s) => [s.label, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? servers : [...servers].reverse();
      const line: string[] = [];
      for (const s of order) {
        const res = await round(s, r, payloads);
        results.get(s.label)?.push(res);
        line.push(`${s.label} ${res.tasks.toFixed(0)} tasks/s, raw ${res.raw.toFixed(0)} msg/s`);
      }
      console.log(`round ${r + 1}: ${line.join(" · ")}`);
    }
    const d = results.get("default") ?? [];
    console.log(`\ndefault (fsync every 2 min)        celeriac ${range(d.map((x) => x.tasks))} tasks/s (median ${median(d.map((x) => x.tasks)).toFixed(0)}) · raw publish+consume+ack ${range(d.map((x) => x.raw))} msg/s`);
    if (always) {
      const a = results.get("always") ?? [];
      const taskRatio = a.map((x, i) => x.tasks / (d[i]?.tasks ?? NaN));
      const rawRatio = a.map((x, i) => x.raw / (d[i]?.raw ?? NaN));
      console.log(`always  (fsync before every ack)   celeriac ${range(a.map((x) => x.tasks))} tasks/s (median ${median(a.map((x) => x.tasks)).toFixed(0)}) · raw publish+consume+ack ${range(a.map((x) => x.raw))} msg/s`);
      console.log(`always / default, per round        celeriac ${range(taskRatio, 2)} (median ${median(taskRatio).toFixed(2)}) · raw ${range(rawRatio, 2)} (median ${median(rawRatio).toFixed(2)})`);
    }
    console.log(`load average after ${loadavg().map((x) => x.toFixed(2)).join(" ")} (other processes skew both servers alike)`);
  } finally {
    for (const s of servers) {
      await s.nc.close();
      await s.stop();
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
