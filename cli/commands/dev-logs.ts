/**
 * `celeriac dev logs <pod> [-n ns] [--dir .celeriac] [-f]`: prints the output of a Pod run by the dev
 * process kubelet, from `<dir>/logs/<namespace>_<pod>.log`.
 */
import type { Command } from "commander";
import { devGroup } from "./dev-group.js";
import { createReadStream, existsSync, statSync } from "node:fs";
import { logsDirOf, podLogPath } from "../../devcluster/kubelet/log-path.js";

/** Options of {@link printPodLog}. */
export interface DevLogsOptions {
  namespace: string;
  /** The dev state directory (default `.celeriac`); logs are under `<dir>/logs`. */
  dir: string;
  /** Keep printing what is appended until `signal` aborts. */
  follow: boolean;
  /** Poll interval while following, in ms (default 250). */
  pollMs?: number;
  signal?: AbortSignal;
  out?: NodeJS.WritableStream;
}

/** Copies bytes `[from, to)` of `path` to `out`. */
function copyRange(path: string, from: number, to: number, out: NodeJS.WritableStream): Promise<void> {
  if (to <= from) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const s = createReadStream(path, { start: from, end: to - 1 });
    s.on("error", reject);
    s.on("end", resolve);
    s.on("data", (chunk) => out.write(chunk));
  });
}

/**
 * Prints a Pod's log file, optionally following it (like `tail -f`, from the start).
 * @param pod the Pod name
 * @throws Error naming the expected path when the file does not exist and `follow` is off
 */
export async function printPodLog(pod: string, o: DevLogsOptions): Promise<void> {
  const path = podLogPath(logsDirOf(o.dir), o.namespace, pod);
  const out = o.out ?? process.stdout;
  if (!o.follow) {
    if (!existsSync(path)) throw new Error(`no log for pod ${o.namespace}/${pod}: ${path} does not exist`);
    await copyRange(path, 0, statSync(path).size, out);
    return;
  }
  let offset = 0;
  while (!o.signal?.aborted) {
    if (existsSync(path)) {
      const size = statSync(path).size;
      if (size < offset) offset = 0; // truncated or recreated
      await copyRange(path, offset, size, out);
      offset = size;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, o.pollMs ?? 250);
      o.signal?.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  }
}

/**
 * Adds `logs` to the `dev` command group (creating the group if no other module has yet).
 * @param program the root `celeriac` command
 */
export function register(program: Command): void {
  devGroup(program)
    .command("logs")
    .description("Print the output of a pod run by the dev kubelet")
    .argument("<pod>", "pod name")
    .option("-n, --namespace <ns>", "pod namespace", "default")
    .option("--dir <dir>", "dev state directory (logs are in <dir>/logs)", ".celeriac")
    .option("-f, --follow", "keep printing new output until interrupted", false)
    .action(async (pod: string, opts: { namespace: string; dir: string; follow: boolean }) => {
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        await printPodLog(pod, { namespace: opts.namespace, dir: opts.dir, follow: opts.follow, signal: ac.signal });
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });
}
