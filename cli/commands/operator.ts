/**
 * `celeriac operator`: runs the operator (reconciles Queues, Tasks and Schedules) until SIGTERM/SIGINT.
 * A first signal shuts down in order (stop controllers, release the Lease, drain NATS); a second exits at once.
 */
import type { Command } from "commander";
import { pino } from "pino";
import type { OperatorFlags } from "../../operator/config.js";

/** Registers `celeriac operator`. */
export function register(program: Command): void {
  program
    .command("operator")
    .description("run the Celeriac operator: reconcile Queues, Tasks and Schedules into NATS streams and worker Deployments")
    .option("--kubeconfig <path>", "kubeconfig file (env KUBECONFIG; default: in-cluster, then ~/.kube/config)")
    .option("--nats <url>", "NATS server URL(s), comma-separated (env CELERIAC_NATS_URL)")
    .option("--leader-elect", "hold a coordination.k8s.io Lease so only one replica reconciles (env CELERIAC_LEADER_ELECT=true)")
    .option("--watch-namespaces <list>", "comma-separated namespaces to watch; default all (env CELERIAC_WATCH_NAMESPACES)")
    .option("--port <port>", "port of /healthz, /readyz, /metrics; 0 = a free one (env CELERIAC_PORT, default 8080)")
    .option("--lease-duration-seconds <s>", "leader lease duration (default 15)")
    .option("--renew-deadline-seconds <s>", "leader renew deadline (default 10)")
    .option("--retry-period-seconds <s>", "leader election retry period (default 2)")
    .option("--nats-max-control-line <bytes>", "minting modes: the NATS server's max_control_line; a minted credential over it gets a Warning Event (env CELERIAC_NATS_MAX_CONTROL_LINE, default 4096)")
    .action(async (flags: OperatorFlags) => {
      const log = pino({ name: "celeriac-operator", level: process.env.CELERIAC_LOG_LEVEL ?? "info" });
      const { operatorConfigFrom } = await import("../../operator/config.js");
      const { startOperator } = await import("../../operator/main.js");
      const config = operatorConfigFrom(flags);
      // OTLP export of the operator's spans (Task and Workflow enqueues) when OTEL_* asks for it (docs/tracing.md)
      const { setupTracing } = await import("../../tracing/setup.js");
      const tracing = await setupTracing({ serviceName: "celeriac-operator", resourceAttributes: { "service.instance.id": config.identity }, log });
      const op = await startOperator(config, log, () => process.exit(1));
      let signals = 0;
      const onSignal = (sig: string) => {
        if (++signals > 1) process.exit(1);
        log.info({ signal: sig }, "Shutting down");
        void op.stop().then(() => tracing.shutdown()).then(() => process.exit(0));
      };
      process.on("SIGTERM", () => onSignal("SIGTERM"));
      process.on("SIGINT", () => onSignal("SIGINT"));
    });
}
