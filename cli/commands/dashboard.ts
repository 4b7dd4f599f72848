/**
 * `celeriac dashboard`: the web UI (dashboard/server.ts, docs/dashboard.md) on 127.0.0.1:8090 by
 * default, reading the namespace's queues over NATS (found as the other operations commands find
 * it: cli/session.ts). Read-only unless `--allow-actions`; then each action needs the page's CSRF
 * token and, with `--auth token` (the default), the action token printed here (or given with
 * `--token` / `CELERIAC_DASHBOARD_TOKEN`), or with `--auth kubernetes` the user's own Kubernetes
 * token, authorised by TokenReview and SubjectAccessReview (dashboard/authz.ts).
 */
import type { Command } from "commander";
import { intInRange } from "./int-option.js";
import type { OpsFlags } from "../session.js";

/** Flags of `celeriac dashboard`. */
interface DashboardFlags extends Pick<OpsFlags, "namespace" | "nats" | "devDir"> {
  kubeconfig?: string;
  port: number;
  address: string;
  allowActions?: boolean;
  auth: string;
  token?: string;
  history: string;
  historyResolution: string;
  historyStore: boolean;
}

/** `--history` / `--history-resolution` in ms. @throws Error naming the flag */
function durationMs(flag: string, v: string, parse: (d: string) => number): number {
  try {
    return Math.round(parse(v) / 1e6);
  } catch (err) {
    throw new Error(`${flag}: ${(err as Error).message}`, { cause: err });
  }
}

/** Registers `celeriac dashboard`. */
export function register(program: Command): void {
  program
    .command("dashboard")
    .description("serve the web dashboard: queues, tasks, workers, dead letters (read-only unless --allow-actions)")
    .option("--port <n>", "port to listen on (0: any free port)", intInRange(0, 65535), 8090)
    .option("--address <ip>", "address to bind (anything but loopback exposes the dashboard to the network)", "127.0.0.1")
    .option("--allow-actions", "allow replaying and purging dead letters (each needs the action token and the page's CSRF token)")
    .option("--auth <mode>", "how actions are authorised: token (one action token) or kubernetes (each user's Kubernetes token, by TokenReview and SubjectAccessReview)", "token")
    .option("--token <token>", "the action token, with --allow-actions [CELERIAC_DASHBOARD_TOKEN] (default: a random one, printed)")
    .option("-n, --namespace <ns>", "namespace (default: CELERIAC_NAMESPACE, else the kubeconfig context's, else default)")
    .option("--nats <url>", "NATS URL(s) [CELERIAC_NATS_URL] (default: the NATS of a running `celeriac dev up`, else nats://127.0.0.1:4222)")
    .option("--kubeconfig <file>", "kubeconfig for the Kubernetes API (default: KUBECONFIG, else the running `celeriac dev up`'s, else in-cluster, else ~/.kube/config)")
    .option("--dev-dir <dir>", "state directory of `celeriac dev up` to find NATS and the kubeconfig in", ".celeriac")
    .option("--history <duration>", "how much history the plots keep, across restarts in NATS KV (1m to 168h)", "1h")
    .option("--history-resolution <duration>", "one stored point per queue per this long (at least 1s)", "10s")
    .option("--no-history-store", "keep the history in memory only (no NATS KV bucket)")
    .action(async (f: DashboardFlags) => {
      if (f.token !== undefined && !f.allowActions) throw new Error("--token is only used with --allow-actions: the dashboard is read-only without it");
      if (f.auth !== "token" && f.auth !== "kubernetes") throw new Error(`--auth: "${f.auth}" is not a mode: use token (the action token) or kubernetes (each user's Kubernetes token)`);
      if (f.auth === "kubernetes" && f.token !== undefined) throw new Error("--token is not used with --auth kubernetes: each user gives their own Kubernetes token in the page");
      if (f.auth === "kubernetes" && !f.allowActions) throw new Error("--auth kubernetes authorises actions: add --allow-actions (without it the dashboard is read-only)");
      // CELERIAC_DASHBOARD_TOKEN is ignored on a read-only dashboard
      const token = f.allowActions && f.auth === "token" ? (f.token ?? process.env.CELERIAC_DASHBOARD_TOKEN) : undefined;
      if (token !== undefined && token.length < 16) throw new Error("--token: use at least 16 characters (or leave it out for a random one)");
      const [{ openOps }, { startDashboard }, { pino }, { kubeTarget }, { parseGoDuration }] = await Promise.all([import("../session.js"), import("../../dashboard/server.js"), import("pino"), import("../kube-target.js"), import("../../nats/queue-settings.js")]);
      const history = { windowMs: durationMs("--history", f.history, parseGoDuration), resolutionMs: durationMs("--history-resolution", f.historyResolution, parseGoDuration), enabled: f.historyStore };
      const kt = await kubeTarget(f.kubeconfig, process.env, f.devDir);
      // the dashboard shows every queue of the namespace: CELERIAC_QUEUE does not narrow it
      delete process.env.CELERIAC_QUEUE;
      const s = await openOps({ ...(f.namespace ? { namespace: f.namespace } : {}), ...(f.nats ? { nats: f.nats } : {}), ...(f.devDir ? { devDir: f.devDir } : {}) }, { name: "celeriac-dashboard", allowNoQueues: true, reconnect: true });
      // info by default: the actions (who did what) are logged at info; nothing logs at info per tick
      const logger = pino({ level: process.env.CELERIAC_LOG_LEVEL || "info" }, pino.destination(2));
      let d;
      try {
        d = await startDashboard({ session: s, port: f.port, address: f.address, allowActions: f.allowActions === true, auth: f.auth, ...(token ? { token } : {}), ...(kt.kube ? { kube: kt.kube } : {}), history, logger });
      } catch (err) {
        await s.close();
        throw new Error(`start the dashboard on ${f.address}:${f.port}: ${(err as Error).message}`, { cause: err });
      }
      // one write: whoever reads the URL line has the others too
      const lines = [`Celeriac dashboard for namespace "${s.namespace}": ${d.url}`];
      if (s.queues.length === 0) lines.push(`No queues in namespace "${s.namespace}" yet: they show up within 5 s of being created (kubectl apply -f a Queue)`);
      lines.push(kt.kube ? `Kubernetes API: ${kt.kube.getCurrentCluster()?.server ?? "?"} (kubeconfig from ${kt.source}${kt.file ? `: ${kt.file}` : ""})` : `Kubernetes API: ${kt.reason}; pages that need it say so`);
      if (f.allowActions && f.auth === "kubernetes") lines.push("Actions allowed, authorised by each user's Kubernetes token (TokenReview and SubjectAccessReview; see docs/dashboard.md for the verbs)");
      else if (d.token) lines.push(token ? "Actions allowed: give the token from --token / CELERIAC_DASHBOARD_TOKEN in the page" : `Actions allowed; action token: ${d.token}`);
      else lines.push("Read-only (start with --allow-actions to revoke, pause, resume, purge and replay)");
      console.log(lines.join("\n"));
      const stop = async () => {
        await d.close();
        await s.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop());
      process.once("SIGTERM", () => void stop());
    });
}
