/**
 * The verbs (get, list, create, update, patch, delete, and the status/scale subresources) over the store,
 * with Kubernetes semantics: resourceVersion preconditions, generation rules, status isolation, finalizers,
 * no-op detection, dry run, managedFields, CRD registration.
 */
import { establishCrd, type Registry, validateCrd } from "./crd-registry.js";
import { ApiError, alreadyExists, badRequest, conflict, invalid, notFound } from "./errors.js";
import { jsonPathFirst } from "./jsonpath.js";
import { recordUpdate, serverSideApply, type ListKeysFn, type MapShape, type ShapeFn } from "./managed-fields.js";
import { jsonPatch, mergePatch, strategicMergeKey, strategicMergePatch } from "./patch.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";
import type { Store } from "./store.js";
import { apiVersionOf, storageKey, type Json, type KObject, type ResourceType } from "./types.js";
import { clone, deepEqual, getPath, isObject, newUid, nowRfc3339, randomSuffix, setPath, splitPath } from "./util.js";
import { admitObject, defaultOnRead, parseFieldValidation, validateObject } from "./validation-pipeline.js";

/** What every write request carries besides its body. */
export interface WriteOptions {
  /** `fieldManager` query, or the User-Agent prefix before `/`. */
  manager: string;
  /** `fieldValidation` query value (null = absent = Warn). */
  fieldValidation: string | null;
  /** `dryRun=All`. */
  dryRun: boolean;
  /** `force` query for apply patches. */
  force?: boolean;
}

/** A write's answer: HTTP code, body object and warnings. */
export interface WriteResult {
  code: number;
  body: Json;
  warnings: string[];
}

/** Patch media types. */
export const PATCH_TYPES = {
  json: "application/json-patch+json",
  merge: "application/merge-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
} as const;

/** Per-request context for single-object verbs. */
export interface Target {
  rt: ResourceType;
  namespace: string;
  name: string;
  /** `status`, `scale` or undefined. */
  sub?: string;
}

const SERVER_META = ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace", "name"] as const;

/** Paging of a list request: its `limit`, `continue` and `resourceVersion` query values. */
export interface ListPage {
  limit?: string | null;
  continue?: string | null;
  resourceVersion?: string | null;
}

/** A list's answer: items (as the client's version sees them) and ListMeta fields. */
export interface ListResult {
  items: KObject[];
  resourceVersion: string;
  /** Token for the next page; absent on the last page. */
  continue?: string;
  /** Objects after this page (set only with `continue` and no selectors). */
  remainingItemCount?: number;
}

/** `limit`: a non-negative integer (0 = no limit), as kube-apiserver parses ListOptions. @throws ApiError 400 */
function parseLimit(v: string | null | undefined): number {
  if (v === undefined || v === null || v === "") return 0;
  if (!/^-?\d+$/.test(v)) throw badRequest(`limit: Invalid value: "${v}": must be an integer`);
  const n = Number(v);
  return n > 0 ? n : 0;
}

/**
 * The continue token, as kube-apiserver's storage makes it (`EncodeContinue`): unpadded URL-safe
 * base64 of `{"v":"meta.k8s.io/v1","rv":<list RV>,"start":"<last key>\u0000"}`. Opaque to clients.
 */
function encodeContinue(rv: number, lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start: `${lastKey}\u0000` })).toString("base64url");
}

/** Decodes a continue token. @throws ApiError 400 `invalid continue token: …` */
function decodeContinue(token: string): { rv: number; after: string } {
  const bad = (why: string): ApiError => badRequest(`invalid continue token: continue key is not valid: ${why}`);
  let t: Json;
  try {
    t = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad("illegal base64 data or JSON");
  }
  if (!isObject(t) || t.v !== "meta.k8s.io/v1") throw bad("server does not recognize this encoded version");
  if (typeof t.rv !== "number" || !Number.isInteger(t.rv) || t.rv <= 0) throw bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
  if (typeof t.start !== "string" || !t.start.endsWith("\u0000") || t.start.length < 2) throw bad("encoded start key is empty or malformed");
  return { rv: t.rv, after: t.start.slice(0, -1) };
}

/** Verbs over one store and registry. */
export class Core {
  /** Called after a CRD is created/updated/deleted so dependent caches refresh. */
  onCrdChange: () => void = () => undefined;

  /**
   * @param store the object store
   * @param reg the type registry (CRD writes update it)
   */
  constructor(
    readonly store: Store,
    readonly reg: Registry,
  ) {}

  /** The stored object as a client of `rt`'s version sees it: apiVersion rewritten, defaults applied. */
  present(rt: ResourceType, o: KObject): KObject {
    const out = defaultOnRead(rt, o);
    out.apiVersion = apiVersionOf(rt.group, rt.version);
    out.kind = rt.kind;
    return out;
  }

  private gr(rt: ResourceType): string {
    return storageKey(rt.group, rt.resource);
  }

  /** The list-map keys of a resource's lists, from the CRD schema or the built-in merge keys. */
  listKeys(rt: ResourceType): ListKeysFn {
    return (fields) => {
      if (rt.custom && rt.schema) {
        let node: Json = rt.schema;
        for (const f of fields) {
          if (!isObject(node)) return undefined;
          if (node.type === "array") node = node.items;
          node = isObject(node?.properties) ? node.properties[f] : isObject(node?.additionalProperties) ? node.additionalProperties : undefined;
        }
        if (isObject(node) && node["x-kubernetes-list-type"] === "map" && Array.isArray(node["x-kubernetes-list-map-keys"])) return node["x-kubernetes-list-map-keys"];
        return undefined;
      }
      const last = fields[fields.length - 1];
      if (last === undefined || last === "finalizers") return undefined;
      const k = strategicMergeKey(last, fields[fields.length - 3]);
      return k ? [k] : undefined;
    };
  }

  /**
   * The map shapes of a resource for field ownership, as kube-apiserver converts a CRD schema for
   * structured-merge-diff: `properties` are named fields, `additionalProperties` and
   * `x-kubernetes-preserve-unknown-fields` (or no properties) give map keys, `x-kubernetes-map-type: atomic` an
   * atomic map. `metadata` is ObjectMeta whatever the CRD says. Built-ins: undefined (all named fields).
   */
  shape(rt: ResourceType): ShapeFn {
    const keys: MapShape = { named: () => false, atomic: false };
    return (fields) => {
      if (fields[0] === "metadata") return fields.length === 2 && (fields[1] === "labels" || fields[1] === "annotations") ? keys : undefined;
      if (!rt.custom || !rt.schema) return undefined;
      let node: Json = rt.schema;
      for (const f of fields) {
        if (!isObject(node)) return keys;
        if (node.type === "array") node = node.items;
        node = isObject(node?.properties) && isObject(node.properties[f]) ? node.properties[f] : isObject(node?.additionalProperties) ? node.additionalProperties : undefined;
      }
      if (isObject(node) && node.type === "array") node = node.items;
      if (!isObject(node)) return keys;
      const props: Json = isObject(node.properties) ? node.properties : {};
      return { named: (k) => Object.prototype.hasOwnProperty.call(props, k), atomic: node["x-kubernetes-map-type"] === "atomic" };
    };
  }

  /** Reads one object. @throws ApiError 404 */
  get(t: Target): KObject {
    const o = this.store.peek(this.gr(t.rt), t.namespace, t.name);
    if (!o) throw notFound(t.rt, t.name);
    return t.sub === "scale" ? this.toScale(t.rt, o) : this.present(t.rt, o);
  }

  /**
   * Lists objects matching the selectors, whole or one page at a time as kube-apiserver pages lists
   * (`limit`/`continue`): a page holds at most `limit` matching items in key order (namespace, then
   * name); when more may follow, `continue` is an opaque token for the next page and
   * `remainingItemCount` (only without selectors) counts the objects after the page. Every page of a
   * paged list shows the store as it was at the first page's resourceVersion, which each page reports.
   * @param namespace undefined = all namespaces
   * @param page `limit` (0 or absent = no limit), `continue` (a token from a previous page) and the
   *   list's `resourceVersion` query value
   * @throws ApiError 400 on a malformed selector, a malformed `limit` or `continue`, or `continue`
   *   with a `resourceVersion`; 410 Expired when the token's resourceVersion was compacted away
   */
  list(rt: ResourceType, namespace: string | undefined, labelSelector: string | null, fieldSelector: string | null, page: ListPage = {}): ListResult {
    const ls = parseLabelSelector(labelSelector);
    const fs = parseFieldSelector(fieldSelector, rt);
    const limit = parseLimit(page.limit);
    const gr = this.gr(rt);
    const matches = (o: KObject): boolean => ls.matches(o.metadata?.labels) && fs.matches(o);
    let rv = this.store.currentRv;
    let after = "";
    if (page.continue) {
      if (page.resourceVersion !== undefined && page.resourceVersion !== null && page.resourceVersion !== "") {
        throw badRequest("specifying resource version is not allowed when using continue");
      }
      ({ rv, after } = decodeContinue(page.continue));
    } else if (limit === 0 && fs.name !== undefined && namespace !== undefined) {
      const o = this.store.peek(gr, namespace, fs.name);
      const items = o && matches(o) ? [this.present(rt, o)] : [];
      return { items, resourceVersion: String(rv) };
    }
    if (!page.continue && limit === 0) {
      const items = this.store.listRaw(gr, namespace).filter(matches).map((o) => this.present(rt, o));
      return { items, resourceVersion: String(rv) };
    }
    let res;
    try {
      res = this.store.listAt(gr, { rv, namespace, after, limit, matches });
    } catch (err) {
      if (err instanceof ApiError && err.code === 410) {
        throw new ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.");
      }
      throw err;
    }
    const out: ListResult = { items: res.items.map((o) => this.present(rt, o)), resourceVersion: String(rv) };
    if (res.lastKey !== undefined) {
      out.continue = encodeContinue(rv, res.lastKey);
      if (!labelSelector && !fieldSelector) out.remainingItemCount = res.remaining;
    }
    return out;
  }

  private checkNamespace(t: Target): void {
    if (!t.rt.namespaced) return;
    const ns = this.store.get("/namespaces", "", t.namespace);
    if (!ns) throw new ApiError(404, "NotFound", `namespaces "${t.namespace}" not found`, { name: t.namespace, kind: "namespaces" });
    if (ns.status?.phase === "Terminating") {
      throw new ApiError(403, "Forbidden", `${t.rt.resource}${t.rt.group ? "." + t.rt.group : ""} "${t.name}" is forbidden: unable to create new content in namespace ${t.namespace} because it is being terminated`, {
        name: t.name,
        group: t.rt.group,
        kind: t.rt.resource,
        causes: [{ reason: "NamespaceTerminating", message: `namespace ${t.namespace} is being terminated`, field: "metadata.namespace" }],
      });
    }
  }

  /**
   * POST: creates an object.
   * @param namespace the URL namespace ("" for cluster-scoped)
   * @throws ApiError 400 (RV set, namespace mismatch, strict unknown fields), 404 (namespace), 409 AlreadyExists, 422 Invalid
   */
  create(rt: ResourceType, namespace: string, body: KObject, opts: WriteOptions, applyManaged?: Json[]): WriteResult {
    const fv = parseFieldValidation(opts.fieldValidation);
    const { obj, warnings } = admitObject(rt, body, fv);
    const m = obj.metadata;
    if (m.resourceVersion) throw badRequest("resourceVersion should not be set on objects to be created");
    if (rt.namespaced) {
      if (m.namespace && m.namespace !== namespace) throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
      m.namespace = namespace;
    } else delete m.namespace;
    if (!m.name && m.generateName) m.name = `${m.generateName}${randomSuffix()}`;
    if (!m.name) throw invalid(rt.group, rt.kind, "", [{ reason: "FieldValueRequired", message: "Required value: name or generateName is required", field: "metadata.name" }]);
    const t: Target = { rt, namespace: rt.namespaced ? namespace : "", name: m.name };
    this.checkNamespace(t);
    if (this.store.get(this.gr(rt), t.namespace, m.name)) throw alreadyExists(rt, m.name);
    if (rt.statusSubresource && !(rt.group === "" && rt.resource === "namespaces")) delete obj.status;
    if (rt.group === "" && rt.resource === "namespaces") obj.status = { phase: "Active" };
    m.uid = newUid();
    m.creationTimestamp = nowRfc3339();
    m.generation = 1;
    delete m.deletionTimestamp;
    delete m.deletionGracePeriodSeconds;
    if (rt.group === "" && rt.resource === "namespaces") m.labels = { ...(m.labels ?? {}), "kubernetes.io/metadata.name": m.name };
    if (rt.resource === "customresourcedefinitions" && rt.group === "apiextensions.k8s.io") {
      validateCrd(obj);
      establishCrd(obj);
    }
    validateObject(rt, obj);
    if (applyManaged) obj.metadata.managedFields = applyManaged;
    else recordUpdate(undefined, obj, opts.manager, obj.apiVersion, this.listKeys(rt), undefined, this.shape(rt));
    if (opts.dryRun) return { code: 201, body: this.present(rt, obj), warnings };
    // obj was built for this request (admitObject copies the body): the store takes it over
    const stored = this.store.create(this.gr(rt), this.toStorage(rt, obj), true);
    if (rt.resource === "customresourcedefinitions" && rt.group === "apiextensions.k8s.io") {
      this.reg.setCrd(clone(stored));
      this.onCrdChange();
    }
    return { code: 201, body: this.present(rt, stored), warnings };
  }

  private toStorage(rt: ResourceType, o: KObject): KObject {
    o.apiVersion = apiVersionOf(rt.group, rt.storageVersion);
    return o;
  }

  /**
   * Turns a client's desired object into the object to store, applying status isolation, server-owned metadata,
   * finalizer rules, generation and validation. Returns undefined when nothing changed (no-op).
   */
  private finishUpdate(t: Target, old: KObject, desired: KObject, opts: WriteOptions, operation: "Update" | "Apply"): KObject {
    const { rt } = t;
    let next: KObject;
    if (t.sub === "status") {
      next = clone(old);
      if (desired.status === undefined) delete next.status;
      else next.status = desired.status;
      if (desired.metadata?.managedFields !== undefined && operation === "Update") next.metadata.managedFields = desired.metadata.managedFields;
    } else {
      next = desired;
      if (rt.statusSubresource) {
        if (old.status === undefined) delete next.status;
        else next.status = clone(old.status);
      }
    }
    const m = next.metadata;
    for (const k of SERVER_META) {
      if (old.metadata[k] === undefined) delete m[k];
      else m[k] = old.metadata[k];
    }
    if (!rt.namespaced) delete m.namespace;
    if (old.metadata.deletionTimestamp) {
      const before = new Set<string>(old.metadata.finalizers ?? []);
      const added = (m.finalizers ?? []).filter((f: string) => !before.has(f));
      if (added.length > 0) {
        throw invalid(rt.group, rt.kind, t.name, [
          { reason: "FieldValueForbidden", message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f: string) => JSON.stringify(f)).join(", ")}}`, field: "metadata.finalizers" },
        ]);
      }
    }
    if (Array.isArray(m.finalizers) && m.finalizers.length === 0) delete m.finalizers;
    if (isObject(m.labels) && Object.keys(m.labels).length === 0) delete m.labels;
    if (rt.resource === "customresourcedefinitions" && rt.group === "apiextensions.k8s.io") {
      validateCrd(next);
      if (t.sub !== "status") establishCrd(next, old);
    }
    validateObject(rt, next, old);
    if (t.sub !== "status" && this.specChanged(rt, old, next)) m.generation = (old.metadata.generation ?? 1) + 1;
    if (operation === "Update") recordUpdate(old, next, opts.manager, apiVersionOf(rt.group, rt.version), this.listKeys(rt), t.sub === "status" ? "status" : undefined, this.shape(rt));
    return next;
  }

  private specChanged(rt: ResourceType, a: KObject, b: KObject): boolean {
    if (rt.generationFrom === "spec") return !deepEqual(a.spec, b.spec);
    const strip = (o: KObject): KObject => {
      const c = { ...o };
      delete c.metadata;
      delete c.apiVersion;
      delete c.kind;
      if (rt.statusSubresource) delete c.status;
      return c;
    };
    return !deepEqual(strip(a), strip(b));
  }

  /** Persists an updated object (or deletes it when its last finalizer went away during deletion). */
  private commit(t: Target, old: KObject, next: KObject, opts: WriteOptions, warnings: string[]): WriteResult {
    const gr = this.gr(t.rt);
    const oldCmp = this.present(t.rt, old);
    const nextCmp = this.present(t.rt, next);
    if (deepEqual(oldCmp, nextCmp)) return { code: 200, body: this.present(t.rt, old), warnings };
    if (opts.dryRun) return { code: 200, body: nextCmp, warnings };
    if (next.metadata.deletionTimestamp && !(next.metadata.finalizers?.length > 0)) {
      const last = this.store.delete(gr, t.namespace, t.name) as KObject;
      return { code: 200, body: this.present(t.rt, last), warnings };
    }
    // next was built for this request from copies (finishUpdate): the store takes it over
    const stored = this.store.update(gr, this.toStorage(t.rt, next), true);
    if (t.rt.resource === "customresourcedefinitions" && t.rt.group === "apiextensions.k8s.io") {
      this.reg.setCrd(clone(stored));
      this.onCrdChange();
    }
    return { code: 200, body: this.present(t.rt, stored), warnings };
  }

  /**
   * PUT on the main resource, `/status` or `/scale`.
   * @throws ApiError 400 (name mismatch), 404, 409 Conflict (stale RV), 422 (RV missing on CRs, invalid)
   */
  update(t: Target, body: KObject, opts: WriteOptions): WriteResult {
    const old = this.store.get(this.gr(t.rt), t.namespace, t.name);
    if (!old) throw notFound(t.rt, t.name);
    if (t.sub === "scale") return this.updateScale(t, old, body, opts);
    const fv = parseFieldValidation(opts.fieldValidation);
    const { obj, warnings } = admitObject(t.rt, body, fv);
    if (obj.metadata.name !== undefined && obj.metadata.name !== t.name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${t.name})`);
    }
    if (t.rt.namespaced && obj.metadata.namespace && obj.metadata.namespace !== t.namespace) {
      throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    const rv = obj.metadata.resourceVersion;
    if (!rv) {
      if (!t.rt.allowUnconditionalUpdate) {
        throw invalid(t.rt.group, t.rt.kind, t.name, [{ reason: "FieldValueInvalid", message: "Invalid value: 0x0: must be specified for an update", field: "metadata.resourceVersion" }]);
      }
    } else if (rv !== old.metadata.resourceVersion) throw conflict(t.rt, t.name);
    const next = this.finishUpdate(t, old, obj, opts, "Update");
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    return this.commit(t, old, next, opts, warnings);
  }

  /**
   * PATCH with one of the four patch types.
   * @throws ApiError 415 (SMP on a CR, unknown type), 400 (bad body), 404, 409, 422
   */
  patch(t: Target, contentType: string, raw: Json, opts: WriteOptions): WriteResult {
    const { rt } = t;
    const accepted: string[] = [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.apply];
    if (!rt.custom && rt.resource !== "customresourcedefinitions") accepted.splice(2, 0, PATCH_TYPES.strategic);
    if (!accepted.includes(contentType)) {
      throw new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`);
    }
    if (opts.force !== undefined && contentType !== PATCH_TYPES.apply) {
      throw invalid(rt.group, rt.kind, t.name, [{ reason: "FieldValueForbidden", message: "Forbidden: may not be specified for non-apply patch", field: "force" }]);
    }
    const gr = this.gr(rt);
    const old = this.store.get(gr, t.namespace, t.name);
    if (contentType === PATCH_TYPES.apply) return this.apply(t, old, raw, opts);
    if (!old) throw notFound(rt, t.name);
    const current = t.sub === "scale" ? this.toScale(rt, old) : this.present(rt, old);
    let patched: Json;
    if (contentType === PATCH_TYPES.json) patched = jsonPatch(current, raw);
    else {
      if (!isObject(raw)) throw badRequest("json: cannot unmarshal array into Go value of type map[string]interface {}");
      patched = contentType === PATCH_TYPES.merge ? mergePatch(current, raw) : strategicMergePatch(current, raw);
    }
    if (!isObject(patched)) throw badRequest("the patched object is not a JSON object");
    if (t.sub === "scale") return this.updateScale(t, old, patched, opts);
    const fv = parseFieldValidation(opts.fieldValidation);
    const { obj, warnings } = admitObject(rt, patched, fv);
    if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== old.metadata.resourceVersion) throw conflict(rt, t.name);
    obj.metadata.resourceVersion = old.metadata.resourceVersion;
    if (obj.metadata.name !== t.name) throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${t.name})`);
    const next = this.finishUpdate(t, old, obj, opts, "Update");
    return this.commit(t, old, next, opts, warnings);
  }

  private apply(t: Target, old: KObject | undefined, raw: Json, opts: WriteOptions): WriteResult {
    const { rt } = t;
    if (!opts.manager || opts.manager === "\u0000") {
      throw badRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
    }
    if (!isObject(raw)) throw badRequest("error decoding YAML: the applied configuration is not an object");
    const fv = parseFieldValidation(opts.fieldValidation);
    const { obj: applied, warnings } = admitObject(rt, raw, fv);
    if (applied.metadata.name !== undefined && applied.metadata.name !== t.name) {
      throw badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${t.name})`);
    }
    if (rt.namespaced && applied.metadata.namespace && applied.metadata.namespace !== t.namespace) {
      throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    delete applied.metadata.managedFields;
    const apiVersion = apiVersionOf(rt.group, rt.version);
    const sso = { manager: opts.manager, force: opts.force === true, apiVersion, listKeys: this.listKeys(rt), shape: this.shape(rt), subresource: t.sub === "status" ? "status" : undefined, skipStatus: rt.statusSubresource && t.sub !== "status" };
    if (!old) {
      if (t.sub) throw notFound(rt, t.name);
      const body = serverSideApply(undefined, applied, sso);
      body.metadata.name = t.name;
      const managed = body.metadata.managedFields;
      const res = this.create(rt, t.namespace, body, { ...opts, fieldValidation: "Ignore" }, managed);
      return { ...res, warnings };
    }
    if (applied.metadata.resourceVersion && applied.metadata.resourceVersion !== old.metadata.resourceVersion) throw conflict(rt, t.name);
    const live = this.present(rt, old);
    const merged = serverSideApply(live, applied, sso);
    merged.metadata.resourceVersion = old.metadata.resourceVersion;
    const next = this.finishUpdate(t, old, merged, opts, "Apply");
    if (t.sub === "status") next.metadata.managedFields = merged.metadata.managedFields;
    return this.commit(t, old, next, opts, warnings);
  }

  /** The autoscaling/v1 Scale view of an object. @throws ApiError 404 if the type has no scale subresource */
  toScale(rt: ResourceType, o: KObject): KObject {
    const sc = rt.scale;
    if (!sc) throw notFound(rt, o.metadata.name);
    let selector: Json = sc.labelSelectorPath ? jsonPathFirst(o, sc.labelSelectorPath) : undefined;
    if (selector === undefined && !rt.custom && isObject(o.spec?.selector)) {
      selector = Object.entries(o.spec.selector.matchLabels ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(",");
    }
    const m = o.metadata;
    const status: Json = { replicas: jsonPathFirst(o, sc.statusReplicasPath) ?? 0 };
    if (typeof selector === "string" && selector) status.selector = selector;
    return {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
      spec: { replicas: jsonPathFirst(o, sc.specReplicasPath) ?? 0 },
      status,
    };
  }

  private updateScale(t: Target, old: KObject, scale: KObject, opts: WriteOptions): WriteResult {
    const sc = t.rt.scale;
    if (!sc) throw notFound(t.rt, t.name);
    const rv = scale.metadata?.resourceVersion;
    if (rv && rv !== old.metadata.resourceVersion) throw conflict(t.rt, t.name);
    const replicas = scale.spec?.replicas;
    if (typeof replicas !== "number" || !Number.isInteger(replicas) || replicas < 0) {
      throw invalid("autoscaling", "Scale", t.name, [{ reason: "FieldValueInvalid", message: `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`, field: "spec.replicas" }]);
    }
    const desired = this.present(t.rt, old);
    setPath(desired, splitPath(sc.specReplicasPath), replicas);
    const next = this.finishUpdate({ ...t, sub: undefined }, old, desired, opts, "Update");
    const res = this.commit({ ...t, sub: undefined }, old, next, opts, []);
    const after = opts.dryRun ? res.body : (this.store.get(this.gr(t.rt), t.namespace, t.name) ?? res.body);
    return { code: 200, body: this.toScale(t.rt, after), warnings: [] };
  }

  /**
   * DELETE: immediate removal, or deletionTimestamp + finalizers (Foreground adds `foregroundDeletion`, Orphan adds `orphan`).
   * @param options DeleteOptions (propagationPolicy, preconditions, dryRun)
   * @throws ApiError 404, 409 (precondition mismatch)
   */
  delete(t: Target, options: KObject, dryRun: boolean): WriteResult {
    const { rt } = t;
    const gr = this.gr(rt);
    const old = this.store.get(gr, t.namespace, t.name);
    if (!old) throw notFound(rt, t.name);
    const pre = options.preconditions ?? {};
    if (pre.uid && pre.uid !== old.metadata.uid) {
      throw new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${rt.group ? `${rt.resource}.${rt.group}` : rt.resource} "${t.name}": Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`, { name: t.name, group: rt.group, kind: rt.resource });
    }
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${rt.group ? `${rt.resource}.${rt.group}` : rt.resource} "${t.name}": Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`, { name: t.name, group: rt.group, kind: rt.resource });
    }
    let policy: string | undefined = options.propagationPolicy;
    if (!policy && options.orphanDependents === true) policy = "Orphan";
    if (policy && !["Foreground", "Background", "Orphan"].includes(policy)) {
      throw invalid("meta.k8s.io", "DeleteOptions", "", [{ reason: "FieldValueNotSupported", message: `Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"`, field: "propagationPolicy" }]);
    }
    const isNs = rt.group === "" && rt.resource === "namespaces";
    const finalizers: string[] = [...(old.metadata.finalizers ?? [])];
    if (!old.metadata.deletionTimestamp) {
      if (policy === "Foreground" && !finalizers.includes("foregroundDeletion")) finalizers.push("foregroundDeletion");
      if (policy === "Orphan" && !finalizers.includes("orphan")) finalizers.push("orphan");
    }
    const nsPending = isNs && (old.spec?.finalizers ?? []).length > 0;
    if (finalizers.length === 0 && !nsPending) {
      const details = { name: t.name, group: rt.group, kind: rt.resource, uid: old.metadata.uid };
      const status = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details };
      if (!dryRun) {
        // The DELETED event carries the grace period asked for (`kubectl delete --grace-period=0 --force`),
        // so the process kubelet can kill at once instead of waiting terminationGracePeriodSeconds.
        const grace = options.gracePeriodSeconds;
        this.store.delete(gr, t.namespace, t.name, typeof grace === "number" && grace >= 0 ? (o) => {
          o.metadata.deletionTimestamp ??= nowRfc3339();
          o.metadata.deletionGracePeriodSeconds = grace;
        } : undefined);
        if (rt.resource === "customresourcedefinitions" && rt.group === "apiextensions.k8s.io") this.dropCrd(old);
      }
      return { code: 200, body: status, warnings: [] };
    }
    if (old.metadata.deletionTimestamp) return { code: 200, body: this.present(rt, old), warnings: [] };
    const next = clone(old);
    next.metadata.finalizers = finalizers.length ? finalizers : undefined;
    if (!next.metadata.finalizers) delete next.metadata.finalizers;
    next.metadata.deletionTimestamp = nowRfc3339();
    next.metadata.deletionGracePeriodSeconds = 0;
    next.metadata.generation = (old.metadata.generation ?? 1) + 1;
    if (isNs) next.status = { ...(next.status ?? {}), phase: "Terminating" };
    if (dryRun) return { code: 200, body: this.present(rt, next), warnings: [] };
    const stored = this.store.update(gr, next);
    return { code: 200, body: this.present(rt, stored), warnings: [] };
  }

  /** Stops serving a deleted CRD and deletes all its custom resources. */
  private dropCrd(crd: KObject): void {
    const plural = crd.spec?.names?.plural;
    const group = crd.spec?.group;
    this.reg.removeCrd(crd.metadata.name);
    this.onCrdChange();
    const gr = storageKey(group, plural);
    for (const o of this.store.list(gr)) this.store.delete(gr, o.metadata.namespace ?? "", o.metadata.name);
  }

  /**
   * Internal write used by controllers (GC, namespace and deployment controllers): update ignoring preconditions,
   * recorded under `manager`.
   */
  controllerUpdate(rt: ResourceType, o: KObject, manager: string, sub?: string): void {
    const t: Target = { rt, namespace: o.metadata.namespace ?? "", name: o.metadata.name, sub };
    const old = this.store.get(this.gr(rt), t.namespace, t.name);
    if (!old) return;
    const desired = clone(o);
    desired.metadata.resourceVersion = old.metadata.resourceVersion;
    const next = this.finishUpdate(t, old, desired, { manager, fieldValidation: "Ignore", dryRun: false }, "Update");
    this.commit(t, old, next, { manager, fieldValidation: "Ignore", dryRun: false }, []);
  }

  /** Looks up a stored object by storage key (controllers). */
  raw(rt: ResourceType, namespace: string, name: string): KObject | undefined {
    return this.store.get(this.gr(rt), namespace, name);
  }

  /** Value at a dotted path of a stored object (convenience for controllers). */
  static at(o: KObject, path: string): Json {
    return getPath(o, path);
  }
}
