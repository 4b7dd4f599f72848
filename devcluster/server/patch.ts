/**
 * The three non-apply patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge
 * patch (built-in types only; merge keys from the upstream Go types for the fields Celeriac and charts use).
 */
import { ApiError, badRequest } from "./errors.js";
import type { Json } from "./types.js";
import { clone, deepEqual, isObject } from "./util.js";

/** RFC 7386: `null` deletes, objects merge recursively, everything else (arrays included) replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: Record<string, Json> = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, "/").replace(/~0/g, "~");
}

function parsePointer(p: unknown): string[] {
  if (typeof p !== "string" || (p !== "" && !p.startsWith("/"))) throw badRequest(`invalid JSON pointer "${String(p)}"`);
  return p === "" ? [] : p.slice(1).split("/").map(unescapePointer);
}

const opFailed = (msg: string): ApiError => new ApiError(422, "Invalid", `the server rejected our request due to an error in our request: ${msg}`);

function parentOf(doc: Json, parts: string[], op: string): { parent: Json; key: string } {
  let cur = doc;
  for (const k of parts.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(k)];
    else if (isObject(cur)) cur = cur[k];
    else cur = undefined;
    if (cur === undefined) throw opFailed(`${op} operation does not apply: doc is missing path: "/${parts.join("/")}"`);
  }
  return { parent: cur, key: parts[parts.length - 1] as string };
}

function getAt(doc: Json, parts: string[]): Json {
  let cur = doc;
  for (const k of parts) {
    if (Array.isArray(cur)) cur = cur[Number(k)];
    else if (isObject(cur)) cur = cur[k];
    else return undefined;
  }
  return cur;
}

function arrayIndex(arr: Json[], key: string, forAdd: boolean, op: string, path: string): number {
  if (forAdd && key === "-") return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(key)) throw opFailed(`${op} operation does not apply: invalid index in path "${path}"`);
  const i = Number(key);
  if (i > arr.length || (!forAdd && i >= arr.length)) throw opFailed(`${op} operation does not apply: index out of range in path "${path}"`);
  return i;
}

function addAt(doc: Json, parts: string[], value: Json, path: string): Json {
  if (parts.length === 0) return clone(value);
  const { parent, key } = parentOf(doc, parts, "add");
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true, "add", path), 0, clone(value));
  else if (isObject(parent)) parent[key] = clone(value);
  else throw opFailed(`add operation does not apply: doc is missing path: "${path}"`);
  return doc;
}

function removeAt(doc: Json, parts: string[], path: string, op = "remove"): Json {
  const { parent, key } = parentOf(doc, parts, op);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false, op, path), 1);
  else if (isObject(parent) && key in parent) delete parent[key];
  else throw opFailed(`${op} operation does not apply: doc is missing key: ${path}`);
  return doc;
}

/**
 * RFC 6902 JSON patch, atomic (works on a copy).
 * @throws ApiError 400 when the body is not an array of operations; 422 when an operation fails
 */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  let doc = clone(target);
  for (const op of ops) {
    if (!isObject(op)) throw badRequest("json: cannot unmarshal non-object into Go value of type jsonpatch.Operation");
    const path = op.path as string;
    const parts = parsePointer(path);
    switch (op.op) {
      case "add":
        doc = addAt(doc, parts, op.value, path);
        break;
      case "remove":
        doc = removeAt(doc, parts, path);
        break;
      case "replace": {
        if (parts.length === 0) {
          doc = clone(op.value);
          break;
        }
        if (getAt(doc, parts) === undefined) throw opFailed(`replace operation does not apply: doc is missing key: ${path}`);
        const { parent, key } = parentOf(doc, parts, "replace");
        if (Array.isArray(parent)) parent[arrayIndex(parent, key, false, "replace", path)] = clone(op.value);
        else parent[key] = clone(op.value);
        break;
      }
      case "move":
      case "copy": {
        const from = parsePointer(op.from);
        const v = getAt(doc, from);
        if (v === undefined) throw opFailed(`${op.op} operation does not apply: doc is missing from path: ${op.from}`);
        if (op.op === "move") doc = removeAt(doc, from, op.from, "move");
        doc = addAt(doc, parts, v, path);
        break;
      }
      case "test":
        if (!deepEqual(getAt(doc, parts), op.value)) throw opFailed(`testing value ${path} failed: test failed`);
        break;
      default:
        throw badRequest(`Unexpected kind: ${String(op.op)}`);
    }
  }
  return doc;
}

/** Merge key of a strategic-merge list field, by field name and parent field; undefined = atomic list. */
export function strategicMergeKey(field: string, parent: string | undefined): string | undefined {
  switch (field) {
    case "containers":
    case "initContainers":
    case "ephemeralContainers":
    case "env":
    case "volumes":
    case "imagePullSecrets":
    case "secrets":
      return "name";
    case "volumeMounts":
      return "mountPath";
    case "volumeDevices":
      return "devicePath";
    case "ports":
      return parent === "containers" || parent === "initContainers" ? "containerPort" : "port";
    case "conditions":
      return "type";
    case "ownerReferences":
      return "uid";
    case "hostAliases":
      return "ip";
    case "topologySpreadConstraints":
      return "topologyKey";
    default:
      return undefined;
  }
}

const PRIMITIVE_MERGE = new Set(["finalizers"]);

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.filter((e) => !(isObject(e) && e.$patch === "delete")).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: Record<string, Json> = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith("$")) out[k] = stripDirectives(x);
  return out;
}

function smpList(orig: Json[], patch: Json[], key: string, field: string): Json[] {
  if (patch.some((e) => isObject(e) && e.$patch === "replace")) return stripDirectives(patch.filter((e) => !(isObject(e) && e.$patch === "replace")));
  const out = clone(orig);
  for (const p of patch) {
    if (!isObject(p)) {
      out.push(p);
      continue;
    }
    const idx = out.findIndex((e) => isObject(e) && deepEqual(e[key], p[key]));
    if (p.$patch === "delete") {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = smpMap(out[idx], p, field);
    else out.push(smpMap({}, p, field));
  }
  return out;
}

function order(list: Json[], orderList: Json[], key: string | undefined): Json[] {
  const pos = (e: Json): number => orderList.findIndex((o) => (key && isObject(o) && isObject(e) ? deepEqual(o[key], e[key]) : deepEqual(o, e)));
  const known = list.filter((e) => pos(e) >= 0).sort((a, b) => pos(a) - pos(b));
  return [...known, ...list.filter((e) => pos(e) < 0)];
}

function smpMap(orig: Json, patch: Record<string, Json>, parentField: string | undefined): Json {
  if (patch.$patch === "replace") return stripDirectives(patch);
  if (patch.$patch === "delete") return undefined;
  const out: Record<string, Json> = isObject(orig) ? clone(orig) : {};
  const orders: [string, Json[]][] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys") continue;
    if (k.startsWith("$setElementOrder/")) {
      orders.push([k.slice("$setElementOrder/".length), v]);
      continue;
    }
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const f = k.slice("$deleteFromPrimitiveList/".length);
      if (Array.isArray(out[f])) out[f] = out[f].filter((x: Json) => !(v as Json[]).some((d) => deepEqual(d, x)));
      continue;
    }
    if (v === null) delete out[k];
    else if (isObject(v)) {
      const r = smpMap(out[k], v, k);
      if (r === undefined) delete out[k];
      else out[k] = r;
    } else if (Array.isArray(v)) {
      const key = strategicMergeKey(k, parentField);
      if (key && Array.isArray(out[k])) out[k] = smpList(out[k], v, key, k);
      else if (PRIMITIVE_MERGE.has(k) && Array.isArray(out[k])) out[k] = [...out[k], ...v.filter((x) => !out[k].includes(x))];
      else out[k] = key ? smpList([], v, key, k) : stripDirectives(v);
    } else out[k] = v;
  }
  for (const [f, o] of orders) if (Array.isArray(out[f])) out[f] = order(out[f], o, strategicMergeKey(f, parentField));
  if (Array.isArray(patch.$retainKeys)) for (const k of Object.keys(out)) if (!patch.$retainKeys.includes(k)) delete out[k];
  return out;
}

/**
 * Strategic merge patch for built-in types.
 * @throws ApiError 400 when the patch is not a JSON object
 */
export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) throw badRequest("json: cannot unmarshal array into Go value of type map[string]interface {}");
  return smpMap(target, patch, undefined) ?? {};
}
