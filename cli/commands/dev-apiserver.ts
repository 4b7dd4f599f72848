/**
 * `celeriac dev apiserver`: runs the in-memory Kubernetes API server in the foreground and writes a kubeconfig
 * that kubectl, helm and client-node accept.
 */
import type { Command } from "commander";
import { resolve } from "node:path";
import { devGroup } from "./dev-group.js";
import { intInRange } from "./int-option.js";

/**
 * Adds `dev apiserver` to the program, creating the `dev` group if no other command created it yet.
 * @param program the root `celeriac` command
 */
export function register(program: Command): void {
  devGroup(program)
    .command("apiserver")
    .description("Run the in-memory Kubernetes API server until SIGTERM/SIGINT")
    .option("--port <n>", "TCP port (0 = a free port)", intInRange(0, 65535), 0)
    .option("--host <addr>", "bind address", "127.0.0.1")
    .option("--kubeconfig <file>", "where to write the kubeconfig", "./.celeriac/kubeconfig")
    .option("--no-deployment-status", "do not fake Deployment status (when a kubelet reports it)")
    .action(async (opts: { port: number; host: string; kubeconfig: string; deploymentStatus: boolean }) => {
      const port = opts.port;
      const kubeconfigPath = resolve(opts.kubeconfig);
      const api = await (await import("../../devcluster/server/index.js")).startApiServer({ port, host: opts.host, kubeconfigPath, controllers: { deploymentStatus: opts.deploymentStatus } });
      console.log(`API server listening on ${api.url}`);
      console.log(`kubeconfig written to ${kubeconfigPath}`);
      await new Promise<void>((done) => {
        const stop = (): void => {
          process.off("SIGTERM", stop);
          process.off("SIGINT", stop);
          void api.close().then(done);
        };
        process.on("SIGTERM", stop);
        process.on("SIGINT", stop);
      });
    });
}
