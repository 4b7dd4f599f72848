/**
 * The worker's HTTP endpoints: `/healthz` (process alive), `/readyz` (pulling and connected),
 * `/metrics` (Prometheus text).
 */
import express from "express";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** A started HTTP server and the port it listens on. */
export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves the endpoints on `port` (0 = any free port).
 * @param ready returns true when the worker should receive traffic (503 otherwise)
 */
export async function serveWorkerHttp(port: number, registry: Registry, ready: () => boolean): Promise<HttpServer> {
  const app = express();
  app.get("/healthz", (_req, res) => void res.type("text/plain").send("ok\n"));
  app.get("/readyz", (_req, res) => {
    if (ready()) res.type("text/plain").send("ready\n");
    else res.status(503).type("text/plain").send("not ready\n");
  });
  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
