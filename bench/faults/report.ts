/**
 * The fault suite's result row and table, shared by every scenario under `bench/faults/`.
 *
 * A scenario file is named `<name>.scenario.ts` and default-exports a {@link FaultScenario}; the
 * runner (`bench/faults/run.ts`) runs them one after another and prints {@link formatFaultTable}.
 */

/** What one scenario measured. Counts are of tasks unless said otherwise. */
export interface FaultRow {
  /** Short scenario name, e.g. `worker SIGKILL ×10`. */
  scenario: string;
  /** Tasks enqueued (SDK) or Task objects created (CR path). */
  tasks: number;
  /** Faults injected, in words with counts, e.g. `10 × worker SIGKILL`. */
  faults: string;
  /** Tasks never completed and not dead-lettered (and not rejected to the caller with an error). Must be 0. */
  lost: number;
  /** Executions beyond the first of the same task id (from the per-execution log). */
  duplicates: number;
  /** Of `duplicates`, how many an injected fault hit in flight (the earlier execution was cut off or its ack lost). */
  duplicatesExplained: number;
  /** Errors the callers or users saw, in words with counts, e.g. `3 enqueue rejected: TimeoutError`; `none`. */
  errorsSurfaced: string;
  /** Wall time of the scenario, in seconds. */
  seconds: number;
}

/** One scenario of the fault suite. `run` starts what it needs and stops exactly what it started. */
export interface FaultScenario {
  /** Name used on the command line (`node dist/bench/faults/run.js <name>`): the file name without `.scenario.ts`. */
  name: string;
  /**
   * Runs the scenario once. Bounded: must finish (or throw) within `deadlineMs`.
   * @throws Error when the scenario could not run (not when it measured loss: that is `lost` > 0)
   */
  run(opts: { deadlineMs: number; log: (msg: string) => void }): Promise<FaultRow>;
}

/** Markdown table: scenario | tasks | faults | lost | duplicates (explained) | errors surfaced | s. */
export function formatFaultTable(rows: readonly FaultRow[]): string {
  const head = "| scenario | tasks | faults | lost | duplicates (explained) | errors surfaced | s |\n|---|--:|---|--:|--:|---|--:|";
  const body = rows.map((r) => `| ${r.scenario} | ${r.tasks} | ${r.faults} | ${r.lost} | ${r.duplicates} (${r.duplicatesExplained}) | ${r.errorsSurfaced} | ${r.seconds.toFixed(0)} |`);
  return [head, ...body].join("\n");
}

/** True when the row meets the suite's bar: nothing lost, every duplicate explained by a fault. */
export function faultRowPasses(r: FaultRow): boolean {
  return r.lost === 0 && r.duplicates === r.duplicatesExplained;
}
