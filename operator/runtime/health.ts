/**
 * The operator's HTTP endpoints on one express 5 app:
 * - `GET /healthz`: liveness, `200 ok` while the event loop answers;
 * - `GET /readyz`: `200 ok` when `ready()` is true, else `503` with the reason text;
 * - `GET /metrics`: the prom-client registry in the Prometheus text format.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { register as defaultRegistry } from "prom-client";
import type { Registry } from "prom-client";

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Bind address. Default `0.0.0.0` (probes come from the kubelet); tests pass `127.0.0.1`. */
  host?: string;
  /** Registry served on `/metrics`. Default prom-client's global registry. */
  registry?: Registry;
  /**
   * Readiness: true when caches are synced and, with leader election, the replica is leading or
   * standing by. Return a string to report not ready with that reason.
   */
  ready: () => boolean | string;
}

/** A running health server. */
export interface HealthServer {
  /** The bound port. */
  port: number;
  /** Stops listening and closes open connections. Memoised. */
  close(): Promise<void>;
}

/**
 * Starts the health/metrics server.
 *
 * @returns once listening, with the bound port
 * @throws Error `start health server on port <port>` when the port cannot be bound
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const registry = opts.registry ?? defaultRegistry;
  const app = express();
  app.disable("x-powered-by");
  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok");
  });
  app.get("/readyz", (_req, res) => {
    let r: boolean | string;
    try {
      r = opts.ready();
    } catch (err) {
      r = `readiness check failed: ${(err as Error).message}`;
    }
    if (r === true) res.type("text/plain").send("ok");
    else res.status(503).type("text/plain").send(typeof r === "string" ? r : "not ready");
  });
  app.get("/metrics", async (_req, res) => {
    try {
      const body = await registry.metrics();
      res.type(registry.contentType).send(body);
    } catch (err) {
      res.status(500).type("text/plain").send(`collect metrics: ${(err as Error).message}`);
    }
  });
  const server = createServer(app);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.host ?? "0.0.0.0", () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (cause) {
    throw new Error(`start health server on port ${opts.port}`, { cause });
  }
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
