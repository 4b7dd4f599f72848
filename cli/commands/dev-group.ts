/**
 * The `celeriac dev` command group, shared by the dev subcommands (apiserver, logs, up, down, status).
 */
import type { Command } from "commander";

/**
 * Returns the `dev` group of `program`, creating it on first use.
 * @param program the root `celeriac` command
 */
export function devGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === "dev") ??
    program.command("dev").description("run Celeriac on one machine: in-memory API server, NATS, operator, process kubelet")
  );
}
