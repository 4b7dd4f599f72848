/**
 * `celeriac worker`: run a worker for one queue. Every flag has a `CELERIAC_*` env var (see
 * worker/config.ts for defaults).
 */
import type { Command } from "commander";
import type { WorkerFlags } from "../../worker/config.js";

/** Registers `celeriac worker`. */
export function register(program: Command): void {
  program
    .command("worker")
    .description("run tasks from a queue (graceful shutdown on SIGTERM, forced on a second signal)")
    .option("--tasks <module>", "tasks module (compiled .js path or package) [CELERIAC_TASKS]")
    .option("--queue <name>", "queue to consume [CELERIAC_QUEUE]")
    .option("--namespace <ns>", "queue namespace (default: default) [CELERIAC_NAMESPACE]")
    .option("--concurrency <n>", "handlers in flight (default: 4) [CELERIAC_CONCURRENCY]")
    .option("--nats <url>", "NATS URL(s), comma-separated [CELERIAC_NATS_URL]")
    .option("--port <port>", "HTTP port for /healthz /readyz /metrics; 0 = any (default: 8080) [CELERIAC_PORT]")
    .option("--ack-wait-seconds <s>", "consumer ack wait when creating it (default: 30) [CELERIAC_ACK_WAIT_SECONDS]")
    .option("--timeout-seconds <s>", "default handler timeout (default: 3600) [CELERIAC_TIMEOUT_SECONDS]")
    .option("--grace-period-seconds <s>", "shutdown grace for in-flight tasks (default: 25) [CELERIAC_GRACE_PERIOD_SECONDS]")
    .option("--worker-name <name>", "name recorded in task status (default: $POD_NAME or host:pid) [CELERIAC_WORKER_NAME]")
    .action(async (flags: WorkerFlags) => {
      const [{ parseWorkerConfig }, { runWorker }, { writeTerminationMessage }] = await Promise.all([import("../../worker/config.js"), import("../../worker/run.js"), import("../../worker/termination-message.js")]);
      await Promise.resolve().then(() => runWorker(parseWorkerConfig(flags))).catch((err: unknown) => {
        writeTerminationMessage(err);
        throw err;
      });
      process.exit(0);
    });
}
