/**
 * `celeriac validate <file|dir>...`: checks Celeriac manifests (YAML, multi-document, or JSON, a `List`
 * included) offline, with the errors `kubectl apply` would give — names, schema, the CRDs' CEL rules — and
 * the checks the operator would make later: the cron expression and time zone of a Schedule (what would
 * turn Ready=False/InvalidSchedule), the 256 KiB limit on a Task's args and kwargs, and a Workflow's DAG
 * (api/workflow-check.ts: cycles of any length, which CEL cannot see past two steps, and what would make
 * the operator fail it with reason InvalidSpec). Every file is
 * reported, a bad one does not stop the rest; the summary counts them and the exit code is non-zero when
 * anything is invalid. Other API groups are skipped and listed; a `celeriac.io` object of an unknown
 * version or kind is an error.
 */
import type { Command } from "commander";
import type { parseAllDocuments as ParseAllDocumentsFn } from "yaml";

type ParseAllDocuments = typeof ParseAllDocumentsFn;
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { API_VERSION, GROUP, MAX_ARGS_BYTES } from "../../api/constants.js";
import { DEFAULT_SCHEDULE } from "../../api/defaults.js";

type Obj = Record<string, unknown>;

/** Outcome of {@link validatePaths}. */
export interface ValidateReport {
  /** One line (or block) per object or unreadable file. */
  lines: string[];
  /** Invalid objects plus files that could not be read or parsed. */
  invalid: number;
  /** Valid Celeriac objects. */
  valid: number;
  /** Objects of other API groups. */
  skipped: number;
  /** Files read. */
  files: number;
}

function manifestFiles(path: string): string[] {
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .sort()
      .map((f) => join(path, f));
  }
  return [path];
}

/** The objects of one file: every YAML document, or the JSON value (a `List`'s items unpacked). */
function objectsOf(file: string, text: string, parseAllDocuments: ParseAllDocuments): Obj[] {
  let values: unknown[];
  if (file.endsWith(".json")) {
    try {
      values = [JSON.parse(text)];
    } catch (e) {
      throw new Error(`not valid JSON: ${(e as Error).message}`, { cause: e });
    }
  } else {
    values = [];
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) throw new Error(`not valid YAML: ${doc.errors[0]!.message}`);
      values.push(doc.toJS());
    }
  }
  const out: Obj[] = [];
  for (const v of values) {
    if (v === null || v === undefined) continue;
    if (typeof v !== "object" || Array.isArray(v)) throw new Error("a manifest must be an object with apiVersion and kind");
    const o = v as Obj;
    if (typeof o.kind === "string" && o.kind.endsWith("List") && Array.isArray(o.items)) out.push(...(o.items as Obj[]));
    else out.push(o);
  }
  return out;
}

/** Checks beyond the CRD schema that the operator would make: schedule syntax and zone, args size. */
async function operatorChecks(kind: string, spec: Obj | undefined): Promise<string[]> {
  if (!spec) return [];
  const problems: string[] = [];
  if (kind === "Schedule" && typeof spec.schedule === "string") {
    const { parseSchedule } = await import("../../operator/schedule/next-run.js");
    const parsed = parseSchedule(spec.schedule, typeof spec.timeZone === "string" ? spec.timeZone : DEFAULT_SCHEDULE.timeZone);
    // parseSchedule's message already carries the hint (api/hints.ts scheduleHint, timeZoneHint).
    if (!parsed.ok) problems.push(`${parsed.message} (the Schedule would be Ready=False, reason InvalidSchedule)`);
  }
  const taskSpec = kind === "Task" ? spec : kind === "Schedule" ? ((spec.taskTemplate as Obj | undefined)?.spec as Obj | undefined) : undefined;
  if (taskSpec) {
    const size = Buffer.byteLength(JSON.stringify(taskSpec.args ?? [])) + Buffer.byteLength(JSON.stringify(taskSpec.kwargs ?? {}));
    const field = kind === "Task" ? "spec" : "spec.taskTemplate.spec";
    if (size > MAX_ARGS_BYTES) problems.push(`${field}.args: args and kwargs hold ${size} bytes of JSON; at most ${MAX_ARGS_BYTES} (256 KiB) are allowed: pass a reference (an object-store key, a URL) instead of the data`);
  }
  return problems;
}

/**
 * Problems whose apply-time message does not say enough, so validate adds its own line: the CEL
 * rules on the step list as a whole (they cannot name the entry), and forEach with neither or both
 * of items and fromStep (the schema's generic min/maxProperties message, "must have at most 1 items",
 * reads like a limit on the items list).
 */
const LIST_LEVEL_REASONS: readonly string[] = ["DuplicateStepName", "UnknownDependency", "DependencyCycle", "ForEachItemsOrFromStep"];

/**
 * The DAG checks of a Workflow (or a Schedule's workflowTemplate), api/workflow-check.ts. A problem the
 * CRD's rules already refused is not repeated, except to name the entry a rule on the whole step list
 * cannot (`spec.steps[1].dependsOn[0]: step "b" dependsOn "fecth", …`); one that kubectl apply would
 * accept (a cycle of three or more steps, a kwarg in a dependency's place) says so.
 * @param applyRefused whether the schema or the CEL rules refused the object already
 */
async function workflowChecks(kind: string, spec: Obj | undefined, applyRefused: boolean): Promise<string[]> {
  const workflowSpec = kind === "Workflow" ? spec : kind === "Schedule" ? ((spec?.workflowTemplate as Obj | undefined)?.spec as Obj | undefined) : undefined;
  if (!workflowSpec) return [];
  const { checkWorkflowSpec, refusedAtApply } = await import("../../api/workflow-check.js");
  const prefix = kind === "Workflow" ? "spec" : "spec.workflowTemplate.spec";
  const lines: string[] = [];
  for (const p of checkWorkflowSpec(workflowSpec)) {
    const line = `${prefix}${p.field.slice("spec".length)}: ${p.message}`;
    if (!refusedAtApply(p)) lines.push(`${line} (kubectl apply accepts this; the operator would fail the Workflow, reason InvalidSpec)`);
    else if (!applyRefused || LIST_LEVEL_REASONS.includes(p.reason)) lines.push(line);
  }
  return lines;
}

/**
 * Validates every Celeriac object in the given files or directories. Never throws for a bad file: an
 * unreadable or unparsable file is reported as a line and counted as invalid.
 * @param paths files or directories (directories: their *.yaml, *.yml and *.json files)
 * @returns one line per object or bad file, and the counts (a promise)
 */
export async function validatePaths(paths: string[]): Promise<ValidateReport> {
  // schema validation and YAML: loaded only here, so other commands (the worker) do not carry them
  const [{ checkManifest }, { parseAllDocuments }] = await Promise.all([import("../../api/manifest.js"), import("yaml")]);
  const report: ValidateReport = { lines: [], invalid: 0, valid: 0, skipped: 0, files: 0 };
  const files: string[] = [];
  for (const p of paths) {
    try {
      files.push(...manifestFiles(p));
    } catch (e) {
      report.invalid++;
      report.lines.push(`${p}: cannot read: ${(e as Error).message}`);
    }
  }
  for (const file of files) {
    report.files++;
    let objects: Obj[];
    try {
      objects = objectsOf(file, readFileSync(file, "utf8"), parseAllDocuments);
    } catch (e) {
      report.invalid++;
      report.lines.push(`${file}: invalid: ${(e as Error).message}`);
      continue;
    }
    for (const obj of objects) {
      const id = `${String(obj.kind)}/${String((obj.metadata as { name?: string } | undefined)?.name)}`;
      const apiVersion = typeof obj.apiVersion === "string" ? obj.apiVersion : "";
      if (apiVersion !== API_VERSION && !apiVersion.startsWith(`${GROUP}/`)) {
        report.skipped++;
        report.lines.push(`${file}: ${id}: skipped (not ${GROUP})`);
        continue;
      }
      let problems: string[];
      let label = id;
      if (apiVersion !== API_VERSION) {
        problems = [`apiVersion: Unsupported value: ${JSON.stringify(apiVersion)}: ${GROUP} serves only "${API_VERSION}" (kubectl would say: no matches for kind "${String(obj.kind)}" in version "${apiVersion}")`];
      } else {
        try {
          const r = checkManifest(obj);
          label = `${r.kind}/${r.name}`;
          problems = [
            ...r.unknownFields.map((f) => `${f}: unknown field (remove it, or check its spelling with kubectl explain)`),
            ...r.causes.map((c) => `${c.field}: ${c.message}`),
          ];
          const refused = problems.length > 0;
          problems.push(...(await workflowChecks(r.kind, r.object.spec as Obj | undefined, refused)));
          if (!refused) problems.push(...(await operatorChecks(r.kind, r.object.spec as Obj | undefined)));
        } catch (e) {
          problems = [(e as Error).message];
        }
      }
      if (problems.length === 0) {
        report.valid++;
        report.lines.push(`${file}: ${label}: valid`);
      } else {
        report.invalid++;
        report.lines.push(`${file}: ${label}: invalid:\n  ${problems.join("\n  ")}`);
      }
    }
  }
  return report;
}

/** The closing line of a report: `3 files: 4 valid, 1 invalid, 2 skipped`. */
export function summary(r: ValidateReport): string {
  return `${r.files} file${r.files === 1 ? "" : "s"}: ${r.valid} valid, ${r.invalid} invalid, ${r.skipped} skipped`;
}

/** Registers `celeriac validate`. */
export function register(program: Command): void {
  program
    .command("validate")
    .description("check Celeriac manifests (Queue, Task, Schedule, Workflow; YAML or JSON) against the CRD schemas and CEL rules, offline")
    .argument("<paths...>", "YAML/JSON files or directories")
    .action(async (paths: string[]) => {
      const r = await validatePaths(paths);
      for (const l of r.lines) console.log(l);
      if (r.invalid > 0) {
        console.error(summary(r));
        process.exitCode = 1;
      } else console.log(summary(r));
    });
}
