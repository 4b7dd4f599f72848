/**
 * The in-memory API server's RBAC evaluator (devcluster/server/rbac.ts), a pure table test against
 * kube-apiserver's rules: wildcards, resourceNames, subresources, group and ServiceAccount subjects,
 * cluster vs namespaced bindings, dangling roleRefs, and no match = denied.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { authorize, type RbacObjects, type RequestAttributes, type UserInfo } from "../../devcluster/server/rbac.js";

const q = (verb: string, namespace: string, name = "orders", subresource?: string): RequestAttributes => ({
  kind: "resource", verb, group: "celeriac.io", resource: "queues", name, namespace, ...(subresource ? { subresource } : {}),
});

const objs: RbacObjects = {
  roles: [
    { metadata: { name: "replayer", namespace: "default" }, rules: [{ apiGroups: ["celeriac.io"], resources: ["queues"], verbs: ["replay", "purge"] }] },
    { metadata: { name: "orders-only", namespace: "default" }, rules: [{ apiGroups: ["celeriac.io"], resources: ["queues"], resourceNames: ["orders"], verbs: ["pause"] }] },
    { metadata: { name: "dlq", namespace: "default" }, rules: [{ apiGroups: ["celeriac.io"], resources: ["queues/deadletters"], verbs: ["replay"] }] },
    { metadata: { name: "other-ns-role", namespace: "prod" }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] },
  ],
  roleBindings: [
    { metadata: { name: "alice-replayer", namespace: "default" }, subjects: [{ kind: "User", name: "alice" }], roleRef: { kind: "Role", name: "replayer" } },
    { metadata: { name: "sa-orders", namespace: "default" }, subjects: [{ kind: "ServiceAccount", name: "bot" }], roleRef: { kind: "Role", name: "orders-only" } },
    { metadata: { name: "ops-dlq", namespace: "default" }, subjects: [{ kind: "Group", name: "ops" }], roleRef: { kind: "Role", name: "dlq" } },
    { metadata: { name: "carol-view", namespace: "default" }, subjects: [{ kind: "User", name: "carol" }], roleRef: { kind: "ClusterRole", name: "queue-viewer" } },
    { metadata: { name: "dangling", namespace: "default" }, subjects: [{ kind: "User", name: "dan" }], roleRef: { kind: "Role", name: "nope" } },
    // binds a Role of another namespace's name: a RoleBinding only sees Roles of its own namespace
    { metadata: { name: "cross", namespace: "default" }, subjects: [{ kind: "User", name: "eve" }], roleRef: { kind: "Role", name: "other-ns-role" } },
    { metadata: { name: "prod-all", namespace: "prod" }, subjects: [{ kind: "User", name: "frank" }], roleRef: { kind: "Role", name: "other-ns-role" } },
  ],
  clusterRoles: [
    { metadata: { name: "queue-viewer" }, rules: [{ apiGroups: ["celeriac.io"], resources: ["queues"], verbs: ["get", "list"] }] },
    { metadata: { name: "subresource-any" }, rules: [{ apiGroups: ["celeriac.io"], resources: ["*/deadletters"], verbs: ["purge"] }] },
    { metadata: { name: "reviewer" }, rules: [{ apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"] }, { nonResourceURLs: ["/healthz", "/metrics/*"], verbs: ["get"] }] },
  ],
  clusterRoleBindings: [
    { metadata: { name: "all-sas-purge-dlq" }, subjects: [{ kind: "Group", name: "system:serviceaccounts:jobs" }], roleRef: { kind: "ClusterRole", name: "subresource-any" } },
    { metadata: { name: "authenticated-review" }, subjects: [{ kind: "Group", name: "system:authenticated" }], roleRef: { kind: "ClusterRole", name: "reviewer" } },
    { metadata: { name: "sa-in-crb" }, subjects: [{ kind: "ServiceAccount", name: "dash", namespace: "celeriac" }], roleRef: { kind: "ClusterRole", name: "queue-viewer" } },
    // a ServiceAccount subject without a namespace in a ClusterRoleBinding matches no one
    { metadata: { name: "sa-no-ns" }, subjects: [{ kind: "ServiceAccount", name: "dash" }], roleRef: { kind: "ClusterRole", name: "subresource-any" } },
  ],
};

const user = (username: string, ...groups: string[]): UserInfo => ({ username, groups });
const sa = (ns: string, name: string): UserInfo => user(`system:serviceaccount:${ns}:${name}`, "system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated");

const cases: Array<[string, UserInfo, RequestAttributes, boolean, string?]> = [
  ["a custom verb granted by a Role in the namespace", user("alice"), q("replay", "default"), true, 'RBAC: allowed by RoleBinding "alice-replayer/default" of Role "replayer" to User "alice"'],
  ["the other custom verb of the same rule", user("alice"), q("purge", "default"), true],
  ["a verb the rule does not list", user("alice"), q("pause", "default"), false, ""],
  ["the same Role does not reach another namespace", user("alice"), q("replay", "prod"), false],
  ["a cluster-scoped request ignores RoleBindings", user("alice"), { kind: "resource", verb: "replay", group: "celeriac.io", resource: "queues", name: "orders" }, false],
  ["another API group does not match", user("alice"), { ...q("replay", "default"), group: "example.com" } as RequestAttributes, false],
  ["a rule on queues does not cover its subresource", user("alice"), q("replay", "default", "orders", "deadletters"), false],
  ["resourceNames: the named queue", sa("default", "bot"), q("pause", "default", "orders"), true, 'RBAC: allowed by RoleBinding "sa-orders/default" of Role "orders-only" to ServiceAccount "bot/default"'],
  ["resourceNames: another queue", sa("default", "bot"), q("pause", "default", "emails"), false],
  ["resourceNames: a request without a name", sa("default", "bot"), q("pause", "default", ""), false],
  ["a ServiceAccount subject is namespaced by its binding", sa("other", "bot"), q("pause", "default"), false],
  ["a Group subject and a subresource rule", user("gina", "ops"), q("replay", "default", "x", "deadletters"), true],
  ["the subresource rule does not cover the parent", user("gina", "ops"), q("replay", "default", "x"), false],
  ["a ClusterRole bound by a RoleBinding, in its namespace", user("carol"), q("list", "default", ""), true, 'RBAC: allowed by RoleBinding "carol-view/default" of ClusterRole "queue-viewer" to User "carol"'],
  ["a ClusterRole bound by a RoleBinding, elsewhere", user("carol"), q("list", "prod", ""), false],
  ["*/subresource by a ClusterRoleBinding to a group of service accounts", sa("jobs", "cleaner"), q("purge", "any-ns", "q", "deadletters"), true, 'RBAC: allowed by ClusterRoleBinding "all-sas-purge-dlq" of ClusterRole "subresource-any" to Group "system:serviceaccounts:jobs"'],
  ["*/subresource does not cover the parent", sa("jobs", "cleaner"), q("purge", "any-ns", "q"), false],
  ["system:authenticated in a ClusterRoleBinding", user("zed", "system:authenticated"), { kind: "resource", verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews" }, true],
  ["nonResourceURLs: exact", user("zed", "system:authenticated"), { kind: "nonResource", verb: "get", path: "/healthz" }, true],
  ["nonResourceURLs: a prefix with *", user("zed", "system:authenticated"), { kind: "nonResource", verb: "get", path: "/metrics/cadvisor" }, true],
  ["nonResourceURLs: not the prefix", user("zed", "system:authenticated"), { kind: "nonResource", verb: "get", path: "/metric" }, false],
  ["nonResourceURLs do not grant resources", user("zed", "system:authenticated"), { kind: "resource", verb: "get", group: "", resource: "healthz" }, false],
  ["a ServiceAccount subject with its namespace in a ClusterRoleBinding", sa("celeriac", "dash"), q("get", "default"), true],
  ["a ServiceAccount subject without a namespace in a ClusterRoleBinding matches no one", sa("celeriac", "dash"), q("purge", "default", "orders", "deadletters"), false],
  ["'*' everywhere in a Role of its namespace", user("frank"), { kind: "resource", verb: "delete", group: "apps", resource: "deployments", subresource: "scale", name: "x", namespace: "prod" }, true],
  ["a RoleBinding's Role is looked up in its own namespace only", user("eve"), q("replay", "default"), false, 'RBAC: role.rbac.authorization.k8s.io "other-ns-role" not found'],
  ["a dangling roleRef denies and says why", user("dan"), q("replay", "default"), false, 'RBAC: role.rbac.authorization.k8s.io "nope" not found'],
  ["system:masters is allowed everything", user("root", "system:masters"), q("anything", "anywhere"), true, ""],
  ["no binding at all", user("nobody", "system:authenticated"), q("replay", "default"), false, ""],
  ["groups are taken as given (no implicit system:authenticated)", user("zed"), { kind: "resource", verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews" }, false],
];

describe("RBAC evaluation (devcluster/server/rbac.ts)", () => {
  for (const [name, u, a, allowed, reason] of cases) {
    it(name, () => {
      const d = authorize(objs, u, a);
      assert.equal(d.allowed, allowed);
      if (reason !== undefined) assert.equal(d.reason, reason);
    });
  }
  it("verbs '*' and apiGroups '*' match any verb and group, resources '*' any resource incl. subresources", () => {
    const o: RbacObjects = { roles: [], roleBindings: [], clusterRoles: [{ metadata: { name: "admin" }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] }], clusterRoleBindings: [{ metadata: { name: "b" }, subjects: [{ kind: "User", name: "u" }], roleRef: { kind: "ClusterRole", name: "admin" } }] };
    for (const a of [q("replay", "x"), q("purge", "", "q", "deadletters"), { kind: "resource", verb: "escalate", group: "rbac.authorization.k8s.io", resource: "clusterroles" } as RequestAttributes]) assert.equal(authorize(o, user("u"), a).allowed, true);
    assert.equal(authorize(o, user("v"), q("replay", "x")).allowed, false);
  });
  it("a ClusterRoleBinding to a Role is invalid", () => {
    const o: RbacObjects = { roles: [{ metadata: { name: "r", namespace: "default" }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] }], roleBindings: [], clusterRoles: [], clusterRoleBindings: [{ metadata: { name: "b" }, subjects: [{ kind: "User", name: "u" }], roleRef: { kind: "Role", name: "r" } }] };
    assert.deepEqual(authorize(o, user("u"), q("get", "default")), { allowed: false, reason: 'RBAC: invalid ClusterRoleBinding roleRef.Kind "Role"' });
  });
});
