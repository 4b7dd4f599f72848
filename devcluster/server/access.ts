/**
 * Authentication and authorization reviews of the in-memory API server, as kube-apiserver serves them:
 *
 * - `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token` (TokenRequest, what
 *   `kubectl create token` calls): a signed JWT bound to the ServiceAccount's uid, with the claims
 *   of a projected token (iss, sub, aud, exp, iat, nbf, jti, `kubernetes.io`). `expirationSeconds`
 *   defaults to 3600 and may not be under 600; `audiences` default to {@link API_AUDIENCE}.
 * - `POST /apis/authentication.k8s.io/v1/tokenreviews`: such a token is authenticated while it has
 *   not expired, its signature holds, its audiences meet the review's (the API audience when none
 *   is given) and its ServiceAccount still exists with the same uid; the user is
 *   `system:serviceaccount:<ns>:<name>` in the groups `system:serviceaccounts`,
 *   `system:serviceaccounts:<ns>` and `system:authenticated`. The kubeconfig's token
 *   ({@link ADMIN_TOKEN}) is the user `celeriac-dev` in `system:masters`. Anything else: not
 *   authenticated, with an `error`.
 * - `POST /apis/authentication.k8s.io/v1/selfsubjectreviews` (`kubectl auth whoami`): the caller.
 * - `POST /apis/authorization.k8s.io/v1/subjectaccessreviews` (and `localsubjectaccessreviews` in a
 *   namespace, `selfsubjectaccessreviews` for the caller, what `kubectl auth can-i` calls): RBAC over
 *   the stored Roles, RoleBindings, ClusterRoles and ClusterRoleBindings (rbac.ts).
 *
 * On these paths only, the caller is authenticated (a bad bearer token is 401; a request without
 * credentials is {@link INSECURE_PORT_USER}, in `system:masters`) and authorized as kube-apiserver would: `create` on `tokenreviews`,
 * `subjectaccessreviews`, `localsubjectaccessreviews` or `serviceaccounts/token`; any authenticated
 * user may create a SelfSubjectAccessReview (the bootstrap role `system:basic-user`).
 * Impersonation headers (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*`, kubectl's `--as`) are
 * honoured there when the caller may `impersonate` them. Every other path of the server is still
 * served without authentication, as before. Tokens are signed with a key made at start: they do
 * not outlive the server.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Core } from "./core.js";
import { ApiError, invalid, notFound } from "./errors.js";
import { authorize, PRIVILEGED_GROUP, serviceAccountUsername, type RbacObjects, type RequestAttributes, type UserInfo } from "./rbac.js";
import type { Json, KObject } from "./types.js";
import { isObject } from "./util.js";

/** The audience of the API server (kube-apiserver's default `--api-audiences`). */
export const API_AUDIENCE = "https://kubernetes.default.svc.cluster.local";
/** The bearer token of the kubeconfig the server writes: user `celeriac-dev` in `system:masters`. */
export const ADMIN_TOKEN = "celeriac-dev-token";
/** The user of {@link ADMIN_TOKEN}. */
export const ADMIN_USER: UserInfo = { username: "celeriac-dev", groups: [PRIVILEGED_GROUP, "system:authenticated"] };
/**
 * The caller of a request without credentials: kube-apiserver's former insecure port's user, in
 * `system:masters` (kubectl and client-go send no bearer token over plain http, and the server is http).
 */
export const INSECURE_PORT_USER: UserInfo = { username: "system:unprivileged-port", groups: [PRIVILEGED_GROUP, "system:authenticated"] };

const b64 = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** The claims of a ServiceAccount token. */
interface Claims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  "kubernetes.io": { namespace: string; serviceaccount: { name: string; uid: string } };
}

/** Issues and checks ServiceAccount tokens, serves the review endpoints. */
export class Access {
  readonly #key = randomBytes(32);

  constructor(private readonly core: Core) {}

  #rt(group: string, resource: string) {
    const rt = this.core.reg.lookup(group, "v1", resource);
    if (!rt) throw new Error(`resource ${resource}.${group} is not registered`);
    return rt;
  }

  /** The RBAC objects stored now. */
  rbac(): RbacObjects {
    const all = (r: string) => this.core.list(this.#rt("rbac.authorization.k8s.io", r), undefined, null, null).items as Json[];
    return { roles: all("roles"), roleBindings: all("rolebindings"), clusterRoles: all("clusterroles"), clusterRoleBindings: all("clusterrolebindings") };
  }

  #sign(claims: Claims): string {
    const head = b64(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const body = b64(JSON.stringify(claims));
    return `${head}.${body}.${b64(createHmac("sha256", this.#key).update(`${head}.${body}`).digest())}`;
  }

  /**
   * The user a bearer token stands for, or why it is not authenticated.
   * @param audiences the audiences the token must meet (default: the API's)
   */
  authenticate(token: string, audiences: string[] = [API_AUDIENCE], now = Date.now()): { user: UserInfo; audiences: string[] } | { error: string } {
    if (token === ADMIN_TOKEN) return audiences.includes(API_AUDIENCE) ? { user: ADMIN_USER, audiences: [API_AUDIENCE] } : { error: "[invalid bearer token, token audiences do not match]" };
    const parts = token.split(".");
    const fail = (why: string) => ({ error: `[invalid bearer token, ${why}]` });
    if (parts.length !== 3) return fail("token lookup failed");
    const sig = createHmac("sha256", this.#key).update(`${parts[0]}.${parts[1]}`).digest();
    const given = Buffer.from(parts[2]!, "base64url");
    if (given.length !== sig.length || !timingSafeEqual(given, sig)) return fail("square/go-jose: error in cryptographic primitive");
    let c: Claims;
    try {
      c = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as Claims;
    } catch {
      return fail("token lookup failed");
    }
    const s = Math.floor(now / 1000);
    if (c.exp <= s) return fail("service account token has expired");
    if (c.nbf > s + 60) return fail("service account token is not valid yet");
    const aud = c.aud.filter((a) => audiences.includes(a));
    if (aud.length === 0) return fail("token audiences " + JSON.stringify(c.aud) + " is invalid for the target audiences " + JSON.stringify(audiences));
    const k = c["kubernetes.io"];
    const sa = this.core.raw(this.#rt("", "serviceaccounts"), k.namespace, k.serviceaccount.name);
    if (!sa || sa.metadata?.deletionTimestamp) return fail(`service account ${k.namespace}/${k.serviceaccount.name} has been deleted`);
    if (sa.metadata.uid !== k.serviceaccount.uid) return fail(`service account UID (${k.serviceaccount.uid}) does not match claim (${String(sa.metadata.uid)})`);
    return {
      user: {
        username: serviceAccountUsername(k.namespace, k.serviceaccount.name),
        uid: k.serviceaccount.uid,
        groups: ["system:serviceaccounts", `system:serviceaccounts:${k.namespace}`, "system:authenticated"],
        extra: { "authentication.kubernetes.io/credential-id": [`JTI=${c.jti}`] },
      },
      audiences: aud,
    };
  }

  /**
   * The caller of a request: its bearer token's user (none: `system:anonymous`), then the user it
   * impersonates when it may.
   * @throws ApiError 401 for a token that does not authenticate; 403 for impersonation not allowed
   */
  caller(req: IncomingMessage): UserInfo {
    const m = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ""));
    // no credentials: the user of kube-apiserver's former insecure port (kubectl sends no token over plain http)
    let user = INSECURE_PORT_USER;
    if (m) {
      const r = this.authenticate(m[1]!.trim());
      if ("error" in r) throw new ApiError(401, "Unauthorized", "Unauthorized");
      user = r.user;
    }
    const as = req.headers["impersonate-user"];
    if (typeof as !== "string" || as === "") return user;
    const rbac = this.rbac();
    const check = (a: RequestAttributes, what: string) => {
      if (!authorize(rbac, user, a).allowed) throw forbidden(user, a, `${what} is forbidden`);
    };
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(as);
    if (sa) check({ kind: "resource", verb: "impersonate", group: "", resource: "serviceaccounts", name: sa[2]!, namespace: sa[1]! }, `serviceaccounts "${sa[2]}"`);
    else check({ kind: "resource", verb: "impersonate", group: "", resource: "users", name: as }, `users "${as}"`);
    const raw = req.headersDistinct["impersonate-group"] ?? [];
    const groups = raw.flatMap((g) => g.split(",")).map((g) => g.trim()).filter((g) => g);
    for (const g of groups) check({ kind: "resource", verb: "impersonate", group: "", resource: "groups", name: g }, `groups "${g}"`);
    const out = sa && groups.length === 0 ? ["system:serviceaccounts", `system:serviceaccounts:${sa[1]}`] : [...groups];
    if (as === "system:anonymous") out.push("system:unauthenticated");
    else if (!out.includes("system:authenticated")) out.push("system:authenticated");
    const uid = req.headers["impersonate-uid"];
    if (typeof uid === "string" && uid) check({ kind: "resource", verb: "impersonate", group: "authentication.k8s.io", resource: "uids", name: uid }, `uids "${uid}"`);
    const extra: Record<string, string[]> = {};
    for (const [h, v] of Object.entries(req.headersDistinct)) {
      if (!h.startsWith("impersonate-extra-") || !v) continue;
      const key = decodeURIComponent(h.slice("impersonate-extra-".length));
      for (const x of v) check({ kind: "resource", verb: "impersonate", group: "authentication.k8s.io", resource: "userextras", subresource: key, name: x }, `userextras.authentication.k8s.io "${x}"`);
      extra[key] = v;
    }
    return { username: as, groups: out, ...(typeof uid === "string" && uid ? { uid } : {}), ...(Object.keys(extra).length ? { extra } : {}) };
  }

  /** @throws ApiError 403 unless `user` may `create` the resource (cluster scope unless `namespace`). */
  #mayCreate(user: UserInfo, group: string, resource: string, subresource?: string, name?: string, namespace?: string): void {
    const a: RequestAttributes = { kind: "resource", verb: "create", group, resource, ...(subresource ? { subresource } : {}), ...(name ? { name } : {}), ...(namespace ? { namespace } : {}) };
    if (!authorize(this.rbac(), user, a).allowed) throw forbidden(user, a);
  }

  /**
   * `POST .../serviceaccounts/{name}/token`: a TokenRequest answered with the token.
   * @throws ApiError 403 (caller), 404 (no such ServiceAccount), 422 (expirationSeconds, audiences)
   */
  tokenRequest(caller: UserInfo, namespace: string, name: string, body: KObject, now = Date.now()): KObject {
    this.#mayCreate(caller, "", "serviceaccounts", "token", name, namespace);
    const sart = this.#rt("", "serviceaccounts");
    const sa = this.core.raw(sart, namespace, name);
    if (!sa) throw notFound(sart, name);
    const spec: Json = isObject(body?.spec) ? body.spec : {};
    const exp = spec.expirationSeconds ?? 3600;
    if (!Number.isInteger(exp) || exp < 600) throw invalid("authentication.k8s.io", "TokenRequest", name, [{ reason: "FieldValueInvalid", field: "spec.expirationSeconds", message: `Invalid value: ${JSON.stringify(exp)}: may not specify a duration less than 10 minutes` }]);
    if (exp > 2 ** 32) throw invalid("authentication.k8s.io", "TokenRequest", name, [{ reason: "FieldValueInvalid", field: "spec.expirationSeconds", message: `Invalid value: ${exp}: may not specify a duration larger than 2^32 seconds` }]);
    const audiences: string[] = Array.isArray(spec.audiences) && spec.audiences.length ? spec.audiences.map(String) : [API_AUDIENCE];
    const iat = Math.floor(now / 1000);
    const token = this.#sign({
      iss: API_AUDIENCE, sub: serviceAccountUsername(namespace, name), aud: audiences, exp: iat + exp, iat, nbf: iat, jti: randomUUID(),
      "kubernetes.io": { namespace, serviceaccount: { name, uid: String(sa.metadata.uid) } },
    });
    return {
      kind: "TokenRequest", apiVersion: "authentication.k8s.io/v1",
      metadata: { name, namespace, creationTimestamp: new Date(now).toISOString().replace(/\.\d+Z$/, "Z") },
      spec: { audiences, expirationSeconds: exp, boundObjectRef: spec.boundObjectRef ?? null },
      status: { token, expirationTimestamp: new Date((iat + exp) * 1000).toISOString().replace(/\.\d+Z$/, "Z") },
    };
  }

  /** `POST tokenreviews`. @throws ApiError 403 (caller), 422 (no spec.token) */
  tokenReview(caller: UserInfo, body: KObject): KObject {
    this.#mayCreate(caller, "authentication.k8s.io", "tokenreviews");
    const spec: Json = isObject(body?.spec) ? body.spec : {};
    if (typeof spec.token !== "string" || spec.token === "") throw invalid("authentication.k8s.io", "TokenReview", "", [{ reason: "FieldValueRequired", field: "spec.token", message: "Required value" }]);
    const want: string[] | undefined = Array.isArray(spec.audiences) && spec.audiences.length ? spec.audiences.map(String) : undefined;
    const r = this.authenticate(spec.token, want ?? [API_AUDIENCE]);
    const status: Json = "error" in r ? { user: {}, error: r.error } : { authenticated: true, user: r.user, audiences: r.audiences };
    return { kind: "TokenReview", apiVersion: "authentication.k8s.io/v1", metadata: { creationTimestamp: null }, spec, status };
  }

  /** `POST selfsubjectreviews` (`kubectl auth whoami`): the caller. @throws ApiError 403 for an anonymous caller */
  selfSubjectReview(caller: UserInfo): KObject {
    if (!(caller.groups ?? []).includes("system:authenticated")) throw forbidden(caller, { kind: "resource", verb: "create", group: "authentication.k8s.io", resource: "selfsubjectreviews" });
    return { kind: "SelfSubjectReview", apiVersion: "authentication.k8s.io/v1", metadata: { creationTimestamp: null }, status: { userInfo: caller } };
  }

  /**
   * `POST subjectaccessreviews` / `localsubjectaccessreviews` (with `namespace`) / `selfsubjectaccessreviews` (`self`).
   * @throws ApiError 403 (caller), 422 (spec as kube-apiserver validates it)
   */
  accessReview(caller: UserInfo, kind: "SubjectAccessReview" | "LocalSubjectAccessReview" | "SelfSubjectAccessReview", body: KObject, namespace?: string): KObject {
    const plural = `${kind.toLowerCase()}s`;
    if (kind === "SelfSubjectAccessReview") {
      if (!(caller.groups ?? []).includes("system:authenticated") && !authorize(this.rbac(), caller, { kind: "resource", verb: "create", group: "authorization.k8s.io", resource: plural }).allowed) {
        throw forbidden(caller, { kind: "resource", verb: "create", group: "authorization.k8s.io", resource: plural });
      }
    } else this.#mayCreate(caller, "authorization.k8s.io", plural, undefined, undefined, namespace);
    const spec: Json = isObject(body?.spec) ? body.spec : {};
    const bad = (field: string, message: string, reason = "FieldValueInvalid") => invalid("authorization.k8s.io", kind, "", [{ reason, field, message }]);
    const ra = isObject(spec.resourceAttributes) ? spec.resourceAttributes : undefined;
    const nra = isObject(spec.nonResourceAttributes) ? spec.nonResourceAttributes : undefined;
    if (!ra && !nra) throw bad("spec.resourceAttributes", "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified", "FieldValueRequired");
    if (ra && nra) throw bad("spec.nonResourceAttributes", "Invalid value: \"object\": cannot be specified in combination with resourceAttributes");
    let user: UserInfo;
    if (kind === "SelfSubjectAccessReview") user = caller;
    else {
      const u = typeof spec.user === "string" ? spec.user : "";
      const groups: string[] = Array.isArray(spec.groups) ? spec.groups.map(String) : [];
      if (!u && groups.length === 0) throw bad("spec.user", "Invalid value: \"\": at least one of user or group must be specified");
      user = { username: u, groups, ...(typeof spec.uid === "string" ? { uid: spec.uid } : {}), ...(isObject(spec.extra) ? { extra: spec.extra } : {}) };
      if (kind === "LocalSubjectAccessReview" && ra && (ra.namespace ?? "") !== namespace) {
        throw bad("spec.resourceAttributes.namespace", `Invalid value: ${JSON.stringify(ra.namespace ?? "")}: must match metadata.namespace`);
      }
    }
    const a: RequestAttributes = ra
      ? { kind: "resource", verb: String(ra.verb ?? ""), group: String(ra.group ?? ""), resource: String(ra.resource ?? ""), subresource: String(ra.subresource ?? ""), name: String(ra.name ?? ""), namespace: String(ra.namespace ?? "") }
      : { kind: "nonResource", verb: String(nra!.verb ?? ""), path: String(nra!.path ?? "") };
    const d = authorize(this.rbac(), user, a);
    const status: Json = { allowed: d.allowed, ...(d.reason ? { reason: d.reason } : {}) };
    const metadata: Json = { creationTimestamp: null, ...(namespace ? { namespace } : {}) };
    return { kind, apiVersion: "authorization.k8s.io/v1", metadata, spec, status };
  }
}

/**
 * 403 as kube-apiserver words it: `queues.celeriac.io "orders" is forbidden: User "u" cannot replay
 * resource "queues/deadletters" in API group "celeriac.io" in the namespace "default"`.
 */
export function forbidden(user: UserInfo, a: RequestAttributes, what?: string): ApiError {
  if (a.kind === "nonResource") return new ApiError(403, "Forbidden", `forbidden: User ${JSON.stringify(user.username)} cannot ${a.verb} path ${JSON.stringify(a.path)}`, {});
  const gr = a.group ? `${a.resource}.${a.group}` : a.resource;
  const subject = what ?? `${gr}${a.name ? ` ${JSON.stringify(a.name)}` : ""} is forbidden`;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace ${JSON.stringify(a.namespace)}` : "at the cluster scope";
  return new ApiError(403, "Forbidden", `${subject}: User ${JSON.stringify(user.username)} cannot ${a.verb} resource ${JSON.stringify(res)} in API group ${JSON.stringify(a.group ?? "")} ${scope}`, {
    ...(a.name ? { name: a.name } : {}), group: a.group ?? "", kind: a.resource,
  });
}
