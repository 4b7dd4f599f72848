/**
 * `celeriac validate <file|dir>...`: checks Celeriac manifests (YAML, multi-document) against the CRD
 * schemas offline, with the errors `kubectl apply` would give. Other kinds are skipped and listed.
 */
import type { Command } from "commander";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { API_VERSION } from "../../api/constants.js";

function manifestFiles(path: string): string[] {
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
      .map((f) => join(path, f));
  }
  return [path];
}

/**
 * Validates every Celeriac object in the given files or directories.
 * @param paths files or directories (directories: their *.yaml / *.yml files)
 * @returns one line per object and the number of invalid ones (a promise)
 * @throws Error when a file cannot be read or is not valid YAML (the message names the file)
 */
export async function validatePaths(paths: string[]): Promise<{ lines: string[]; invalid: number }> {
  const { checkManifest } = await import("../../api/manifest.js"); // schema validation: loaded only here
  const lines: string[] = [];
  let invalid = 0;
  for (const file of paths.flatMap(manifestFiles)) {
    const docs = parseAllDocuments(readFileSync(file, "utf8"));
    for (const doc of Array.isArray(docs) ? docs : [docs]) {
      if (doc.errors.length > 0) throw new Error(`${file}: not valid YAML: ${doc.errors[0]!.message}`);
      const obj = doc.toJS() as Record<string, unknown> | null;
      if (!obj) continue;
      if (obj.apiVersion !== API_VERSION) {
        lines.push(`${file}: ${String(obj.kind)}/${String((obj.metadata as { name?: string })?.name)}: skipped (not ${API_VERSION})`);
        continue;
      }
      const r = checkManifest(obj);
      const problems = [
        ...r.unknownFields.map((f) => `${f}: unknown field (remove it, or check its spelling with kubectl explain)`),
        ...r.causes.map((c) => `${c.field}: ${c.message}`),
      ];
      if (problems.length === 0) lines.push(`${file}: ${r.kind}/${r.name}: valid`);
      else {
        invalid++;
        lines.push(`${file}: ${r.kind}/${r.name}: invalid:\n  ${problems.join("\n  ")}`);
      }
    }
  }
  return { lines, invalid };
}

/** Registers `celeriac validate`. */
export function register(program: Command): void {
  program
    .command("validate")
    .description("check Celeriac manifests (Queue, Task, Schedule) against the CRD schemas, offline")
    .argument("<paths...>", "YAML files or directories")
    .action(async (paths: string[]) => {
      const { lines, invalid } = await validatePaths(paths);
      for (const l of lines) console.log(l);
      if (invalid > 0) {
        console.error(`${invalid} invalid object(s)`);
        process.exitCode = 1;
      }
    });
}
