/**
 * The JSONPath subset printer columns and scale paths use: `.a.b`, `.a[0].b`, `.a['x.y']`, `.a[*].b`,
 * `.a[?(@.type=="Ready")].status` (first match wins), optionally wrapped in `{…}`.
 */
import type { Json } from "./types.js";
import { isObject } from "./util.js";

type Step = { kind: "field"; name: string } | { kind: "index"; i: number } | { kind: "all" } | { kind: "filter"; path: string[]; op: "==" | "!="; value: Json };

function parse(expr: string): Step[] {
  let s = expr.trim();
  if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1);
  if (s.startsWith("$")) s = s.slice(1);
  const steps: Step[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === ".") {
      i++;
      let name = "";
      while (i < s.length && s[i] !== "." && s[i] !== "[") name += s[i++];
      if (name) steps.push({ kind: "field", name });
    } else if (s[i] === "[") {
      const end = s.indexOf("]", s.startsWith("[?(", i) ? s.indexOf(")", i) : i);
      const inner = s.slice(i + 1, end);
      i = end + 1;
      let m: RegExpMatchArray | null;
      if (inner === "*") steps.push({ kind: "all" });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: "index", i: Number(inner) });
      else if ((m = inner.match(/^'(.*)'$|^"(.*)"$/))) steps.push({ kind: "field", name: (m[1] ?? m[2]) as string });
      else if ((m = inner.match(/^\?\(@((?:\.[\w-]+)+)\s*(==|!=)\s*(.+)\)$/))) {
        const raw = (m[3] as string).trim();
        let value: Json = raw;
        if (/^["'].*["']$/.test(raw)) value = raw.slice(1, -1);
        else if (/^-?\d+(\.\d+)?$/.test(raw)) value = Number(raw);
        else if (raw === "true" || raw === "false") value = raw === "true";
        steps.push({ kind: "filter", path: (m[1] as string).slice(1).split("."), op: m[2] as "==" | "!=", value });
      } else return [];
    } else {
      let name = "";
      while (i < s.length && s[i] !== "." && s[i] !== "[") name += s[i++];
      steps.push({ kind: "field", name });
    }
  }
  return steps;
}

/** Every value the path selects, in document order. */
export function jsonPathAll(obj: Json, expr: string): Json[] {
  let cur: Json[] = [obj];
  for (const st of parse(expr)) {
    const next: Json[] = [];
    for (const v of cur) {
      if (st.kind === "field") {
        if (isObject(v) && v[st.name] !== undefined) next.push(v[st.name]);
      } else if (st.kind === "index") {
        if (Array.isArray(v)) {
          const x = v[st.i < 0 ? v.length + st.i : st.i];
          if (x !== undefined) next.push(x);
        }
      } else if (st.kind === "all") {
        if (Array.isArray(v)) next.push(...v);
        else if (isObject(v)) next.push(...Object.values(v));
      } else if (Array.isArray(v)) {
        for (const el of v) {
          let x: Json = el;
          for (const p of st.path) x = isObject(x) ? x[p] : undefined;
          if (x === undefined) continue;
          if ((st.op === "==") === (x === st.value || String(x) === String(st.value))) next.push(el);
        }
      }
    }
    cur = next;
  }
  return cur;
}

/** The first value the path selects, or undefined. */
export function jsonPathFirst(obj: Json, expr: string): Json {
  return jsonPathAll(obj, expr)[0];
}
