/**
 * RBAC authorization as kube-apiserver's RBAC authorizer evaluates it
 * (`plugin/pkg/auth/authorizer/rbac/rbac.go` and `pkg/apis/rbac/v1/evaluation_helpers.go`):
 * pure, over the Roles, RoleBindings, ClusterRoles and ClusterRoleBindings given.
 *
 * - ClusterRoleBindings are visited first (they apply in every namespace and to cluster-scoped
 *   requests), then, for a namespaced request, the RoleBindings of that namespace only.
 * - A RoleBinding's `roleRef` is a Role of its own namespace or a ClusterRole; a ClusterRoleBinding's
 *   must be a ClusterRole. A missing role is an error reported in the reason of a denial, not a match.
 * - Subjects: `User` by name, `Group` by the user's groups (as given: nothing is added here —
 *   `system:authenticated` comes from the authenticator), `ServiceAccount` as the user
 *   `system:serviceaccount:<ns>:<name>`, its namespace defaulting to the RoleBinding's.
 * - A rule matches when its verbs (`*` or the verb), apiGroups (`*` or the group), resources (`*`,
 *   the resource, `<resource>/<subresource>` for a subresource request, or `* /<subresource>`) and
 *   resourceNames (empty = all, else must contain the name) all match; non-resource requests match on
 *   verbs and nonResourceURLs (`*`, exact, or a prefix ending in `*`).
 * - The group `system:masters` is allowed everything without looking at rules (kube-apiserver's
 *   privileged-group authorizer in front of RBAC).
 * - No match is no opinion, i.e. denied: `allowed: false` with an empty reason unless errors were met.
 *
 * ClusterRole `aggregationRule` is not evaluated (the aggregation controller is not run): only a
 * ClusterRole's own `rules` count.
 */

/** A PolicyRule (rbac.authorization.k8s.io/v1). */
export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** A Subject of a binding. */
export interface Subject {
  kind: "User" | "Group" | "ServiceAccount" | string;
  name: string;
  namespace?: string;
  apiGroup?: string;
}

/** A RoleRef of a binding. */
export interface RoleRef {
  kind: "Role" | "ClusterRole" | string;
  name: string;
  apiGroup?: string;
}

/** The parts of a Role or ClusterRole that evaluation reads. */
export interface RoleLike {
  metadata: { name: string; namespace?: string };
  rules?: PolicyRule[] | null;
}

/** The parts of a RoleBinding or ClusterRoleBinding that evaluation reads. */
export interface BindingLike {
  metadata: { name: string; namespace?: string };
  subjects?: Subject[] | null;
  roleRef: RoleRef;
}

/** Everything RBAC is evaluated over. */
export interface RbacObjects {
  roles: RoleLike[];
  roleBindings: BindingLike[];
  clusterRoles: RoleLike[];
  clusterRoleBindings: BindingLike[];
}

/** Who asks: a user as an authenticator (TokenReview) or SubjectAccessReview spec gives it. */
export interface UserInfo {
  username: string;
  groups?: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

/** What is asked: SubjectAccessReview's resourceAttributes or nonResourceAttributes. */
export type RequestAttributes =
  | { kind: "resource"; verb: string; group?: string; resource: string; subresource?: string; name?: string; namespace?: string }
  | { kind: "nonResource"; verb: string; path: string };

/** The decision: SubjectAccessReview `status` (allowed, reason, evaluationError). */
export interface Decision {
  allowed: boolean;
  /** `RBAC: allowed by RoleBinding "b/ns" of Role "r" to User "u"`, or the errors met on a denial; "" otherwise. */
  reason: string;
}

/** The group whose members are allowed everything. */
export const PRIVILEGED_GROUP = "system:masters";

/** `system:serviceaccount:<ns>:<name>`. Pure. */
export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

const has = (xs: readonly string[] | undefined | null, x: string) => (xs ?? []).includes(x);

/** rule.verbs contains `*` or the verb. Pure. */
export function verbMatches(rule: PolicyRule, verb: string): boolean {
  return has(rule.verbs, "*") || has(rule.verbs, verb);
}

/** rule.apiGroups contains `*` or the group. Pure. */
export function apiGroupMatches(rule: PolicyRule, group: string): boolean {
  return has(rule.apiGroups, "*") || has(rule.apiGroups, group);
}

/**
 * rule.resources contains `*`, the combined resource (`queues` or `queues/deadletters`), or
 * `* /<subresource>` for a subresource request. Pure.
 */
export function resourceMatches(rule: PolicyRule, combined: string, subresource: string): boolean {
  for (const r of rule.resources ?? []) {
    if (r === "*" || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

/** rule.resourceNames is empty or contains the name. Pure. */
export function resourceNameMatches(rule: PolicyRule, name: string): boolean {
  return (rule.resourceNames ?? []).length === 0 || has(rule.resourceNames, name);
}

/** rule.nonResourceURLs contains `*`, the path, or a prefix of it ending in `*`. Pure. */
export function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === "*" || u === path) return true;
    if (u.endsWith("*") && path.startsWith(u.replace(/\*+$/, ""))) return true;
  }
  return false;
}

/** Whether one rule allows the request. Pure. */
export function ruleAllows(a: RequestAttributes, rule: PolicyRule): boolean {
  if (a.kind === "resource") {
    const sub = a.subresource ?? "";
    const combined = sub ? `${a.resource}/${sub}` : a.resource;
    return verbMatches(rule, a.verb) && apiGroupMatches(rule, a.group ?? "") && resourceMatches(rule, combined, sub) && resourceNameMatches(rule, a.name ?? "");
  }
  return verbMatches(rule, a.verb) && nonResourceURLMatches(rule, a.path);
}

/**
 * Whether a binding's subject is the user.
 * @param bindingNamespace the RoleBinding's namespace ("" for a ClusterRoleBinding), the default of a ServiceAccount subject's
 */
export function appliesTo(user: UserInfo, s: Subject, bindingNamespace: string): boolean {
  switch (s.kind) {
    case "User":
      return user.username === s.name;
    case "Group":
      return has(user.groups, s.name);
    case "ServiceAccount": {
      const ns = s.namespace || bindingNamespace;
      return ns !== "" && user.username === serviceAccountUsername(ns, s.name);
    }
    default:
      return false;
  }
}

/** How kube-apiserver names a subject in a reason. */
function describeSubject(s: Subject, bindingNamespace: string): string {
  if (s.kind === "ServiceAccount") return `${s.kind} ${JSON.stringify(`${s.name}/${s.namespace || bindingNamespace}`)}`;
  return `${s.kind} ${JSON.stringify(s.name)}`;
}

/**
 * Evaluates a request against RBAC objects, as kube-apiserver does for a SubjectAccessReview.
 * Pure; never throws (a dangling roleRef is an error in the reason).
 */
export function authorize(objs: RbacObjects, user: UserInfo, a: RequestAttributes): Decision {
  if (has(user.groups, PRIVILEGED_GROUP)) return { allowed: true, reason: "" };
  const errors: string[] = [];
  const clusterRole = (name: string) => objs.clusterRoles.find((r) => r.metadata.name === name);
  const visit = (b: BindingLike, bindingNs: string, describe: (s: Subject) => string): string | undefined => {
    const subject = (b.subjects ?? []).find((s) => appliesTo(user, s, bindingNs));
    if (!subject) return undefined;
    let role: RoleLike | undefined;
    if (b.roleRef.kind === "ClusterRole") {
      role = clusterRole(b.roleRef.name);
      if (!role) errors.push(`clusterrole.rbac.authorization.k8s.io ${JSON.stringify(b.roleRef.name)} not found`);
    } else if (b.roleRef.kind === "Role" && bindingNs !== "") {
      role = objs.roles.find((r) => r.metadata.name === b.roleRef.name && r.metadata.namespace === bindingNs);
      if (!role) errors.push(`role.rbac.authorization.k8s.io ${JSON.stringify(b.roleRef.name)} not found`);
    } else {
      errors.push(`invalid ${bindingNs ? "RoleBinding" : "ClusterRoleBinding"} roleRef.Kind ${JSON.stringify(b.roleRef.kind)}`);
    }
    if (!role) return undefined;
    return (role.rules ?? []).some((r) => ruleAllows(a, r)) ? describe(subject) : undefined;
  };
  for (const b of objs.clusterRoleBindings) {
    const by = visit(b, "", (s) => `ClusterRoleBinding ${JSON.stringify(b.metadata.name)} of ${b.roleRef.kind} ${JSON.stringify(b.roleRef.name)} to ${describeSubject(s, "")}`);
    if (by) return { allowed: true, reason: `RBAC: allowed by ${by}` };
  }
  const ns = a.kind === "resource" ? (a.namespace ?? "") : "";
  if (ns !== "") {
    for (const b of objs.roleBindings) {
      if (b.metadata.namespace !== ns) continue;
      const by = visit(b, ns, (s) => `RoleBinding ${JSON.stringify(`${b.metadata.name}/${ns}`)} of ${b.roleRef.kind} ${JSON.stringify(b.roleRef.name)} to ${describeSubject(s, ns)}`);
      if (by) return { allowed: true, reason: `RBAC: allowed by ${by}` };
    }
  }
  return { allowed: false, reason: errors.length ? `RBAC: ${errors.length === 1 ? errors[0] : `[${errors.join(", ")}]`}` : "" };
}
