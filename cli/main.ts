/**
 * The `celeriac` command line: one program, one subcommand per job.
 *
 * Each subcommand lives in its own module under `cli/commands/` and exports `register(program)`;
 * this file only wires them together. Parsing is done by `commander`.
 */
import { Command } from "commander";
import { readFileSync } from "node:fs";
import { register as registerValidate } from "./commands/validate.js";
import { register as registerWorker } from "./commands/worker.js";
import { register as registerEnqueue } from "./commands/enqueue.js";
import { register as registerDevApiserver } from "./commands/dev-apiserver.js";
import { register as registerDevLogs } from "./commands/dev-logs.js";
import { register as registerDevPlatform } from "./commands/dev-platform.js";
import { register as registerOperator } from "./commands/operator.js";
import { register as registerWorkflow } from "./commands/workflow.js";
import { register as registerTasks } from "./commands/tasks.js";
import { register as registerDlq } from "./commands/dlq.js";
import { register as registerInspect } from "./commands/inspect.js";
import { register as registerQueue } from "./commands/queue.js";
import { register as registerDashboard } from "./commands/dashboard.js";

/**
 * Builds the `celeriac` program with every subcommand registered.
 * @param o `name`: the program name in help and errors (`kubectl celeriac` for the kubectl plugin)
 * @returns a commander `Command`; call `parseAsync(argv)` on it.
 */
export function buildProgram(o: { name?: string } = {}): Command {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  const program = new Command(o.name ?? "celeriac")
    .description("Kubernetes-native distributed task platform on NATS JetStream")
    .version(pkg.version)
    .showHelpAfterError();
  registerValidate(program);
  registerWorker(program);
  registerEnqueue(program);
  registerDevApiserver(program);
  registerDevLogs(program);
  registerDevPlatform(program);
  registerOperator(program);
  registerWorkflow(program);
  registerTasks(program);
  registerDlq(program);
  registerInspect(program);
  registerQueue(program);
  registerDashboard(program);
  return program;
}

/**
 * Entry point used by `bin/celeriac.js` and `bin/kubectl-celeriac.js`.
 * @param argv the full `process.argv` (node, script, args…)
 * @param o `name`: the program name (default `celeriac`)
 * @throws whatever a subcommand throws; the bin prints its message and exits 1
 */
export async function main(argv: string[], o: { name?: string } = {}): Promise<void> {
  await buildProgram(o).parseAsync(argv);
}
