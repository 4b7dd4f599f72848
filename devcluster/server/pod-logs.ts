/**
 * The `pods/log` subresource, served from the process kubelet's log files (see devcluster/kubelet/log-path.ts):
 * `GET /api/v1/namespaces/{ns}/pods/{name}/log?container=&previous=&follow=&tailLines=&limitBytes=`, what
 * `kubectl logs [-f] [--previous] [-c]` sends. Plain text, errors as kube-apiserver words them.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { podLogPath, readContainerRuns, type ContainerRun } from "../kubelet/log-path.js";
import type { Core } from "./core.js";
import { badRequest } from "./errors.js";
import type { KObject, ResourceType } from "./types.js";

function readRange(file: string, start: number, end: number): Buffer {
  if (end <= start) return Buffer.alloc(0);
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(end - start);
    const n = readSync(fd, buf, 0, buf.length, start);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The last `n` lines of `buf`. */
function tail(buf: Buffer, n: number): Buffer {
  if (n < 0) return buf;
  if (n === 0) return Buffer.alloc(0);
  let end = buf.length;
  if (end > 0 && buf[end - 1] === 0x0a) end--;
  let seen = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (buf[i] === 0x0a && ++seen === n) return buf.subarray(i + 1);
  }
  return buf;
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw badRequest(`invalid ${name}: "${v}"`);
  return n;
}

/**
 * Serves `GET …/pods/{name}/log`.
 * @param logsDir the kubelet's logs directory; undefined when no kubelet runs (then every log is empty)
 * @throws ApiError 404 (pod), 400 (container not given/unknown, no previous run)
 */
export function servePodLog(core: Core, rt: ResourceType, logsDir: string | undefined, namespace: string, name: string, q: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
  const pod: KObject = core.get({ rt, namespace, name });
  const names: string[] = (pod.spec?.containers ?? []).map((c: KObject) => String(c.name));
  let container = q.get("container") ?? "";
  if (!container) {
    if (names.length !== 1) throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${names.join(" ")}]`);
    container = names[0]!;
  } else if (!names.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
  const previous = q.get("previous") === "true";
  const follow = q.get("follow") === "true" && !previous;
  const tailLines = intParam(q, "tailLines");
  const limitBytes = intParam(q, "limitBytes");
  const file = logsDir ? podLogPath(logsDir, namespace, name) : "";
  const runs = file ? readContainerRuns(file).filter((r) => r.container === container) : [];
  let run: ContainerRun | undefined;
  if (previous) {
    run = runs.length >= 2 ? runs[runs.length - 2] : undefined;
    if (!run) throw badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
  } else run = runs[runs.length - 1];
  res.writeHead(200, { "Content-Type": "text/plain", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
  if (!run) {
    res.end();
    return;
  }
  let sent = 0;
  const write = (chunk: Buffer): boolean => {
    if (limitBytes !== undefined && limitBytes >= 0) {
      const room = limitBytes - sent;
      if (room <= 0) return false;
      chunk = chunk.subarray(0, room);
    }
    sent += chunk.length;
    if (chunk.length > 0) res.write(chunk);
    return limitBytes === undefined || sent < limitBytes;
  };
  let offset = run.end ?? sizeOf(file);
  const initial = readRange(file, run.start, offset);
  const more = write(tailLines === undefined ? initial : tail(initial, tailLines));
  if (!follow || run.end !== undefined || !more) {
    res.end();
    return;
  }
  const current = run;
  const timer = setInterval(() => {
    const ended = readContainerRuns(file).find((r) => r.container === container && r.restart === current.restart && r.start === current.start)?.end;
    const upTo = ended ?? sizeOf(file);
    const keepGoing = write(readRange(file, offset, upTo));
    offset = Math.max(offset, upTo);
    const gone = !core.raw(rt, namespace, name) || core.raw(rt, namespace, name)?.metadata?.uid !== pod.metadata?.uid;
    if (ended !== undefined || !keepGoing || gone) {
      clearInterval(timer);
      res.end();
    }
  }, 200);
  req.on("close", () => clearInterval(timer));
}
