/**
 * Field ownership (`metadata.managedFields`, FieldsV1) and server-side apply.
 *
 * Field sets are sets of paths; a path is a list of FieldsV1 tokens (`f:spec`, `k:{"type":"Ready"}`). Lists
 * are atomic except list-maps (CRD `x-kubernetes-list-type: map`, and the merge-keyed lists of built-ins).
 */
import { ApiError } from "./errors.js";
import type { Json, KObject } from "./types.js";
import { clone, deepEqual, isObject, nowRfc3339 } from "./util.js";

/** Returns the list-map keys of the list at a field path (field names only, e.g. `["status","conditions"]`), or undefined if atomic. */
export type ListKeysFn = (fieldPath: string[]) => string[] | undefined;

type Path = string[];
const SEP = "\u0000";
const IGNORED_META = new Set(["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"]);

function keyToken(el: Record<string, Json>, keys: string[]): string {
  const o: Record<string, Json> = {};
  for (const k of [...keys].sort()) o[k] = el[k];
  return `k:${JSON.stringify(o)}`;
}

/** Leaf paths of an object, as FieldsV1 tokens. */
export function fieldPaths(obj: Json, listKeys: ListKeysFn, skipStatus: boolean): Set<string> {
  const out = new Set<string>();
  const walk = (v: Json, path: Path, fields: string[]): void => {
    if (isObject(v) && Object.keys(v).length > 0) {
      for (const [k, x] of Object.entries(v)) {
        if (path.length === 0 && (k === "apiVersion" || k === "kind" || (skipStatus && k === "status"))) continue;
        if (path.length === 1 && path[0] === "f:metadata" && IGNORED_META.has(k)) continue;
        walk(x, [...path, `f:${k}`], [...fields, k]);
      }
      return;
    }
    const keys = Array.isArray(v) ? listKeys(fields) : undefined;
    if (keys && v.every((e: Json) => isObject(e))) {
      if (v.length === 0) out.add(path.join(SEP));
      for (const el of v) {
        const p = [...path, keyToken(el, keys)];
        out.add([...p, "."].join(SEP));
        walk(el, p, fields);
      }
      return;
    }
    if (path.length > 0) out.add(path.join(SEP));
  };
  walk(obj, [], []);
  return out;
}

/** Converts a path set to a FieldsV1 tree. */
export function toFieldsV1(paths: Set<string>): Json {
  const root: Record<string, Json> = {};
  for (const p of paths) {
    let cur = root;
    for (const tok of p.split(SEP)) cur = cur[tok] ??= {};
  }
  return root;
}

/** Converts a FieldsV1 tree to a path set. */
export function fromFieldsV1(tree: Json): Set<string> {
  const out = new Set<string>();
  const walk = (t: Json, path: Path): void => {
    const keys = isObject(t) ? Object.keys(t) : [];
    if (keys.length === 0) {
      if (path.length) out.add(path.join(SEP));
      return;
    }
    for (const k of keys) walk(t[k], [...path, k]);
  };
  walk(tree, []);
  return out;
}

function findByToken(list: Json[], tok: string): number {
  const want = JSON.parse(tok.slice(2)) as Record<string, Json>;
  return list.findIndex((e) => isObject(e) && Object.entries(want).every(([k, v]) => deepEqual(e[k], v)));
}

function valueAt(obj: Json, path: string): Json {
  let cur = obj;
  for (const tok of path.split(SEP)) {
    if (tok === ".") return cur;
    if (tok.startsWith("f:")) cur = isObject(cur) ? cur[tok.slice(2)] : undefined;
    else if (tok.startsWith("k:")) cur = Array.isArray(cur) ? cur[findByToken(cur, tok)] : undefined;
    else return undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function removeAt(obj: Json, path: string): void {
  const toks = path.split(SEP).filter((t) => t !== ".");
  let cur = obj;
  for (let i = 0; i < toks.length - 1; i++) {
    const tok = toks[i] as string;
    cur = tok.startsWith("f:") ? (isObject(cur) ? cur[tok.slice(2)] : undefined) : Array.isArray(cur) ? cur[findByToken(cur, tok)] : undefined;
    if (cur === undefined) return;
  }
  const last = toks[toks.length - 1] as string;
  if (last.startsWith("f:") && isObject(cur)) delete cur[last.slice(2)];
  else if (last.startsWith("k:") && Array.isArray(cur)) {
    const i = findByToken(cur, last);
    if (i >= 0) cur.splice(i, 1);
  }
}

/** Merges an applied configuration into a live object (maps recurse, list-maps merge by key, the rest replaces). */
export function mergeApplied(live: Json, applied: Json, listKeys: ListKeysFn, fields: string[] = []): Json {
  if (isObject(applied) && isObject(live)) {
    const out = clone(live);
    for (const [k, v] of Object.entries(applied)) out[k] = v === null ? null : mergeApplied(out[k], v, listKeys, [...fields, k]);
    return out;
  }
  const keys = Array.isArray(applied) ? listKeys(fields) : undefined;
  if (keys && Array.isArray(live)) {
    const out = clone(live);
    for (const el of applied) {
      if (!isObject(el)) return clone(applied);
      const i = out.findIndex((e: Json) => isObject(e) && keys.every((k) => deepEqual(e[k], el[k])));
      if (i >= 0) out[i] = mergeApplied(out[i], el, listKeys, fields);
      else out.push(clone(el));
    }
    return out;
  }
  return clone(applied);
}

interface Entry {
  manager: string;
  operation: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: Json;
  subresource?: string;
}

function entryKey(e: Entry): string {
  return `${e.manager}${SEP}${e.operation}${SEP}${e.subresource ?? ""}`;
}

function setEntry(entries: Entry[], e: Entry, paths: Set<string>): Entry[] {
  const rest = entries.filter((x) => entryKey(x) !== entryKey(e));
  if (paths.size === 0) return rest;
  const prev = entries.find((x) => entryKey(x) === entryKey(e));
  const fieldsV1 = toFieldsV1(paths);
  const time = prev && deepEqual(prev.fieldsV1, fieldsV1) && prev.apiVersion === e.apiVersion ? prev.time : nowRfc3339();
  const ne: Entry = { manager: e.manager, operation: e.operation, apiVersion: e.apiVersion, time, fieldsType: "FieldsV1", fieldsV1 };
  if (e.subresource) ne.subresource = e.subresource;
  return [...rest, ne];
}

function changedPaths(before: Json, after: Json, listKeys: ListKeysFn, skipStatus: boolean): Set<string> {
  const a = fieldPaths(after, listKeys, skipStatus);
  const b = fieldPaths(before, listKeys, skipStatus);
  const out = new Set<string>();
  for (const p of a) if (!b.has(p) || !deepEqual(valueAt(before, p), valueAt(after, p))) out.add(p);
  return out;
}

/**
 * Records an Update-operation write (POST, PUT, non-apply PATCH) in `after.metadata.managedFields`: the manager
 * takes ownership of every field it changed, other managers lose those fields.
 * @param subresource `"status"` for status writes, undefined otherwise
 */
export function recordUpdate(before: KObject | undefined, after: KObject, manager: string, apiVersion: string, listKeys: ListKeysFn, subresource?: string): void {
  const incoming: Entry[] | undefined = after.metadata.managedFields;
  const base: Entry[] = incoming && !deepEqual(incoming, before?.metadata?.managedFields) ? incoming : (before?.metadata?.managedFields ?? []);
  if (incoming && incoming.length === 0 && before) {
    after.metadata.managedFields = [];
    return;
  }
  const changed = changedPaths(before ?? {}, after, listKeys, false);
  let entries = base.map((e) => {
    if (e.manager === manager && e.operation === "Update" && (e.subresource ?? "") === (subresource ?? "")) return e;
    const own = fromFieldsV1(e.fieldsV1);
    let touched = false;
    for (const p of changed) if (own.delete(p)) touched = true;
    return touched ? { ...e, fieldsV1: toFieldsV1(own), _empty: own.size === 0 } : e;
  }).filter((e) => !(e as { _empty?: boolean })._empty).map((e) => {
    const { _empty, ...rest } = e as Entry & { _empty?: boolean };
    void _empty;
    return rest;
  });
  const me: Entry = { manager, operation: "Update", apiVersion, subresource };
  const mine = entries.find((x) => entryKey(x) === entryKey(me));
  const set = mine ? fromFieldsV1(mine.fieldsV1) : new Set<string>();
  for (const p of changed) set.add(p);
  if (changed.size > 0 || mine) entries = setEntry(entries, me, set);
  after.metadata.managedFields = entries;
  if (entries.length === 0) delete after.metadata.managedFields;
}

/**
 * Server-side apply of `applied` onto `live` (undefined = create).
 * @returns the merged object, with managedFields updated
 * @throws ApiError 409 Conflict listing the fields another manager owns with a different value (unless `force`)
 */
export function serverSideApply(live: KObject | undefined, applied: KObject, opts: { manager: string; force: boolean; apiVersion: string; listKeys: ListKeysFn; subresource?: string; skipStatus: boolean }): KObject {
  const entries: Entry[] = clone(live?.metadata?.managedFields ?? []);
  const newSet = fieldPaths(applied, opts.listKeys, opts.skipStatus);
  const me: Entry = { manager: opts.manager, operation: "Apply", apiVersion: opts.apiVersion, subresource: opts.subresource };
  const mine = entries.find((e) => entryKey(e) === entryKey(me));
  const prevSet = mine ? fromFieldsV1(mine.fieldsV1) : new Set<string>();
  const conflicts: { manager: string; apiVersion: string; path: string }[] = [];
  const others = entries.filter((e) => e !== mine);
  const otherSets = new Map<Entry, Set<string>>(others.map((e) => [e, fromFieldsV1(e.fieldsV1)]));
  if (live) {
    for (const p of newSet) {
      const liveV = valueAt(live, p);
      if (deepEqual(liveV, valueAt(applied, p))) continue;
      for (const [e, s] of otherSets) {
        if (!s.has(p)) continue;
        if (opts.force) s.delete(p);
        else conflicts.push({ manager: e.manager, apiVersion: e.apiVersion ?? "", path: p });
      }
    }
  }
  if (conflicts.length > 0) {
    const fmt = (p: string): string =>
      p
        .split(SEP)
        .filter((t) => t !== ".")
        .map((t) => (t.startsWith("f:") ? `.${t.slice(2)}` : `[${t.slice(2).replace(/^\{|\}$/g, "").replace(/"(\w+)":/g, "$1=")}]`))
        .join("");
    const causes = conflicts.map((c) => ({ reason: "FieldManagerConflict", message: `conflict with "${c.manager}" using ${c.apiVersion}`, field: fmt(c.path) }));
    const msg =
      causes.length === 1
        ? `Apply failed with 1 conflict: ${causes[0]?.message}: ${causes[0]?.field}`
        : `Apply failed with ${causes.length} conflicts: ${causes.map((c) => `${c.message}: ${c.field}`).join("\n")}`;
    throw new ApiError(409, "Conflict", msg, { causes });
  }
  const merged: KObject = live ? mergeApplied(live, applied, opts.listKeys) : clone(applied);
  for (const p of prevSet) {
    if (newSet.has(p)) continue;
    if ([...otherSets.values()].some((s) => s.has(p))) continue;
    removeAt(merged, p);
  }
  let out: Entry[] = [];
  for (const [e, s] of otherSets) {
    if (s.size === 0) continue;
    out.push(s.size === fromFieldsV1(e.fieldsV1).size ? e : { ...e, fieldsV1: toFieldsV1(s) });
  }
  if (mine) out.push(mine);
  out = setEntry(out, me, newSet);
  merged.metadata = merged.metadata ?? {};
  merged.metadata.managedFields = out;
  return merged;
}
