/**
 * The fault suite runner:
 *
 *   npm run build && node dist/bench/faults/run.js [scenario names…]      (or: npm run bench:faults)
 *
 * Discovers `dist/bench/faults/*.scenario.js` (each default-exports a `FaultScenario`, report.ts),
 * runs the named ones (default: all, by name) one after another, each within its deadline
 * (`--deadline-seconds`, default 300) and the whole suite within `--suite-seconds` (default 900),
 * prints the markdown table (report.ts `formatFaultTable`), and exits 1 when a scenario failed to
 * run or a row fails `faultRowPasses` (something lost, or a duplicate no fault explains).
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { faultRowPasses, formatFaultTable, type FaultRow, type FaultScenario } from "./report.js";
import { withDeadline } from "./harness.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const SUFFIX = ".scenario.js";

/** Command-line options of the runner. */
interface RunArgs {
  /** Scenario names to run; empty = all. */
  readonly names: string[];
  /** Per-scenario deadline, ms. */
  readonly deadlineMs: number;
  /** Whole-suite deadline, ms. */
  readonly suiteMs: number;
}

/**
 * Parses `[names…] [--deadline-seconds N] [--suite-seconds N]`. Pure.
 * @throws Error on a flag without a positive number
 */
function parseRunArgs(argv: readonly string[]): RunArgs {
  const names: string[] = [];
  let deadlineMs = 300_000;
  let suiteMs = 900_000;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--deadline-seconds" || a === "--suite-seconds") {
      const v = Number(argv[++i]);
      if (!(v > 0)) throw new Error(`${a} needs a positive number of seconds, got ${argv[i]}`);
      if (a === "--deadline-seconds") deadlineMs = v * 1000;
      else suiteMs = v * 1000;
    } else names.push(a);
  }
  return { names, deadlineMs, suiteMs };
}

/** The scenario names found next to this file (`<name>.scenario.js`), sorted. */
function discoverScenarios(dir = HERE): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
}

async function main(): Promise<number> {
  const args = parseRunArgs(process.argv.slice(2));
  const found = discoverScenarios();
  const unknown = args.names.filter((n) => !found.includes(n));
  if (unknown.length) {
    console.error(`unknown scenario(s): ${unknown.join(", ")}; found: ${found.join(", ")}`);
    return 2;
  }
  const names = args.names.length ? args.names : found;
  const suiteEnd = Date.now() + args.suiteMs;
  const rows: FaultRow[] = [];
  const failures: string[] = [];
  for (const name of names) {
    const left = suiteEnd - Date.now();
    if (left < 10_000) {
      failures.push(`${name}: not run, the suite's ${args.suiteMs / 1000} s were used up`);
      continue;
    }
    const deadlineMs = Math.min(args.deadlineMs, left);
    const mod = (await import(pathToFileURL(join(HERE, name + SUFFIX)).href)) as { default?: FaultScenario };
    const scenario = mod.default;
    if (!scenario || typeof scenario.run !== "function") {
      failures.push(`${name}: ${name}${SUFFIX} does not default-export a FaultScenario`);
      continue;
    }
    const t0 = Date.now();
    const log = (msg: string) => console.error(`[${name} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
    log(`starting (deadline ${Math.round(deadlineMs / 1000)} s)`);
    try {
      // the scenario bounds itself; the race only stops the suite from waiting on one that does not
      const row = await withDeadline(`scenario ${name}`, deadlineMs + 30_000, scenario.run({ deadlineMs, log }));
      rows.push(row);
      log(`done: ${JSON.stringify(row)}`);
      if (!faultRowPasses(row)) failures.push(`${name}: ${row.lost} lost, ${row.duplicates - row.duplicatesExplained} unexplained duplicates`);
    } catch (err) {
      failures.push(`${name}: did not run: ${(err as Error).stack ?? String(err)}`);
    }
  }
  console.log(formatFaultTable(rows));
  for (const f of failures) console.error(`FAILED ${f}`);
  return failures.length ? 1 : 0;
}

// exit explicitly: a scenario that hit its deadline may have left a handle open
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
