/**
 * `npm run demo`: the main job on one machine. Starts the platform (`celeriac dev up`), applies the
 * example Queue and Tasks with kubectl, waits until every Task has finished, and prints
 * `kubectl get tasks` with phases, attempts, results and errors; then applies the diamond Workflow
 * (examples/workflows/diamond.yaml), waits for it with `kubectl wait --for=condition=Succeeded`
 * and prints `kubectl get workflows` and its result. The platform keeps running afterwards; stop
 * it with `npx celeriac dev down`.
 *
 * Usage: `node dist/scripts/demo.js [--dir .celeriac] [--timeout 120]`
 * Needs `kubectl` on PATH (or KUBECTL=<path>) and `nats-server`.
 */
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { devUp } from "../cli/commands/dev-platform.js";
import { REPO_ROOT } from "../devcluster/platform/paths.js";

const EXAMPLES = ["queue.yaml", "task-succeeds.yaml", "task-retries.yaml", "task-fails.yaml", "task-delayed.yaml"];
const WORKFLOW = "workflows/diamond.yaml";
const TERMINAL = new Set(["Succeeded", "Failed", "Cancelled", "Expired"]);

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

async function main(): Promise<void> {
  const dir = resolve(arg("--dir", ".celeriac"));
  const timeoutMs = Number(arg("--timeout", "120")) * 1000;
  const kubectlBin = process.env.KUBECTL ?? "kubectl";
  console.log(`Starting Celeriac in ${dir} …`);
  const kubeconfig = await devUp(dir);
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, "kube-cache") };
  const kubectl = (args: string[], show = true) => {
    const r = spawnSync(kubectlBin, args, { env, encoding: "utf8" });
    if (r.error) throw new Error(`${kubectlBin} could not be run (${r.error.message}): install kubectl or set KUBECTL=<path>`);
    if (show) process.stdout.write(r.stdout + r.stderr);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")} failed`);
    return r.stdout;
  };
  console.log(`$ kubectl apply ${EXAMPLES.map((f) => `-f examples/${f}`).join(" ")}`);
  kubectl(["apply", ...EXAMPLES.flatMap((f) => ["-f", join(REPO_ROOT, "examples", f)])]);
  const names = ["monthly-report", "flaky-fetch", "always-fails", "reminder-email"];
  console.log(`Waiting for ${names.length} tasks to finish (reminder-email has a 30 s countdown) …`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const phases = kubectl(["get", "tasks", ...names, "-o", "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}"], false).split("\n").filter(Boolean);
    if (phases.length === names.length && phases.every((p) => TERMINAL.has(p))) break;
    if (Date.now() > deadline) {
      console.error(`Not all tasks finished within ${timeoutMs / 1000} s; see npx celeriac dev logs and ${join(dir, "logs")}`);
      process.exitCode = 1;
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log("$ kubectl get tasks -o wide");
  kubectl(["get", "tasks", "-o", "wide"]);
  console.log("$ kubectl get tasks -o custom-columns=NAME:.metadata.name,PHASE:.status.phase,RESULT:.status.result,ERROR:.status.error.message");
  kubectl(["get", "tasks", "-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase,RESULT:.status.result,ERROR:.status.error.message"]);
  console.log(`$ kubectl apply -f examples/${WORKFLOW}`);
  kubectl(["apply", "-f", join(REPO_ROOT, "examples", WORKFLOW)]);
  const waitS = Math.max(10, Math.round((deadline - Date.now()) / 1000));
  console.log(`$ kubectl wait --for=condition=Succeeded workflow/sales-etl --timeout=${waitS}s`);
  try {
    kubectl(["wait", "--for=condition=Succeeded", "workflow/sales-etl", `--timeout=${waitS}s`]);
  } catch {
    console.error(`The Workflow sales-etl did not succeed within ${waitS} s; see kubectl describe workflow sales-etl`);
    process.exitCode = 1;
  }
  console.log("$ kubectl get workflows");
  kubectl(["get", "workflows"]);
  console.log("$ kubectl get workflow sales-etl -o jsonpath='{.status.result}'");
  console.log(kubectl(["get", "workflow", "sales-etl", "-o", "jsonpath={.status.result}"], false));
  console.log(`\nThe platform is still running. Use it with:\n  export KUBECONFIG=${kubeconfig}\nStop it with:\n  npx celeriac dev down --dir ${dir}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
