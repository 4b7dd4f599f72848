/**
 * HTTP front: routing of discovery, OpenAPI, version/health and resource URLs; body decoding (JSON, YAML,
 * Kubernetes protobuf); content negotiation (Table or JSON); errors rendered as `metav1.Status`.
 *
 * One path is not kube-apiserver's: `POST /debug/celeriac/compact` ({@link COMPACT_PATH}), a fault hook
 * for tests and benches. It compacts the watch history at the current resourceVersion (like an etcd
 * compaction) and ends every open watch with an ERROR 410 Expired, so each client must relist; it
 * answers `{"compactedTo": "<rv>", "watchesEnded": <n>}`. Nothing in the product calls it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { parse as parseYaml } from "yaml";
import { decodeProtobufObject } from "../protobuf.js";
import type { Access } from "./access.js";
import type { Core, Target, WriteOptions, WriteResult } from "./core.js";
import { PATCH_TYPES } from "./core.js";
import type { Registry } from "./crd-registry.js";
import * as disc from "./discovery.js";
import { ApiError, badRequest, methodNotAllowed, notFound, notFoundPath, unsupportedMediaType } from "./errors.js";
import { openApiV2, type OpenApiCache } from "./openapi.js";
import { servePodLog } from "./pod-logs.js";
import { renderTable, TABLE_CONTENT_TYPE, wantsTable } from "./table.js";
import type { Json, KObject, ResourceType } from "./types.js";
import { apiVersionOf } from "./types.js";
import { serveWatch, type WatchTiming } from "./watch.js";

/** What the router needs. */
export interface RouterDeps {
  core: Core;
  reg: Registry;
  openapi: OpenApiCache;
  timing: WatchTiming;
  /** `/version` body. */
  version: Json;
  /** `host:port` for APIVersions.serverAddressByClientCIDRs. */
  address: () => string;
  /** The process kubelet's logs directory, for `pods/log`; undefined = empty logs. */
  podLogsDir?: string;
  /** TokenRequest, TokenReview and the access reviews (access.ts). */
  access: Access;
}

/** Serves the token and review paths (access.ts); false when `segs` is not one of them. @throws ApiError */
function serveAccess(deps: RouterDeps, segs: string[], method: string, req: IncomingMessage, res: ServerResponse, body: Buffer): boolean {
  const a = deps.access;
  const p = segs.join("/");
  const post = () => {
    if (method !== "POST") throw methodNotAllowed(method);
    return { caller: a.caller(req), obj: decodeObject(mediaType(req.headers["content-type"]), body) };
  };
  let m: RegExpExecArray | null;
  if ((m = /^api\/v1\/namespaces\/([^/]+)\/serviceaccounts\/([^/]+)\/token$/.exec(p))) {
    const { caller, obj } = post();
    sendJson(res, 201, a.tokenRequest(caller, m[1]!, m[2]!, obj));
    return true;
  }
  if (p === "apis/authentication.k8s.io/v1/tokenreviews") {
    const { caller, obj } = post();
    sendJson(res, 201, a.tokenReview(caller, obj));
    return true;
  }
  if (p === "apis/authentication.k8s.io/v1/selfsubjectreviews") {
    const { caller } = post();
    sendJson(res, 201, a.selfSubjectReview(caller));
    return true;
  }
  if (p === "apis/authorization.k8s.io/v1/subjectaccessreviews" || p === "apis/authorization.k8s.io/v1/selfsubjectaccessreviews") {
    const { caller, obj } = post();
    sendJson(res, 201, a.accessReview(caller, p.endsWith("/selfsubjectaccessreviews") ? "SelfSubjectAccessReview" : "SubjectAccessReview", obj));
    return true;
  }
  if ((m = /^apis\/authorization\.k8s\.io\/v1\/namespaces\/([^/]+)\/localsubjectaccessreviews$/.exec(p))) {
    const { caller, obj } = post();
    sendJson(res, 201, a.accessReview(caller, "LocalSubjectAccessReview", obj, m[1]!));
    return true;
  }
  return false;
}

const MAX_BODY = 16 * 1024 * 1024;

/** The fault hook's path (see the file comment): POST compacts the watch history and expires open watches. */
export const COMPACT_PATH = "/debug/celeriac/compact";

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on("data", (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) reject(new ApiError(413, "RequestEntityTooLarge", "the request body is too large"));
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function mediaType(h: string | undefined): string {
  return (h ?? "").split(";")[0]!.trim().toLowerCase();
}

function sendJson(res: ServerResponse, code: number, body: Json, contentType = "application/json", warnings: string[] = []): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const headers: Record<string, string | string[]> = { "Content-Type": contentType, "Cache-Control": "no-cache, private", "Content-Length": String(Buffer.byteLength(text)) };
  if (warnings.length) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
  res.writeHead(code, headers);
  res.end(text);
}

/** Sends an error (an ApiError, or a 500 for anything else) as a Status body. */
export function sendError(res: ServerResponse, err: unknown): void {
  const e = err instanceof ApiError ? err : new ApiError(500, "InternalError", `Internal error occurred: ${err instanceof Error ? err.message : String(err)}`);
  if (!(err instanceof ApiError)) console.error("in-memory apiserver internal error", err);
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, e.code, e.toStatus());
}

/** Decodes a POST/PUT body by Content-Type (JSON, YAML, Kubernetes protobuf). @throws ApiError 400/415 */
function decodeObject(ct: string, body: Buffer): KObject {
  if (ct === "application/vnd.kubernetes.protobuf") {
    try {
      return decodeProtobufObject(body).object as KObject;
    } catch (e) {
      throw badRequest(`unable to decode protobuf body: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (ct === "application/json" || ct === "" || ct === "application/yaml" || ct === "application/apply-patch+yaml") return parseText(ct, body);
  throw unsupportedMediaType(["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]);
}

function parseText(ct: string, body: Buffer): Json {
  const text = body.toString("utf8");
  try {
    if (ct.includes("yaml")) return parseYaml(text);
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`couldn't get version/kind; json parse error: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function deleteOptions(ct: string, body: Buffer, q: URLSearchParams): KObject {
  let o: KObject = {};
  if (body.length > 0) {
    if (ct === "application/vnd.kubernetes.protobuf") o = decodeObject(ct, body);
    else o = parseText(ct, body) ?? {};
  }
  const gp = q.get("gracePeriodSeconds");
  if (gp !== null && gp !== "") {
    const n = Number(gp);
    if (!Number.isInteger(n)) throw badRequest(`invalid gracePeriodSeconds: "${gp}"`);
    o.gracePeriodSeconds = n;
  }
  const pp = q.get("propagationPolicy");
  if (pp) o.propagationPolicy = pp;
  if (q.get("orphanDependents") === "true") o.orphanDependents = true;
  return o;
}

function dryRunOf(q: URLSearchParams, extra?: Json): boolean {
  const vals = [...q.getAll("dryRun"), ...(Array.isArray(extra) ? extra : [])];
  for (const v of vals) if (v !== "All") throw badRequest(`Invalid dry run value: "${v}" (supported values: "All")`);
  return vals.length > 0;
}

function writeOptions(req: IncomingMessage, q: URLSearchParams): WriteOptions {
  const ua = String(req.headers["user-agent"] ?? "unknown");
  const force = q.get("force");
  if (force !== null && force !== "true" && force !== "false") throw badRequest(`invalid value for force: "${force}"`);
  return {
    manager: q.get("fieldManager") ?? ua.split("/")[0] ?? "unknown",
    fieldValidation: q.get("fieldValidation"),
    dryRun: dryRunOf(q),
    force: force === null ? undefined : force === "true",
  };
}

interface ResourceRoute {
  rt: ResourceType;
  namespace?: string;
  name?: string;
  sub?: string;
}

function resolve(reg: Registry, group: string, version: string, rest: string[]): ResourceRoute {
  let ns: string | undefined;
  let parts = rest;
  if (parts[0] === "namespaces" && parts.length >= 3) {
    const rt = reg.lookup(group, version, parts[2] as string);
    if (rt && rt.namespaced) {
      ns = parts[1];
      parts = parts.slice(2);
    } else if (!(group === "" && parts[2] === "status")) {
      throw notFoundPath();
    }
  }
  const rt = reg.lookup(group, version, parts[0] as string);
  if (!rt || parts.length > 3) throw notFoundPath();
  if (rt.namespaced && ns === undefined && parts.length > 1) throw notFoundPath();
  const sub = parts[2];
  const podLog = sub === "log" && rt.group === "" && rt.resource === "pods";
  if (sub !== undefined && !((sub === "status" && rt.statusSubresource) || (sub === "scale" && rt.scale) || podLog)) throw notFoundPath();
  return { rt, namespace: ns, name: parts[1], sub };
}

/** Handles one request. Never throws; errors become Status responses. */
export async function handle(deps: RouterDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    const q = url.searchParams;
    const accept = String(req.headers.accept ?? "");
    const method = req.method ?? "GET";
    const body = await readBody(req);
    const segs = path.split("/").filter((s) => s.length > 0).map(decodeURIComponent);

    if (path === "/version") return sendJson(res, 200, deps.version);
    if (path === "/healthz" || path === "/readyz" || path === "/livez") {
      res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("ok");
      return;
    }
    if (path === COMPACT_PATH) {
      if (method !== "POST") throw methodNotAllowed(method);
      const { compactedTo, listeners } = deps.core.store.compact();
      return sendJson(res, 200, { compactedTo: String(compactedTo), watchesEnded: listeners });
    }
    if (path === "/api" && method === "GET") {
      if (disc.wantsAggregated(accept)) return sendJson(res, 200, disc.aggregatedCore(deps.reg), disc.aggregatedContentType(accept));
      return sendJson(res, 200, disc.apiVersions(deps.address()));
    }
    if (path === "/apis" && method === "GET") {
      if (disc.wantsAggregated(accept)) return sendJson(res, 200, disc.aggregatedApis(deps.reg), disc.aggregatedContentType(accept));
      return sendJson(res, 200, disc.apiGroupList(deps.reg));
    }
    if (path === "/openapi/v2" && method === "GET") {
      const doc = openApiV2(accept.includes("protobuf"));
      res.writeHead(200, { "Content-Type": doc.contentType, "Content-Length": String(doc.body.length), "Cache-Control": "no-cache, private" });
      res.end(doc.body);
      return;
    }
    if (path === "/openapi/v3" && method === "GET") return sendJson(res, 200, deps.openapi.index());
    if (segs[0] === "openapi" && segs[1] === "v3" && method === "GET") {
      const doc = deps.openapi.doc(segs.slice(2).join("/"));
      if (!doc) throw notFoundPath();
      return sendJson(res, 200, doc);
    }
    if (serveAccess(deps, segs, method, req, res, body)) return;
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === "api" && segs[1] === "v1") {
      group = "";
      version = "v1";
      rest = segs.slice(2);
    } else if (segs[0] === "apis" && segs.length >= 2) {
      group = segs[1] as string;
      if (segs.length === 2) {
        const g = disc.apiGroupDoc(deps.reg, group);
        if (!g || method !== "GET") throw notFoundPath();
        return sendJson(res, 200, g);
      }
      version = segs[2] as string;
      rest = segs.slice(3);
    } else throw notFoundPath();
    if (rest.length === 0) {
      const list = disc.apiResourceList(deps.reg, group, version);
      if (!list || method !== "GET") throw notFoundPath();
      return sendJson(res, 200, list);
    }
    const route = resolve(deps.reg, group, version, rest);
    await serveResource(deps, route, method, q, accept, req, res, body);
  } catch (err) {
    sendError(res, err);
  }
}

async function serveResource(deps: RouterDeps, r: ResourceRoute, method: string, q: URLSearchParams, accept: string, req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
  const { core } = deps;
  const { rt } = r;
  const ct = mediaType(req.headers["content-type"]);
  const table = wantsTable(accept);
  const ns = rt.namespaced ? r.namespace : "";
  const respond = (w: WriteResult): void => sendJson(res, w.code, w.body, "application/json", w.warnings);
  if (r.name === undefined) {
    if (method === "GET") {
      if (q.get("watch") === "true" || q.get("watch") === "1") {
        serveWatch(core, rt, rt.namespaced ? r.namespace : undefined, q, req, res, table, deps.timing);
        return;
      }
      if (q.get("resourceVersionMatch") === "Exact") throw new ApiError(410, "Expired", "resourceVersionMatch=Exact is not supported by the in-memory API server");
      if (q.get("sendInitialEvents") !== null) throw badRequest("sendInitialEvents is forbidden for list");
      const page = core.list(rt, rt.namespaced ? r.namespace : undefined, q.get("labelSelector"), q.get("fieldSelector"), { limit: q.get("limit"), continue: q.get("continue"), resourceVersion: q.get("resourceVersion") });
      const { items, resourceVersion } = page;
      const meta: Json = { resourceVersion };
      if (page.continue !== undefined) meta.continue = page.continue;
      if (page.remainingItemCount !== undefined) meta.remainingItemCount = page.remainingItemCount;
      if (table) {
        const t = renderTable(rt, items, resourceVersion, q.get("includeObject"));
        t.metadata = meta;
        return sendJson(res, 200, t, TABLE_CONTENT_TYPE);
      }
      if (!rt.custom) for (const i of items) {
        delete i.apiVersion;
        delete i.kind;
      }
      return sendJson(res, 200, { apiVersion: apiVersionOf(rt.group, rt.version), items, kind: rt.listKind, metadata: meta });
    }
    if (method === "POST") {
      if (ns === undefined) throw notFoundPath();
      return respond(core.create(rt, ns, decodeObject(ct, body), writeOptions(req, q)));
    }
    if (method === "DELETE") {
      if (ns === undefined && rt.namespaced) throw notFoundPath();
      const opts = deleteOptions(ct, body, q);
      const dry = dryRunOf(q, opts.dryRun);
      const { items, resourceVersion } = core.list(rt, ns, q.get("labelSelector"), q.get("fieldSelector"));
      const out: Json[] = [];
      for (const i of items) {
        const w = core.delete({ rt, namespace: ns ?? "", name: i.metadata.name }, opts, dry);
        out.push(w.body.kind === "Status" ? i : w.body);
      }
      return sendJson(res, 200, { apiVersion: apiVersionOf(rt.group, rt.version), items: out, kind: rt.listKind, metadata: { resourceVersion } });
    }
    throw methodNotAllowed(method);
  }
  const t: Target = { rt, namespace: ns ?? "", name: r.name, sub: r.sub };
  if (r.sub === "log") {
    if (method !== "GET") throw methodNotAllowed(method);
    servePodLog(core, rt, deps.podLogsDir, t.namespace, r.name, q, req, res);
    return;
  }
  switch (method) {
    case "GET": {
      if (q.get("watch") === "true" || q.get("watch") === "1") throw notFoundPath();
      const o = core.get(t);
      if (table && t.sub !== "scale") return sendJson(res, 200, renderTable(rt, [o], o.metadata?.resourceVersion, q.get("includeObject")), TABLE_CONTENT_TYPE);
      return sendJson(res, 200, o);
    }
    case "PUT":
      return respond(core.update(t, decodeObject(ct, body), writeOptions(req, q)));
    case "PATCH": {
      const known = Object.values(PATCH_TYPES) as string[];
      if (!known.includes(ct)) {
        const accepted = rt.custom || rt.resource === "customresourcedefinitions" ? [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.apply] : [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.strategic, PATCH_TYPES.apply];
        throw unsupportedMediaType(accepted);
      }
      const raw = parseText(ct === PATCH_TYPES.apply ? "yaml" : "json", body);
      return respond(core.patch(t, ct, raw, writeOptions(req, q)));
    }
    case "DELETE": {
      if (t.sub) throw methodNotAllowed(method);
      const opts = deleteOptions(ct, body, q);
      return respond(core.delete(t, opts, dryRunOf(q, opts.dryRun)));
    }
    default:
      throw methodNotAllowed(method);
  }
}

/** 404 for a resource that is not found, re-exported for callers building their own routes. */
export { notFound };
