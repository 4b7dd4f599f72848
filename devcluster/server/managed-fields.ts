/**
 * Field ownership (`metadata.managedFields`, FieldsV1) and server-side apply.
 *
 * Follows sigs.k8s.io/structured-merge-diff (merge/update.go, typed/tofieldset.go, typed/compare.go). Field sets
 * are sets of member paths; a path is a list of FieldsV1 tokens (`f:spec`, `k:{"type":"Ready"}`), and a member that
 * also has members below it is written with a `.` entry. Lists are atomic except list-maps (CRD
 * `x-kubernetes-list-type: map`, and the merge-keyed lists of built-ins).
 */
import { ApiError } from "./errors.js";
import type { Json, KObject } from "./types.js";
import { clone, deepEqual, isObject, nowRfc3339 } from "./util.js";

/** Returns the list-map keys of the list at a field path (field names only, e.g. `["status","conditions"]`), or undefined if atomic. */
export type ListKeysFn = (fieldPath: string[]) => string[] | undefined;

/**
 * The shape of the object at a field path (field names only, e.g. `["status","error"]`), as structured-merge-diff
 * sees it: `named(key)` is true for a declared property (a struct field) and false for a key of a map
 * (`additionalProperties`, `x-kubernetes-preserve-unknown-fields`); `atomic` for `x-kubernetes-map-type: atomic`.
 * Undefined = a struct whose keys are all named fields (the built-ins, which have no schema here).
 */
export interface MapShape {
  named: (key: string) => boolean;
  atomic: boolean;
}
export type ShapeFn = (fieldPath: string[]) => MapShape | undefined;

interface Schema {
  listKeys: ListKeysFn;
  shape: ShapeFn;
}

/** A field set: member paths, each the FieldsV1 tokens of one path joined by SEP (the root is never a member). */
type FieldSet = Set<string>;
const SEP = "\u0000";
const IGNORED_META = new Set(["name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"]);
const STRUCT: MapShape = { named: () => true, atomic: false };

function join(path: string, tok: string): string {
  return path === "" ? tok : `${path}${SEP}${tok}`;
}

function keyToken(el: Record<string, Json>, keys: string[]): string {
  const o: Record<string, Json> = {};
  for (const k of [...keys].sort()) o[k] = el[k];
  return `k:${JSON.stringify(o)}`;
}

/** The list-map keys if `v` is merged per item (a list-map of objects), else undefined (atomic). */
function itemKeys(v: Json[], fields: string[], s: Schema): string[] | undefined {
  const keys = s.listKeys(fields);
  return keys && v.every((e: Json) => isObject(e)) ? keys : undefined;
}

/** Fields the server strips from every set (kube-apiserver's stripMeta, and status on a main-resource write). */
function skipped(path: string, key: string, skipStatus: boolean): boolean {
  if (path === "") return key === "apiVersion" || key === "kind" || (skipStatus && key === "status");
  return path === "f:metadata" && IGNORED_META.has(key);
}

function strip(set: FieldSet): FieldSet {
  set.delete("f:metadata");
  return set;
}

/**
 * The field set of an applied configuration (structured-merge-diff `ToFieldSet`): scalars, atomic lists and maps,
 * null or empty values, list-map items (`k:`, a member with children: `.`) and keys of maps (not declared fields),
 * which also own the object under them (`.`). A declared field holding a non-empty object is not a member itself.
 */
export function appliedFieldSet(obj: Json, listKeys: ListKeysFn, shape: ShapeFn | undefined, skipStatus: boolean): FieldSet {
  const s: Schema = { listKeys, shape: shape ?? (() => undefined) };
  const out: FieldSet = new Set();
  const walk = (v: Json, path: string, fields: string[]): void => {
    if (Array.isArray(v)) {
      const keys = itemKeys(v, fields, s);
      if (!keys) {
        if (path) out.add(path);
        return;
      }
      for (const el of v) {
        const p = join(path, keyToken(el, keys));
        out.add(p);
        walk(el, p, fields);
      }
      return;
    }
    if (isObject(v)) {
      const sh = s.shape(fields) ?? STRUCT;
      if (sh.atomic) {
        if (path) out.add(path);
        return;
      }
      for (const [k, x] of Object.entries(v)) {
        if (skipped(path, k, skipStatus)) continue;
        const p = join(path, `f:${k}`);
        walk(x, p, [...fields, k]);
        if (x === null || (isObject(x) && Object.keys(x).length === 0) || !sh.named(k)) out.add(p);
      }
      return;
    }
    if (path) out.add(path);
  };
  walk(obj, "", []);
  return strip(out);
}

/** Every member and every path leading to one (structured-merge-diff's `EnsureNamedFieldsAreMembers`, used when pruning). */
function withParents(set: FieldSet): FieldSet {
  const out: FieldSet = new Set();
  for (const p of set) {
    const toks = p.split(SEP);
    for (let i = 1; i <= toks.length; i++) out.add(toks.slice(0, i).join(SEP));
  }
  return out;
}

/** Converts a field set to a FieldsV1 tree (a member with children gets a `.` entry). */
export function toFieldsV1(paths: FieldSet): Json {
  interface Node {
    member: boolean;
    children: Map<string, Node>;
  }
  const root: Node = { member: false, children: new Map() };
  for (const p of paths) {
    let cur = root;
    for (const tok of p.split(SEP)) {
      let next = cur.children.get(tok);
      if (!next) cur.children.set(tok, (next = { member: false, children: new Map() }));
      cur = next;
    }
    cur.member = true;
  }
  const rank = (t: string): number => ["f", "k", "v", "i"].indexOf(t[0] ?? "");
  const out = (n: Node): Json => {
    const o: Record<string, Json> = {};
    if (n.member && n.children.size > 0) o["."] = {};
    for (const t of [...n.children.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))) o[t] = out(n.children.get(t) as Node);
    return o;
  };
  return out(root);
}

/** Converts a FieldsV1 tree to a field set. */
export function fromFieldsV1(tree: Json): FieldSet {
  const out: FieldSet = new Set();
  const walk = (t: Json, path: string): void => {
    for (const [k, sub] of Object.entries(isObject(t) ? t : {})) {
      if (k === ".") {
        if (path) out.add(path);
        continue;
      }
      const p = join(path, k);
      if (isObject(sub) && Object.keys(sub).length > 0) walk(sub, p);
      else out.add(p);
    }
  };
  walk(tree, "");
  return out;
}

interface Comparison {
  added: FieldSet;
  modified: FieldSet;
  removed: FieldSet;
}

/**
 * structured-merge-diff `Compare`: leaves (scalars, atomic or empty lists and maps) added, removed or changed, and
 * containers (maps, list-map items) added or removed as a whole.
 */
function compare(lhs: Json, rhs: Json, s: Schema, skipStatus: boolean): Comparison {
  const c: Comparison = { added: new Set(), modified: new Set(), removed: new Set() };
  const kind = (v: Json): string => (v === undefined ? "none" : Array.isArray(v) ? "list" : isObject(v) ? "map" : "scalar");
  const walk = (a: Json, b: Json, path: string, fields: string[]): void => {
    const ka = kind(a);
    const kb = kind(b);
    if (ka !== "none" && kb !== "none" && ka !== kb) {
      walk(a, undefined, path, fields);
      walk(undefined, b, path, fields);
      c.added.delete(path);
      c.removed.delete(path);
      c.modified.add(path);
      return;
    }
    const leaf = (): void => {
      if (!path) return;
      if (a === undefined) c.added.add(path);
      else if (b === undefined) c.removed.add(path);
      else if (!deepEqual(a, b)) c.modified.add(path);
    };
    const container = (): void => {
      if (!path) return;
      if (a === undefined) c.added.add(path);
      else if (b === undefined) c.removed.add(path);
    };
    const k = ka === "none" ? kb : ka;
    if (k === "list") {
      const la: Json[] = a ?? [];
      const lb: Json[] = b ?? [];
      const keys = la.length + lb.length === 0 ? undefined : itemKeys([...la, ...lb], fields, s);
      if (!keys) return leaf();
      const items = new Map<string, [Json, Json]>();
      for (const el of la) items.set(keyToken(el, keys), [el, undefined]);
      for (const el of lb) {
        const t = keyToken(el, keys);
        items.set(t, [items.get(t)?.[0], el]);
      }
      for (const [t, [x, y]] of items) walk(x, y, join(path, t), fields);
      return container();
    }
    if (k === "map") {
      const ma: Record<string, Json> = a ?? {};
      const mb: Record<string, Json> = b ?? {};
      if (Object.keys(ma).length === 0 && Object.keys(mb).length === 0) return leaf();
      if ((s.shape(fields) ?? STRUCT).atomic) return leaf();
      for (const key of new Set([...Object.keys(ma), ...Object.keys(mb)])) {
        if (skipped(path, key, skipStatus)) continue;
        walk(ma[key], mb[key], join(path, `f:${key}`), [...fields, key]);
      }
      return container();
    }
    return leaf();
  };
  walk(lhs, rhs, "", []);
  strip(c.added);
  strip(c.modified);
  strip(c.removed);
  return c;
}

/**
 * Removes from `merged` (in place) what the applier owned at its last apply (`last`, with parents) and no manager,
 * the applier's new configuration included, owns now (`owned`, with parents): a field, a list-map item, or a whole
 * object once nothing under it is owned (structured-merge-diff `prune`).
 */
function prune(merged: Json, last: FieldSet, owned: FieldSet, s: Schema, skipStatus: boolean): void {
  const walk = (v: Json, path: string, fields: string[]): void => {
    if (Array.isArray(v)) {
      const keys = itemKeys(v, fields, s);
      if (!keys) return;
      for (let i = v.length - 1; i >= 0; i--) {
        const p = join(path, keyToken(v[i], keys));
        if (last.has(p) && !owned.has(p)) v.splice(i, 1);
        else walk(v[i], p, fields);
      }
      return;
    }
    if (!isObject(v) || (s.shape(fields) ?? STRUCT).atomic) return;
    for (const k of Object.keys(v)) {
      if (skipped(path, k, skipStatus)) continue;
      const p = join(path, `f:${k}`);
      if (last.has(p) && !owned.has(p) && p !== "f:metadata") delete v[k];
      else walk(v[k], p, [...fields, k]);
    }
  };
  walk(merged, "", []);
}

/** Merges an applied configuration into a live object (maps recurse unless atomic, list-maps merge by key, the rest replaces). */
export function mergeApplied(live: Json, applied: Json, listKeys: ListKeysFn, fields: string[] = [], shape?: ShapeFn): Json {
  if (isObject(applied) && isObject(live) && !shape?.(fields)?.atomic) {
    const out = clone(live);
    for (const [k, v] of Object.entries(applied)) out[k] = v === null ? null : mergeApplied(out[k], v, listKeys, [...fields, k], shape);
    return out;
  }
  const keys = Array.isArray(applied) ? listKeys(fields) : undefined;
  if (keys && Array.isArray(live)) {
    const out = clone(live);
    for (const el of applied) {
      if (!isObject(el)) return clone(applied);
      const i = out.findIndex((e: Json) => isObject(e) && keys.every((k) => deepEqual(e[k], el[k])));
      if (i >= 0) out[i] = mergeApplied(out[i], el, listKeys, fields, shape);
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

/**
 * Records an Update-operation write (POST, PUT, non-apply PATCH) in `after.metadata.managedFields`, like
 * structured-merge-diff `Update`: the manager takes ownership of every field it added or changed (an object or
 * list-map item it added is owned as a whole, `.`), and every manager loses the fields it changed or removed.
 * @param subresource `"status"` for status writes, undefined otherwise
 * @param shape the schema's map shapes (see {@link ShapeFn}); undefined = built-in
 */
export function recordUpdate(before: KObject | undefined, after: KObject, manager: string, apiVersion: string, listKeys: ListKeysFn, subresource?: string, shape?: ShapeFn): void {
  const incoming: Entry[] | undefined = after.metadata.managedFields;
  const base: Entry[] = incoming && !deepEqual(incoming, before?.metadata?.managedFields) ? incoming : (before?.metadata?.managedFields ?? []);
  if (incoming && incoming.length === 0 && before) {
    after.metadata.managedFields = [];
    return;
  }
  const s: Schema = { listKeys, shape: shape ?? (() => undefined) };
  const cmp = compare(before ?? {}, after, s, false);
  const changed = new Set([...cmp.added, ...cmp.modified]);
  const me: Entry = { manager, operation: "Update", apiVersion, subresource };
  let entries: Entry[] = [];
  for (const e of base) {
    if (entryKey(e) === entryKey(me)) {
      entries.push(e);
      continue;
    }
    const own = fromFieldsV1(e.fieldsV1);
    const n = own.size;
    for (const p of [...changed, ...cmp.removed]) own.delete(p);
    if (own.size === n) entries.push(e);
    else if (own.size > 0) entries.push({ ...e, fieldsV1: toFieldsV1(own) });
  }
  const mine = entries.find((x) => entryKey(x) === entryKey(me));
  const set = mine ? fromFieldsV1(mine.fieldsV1) : new Set<string>();
  for (const p of changed) set.add(p);
  for (const p of cmp.removed) set.delete(p);
  if (changed.size > 0 || mine) entries = setEntry(entries, me, set);
  after.metadata.managedFields = entries;
  if (entries.length === 0) delete after.metadata.managedFields;
}

function formatPath(p: string): string {
  return p
    .split(SEP)
    .map((t) => (t.startsWith("f:") ? `.${t.slice(2)}` : `[${t.slice(2).replace(/^\{|\}$/g, "").replace(/"(\w+)":/g, "$1=")}]`))
    .join("");
}

/**
 * Server-side apply of `applied` onto `live` (undefined = create), like structured-merge-diff `Apply`: merge, then
 * prune what this manager applied last time and no longer applies (unless another manager owns it; an object goes
 * as a whole once nothing in it is owned), then conflicts and ownership against the other managers.
 * @returns the merged object, with managedFields updated
 * @throws ApiError 409 Conflict listing the fields another manager owns with a different value (unless `force`)
 */
export function serverSideApply(
  live: KObject | undefined,
  applied: KObject,
  opts: { manager: string; force: boolean; apiVersion: string; listKeys: ListKeysFn; shape?: ShapeFn; subresource?: string; skipStatus: boolean },
): KObject {
  const s: Schema = { listKeys: opts.listKeys, shape: opts.shape ?? (() => undefined) };
  const entries: Entry[] = clone(live?.metadata?.managedFields ?? []);
  const newSet = appliedFieldSet(applied, opts.listKeys, opts.shape, opts.skipStatus);
  const me: Entry = { manager: opts.manager, operation: "Apply", apiVersion: opts.apiVersion, subresource: opts.subresource };
  const mine = entries.find((e) => entryKey(e) === entryKey(me));
  const others = entries.filter((e) => e !== mine);
  const otherSets = new Map<Entry, FieldSet>(others.map((e) => [e, fromFieldsV1(e.fieldsV1)]));
  const merged: KObject = live ? mergeApplied(live, applied, opts.listKeys, [], opts.shape) : clone(applied);
  if (live && mine) {
    const owned = new Set(newSet);
    for (const set of otherSets.values()) for (const p of set) owned.add(p);
    prune(merged, withParents(fromFieldsV1(mine.fieldsV1)), withParents(owned), s, opts.skipStatus);
  }
  if (live) {
    const cmp = compare(live, merged, s, opts.skipStatus);
    const conflicts: { manager: string; apiVersion: string; path: string }[] = [];
    for (const [e, set] of otherSets) {
      for (const p of set) {
        if (cmp.added.has(p) || cmp.modified.has(p)) {
          if (opts.force) set.delete(p);
          else conflicts.push({ manager: e.manager, apiVersion: e.apiVersion ?? "", path: p });
        } else if (cmp.removed.has(p)) set.delete(p);
      }
    }
    if (conflicts.length > 0) {
      const causes = conflicts.map((c) => ({ reason: "FieldManagerConflict", message: `conflict with "${c.manager}" using ${c.apiVersion}`, field: formatPath(c.path) }));
      const msg =
        causes.length === 1
          ? `Apply failed with 1 conflict: ${causes[0]?.message}: ${causes[0]?.field}`
          : `Apply failed with ${causes.length} conflicts: ${causes.map((c) => `${c.message}: ${c.field}`).join("\n")}`;
      throw new ApiError(409, "Conflict", msg, { causes });
    }
  }
  let out: Entry[] = [];
  for (const [e, set] of otherSets) {
    if (set.size === 0) continue;
    out.push(set.size === fromFieldsV1(e.fieldsV1).size ? e : { ...e, fieldsV1: toFieldsV1(set) });
  }
  if (mine) out.push(mine);
  out = setEntry(out, me, newSet);
  merged.metadata = merged.metadata ?? {};
  merged.metadata.managedFields = out;
  return merged;
}
