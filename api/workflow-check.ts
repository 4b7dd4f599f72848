/**
 * Pure checks of a Workflow's DAG (`spec.steps`), for what the CRD's CEL rules cannot catch or catch
 * only at `kubectl apply`: the operator runs them before it starts a Workflow (a failing one makes it
 * Failed, reason InvalidSpec, with the problem's message) and `celeriac validate` runs them offline.
 *
 * The checks are the relations between steps — unique names, dependsOn naming existing steps and not
 * the step itself, no cycle of any length, forEach giving exactly one of items or fromStep and fromStep
 * being a dependency, no kwarg in the place of a dependency's result. Types, patterns and sizes are the
 * schema's job (api/workflow.ts); a value of the wrong type here is skipped, never thrown on.
 *
 * Cycles are written in dependsOn order: `a → b → c → a` means a depends on b, b on c, c on a.
 */

/** The part of a step the graph functions read: its name and the names it depends on. */
export interface StepNode {
  /** Step name (unique in the Workflow). */
  name: string;
  /** Names of the steps this one waits for; unset or empty: none. */
  dependsOn?: readonly string[] | undefined;
}

/**
 * Why a Workflow spec is invalid (CamelCase, for conditions and tests):
 * - `InvalidSpec`: the spec is not an object, or its steps not a list;
 * - `DuplicateStepName`, `UnknownDependency`, `SelfDependency`: the names;
 * - `DependencyCycle`: two or more steps that depend on each other in a ring (`cycle` holds the path);
 * - `ForEachItemsOrFromStep`: forEach has neither or both of items and fromStep;
 * - `ForEachNotDependency`: forEach.fromStep is not in dependsOn;
 * - `KwargIsDependency`: a kwargs key is the name of a dependency.
 */
export type WorkflowProblemReason =
  | "InvalidSpec"
  | "DuplicateStepName"
  | "UnknownDependency"
  | "SelfDependency"
  | "DependencyCycle"
  | "ForEachItemsOrFromStep"
  | "ForEachNotDependency"
  | "KwargIsDependency";

/**
 * Whether `kubectl apply` already refuses a problem (a CEL rule or the schema of the CRD checks it):
 * every reason but a cycle of three or more steps and a kwarg in a dependency's place, which only the
 * operator (phase Failed, reason InvalidSpec) and `celeriac validate` find.
 */
export function refusedAtApply(p: WorkflowProblem): boolean {
  if (p.reason === "KwargIsDependency") return false;
  if (p.reason === "DependencyCycle") return (p.cycle?.length ?? 0) <= 3;
  return true;
}

/** One problem in a Workflow spec, found by {@link checkWorkflowSpec}. */
export interface WorkflowProblem {
  /** What kind of problem it is. */
  reason: WorkflowProblemReason;
  /** For `DependencyCycle`: the cycle as step names in dependsOn order, closed (`["a", "c", "b", "a"]`). */
  cycle?: string[];
  /** Field path as kube-apiserver writes it, e.g. `spec.steps[2].dependsOn[0]`, `spec.steps[1].forEach.fromStep`. */
  field: string;
  /** The step at fault (its name), when the problem belongs to one. */
  step?: string;
  /** What is wrong and how to fix it, naming the step, e.g. `step "load" dependsOn "fetc", which is not a step of this Workflow: use one of fetch, parse`. */
  message: string;
}

/**
 * Thrown by {@link topologicalOrder} for steps that have no dependency order: a cycle, a dependency
 * on a step that does not exist, or a name used twice. `problems` holds the details.
 */
export class InvalidWorkflowGraphError extends Error {
  /** The problems, as {@link checkWorkflowSpec} reports them (fields relative to `spec.steps`). */
  readonly problems: WorkflowProblem[];
  constructor(problems: WorkflowProblem[]) {
    super(problems.map((p) => p.message).join("; "));
    this.name = "InvalidWorkflowGraphError";
    this.problems = problems;
  }
}

/** Type guard for {@link InvalidWorkflowGraphError}. */
export const isInvalidWorkflowGraph = (e: unknown): e is InvalidWorkflowGraphError => e instanceof InvalidWorkflowGraphError;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const q = (s: string): string => JSON.stringify(s);

/** Renders a cycle path: `a → b → c → a`. */
export function formatCycle(path: readonly string[]): string {
  return path.join(" → ");
}

/** The dependsOn names of a step that are strings (others are the schema's problem). */
function depsOf(step: Obj): string[] {
  return Array.isArray(step.dependsOn) ? step.dependsOn.filter((d): d is string => typeof d === "string") : [];
}

/**
 * The strongly connected components of the dependsOn graph (Tarjan, iterative), each as step indexes.
 * Edges to unknown names are ignored; with a duplicated name, edges go to its first step.
 */
function components(nodes: readonly StepNode[]): number[][] {
  const index = new Map<string, number>();
  nodes.forEach((n, i) => {
    if (!index.has(n.name)) index.set(n.name, i);
  });
  const edges = nodes.map((n) => (n.dependsOn ?? []).map((d) => index.get(d)).filter((j): j is number => j !== undefined));
  const order = new Array<number>(nodes.length).fill(-1);
  const low = new Array<number>(nodes.length).fill(0);
  const onStack = new Array<boolean>(nodes.length).fill(false);
  const stack: number[] = [];
  const out: number[][] = [];
  let counter = 0;
  for (let root = 0; root < nodes.length; root++) {
    if (order[root] !== -1) continue;
    const work: Array<[node: number, edge: number]> = [[root, 0]];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = true;
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const [v, e] = frame;
      const next = edges[v]![e];
      if (next !== undefined) {
        frame[1]++;
        if (order[next] === -1) {
          order[next] = low[next] = counter++;
          stack.push(next);
          onStack[next] = true;
          work.push([next, 0]);
        } else if (onStack[next]) low[v] = Math.min(low[v]!, order[next]!);
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low[parent[0]] = Math.min(low[parent[0]]!, low[v]!);
      if (low[v] === order[v]) {
        const comp: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack[w] = false;
          comp.push(w);
        } while (w !== v);
        out.push(comp.sort((a, b) => a - b));
      }
    }
  }
  return out;
}

/**
 * A shortest cycle through step `start` inside one component (breadth-first over dependsOn edges),
 * as names from `start` back to `start`.
 */
function cycleThrough(nodes: readonly StepNode[], start: number, members: ReadonlySet<number>, index: ReadonlyMap<string, number>): string[] {
  const prev = new Map<number, number>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head]!;
    for (const d of nodes[v]!.dependsOn ?? []) {
      const w = index.get(d);
      if (w === undefined || !members.has(w) || w === v) continue; // self-dependencies are their own problem
      if (w === start) {
        const path = [start];
        for (let x = v; x !== start; x = prev.get(x)!) path.push(x);
        // path is start, then the chain walked back from v: reverse the tail into dependsOn order
        const names = [start, ...path.slice(1).reverse()].map((i) => nodes[i]!.name);
        return [...names, nodes[start]!.name];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [];
}

/** Every dependency cycle, one per strongly connected component, each starting at its earliest step in spec order. */
function allCycles(nodes: readonly StepNode[]): string[][] {
  const index = new Map<string, number>();
  nodes.forEach((n, i) => {
    if (!index.has(n.name)) index.set(n.name, i);
  });
  const cycles: Array<{ first: number; path: string[] }> = [];
  for (const comp of components(nodes)) {
    const first = comp[0]!;
    const selfLoop = (nodes[first]!.dependsOn ?? []).includes(nodes[first]!.name);
    if (comp.length === 1 && !selfLoop) continue;
    cycles.push({ first, path: comp.length === 1 ? [nodes[first]!.name, nodes[first]!.name] : cycleThrough(nodes, first, new Set(comp), index) });
  }
  return cycles.sort((a, b) => a.first - b.first).map((c) => c.path);
}

/**
 * Finds a dependency cycle among steps.
 * @param steps the steps (`spec.steps`, or anything with `name` and `dependsOn`); dependencies on names
 *   that are not steps are ignored; with a duplicated name, dependencies on it go to its first step
 * @returns the cycle as step names in dependsOn order, closed: `["a", "b", "c", "a"]` means a depends
 *   on b, b on c and c on a (a self-dependency is `["a", "a"]`); it starts at the cycle's step that
 *   comes first in `steps`, and is a shortest cycle through that step. `undefined` when the steps form
 *   a DAG. With several cycles, the one whose first step comes first in `steps`.
 */
export function findCycle(steps: readonly StepNode[]): string[] | undefined {
  return allCycles(steps)[0];
}

/**
 * Orders steps so that each comes after every step it depends on: the order the operator starts them
 * in when nothing else holds them back (Kahn's algorithm; among steps that are ready together, the
 * one earlier in `steps` first, so a spec already in dependency order comes back unchanged).
 * @param steps the steps (`spec.steps`, or anything with `name` and `dependsOn`)
 * @returns every step name once, in dependency order
 * @throws InvalidWorkflowGraphError when a name is used twice, a dependsOn names no step, or the
 *   steps form a cycle (its message names the cycle, `a → b → c → a`)
 */
export function topologicalOrder(steps: readonly StepNode[]): string[] {
  const index = new Map<string, number>();
  const problems: WorkflowProblem[] = [];
  steps.forEach((s, i) => {
    if (index.has(s.name)) problems.push({ reason: "DuplicateStepName", field: `spec.steps[${i}].name`, step: s.name, message: duplicateMessage(s.name, index.get(s.name)!, i) });
    else index.set(s.name, i);
  });
  steps.forEach((s, i) =>
    (s.dependsOn ?? []).forEach((d, k) => {
      if (!index.has(d)) problems.push({ reason: "UnknownDependency", field: `spec.steps[${i}].dependsOn[${k}]`, step: s.name, message: unknownMessage(s.name, d, [...index.keys()]) });
    }),
  );
  if (problems.length > 0) throw new InvalidWorkflowGraphError(problems);
  const waiting = steps.map((s) => new Set(s.dependsOn ?? []).size);
  const dependents = steps.map(() => [] as number[]);
  steps.forEach((s, i) => {
    for (const d of new Set(s.dependsOn ?? [])) dependents[index.get(d)!]!.push(i);
  });
  // ready: step indexes with no unfinished dependency, kept sorted (binary insertion)
  const ready = waiting.flatMap((w, i) => (w === 0 ? [i] : []));
  const order: string[] = [];
  while (ready.length > 0) {
    const i = ready.shift()!;
    order.push(steps[i]!.name);
    for (const j of dependents[i]!) {
      if (--waiting[j]! !== 0) continue;
      let lo = 0;
      let hi = ready.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (ready[mid]! < j) lo = mid + 1;
        else hi = mid;
      }
      ready.splice(lo, 0, j);
    }
  }
  if (order.length < steps.length) {
    const cycles = allCycles(steps);
    throw new InvalidWorkflowGraphError(cycles.map((c) => cycleProblem(steps, c)));
  }
  return order;
}

function duplicateMessage(name: string, first: number, again: number): string {
  return `step name ${q(name)} is used more than once (steps[${first}] and steps[${again}] of this list): step names must be unique, rename one`;
}

function unknownMessage(step: string, dep: string, names: readonly string[]): string {
  const others = names.filter((n) => n !== step);
  const choice = others.length === 0 ? "it is the only step: remove the dependency" : `use one of ${others.slice(0, 10).join(", ")}${others.length > 10 ? ", …" : ""}`;
  return `step ${q(step)} dependsOn ${q(dep)}, which is not a step of this Workflow: ${choice}`;
}

/** The problem for one cycle, at the first step's dependsOn entry that continues the cycle. */
function cycleProblem(steps: readonly StepNode[], path: readonly string[]): WorkflowProblem {
  const [first, second] = path as [string, string];
  const i = steps.findIndex((s) => s.name === first);
  const k = (steps[i]?.dependsOn ?? []).indexOf(second);
  if (first === second) {
    return { reason: "SelfDependency", field: `spec.steps[${i}].dependsOn[${k}]`, step: first, message: `step ${q(first)} depends on itself: remove it from its own dependsOn` };
  }
  return {
    reason: "DependencyCycle",
    cycle: [...path],
    field: `spec.steps[${i}].dependsOn[${k}]`,
    step: first,
    message: `steps form a dependency cycle ${formatCycle(path)} (each depends on the next): a Workflow is a DAG, remove one of these dependsOn entries`,
  };
}

/**
 * Checks the relations between a Workflow's steps. Never throws.
 * @param spec a Workflow's `spec` (or a Schedule's `workflowTemplate.spec`), as parsed JSON; parts of
 *   the wrong type are skipped (the schema reports them)
 * @returns the problems, empty when the DAG is sound; in spec order, cycles last:
 *   - a step name used twice (`spec.steps[j].name`, at the second use);
 *   - a dependsOn name that is not a step (`spec.steps[i].dependsOn[k]`);
 *   - a step depending on itself (`spec.steps[i].dependsOn[k]`);
 *   - forEach with neither or both of items and fromStep (`spec.steps[i].forEach`);
 *   - forEach.fromStep that is not in the step's dependsOn (`spec.steps[i].forEach.fromStep`);
 *   - a kwargs key that is the name of a dependency, where that dependency's result goes
 *     (`spec.steps[i].kwargs.<key>`);
 *   - each dependency cycle of two or more steps, one per set of steps that reach each other, at the
 *     dependsOn entry of its earliest step that continues it; the message names the path `a → b → c → a`.
 *   Each problem has a `reason`; {@link refusedAtApply} tells which ones `kubectl apply` already refuses.
 */
export function checkWorkflowSpec(spec: unknown): WorkflowProblem[] {
  if (!isObj(spec)) return [{ reason: "InvalidSpec", field: "spec", message: "spec must be an object with queue and steps" }];
  if (!Array.isArray(spec.steps)) return [{ reason: "InvalidSpec", field: "spec.steps", message: "spec.steps must be a list of steps" }];
  const steps = spec.steps.map((s) => (isObj(s) ? s : {}));
  const names = steps.map((s) => (typeof s.name === "string" ? s.name : undefined));
  const known = [...new Set(names.filter((n): n is string => n !== undefined))];
  const firstIndex = new Map<string, number>();
  const problems: WorkflowProblem[] = [];
  steps.forEach((s, i) => {
    const name = names[i];
    const at = `spec.steps[${i}]`;
    const step = name !== undefined ? { step: name } : {};
    const label = name ?? `#${i}`;
    if (name !== undefined) {
      if (firstIndex.has(name)) problems.push({ reason: "DuplicateStepName", field: `${at}.name`, ...step, message: duplicateMessage(name, firstIndex.get(name)!, i) });
      else firstIndex.set(name, i);
    }
    const deps = depsOf(s);
    (Array.isArray(s.dependsOn) ? s.dependsOn : []).forEach((d, k) => {
      if (typeof d !== "string") return;
      if (d === name) problems.push({ reason: "SelfDependency", field: `${at}.dependsOn[${k}]`, ...step, message: `step ${q(label)} depends on itself: remove it from its own dependsOn` });
      else if (!known.includes(d)) problems.push({ reason: "UnknownDependency", field: `${at}.dependsOn[${k}]`, ...step, message: unknownMessage(label, d, known) });
    });
    if (isObj(s.forEach)) {
      const hasItems = s.forEach.items !== undefined;
      const from = s.forEach.fromStep;
      if (hasItems === (from !== undefined)) {
        problems.push({
          reason: "ForEachItemsOrFromStep",
          field: `${at}.forEach`,
          ...step,
          message: `step ${q(label)}: forEach needs exactly one of items (a literal list) or fromStep (a dependency whose result is a list)${hasItems ? ", not both" : ""}`,
        });
      }
      if (typeof from === "string" && !deps.includes(from)) {
        const fix = from === name ? "name one of its dependencies" : !known.includes(from) ? `it is not a step of this Workflow: name one of its dependencies${deps.length > 0 ? ` (${deps.join(", ")})` : ""}` : `add ${q(from)} to dependsOn`;
        problems.push({ reason: "ForEachNotDependency", field: `${at}.forEach.fromStep`, ...step, message: `step ${q(label)}: forEach.fromStep ${q(from)} is not one of its dependencies: ${fix}` });
      }
    }
    if (isObj(s.kwargs)) {
      for (const d of new Set(deps)) {
        if (Object.hasOwn(s.kwargs, d)) {
          problems.push({ reason: "KwargIsDependency", field: `${at}.kwargs.${d}`, ...step, message: `step ${q(label)}: kwargs.${d} is where the result of dependency ${q(d)} goes: rename the kwarg` });
        }
      }
    }
  });
  const nodes: StepNode[] = steps.map((s, i) => ({ name: names[i] ?? `\u0000${i}`, dependsOn: depsOf(s) }));
  for (const path of allCycles(nodes)) {
    if (path.length > 2) problems.push(cycleProblem(nodes, path)); // self-dependencies are reported above
  }
  return problems;
}
