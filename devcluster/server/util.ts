/**
 * Small pure helpers: deep copy and equality, timestamps, uids, dotted-path access.
 */
import { randomUUID, randomBytes } from "node:crypto";
import { jsonCopy } from "../../api/json-copy.js";
import type { Json } from "./types.js";

/** Deep copy of a JSON value: `jsonCopy` (api/json-copy.ts). `undefined` is returned as is. */
export function clone<T>(v: T): T {
  return jsonCopy(v);
}

/** Structural equality of two JSON values (object key order ignored). */
export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!deepEqual(a[k], b[k])) return false;
  return true;
}

/** True for a plain JSON object (not an array, not null). */
export function isObject(v: Json): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** RFC3339 timestamp with second precision, e.g. `2026-11-22T06:15:05Z`. */
export function nowRfc3339(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A random v4 uid. */
export function newUid(): string {
  return randomUUID();
}

/** Five random lowercase alphanumerics for `generateName`. */
export function randomSuffix(): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  return [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join("");
}

/** Splits `.spec.replicas` / `spec.replicas` into `["spec","replicas"]`. */
export function splitPath(path: string): string[] {
  return path.replace(/^\./, "").split(".").filter((s) => s.length > 0);
}

/** Reads a dotted path; undefined when any step is missing. */
export function getPath(o: Json, path: string | string[]): Json {
  let cur = o;
  for (const k of Array.isArray(path) ? path : splitPath(path)) {
    if (!isObject(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}

/** Sets a dotted path, creating intermediate objects. */
export function setPath(o: Record<string, Json>, path: string | string[], value: Json): void {
  const parts = Array.isArray(path) ? path : splitPath(path);
  let cur: Record<string, Json> = o;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i] as string;
    if (!isObject(cur[k])) cur[k] = {};
    cur = cur[k];
  }
  cur[parts[parts.length - 1] as string] = value;
}

/** Human age as kubectl prints it: `68s`, `5m`, `3h`, `2d` (from an RFC3339 timestamp; `<unknown>` if absent). */
export function humanAge(ts: string | undefined, now = Date.now()): string {
  if (!ts) return "<unknown>";
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return "<invalid>";
  const s = Math.max(0, Math.floor((now - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}
