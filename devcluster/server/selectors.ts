/**
 * Label and field selectors (`labelSelector=`, `fieldSelector=` query parameters).
 */
import { badRequest, type ApiError } from "./errors.js";
import type { KObject, ResourceType } from "./types.js";

type Req =
  | { op: "eq" | "neq"; key: string; value: string }
  | { op: "in" | "notin"; key: string; values: string[] }
  | { op: "exists" | "notexists"; key: string };

/** A parsed label selector; `matches(labels)` tests a label map. */
export interface LabelSelector {
  matches(labels: Record<string, string> | undefined): boolean;
  /** True when the selector selects everything. */
  empty: boolean;
}

const KEY_RE = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$/;
const VALUE_RE = /^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?$/;

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p.length > 0);
}

/**
 * Parses a label selector (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma = AND).
 * @throws ApiError 400 on a malformed selector
 */
export function parseLabelSelector(s: string | null | undefined): LabelSelector {
  const reqs: Req[] = [];
  const bad = (): ApiError => badRequest(`unable to parse requirement: invalid label selector: "${s}"`);
  for (const part of splitTop(s ?? "")) {
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^!\s*(\S+)$/))) reqs.push({ op: "notexists", key: m[1] as string });
    else if ((m = part.match(/^(\S+?)\s+(in|notin)\s+\((.*)\)$/))) {
      const values = (m[3] as string).split(",").map((v) => v.trim());
      reqs.push({ op: m[2] as "in" | "notin", key: m[1] as string, values });
    } else if ((m = part.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/))) {
      reqs.push({ op: m[2] === "!=" ? "neq" : "eq", key: m[1] as string, value: m[3] as string });
    } else if ((m = part.match(/^([^=!\s()]+)$/))) reqs.push({ op: "exists", key: m[1] as string });
    else throw bad();
  }
  for (const r of reqs) {
    if (!KEY_RE.test(r.key)) throw bad();
    const vals = "value" in r ? [r.value] : "values" in r ? r.values : [];
    if (vals.some((v) => !VALUE_RE.test(v) || v.length > 63)) throw bad();
  }
  return {
    empty: reqs.length === 0,
    matches(labels) {
      const l = labels ?? {};
      return reqs.every((r) => {
        const has = Object.prototype.hasOwnProperty.call(l, r.key);
        const v = l[r.key];
        switch (r.op) {
          case "eq":
            return has && v === r.value;
          case "neq":
            return !has || v !== r.value;
          case "in":
            return has && r.values.includes(v as string);
          case "notin":
            return !has || !r.values.includes(v as string);
          case "exists":
            return has;
          case "notexists":
            return !has;
        }
      });
    },
  };
}

/** A parsed field selector; `matches(obj)` tests an object. */
export interface FieldSelector {
  matches(o: KObject): boolean;
  /** Value required for `metadata.name` (used to answer quickly), if the selector pins one. */
  name?: string;
  empty: boolean;
}

/**
 * Parses a field selector for a resource type. Supported keys: `metadata.name`, `metadata.namespace`, plus the
 * type's extra `fieldSelectors`; operators `=`, `==`, `!=`.
 * @throws ApiError 400 for an unknown field or a malformed term (upstream message)
 */
export function parseFieldSelector(s: string | null | undefined, rt: ResourceType): FieldSelector {
  const terms: { key: string; neq: boolean; value: string; get: (o: KObject) => string | undefined }[] = [];
  for (const part of splitTop(s ?? "")) {
    const m = part.match(/^([^=!]+)(==|=|!=)(.*)$/);
    if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    const key = (m[1] as string).trim();
    let get: ((o: KObject) => string | undefined) | undefined;
    if (key === "metadata.name") get = (o) => o.metadata?.name;
    else if (key === "metadata.namespace") get = (o) => o.metadata?.namespace ?? "";
    else get = rt.fieldSelectors?.[key];
    if (!get) {
      const known = ["metadata.name", "metadata.namespace", ...Object.keys(rt.fieldSelectors ?? {})].map((k) => `"${k}"`).join(", ");
      throw badRequest(`"${key}" is not a known field selector: only ${known}`);
    }
    terms.push({ key, neq: m[2] === "!=", value: (m[3] as string).trim(), get });
  }
  const nameTerm = terms.find((t) => t.key === "metadata.name" && !t.neq);
  return {
    empty: terms.length === 0,
    name: nameTerm?.value,
    matches(o) {
      return terms.every((t) => {
        const v = t.get(o) ?? "";
        return t.neq ? v !== t.value : v === t.value;
      });
    },
  };
}
