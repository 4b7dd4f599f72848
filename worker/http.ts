/**
 * The worker's HTTP endpoints: `/healthz` (process alive), `/readyz` (pulling and connected),
 * `/metrics` (Prometheus text).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** A started HTTP server and the port it listens on. */
export interface HttpServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves the endpoints on `port` (0 = any free port). Plain node:http rather than express: three
 * GET routes do not need a router, and express adds ~10 MiB to an idle worker's RSS (issue 14).
 * Other paths answer 404, other methods on these paths 405.
 * @param ready returns true when the worker should receive traffic (503 otherwise)
 * @throws Error when the port cannot be bound (e.g. EADDRINUSE)
 */
export async function serveWorkerHttp(port: number, registry: Registry, ready: () => boolean): Promise<HttpServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const text = "text/plain; charset=utf-8";
    if (path !== "/healthz" && path !== "/readyz" && path !== "/metrics") return send(404, text, "not found\n");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return send(405, text, "method not allowed\n");
    }
    if (path === "/healthz") return send(200, text, "ok\n");
    if (path === "/readyz") return ready() ? send(200, text, "ready\n") : send(503, text, "not ready\n");
    registry.metrics().then(
      (body) => send(200, registry.contentType, body),
      (err: unknown) => send(500, text, `collect metrics: ${(err as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
