/**
 * In-memory Kubernetes API server for tests and the local platform. See `docs/testing.md` for what it
 * implements and what it deliberately leaves out.
 *
 * ```ts
 * const api = await startApiServer({ kubeconfigPath: "/tmp/x/kubeconfig" });
 * // … kubectl --kubeconfig /tmp/x/kubeconfig get ns …
 * await api.close();
 * ```
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Access } from "./access.js";
import { Controllers, type ControllerSwitches } from "./controllers.js";
import { Core } from "./core.js";
import { Registry } from "./crd-registry.js";
import { bootNamespaces } from "./builtins.js";
import { handle } from "./http.js";
import { writeKubeconfig } from "./kubeconfig.js";
import { OpenApiCache } from "./openapi.js";
import { Store } from "./store.js";

export { kubeconfigFor, writeKubeconfig } from "./kubeconfig.js";

/** Options of {@link startApiServer}. */
export interface ApiServerOptions {
  /** TCP port; 0 or absent = a free port. */
  port?: number;
  /** Bind address (default `127.0.0.1`). */
  host?: string;
  /** When set, a kubeconfig pointing at the server is written there. */
  kubeconfigPath?: string;
  /** `/version` minor reported (default "32", which pins the kubectl dispatcher to kubectl 1.32). */
  minorVersion?: string;
  /** Watch history size before older resourceVersions answer 410 (default 10000). */
  watchHistory?: number;
  /** Interval of BOOKMARK events for watches that allow them, ms (default 10000). */
  bookmarkIntervalMs?: number;
  /** Lifetime of watches that give no `timeoutSeconds`, ms (default 30 min). */
  watchTimeoutMs?: number;
  /** Which in-process controllers run (all on by default). */
  controllers?: Partial<ControllerSwitches>;
  /** The process kubelet's logs directory: `pods/log` (`kubectl logs`) is served from its files. */
  podLogsDir?: string;
}

/** A running server. */
export interface ApiServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  kubeconfigPath?: string;
  /** Controller switches, mutable while running (e.g. hold the Deployment status stub back). */
  controllers: ControllerSwitches;
  /** Changes the watch history size (e.g. 3 to provoke 410 relists). */
  setWatchHistory(n: number): void;
  /** Stops accepting connections, ends open watches and resolves when the socket is closed. */
  close(): Promise<void>;
}

/**
 * Starts the in-memory API server.
 * @returns the running server once it listens
 * @throws Error when the port cannot be bound
 */
export async function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServer> {
  const store = new Store({ historySize: opts.watchHistory });
  const reg = new Registry();
  const core = new Core(store, reg);
  const nsType = reg.lookup("", "v1", "namespaces");
  if (nsType) for (const ns of bootNamespaces()) store.create("/namespaces", ns);
  const switches: ControllerSwitches = { garbageCollector: true, namespaces: true, deploymentStatus: true, ...(opts.controllers ?? {}) };
  const controllers = new Controllers(core, switches);
  controllers.start();
  const openapi = new OpenApiCache(reg);
  const host = opts.host ?? "127.0.0.1";
  let address = "";
  const deps = {
    core,
    reg,
    openapi,
    timing: { bookmarkIntervalMs: opts.bookmarkIntervalMs ?? 10_000, defaultTimeoutMs: opts.watchTimeoutMs ?? 30 * 60_000 },
    version: {
      major: "1",
      minor: opts.minorVersion ?? "32",
      gitVersion: `v1.${opts.minorVersion ?? "32"}.0-celeriac`,
      gitCommit: "0000000000000000000000000000000000000000",
      gitTreeState: "clean",
      buildDate: "2024-12-11T00:00:00Z",
      goVersion: "go1.23.4",
      compiler: "gc",
      platform: "linux/amd64",
    },
    address: () => address,
    podLogsDir: opts.podLogsDir,
    access: new Access(core),
  };
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => void handle(deps, req, res));
  server.keepAliveTimeout = 30_000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  address = `${host}:${port}`;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  if (opts.kubeconfigPath) writeKubeconfig(opts.kubeconfigPath, url);
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    kubeconfigPath: opts.kubeconfigPath,
    controllers: switches,
    setWatchHistory: (n) => store.setHistorySize(n),
    close() {
      closing ??= new Promise<void>((resolve) => {
        controllers.stop();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
