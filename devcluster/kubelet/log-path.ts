/** Where the kubelet writes a Pod's output; shared with `celeriac dev logs`. */
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The log file of a Pod: `<logsDir>/<namespace>_<pod>.log`. With the default state dir `.celeriac`,
 * `logsDir` is `.celeriac/logs`.
 * @param logsDir the kubelet's logs directory
 * @param namespace the Pod's namespace
 * @param name the Pod's name
 */
export function podLogPath(logsDir: string, namespace: string, name: string): string {
  return join(logsDir, `${namespace}_${name}.log`);
}

/**
 * The logs directory under a dev state directory (`<dir>/logs`).
 * @param stateDir e.g. `.celeriac`
 */
export function logsDirOf(stateDir: string): string {
  return join(stateDir, "logs");
}

/** One run (start attempt) of a container, as byte offsets into the Pod's log file. */
export interface ContainerRun {
  container: string;
  /** The container's restartCount when this run started (0 for the first). */
  restart: number;
  /** Offset of the run's first byte. */
  start: number;
  /** Offset after its last byte; absent while the run goes on. */
  end?: number;
}

/**
 * The index of a Pod's log file (`<log>.idx`): one JSON line per container start and exit, so the API server
 * can serve `pods/log` for one container and its previous run (`kubectl logs --previous`).
 * @param logPath the Pod's log file
 */
export function podLogIndexPath(logPath: string): string {
  return `${logPath}.idx`;
}

/**
 * Records a container run's start or end in the Pod's log index.
 * @param logPath the Pod's log file
 * @param entry `{container, restart, start}` at start, `{container, restart, end}` at exit
 */
export function recordContainerRun(logPath: string, entry: { container: string; restart: number; start?: number; end?: number }): void {
  appendFileSync(podLogIndexPath(logPath), `${JSON.stringify(entry)}\n`);
}

/**
 * The runs of every container of a Pod, oldest first, read from its log index.
 * @returns an empty list when the Pod has no index yet
 */
export function readContainerRuns(logPath: string): ContainerRun[] {
  let text: string;
  try {
    text = readFileSync(podLogIndexPath(logPath), "utf8");
  } catch {
    return [];
  }
  const runs: ContainerRun[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let e: { container?: string; restart?: number; start?: number; end?: number };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue;
    }
    if (typeof e.container !== "string" || typeof e.restart !== "number") continue;
    if (typeof e.start === "number") runs.push({ container: e.container, restart: e.restart, start: e.start });
    else if (typeof e.end === "number") {
      const run = runs.findLast((r) => r.container === e.container && r.restart === e.restart && r.end === undefined);
      if (run) run.end = e.end;
    }
  }
  return runs;
}
