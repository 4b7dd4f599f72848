/**
 * Thin typed helpers over `@kubernetes/client-node` 1.4, shared by the operator and the worker: load a
 * KubeConfig, read/list/create/patch/replace/delete any resource (built-in or custom) by its
 * group/version/plural, write status through the `/status` subresource with a JSON merge patch,
 * create-or-patch children, and classify API errors by their HTTP code.
 *
 * Requests go through client-node's own `Configuration` (auth, TLS, agent) built by
 * `KubeConfig.makeApiClient`, so every call sets its own `Content-Type`: client-node's generated
 * `*Api.patch*()` default to `application/json-patch+json` and `KubernetesObjectApi.patch()` to
 * strategic merge patch (415 on custom resources); here patches are always
 * `application/merge-patch+json` unless a caller asks otherwise.
 *
 * Only types are imported from client-node here: a caller that passes a {@link KubeTransport}
 * (the worker's light client, kube/light-client.ts) never loads it (it costs ~70 MiB of RSS).
 * `loadKubeConfig` lives in kube/kubeconfig.ts for that reason.
 */
import type { Configuration, HttpMethod, KubeConfig } from "@kubernetes/client-node";

/** A Kubernetes object as the operator handles it: JSON with the standard metadata. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

/** The subset of `metav1.ObjectMeta` the runtime reads and writes. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

/** `metav1.OwnerReference`. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/**
 * A resource type, as the API server's URL layout needs it. `group` is `""` for the core group
 * (`/api/v1`), otherwise `/apis/{group}/{version}`.
 */
export interface ResourceType {
  /** API group, `""` for core. */
  group: string;
  /** API version, e.g. `v1`. */
  version: string;
  /** Lower-case plural resource name, e.g. `deployments`. */
  plural: string;
  /** Kind, e.g. `Deployment`. */
  kind: string;
  /** True for namespaced resources. */
  namespaced: boolean;
}

/** Identifies one object: the resource's group/version/plural plus namespace (if namespaced) and name. */
export interface ObjectRef {
  group: string;
  version: string;
  plural: string;
  /** Omit for cluster-scoped resources. */
  namespace?: string;
  name: string;
}

/** Built-in resource types the operator touches. */
export const BUILTIN_TYPES = {
  Pod: { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true },
  Event: { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true },
  ConfigMap: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  Secret: { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true },
  ServiceAccount: { group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true },
  Namespace: { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false },
  Deployment: { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true },
  Lease: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  Role: { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true },
  RoleBinding: {
    group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", namespaced: true,
  },
  CustomResourceDefinition: {
    group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions",
    kind: "CustomResourceDefinition", namespaced: false,
  },
} as const satisfies Record<string, ResourceType>;

/** The `apiVersion` string of a type: `v1` for core, `group/version` otherwise. */
export function apiVersionOf(t: Pick<ResourceType, "group" | "version">): string {
  return t.group === "" ? t.version : `${t.group}/${t.version}`;
}

/**
 * URL path of a collection or object.
 *
 * @param t group, version and plural
 * @param namespace namespace, or undefined for cluster-scoped resources and all-namespace lists
 * @param name object name, or undefined for the collection
 * @param subresource e.g. `status`
 * @returns e.g. `/apis/celeriac.io/v1alpha1/namespaces/default/tasks/x/status`
 */
export function resourcePath(
  t: Pick<ResourceType, "group" | "version" | "plural">,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  let p = t.group === "" ? `/api/${t.version}` : `/apis/${t.group}/${t.version}`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${t.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

/** `namespace/name` (or `name` when cluster-scoped) for messages. */
function display(ref: { namespace?: string; name?: string }): string {
  return ref.namespace ? `${ref.namespace}/${ref.name ?? ""}` : (ref.name ?? "");
}

/** The `metav1.Status` body of an API error, when the server sent one. */
export interface ApiStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: Array<{ reason?: string; message?: string; field?: string }> };
}

/** An API server error response: HTTP `code`, Kubernetes `reason` and the `Status` body. */
export class KubeApiError extends Error {
  /** HTTP status code (404, 409, 410, 422, …). */
  readonly code: number;
  /** `Status.reason` (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`, `Invalid`, …) if present. */
  readonly reason: string | undefined;
  /** The parsed `Status` body, or the raw text when it was not JSON. */
  readonly body: ApiStatus | string | undefined;

  /**
   * @param code HTTP status
   * @param body parsed Status or raw text
   */
  constructor(code: number, body: ApiStatus | string | undefined) {
    const msg = typeof body === "object" && body?.message ? body.message : `HTTP ${code}`;
    super(msg);
    this.name = "KubeApiError";
    this.code = code;
    this.reason = typeof body === "object" ? body?.reason : undefined;
    this.body = body;
  }
}

/**
 * The HTTP status code carried by an error or anything in its `cause` chain: `KubeApiError.code`,
 * client-node's `ApiException.code`, a watch error's `statusCode`, or a `Status` body's `code`.
 *
 * @returns the code, or undefined for transport errors
 */
export function apiErrorCode(err: unknown): number | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 10; depth++) {
    if (typeof e === "object") {
      const o = e as { code?: unknown; statusCode?: unknown; body?: unknown; cause?: unknown };
      if (typeof o.code === "number" && o.code >= 100 && o.code < 600) return o.code;
      if (typeof o.statusCode === "number") return o.statusCode;
      if (o.body && typeof o.body === "object") {
        const c = (o.body as { code?: unknown }).code;
        if (typeof c === "number") return c;
      }
      e = o.cause;
    } else break;
  }
  return undefined;
}

/** True when the error (or its cause chain) is a 404 NotFound. */
export function isNotFound(err: unknown): boolean {
  return apiErrorCode(err) === 404;
}

/** True when the error is a 409 that is a Conflict (optimistic-concurrency failure), not AlreadyExists. */
export function isConflict(err: unknown): boolean {
  return apiErrorCode(err) === 409 && apiErrorReason(err) !== "AlreadyExists";
}

/** True when the error is a 409 AlreadyExists (create of an existing object). */
export function isAlreadyExists(err: unknown): boolean {
  return apiErrorCode(err) === 409 && apiErrorReason(err) === "AlreadyExists";
}

/** True when the error is a 410 Gone / Expired (watch resource version too old). */
export function isGone(err: unknown): boolean {
  return apiErrorCode(err) === 410;
}

/** The `Status.reason` of an API error in the cause chain, if any. */
export function apiErrorReason(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === "object" && depth < 10; depth++) {
    const o = e as { reason?: unknown; body?: unknown; cause?: unknown };
    if (typeof o.reason === "string") return o.reason;
    if (o.body && typeof o.body === "object") {
      const r = (o.body as { reason?: unknown }).reason;
      if (typeof r === "string") return r;
    }
    e = o.cause;
  }
  return undefined;
}

class RawApi {
  constructor(readonly configuration: Configuration) {}
}

const rawApis = new WeakMap<KubeConfig, RawApi>();

/** Sends one request to an API server and parses the JSON response, as {@link kubeRequest} does. */
export interface KubeTransport {
  /**
   * @returns the parsed body
   * @throws KubeApiError for non-2xx responses; transport errors as is
   */
  request<T = unknown>(opts: RequestOptions): Promise<T>;
}

/** Cluster access: a client-node KubeConfig (operator, CLI, tests) or a light {@link KubeTransport} (worker). */
export type KubeClient = KubeConfig | KubeTransport;

function isTransport(kc: KubeClient): kc is KubeTransport {
  return typeof (kc as Partial<KubeTransport>).request === "function";
}

/** One HTTP request to the API server. */
export interface RequestOptions {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Path from {@link resourcePath}. */
  path: string;
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  /** JSON body. */
  body?: unknown;
  /** Request Content-Type for a body. Default `application/json`. */
  contentType?: string;
  /** Aborts the request. */
  signal?: AbortSignal;
  /** Request timeout in ms. Default 30 000. */
  timeoutMs?: number;
}

/**
 * Sends one request through client-node's transport (auth, TLS, agent from the KubeConfig) and
 * parses the JSON response.
 *
 * @returns the parsed body
 * @throws KubeApiError for non-2xx responses; transport errors (connection refused, abort) as is
 */
export async function kubeRequest<T = unknown>(kc: KubeClient, opts: RequestOptions): Promise<T> {
  if (isTransport(kc)) return kc.request<T>(opts);
  let api = rawApis.get(kc);
  if (!api) {
    api = kc.makeApiClient(RawApi);
    rawApis.set(kc, api);
  }
  const cfg = api.configuration;
  const ctx = cfg.baseServer.makeRequestContext(opts.path, opts.method as HttpMethod);
  for (const [k, v] of Object.entries(opts.query ?? {})) {
    if (v !== undefined) ctx.setQueryParam(k, String(v));
  }
  ctx.setHeaderParam("Accept", "application/json");
  if (opts.body !== undefined) {
    ctx.setHeaderParam("Content-Type", opts.contentType ?? "application/json");
    ctx.setBody(JSON.stringify(opts.body));
  }
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  ctx.setSignal(opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout);
  await cfg.authMethods.default?.applySecurityAuthentication(ctx);
  const resp = await cfg.httpApi.send(ctx).toPromise();
  return apiResponse<T>(resp.httpStatusCode, await resp.body.text());
}

/**
 * An API server response as a request helper returns it: the parsed JSON body (the raw text when
 * it is not JSON, undefined when empty), for every transport.
 * @param code HTTP status
 * @throws KubeApiError for a non-2xx `code`, with the parsed `Status` body
 */
export function apiResponse<T = unknown>(code: number, text: string): T {
  let parsed: unknown = undefined;
  if (text.length > 0) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (code < 200 || code > 299) throw new KubeApiError(code, parsed as ApiStatus | string | undefined);
  return parsed as T;
}

/** A list response: items plus the list's resourceVersion (for a following watch). */
export interface ObjectList<T> {
  items: T[];
  resourceVersion: string;
}

/** Options of {@link listObjects}. */
export interface ListOptions {
  /** Namespace to list in; undefined lists across all namespaces (or a cluster-scoped type). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  signal?: AbortSignal;
  /** Objects per page (`limit`; default 500, as kubectl and client-go's pager). */
  pageSize?: number;
  /**
   * Applied to each item as its page arrives (an informer strips fields it never reads, so a large
   * list never holds them all at once).
   */
  transform?: (item: KubeObject) => KubeObject;
}

/**
 * Lists objects of a type page by page (`limit` = `pageSize`, following `continue` tokens), as
 * client-go's pager does: every page is of the first page's resourceVersion. When a `continue`
 * token has expired (410 — the server compacted past that resourceVersion), it lists again from the
 * start, once, without paging (client-go's `FullListIfExpired`).
 *
 * @returns items (with `apiVersion`/`kind` filled in, as built-in lists leave them out) and the
 *   list resourceVersion
 * @throws Error `list <plural> <namespace>` with the API error as `cause`
 */
export async function listObjects<T extends KubeObject = KubeObject>(kc: KubeClient,
  type: ResourceType,
  opts: ListOptions = {},
): Promise<ObjectList<T>> {
  let items: T[] = [];
  let cont: string | undefined;
  let rv = "";
  let limit: number | undefined = opts.pageSize ?? 500;
  try {
    for (;;) {
      let page: { metadata?: { resourceVersion?: string; continue?: string }; items?: T[] };
      try {
        page = await kubeRequest<typeof page>(kc, {
          method: "GET",
          path: resourcePath(type, type.namespaced ? opts.namespace : undefined),
          query: { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit, continue: cont },
          signal: opts.signal,
        });
      } catch (err) {
        if (cont === undefined || !isGone(err)) throw err;
        // the token expired: one consistent list again, whole
        items = [];
        cont = undefined;
        limit = undefined;
        continue;
      }
      for (const it of page.items ?? []) {
        it.apiVersion ??= apiVersionOf(type);
        it.kind ??= type.kind;
        items.push((opts.transform ? opts.transform(it) : it) as T);
      }
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue || undefined;
      if (!cont) break;
    }
  } catch (cause) {
    throw new Error(`list ${type.plural} ${opts.namespace ?? "(all namespaces)"}`, { cause });
  }
  return { items, resourceVersion: rv };
}

/**
 * Reads one object.
 *
 * @throws Error `get <plural> <ns>/<name>` with the API error as `cause` (use {@link isNotFound})
 */
export async function getObject<T extends KubeObject = KubeObject>(kc: KubeClient, ref: ObjectRef): Promise<T> {
  try {
    return await kubeRequest<T>(kc, { method: "GET", path: resourcePath(ref, ref.namespace, ref.name) });
  } catch (cause) {
    throw new Error(`get ${ref.plural} ${display(ref)}`, { cause });
  }
}

/**
 * Creates an object of `type` (namespace from `obj.metadata.namespace`).
 *
 * @param fieldManager recorded in managedFields
 * @returns the stored object
 * @throws Error `create <plural> <ns>/<name>` with the API error as `cause` ({@link isAlreadyExists})
 */
export async function createObject<T extends KubeObject = KubeObject>(kc: KubeClient,
  type: ResourceType,
  obj: T,
  fieldManager: string,
): Promise<T> {
  const ns = type.namespaced ? obj.metadata?.namespace : undefined;
  try {
    return await kubeRequest<T>(kc, {
      method: "POST",
      path: resourcePath(type, ns),
      query: { fieldManager },
      body: { apiVersion: apiVersionOf(type), kind: type.kind, ...obj },
    });
  } catch (cause) {
    throw new Error(`create ${type.plural} ${display({ namespace: ns, name: obj.metadata?.name })}`, { cause });
  }
}

/**
 * Replaces an object (PUT). Carries `metadata.resourceVersion` for optimistic concurrency.
 *
 * @throws Error `replace <plural> <ns>/<name>` with the API error as `cause` ({@link isConflict})
 */
export async function replaceObject<T extends KubeObject = KubeObject>(kc: KubeClient,
  ref: ObjectRef,
  obj: T,
  fieldManager: string,
): Promise<T> {
  try {
    return await kubeRequest<T>(kc, {
      method: "PUT",
      path: resourcePath(ref, ref.namespace, ref.name),
      query: { fieldManager },
      body: obj,
    });
  } catch (cause) {
    throw new Error(`replace ${ref.plural} ${display(ref)}`, { cause });
  }
}

/**
 * JSON merge patch (RFC 7386, `application/merge-patch+json`) of the main resource: `null` deletes
 * a key, arrays are replaced whole. A patch holding `metadata.resourceVersion` is conditional.
 * The server ignores `.status` here when the type has a status subresource.
 *
 * @returns the patched object
 * @throws Error `patch <plural> <ns>/<name>` with the API error as `cause`
 */
export async function mergePatch<T extends KubeObject = KubeObject>(kc: KubeClient,
  ref: ObjectRef,
  patch: unknown,
  fieldManager: string,
): Promise<T> {
  try {
    return await kubeRequest<T>(kc, {
      method: "PATCH",
      path: resourcePath(ref, ref.namespace, ref.name),
      query: { fieldManager },
      body: patch,
      contentType: "application/merge-patch+json",
    });
  } catch (cause) {
    throw new Error(`patch ${ref.plural} ${display(ref)}`, { cause });
  }
}

/**
 * Writes status through the `/status` subresource with a JSON merge patch `{"status": status}`.
 * Does not touch spec or metadata and does not bump `metadata.generation`. Keys set to `null` are
 * removed; arrays (e.g. `conditions`) are replaced whole, so pass the full list.
 *
 * @param status the (partial) status object to merge
 * @param fieldManager e.g. `celeriac-operator` or `celeriac-worker`
 * @param resourceVersion when given, an optimistic lock: the write fails with 409 Conflict
 *   ({@link isConflict} walks the cause chain) if the object changed since that version was read
 * @returns the object after the write
 * @throws Error `patch status <plural> <ns>/<name>` with the API error as `cause`
 */
export async function patchStatus<T extends KubeObject = KubeObject>(kc: KubeClient,
  ref: ObjectRef,
  status: Record<string, unknown>,
  fieldManager: string,
  resourceVersion?: string,
): Promise<T> {
  try {
    return await kubeRequest<T>(kc, {
      method: "PATCH",
      path: resourcePath(ref, ref.namespace, ref.name, "status"),
      query: { fieldManager },
      body: resourceVersion ? { metadata: { resourceVersion }, status } : { status },
      contentType: "application/merge-patch+json",
    });
  } catch (cause) {
    throw new Error(`patch status ${ref.plural} ${display(ref)}`, { cause });
  }
}

/**
 * Adds or removes one finalizer with a merge patch of the whole `metadata.finalizers` list, locked on
 * the object's resourceVersion (a 409 means another writer changed the list: reconcile again). Does
 * nothing when the finalizer is already as wanted.
 * @param obj the object as read (its `metadata.finalizers` and `metadata.resourceVersion` are used)
 * @param present true to add, false to remove
 * @returns true when a patch was sent
 * @throws Error `patch <plural> <ns>/<name>` with the API error as `cause` (409 on a stale read)
 */
export async function setFinalizer(kc: KubeClient, ref: ObjectRef, obj: KubeObject, finalizer: string, present: boolean, fieldManager: string): Promise<boolean> {
  const current = obj.metadata?.finalizers ?? [];
  if (current.includes(finalizer) === present) return false;
  const finalizers = present ? [...current, finalizer] : current.filter((f) => f !== finalizer);
  await mergePatch(kc, ref, { metadata: { finalizers: finalizers.length ? finalizers : null, resourceVersion: obj.metadata?.resourceVersion } }, fieldManager);
  return true;
}

/** The `autoscaling/v1` Scale of a scalable resource (Deployment, StatefulSet, …) as the `/scale` subresource returns it. */
export interface Scale extends KubeObject {
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

/**
 * Sets `spec.replicas` through the `/scale` subresource with the JSON merge patch
 * `{"spec": {"replicas": replicas}}` — the write `kubectl scale` and the HPA make. Changes nothing
 * else of the object, needs only `patch` on `<plural>/scale`, and is not locked on resourceVersion
 * (the last writer wins, as with the HPA).
 *
 * @param ref the scaled object, e.g. `{...BUILTIN_TYPES.Deployment, namespace, name}`
 * @param replicas the new replica count (a non-negative integer)
 * @param fieldManager e.g. `celeriac-operator`
 * @returns the Scale after the write (`spec.replicas` is the new count)
 * @throws Error `patch scale <plural> <ns>/<name>` with the API error as `cause` (404 when the
 *   object is gone: {@link isNotFound})
 */
export async function patchScale(kc: KubeClient, ref: ObjectRef, replicas: number, fieldManager: string): Promise<Scale> {
  try {
    return await kubeRequest<Scale>(kc, {
      method: "PATCH",
      path: resourcePath(ref, ref.namespace, ref.name, "scale"),
      query: { fieldManager },
      body: { spec: { replicas } },
      contentType: "application/merge-patch+json",
    });
  } catch (cause) {
    throw new Error(`patch scale ${ref.plural} ${display(ref)}`, { cause });
  }
}

/** Options of {@link deleteObject}. */
export interface DeleteOptions {
  /** `Background` (default), `Foreground` or `Orphan`. */
  propagationPolicy?: "Background" | "Foreground" | "Orphan";
}

/**
 * Deletes an object. A missing object is not an error.
 *
 * @returns true when the server accepted a delete, false when the object was already gone
 * @throws Error `delete <plural> <ns>/<name>` with the API error as `cause`
 */
export async function deleteObject(kc: KubeClient, ref: ObjectRef, opts: DeleteOptions = {}): Promise<boolean> {
  try {
    await kubeRequest(kc, {
      method: "DELETE",
      path: resourcePath(ref, ref.namespace, ref.name),
      body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: opts.propagationPolicy ?? "Background" },
    });
    return true;
  } catch (cause) {
    if (isNotFound(cause)) return false;
    throw new Error(`delete ${ref.plural} ${display(ref)}`, { cause });
  }
}

/** What {@link applyChild} did. */
export type ApplyAction = "created" | "patched" | "unchanged";

/**
 * True when every field of `desired` is present with an equal value in `live` (objects compared
 * key by key, arrays and scalars by deep equality). Used to skip no-op patches.
 */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (desired === null || typeof desired !== "object") return Object.is(desired, live) || desired === live;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, live[i]));
  }
  if (live === null || typeof live !== "object" || Array.isArray(live)) return false;
  const l = live as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) => (v === undefined ? true : isSubset(v, l[k])));
}

/**
 * What {@link applyChild} sends for `desired`: the object without `status` and server-owned
 * metadata, with the type's apiVersion and kind. Pure.
 */
export function childBody(type: ResourceType, desired: object): KubeObject {
  const { status: _status, ...rest } = desired as KubeObject & { status?: unknown };
  const meta: Record<string, unknown> = { ...(rest.metadata ?? {}) };
  for (const k of ["resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "deletionTimestamp"]) delete meta[k];
  return { ...rest, apiVersion: apiVersionOf(type), kind: type.kind, metadata: meta } as KubeObject;
}

/**
 * Create-or-patch of a child object (Deployment, ServiceAccount, Role, …): creates it when absent,
 * otherwise merge-patches the desired fields (everything but `status` and server-owned metadata)
 * when they differ from the live object, and does nothing when they already match. Fields the
 * desired object leaves out are left alone (server defaults survive).
 *
 * @param desired full desired object with `metadata.name` (and namespace when namespaced); give it
 *   a controller ownerReference so garbage collection removes it with its owner
 * @param opts.live what the caller already knows of the live object, to save the read: `null` =
 *   known absent (create first; read only on AlreadyExists); an object (e.g. from an informer
 *   cache) = nothing is sent when it already has every desired field, else the live object is read
 *   as without it; undefined = read it first
 * @returns the live object after the call and what was done
 * @throws Error `apply <plural> <ns>/<name>` with the API error as `cause`
 */
export async function applyChild<T extends { metadata?: { name?: string; namespace?: string } } = KubeObject>(kc: KubeClient,
  type: ResourceType,
  desired: T,
  fieldManager: string,
  opts: { live?: T | null } = {},
): Promise<{ object: T; action: ApplyAction }> {
  const name = desired.metadata?.name;
  if (!name) throw new Error(`apply ${type.plural}: metadata.name is required`);
  const namespace = type.namespaced ? desired.metadata?.namespace : undefined;
  const ref: ObjectRef = { group: type.group, version: type.version, plural: type.plural, namespace, name };
  const body = childBody(type, desired);
  if (opts.live && isSubset(body, opts.live)) return { object: opts.live, action: "unchanged" };
  try {
    let live: T | undefined;
    if (opts.live !== null) {
      try {
        live = await kubeRequest<T>(kc, { method: "GET", path: resourcePath(ref, namespace, name) });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (!live) {
      try {
        const created = await kubeRequest<T>(kc, {
          method: "POST",
          path: resourcePath(type, namespace),
          query: { fieldManager },
          body,
        });
        return { object: created, action: "created" };
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        live = await kubeRequest<T>(kc, { method: "GET", path: resourcePath(ref, namespace, name) });
      }
    }
    if (isSubset(body, live)) return { object: live, action: "unchanged" };
    const patched = await kubeRequest<T>(kc, {
      method: "PATCH",
      path: resourcePath(ref, namespace, name),
      query: { fieldManager },
      body,
      contentType: "application/merge-patch+json",
    });
    return { object: patched, action: "patched" };
  } catch (cause) {
    throw new Error(`apply ${type.plural} ${display(ref)}`, { cause });
  }
}

/**
 * A controller ownerReference to `owner` (for children left to garbage collection).
 *
 * @throws Error when the owner has no uid/name (not yet created)
 */
export function controllerRef(owner: KubeObject): OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid) throw new Error("build owner reference: owner needs apiVersion, kind, name and uid");
  return { apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true };
}

/** Options of {@link serverSideApply} and {@link applyStatus}. */
export interface ApplyOptions {
  /**
   * Take over fields another manager owns with a different value instead of failing with a 409
   * field-manager conflict (`?force=true`, controller-runtime's `client.ForceOwnership`). Default false.
   */
  force?: boolean;
  /** Apply to a subresource, e.g. `status`. */
  subresource?: string;
}

/**
 * Server-side apply (`PATCH` with `application/apply-patch+yaml`): sends `obj` as `fieldManager`'s
 * whole intent for the object. The server merges it into the live object — lists marked
 * `x-kubernetes-list-type: map` (e.g. `conditions`, keyed by `type`) merge item by item — records
 * the fields in `metadata.managedFields`, and removes fields this manager applied before but
 * leaves out now (unless another manager also owns them). So each writer sends only the fields it
 * owns, and never needs to read and re-send another writer's.
 *
 * `apiVersion` and `kind` are filled in from `type`. When `obj.metadata.resourceVersion` is set the
 * apply is also an optimistic lock: 409 Conflict if the object changed since that version.
 *
 * @param obj the applied configuration: `metadata.name` (and `namespace` when namespaced) plus the
 *   owned fields
 * @param fieldManager e.g. FIELD_MANAGERS.operator; one per writer
 * @returns the object after the apply
 * @throws Error `apply <plural> <ns>/<name>` with the API error as `cause`: {@link isConflict} for a
 *   stale resourceVersion or a field owned by another manager (without `force`), {@link isNotFound}
 *   when applying to a subresource of a missing object
 */
export async function serverSideApply<T extends KubeObject = KubeObject>(kc: KubeClient,
  type: ResourceType,
  obj: KubeObject,
  fieldManager: string,
  opts: ApplyOptions = {},
): Promise<T> {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`apply ${type.plural}: metadata.name is required`);
  const namespace = type.namespaced ? obj.metadata?.namespace : undefined;
  const what = opts.subresource ? `${opts.subresource} ` : "";
  try {
    return await kubeRequest<T>(kc, {
      method: "PATCH",
      path: resourcePath(type, namespace, name, opts.subresource),
      query: { fieldManager, force: opts.force ? true : undefined },
      body: { ...obj, apiVersion: apiVersionOf(type), kind: type.kind },
      contentType: "application/apply-patch+yaml",
    });
  } catch (cause) {
    throw new Error(`apply ${what}${type.plural} ${display({ namespace, name })}`, { cause });
  }
}

/**
 * Writes the status fields `fieldManager` owns with server-side apply through the `/status`
 * subresource: `obj.status` is this writer's whole status intent (a condition list holds only this
 * writer's conditions; the others' stay). Spec and metadata are not touched. See {@link serverSideApply}.
 *
 * @example
 *   // the operator's Accepted condition and phase; the worker's conditions are left alone
 *   await applyStatus(kc, CELERIAC_TYPES.Task,
 *     { metadata: { name, namespace, resourceVersion }, status: { phase: "Queued", conditions: [accepted] } },
 *     FIELD_MANAGERS.operator, { force: true });
 * @param obj `metadata.name`, `metadata.namespace`, optionally `metadata.resourceVersion` (a lock), and `status`
 * @param fieldManager e.g. FIELD_MANAGERS.operator or FIELD_MANAGERS.worker
 * @param opts `force` to take over fields another manager owns
 * @returns the object after the write
 * @throws Error `apply status <plural> <ns>/<name>` with the API error as `cause` ({@link isConflict}, {@link isNotFound})
 */
export function applyStatus<T extends KubeObject = KubeObject>(kc: KubeClient,
  type: ResourceType,
  obj: { metadata: { name: string; namespace?: string; resourceVersion?: string }; status: Record<string, unknown> },
  fieldManager: string,
  opts: Omit<ApplyOptions, "subresource"> = {},
): Promise<T> {
  const { name, namespace, resourceVersion } = obj.metadata;
  return serverSideApply<T>(kc, type, { metadata: { name, ...(namespace ? { namespace } : {}), ...(resourceVersion ? { resourceVersion } : {}) }, status: obj.status }, fieldManager, { ...opts, subresource: "status" });
}
