/**
 * Who may act on a dashboard started with `--auth kubernetes` (docs/dashboard.md "Identity"): the
 * page sends the user's own Kubernetes bearer token; the dashboard asks the API server who it is
 * (TokenReview, authentication.k8s.io/v1) and whether that user may do the action
 * (SubjectAccessReview, authorization.k8s.io/v1) on the queue, as a custom verb of the `queues`
 * resource of `celeriac.io` (like RBAC's `escalate`, `bind`, `use`: RBAC matches any verb string):
 *
 * | action | verb | resource |
 * | --- | --- | --- |
 * | revoke a task | `revoke` | `queues` (the task's queue) |
 * | pause / resume a queue | `pause` / `resume` | `queues` |
 * | purge a queue's queued tasks | `purge` | `queues` |
 * | replay dead letters | `replay` | `queues/deadletters` |
 * | purge dead letters | `purge` | `queues/deadletters` |
 *
 * The queue is the review's `name` (so a Role may narrow with `resourceNames`), its namespace the
 * dashboard's. The dashboard's own credential needs `create` on `tokenreviews` and
 * `subjectaccessreviews`.
 */
import { GROUP } from "../api/constants.js";
import { apiErrorCode, kubeRequest, type KubeClient } from "../kube/k8s-client.js";

/** How actions are authorised: one shared action token, or each user's Kubernetes identity. */
export type AuthMode = "token" | "kubernetes";

/** The RBAC permission an action needs on a queue: a verb, on `queues` or one of its subresources. */
export interface ActionPermission {
  verb: string;
  /** `deadletters` for the dead-letter actions; absent: `queues` itself. */
  subresource?: string;
}

/** Each action's permission (see the file comment). */
export const ACTION_PERMISSIONS = {
  revoke: { verb: "revoke" },
  pause: { verb: "pause" },
  resume: { verb: "resume" },
  purge: { verb: "purge" },
  replayDeadLetters: { verb: "replay", subresource: "deadletters" },
  purgeDeadLetters: { verb: "purge", subresource: "deadletters" },
} as const satisfies Record<string, ActionPermission>;

/** A user as TokenReview answers it. */
export interface KubeUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** A refusal or failure with the HTTP status the dashboard answers. */
export class AuthzError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** `user "u" cannot replay queues/deadletters "orders" (celeriac.io) in namespace "default"`. Pure. */
export function describeDenial(user: string, p: ActionPermission, queue: string, namespace: string): string {
  const res = p.subresource ? `queues/${p.subresource}` : "queues";
  return `user "${user}" cannot ${p.verb} ${res} "${queue}" (API group ${GROUP}) in namespace "${namespace}": an admin grants it with a Role rule {apiGroups: [${GROUP}], resources: [${res}], verbs: [${p.verb}]} bound to the user`;
}

/** What the dashboard's credential lacking review rights means, for the error. */
function ownRights(err: unknown, what: string): AuthzError {
  const code = apiErrorCode(err);
  if (code === 401 || code === 403) {
    return new AuthzError(500, `the dashboard's own Kubernetes credential cannot create ${what} (HTTP ${code}): grant its ServiceAccount create on tokenreviews.authentication.k8s.io and subjectaccessreviews.authorization.k8s.io (docs/dashboard.md)`);
  }
  return new AuthzError(502, `${what}: ${(err as Error).message}`);
}

/**
 * Who a bearer token is (TokenReview).
 * @throws AuthzError 401 when the token is not authenticated; 500/502 when the review cannot be made
 */
export async function reviewToken(kube: KubeClient, token: string): Promise<KubeUser> {
  let r: { status?: { authenticated?: boolean; user?: KubeUser; error?: string } };
  try {
    r = await kubeRequest(kube, { method: "POST", path: "/apis/authentication.k8s.io/v1/tokenreviews", body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } }, timeoutMs: 10_000 });
  } catch (err) {
    throw ownRights(err, "tokenreviews");
  }
  if (!r.status?.authenticated || !r.status.user?.username) {
    throw new AuthzError(401, `Kubernetes token not authenticated${r.status?.error ? ` (${r.status.error})` : ""}: give a valid token of yours, e.g. from kubectl create token <serviceaccount>`);
  }
  return r.status.user;
}

/**
 * Whether `user` may do `p` on queue `queue` of `namespace` (SubjectAccessReview).
 * @throws AuthzError 500/502 when the review cannot be made
 */
export async function reviewAccess(kube: KubeClient, user: KubeUser, p: ActionPermission, queue: string, namespace: string): Promise<{ allowed: boolean; reason?: string }> {
  const body = {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      resourceAttributes: { group: GROUP, resource: "queues", ...(p.subresource ? { subresource: p.subresource } : {}), name: queue, namespace, verb: p.verb },
      user: user.username,
      ...(user.groups ? { groups: user.groups } : {}),
      ...(user.uid ? { uid: user.uid } : {}),
      ...(user.extra ? { extra: user.extra } : {}),
    },
  };
  let r: { status?: { allowed?: boolean; reason?: string } };
  try {
    r = await kubeRequest(kube, { method: "POST", path: "/apis/authorization.k8s.io/v1/subjectaccessreviews", body, timeoutMs: 10_000 });
  } catch (err) {
    throw ownRights(err, "subjectaccessreviews");
  }
  return { allowed: r.status?.allowed === true, ...(r.status?.reason ? { reason: r.status.reason } : {}) };
}

/**
 * Authorises one action by the caller's Kubernetes token: TokenReview, then SubjectAccessReview.
 * @returns the user
 * @throws AuthzError 401 (token not authenticated), 403 naming the missing permission, 500/502 (reviews failed)
 */
export async function authorizeByKubernetes(kube: KubeClient, token: string, p: ActionPermission, queue: string, namespace: string): Promise<KubeUser> {
  const user = await reviewToken(kube, token);
  const d = await reviewAccess(kube, user, p, queue, namespace);
  if (!d.allowed) throw new AuthzError(403, describeDenial(user.username, p, queue, namespace));
  return user;
}
