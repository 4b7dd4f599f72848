/**
 * One readiness probe attempt against a local process: `httpGet` (status 200–399 passes) or `tcpSocket`
 * (a connection passes), always on 127.0.0.1.
 */
import http from "node:http";
import net from "node:net";
import type { V1Probe } from "@kubernetes/client-node";

/** True when the probe is one the local kubelet runs (`httpGet` or `tcpSocket`). */
export function isNetworkProbe(p: V1Probe | undefined): p is V1Probe {
  return p?.httpGet !== undefined || p?.tcpSocket !== undefined;
}

/**
 * Runs one probe attempt.
 * @param probe the container's readinessProbe (`httpGet` or `tcpSocket`)
 * @param port the local port to probe (the kubelet's allocated `PORT`, not the probe's own port)
 * @returns true on success; never throws (errors and timeouts are failures)
 */
export function probeOnce(probe: V1Probe, port: number): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  return new Promise((resolve) => {
    if (probe.httpGet) {
      const headers: Record<string, string> = { "User-Agent": "kube-probe/1.32" };
      for (const h of probe.httpGet.httpHeaders ?? []) headers[h.name] = h.value;
      const req = http.get({ host: "127.0.0.1", port, path: probe.httpGet.path ?? "/", headers, timeout: timeoutMs }, (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(code >= 200 && code < 400);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
      return;
    }
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      resolve(false);
    });
    sock.on("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.on("error", () => resolve(false));
  });
}

/**
 * Finds a free loopback TCP port (bind to port 0, read it, close).
 * @returns the port number
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("allocate a free port"))));
    });
  });
}
