import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { QueueSpec } from "../../../api/queue.js";
import {
  desiredWorkerDeployment,
  desiredWorkerRole,
  desiredWorkerRoleBinding,
  desiredWorkerServiceAccount,
  workerRoleRules,
} from "../../../operator/queue/index.js";
import { queueWith } from "./fixtures.js";

const owner = { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", name: "emails", uid: "uid-shop-emails", controller: true, blockOwnerDeletion: true };
const labels = {
  "celeriac.io/queue": "emails",
  "app.kubernetes.io/instance": "emails",
  "app.kubernetes.io/name": "celeriac-worker",
  "app.kubernetes.io/component": "worker",
  "app.kubernetes.io/managed-by": "celeriac-operator",
};
const meta = { name: "emails-worker", namespace: "shop", labels, ownerReferences: [owner] };

describe("when the Queue leaves the ServiceAccount to the operator", () => {
  const q = queueWith({ worker: { image: "i" } });

  it("renders the ServiceAccount <queue>-worker", () => {
    assert.deepEqual(desiredWorkerServiceAccount(q), { apiVersion: "v1", kind: "ServiceAccount", metadata: meta });
  });

  it("renders a Role with only tasks/status get+patch, pods get+patch and events create", () => {
    assert.deepEqual(desiredWorkerRole(q), {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta,
      rules: [
        { apiGroups: ["celeriac.io"], resources: ["tasks/status"], verbs: ["get", "patch"] },
        { apiGroups: [""], resources: ["pods"], verbs: ["get", "patch"] },
        { apiGroups: [""], resources: ["events"], verbs: ["create"] },
      ],
    });
  });

  it("binds the Role to <queue>-worker in the Queue's namespace", () => {
    assert.deepEqual(desiredWorkerRoleBinding(q), {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "emails-worker" },
      subjects: [{ kind: "ServiceAccount", name: "emails-worker", namespace: "shop" }],
    });
  });

  it("grants nothing on pods when patchPods is false", () => {
    const rules = desiredWorkerRole(q, { patchPods: false }).rules ?? [];
    assert.ok(!rules.some((r) => r.resources?.includes("pods")));
    assert.equal(rules.length, 2);
  });

  it("never grants write access to Tasks themselves, Secrets or any wildcard", () => {
    for (const rule of workerRoleRules()) {
      assert.ok(!rule.resources?.includes("tasks"), "tasks");
      assert.ok(!rule.resources?.includes("secrets"), "secrets");
      assert.ok(!rule.verbs.includes("*") && !(rule.resources ?? []).includes("*") && !(rule.apiGroups ?? []).includes("*"));
    }
  });
});

describe("when the user names the worker ServiceAccount", () => {
  /** [case, spec, ServiceAccount the pods run as] */
  const cases: Array<[string, QueueSpec, string]> = [
    ["in spec.worker", { worker: { image: "i", serviceAccountName: "acme-sa" } }, "acme-sa"],
    ["in the template", { worker: { template: { spec: { serviceAccountName: "tpl-sa", containers: [{ image: "i" }] } } } }, "tpl-sa"],
    ["in both (the template wins)", { worker: { serviceAccountName: "acme-sa", template: { spec: { serviceAccountName: "tpl-sa", containers: [{ image: "i" }] } } } }, "tpl-sa"],
  ];
  for (const [name, spec, sa] of cases) {
    const q = queueWith(spec);
    it(`creates no ServiceAccount (${name})`, () => {
      assert.equal(desiredWorkerServiceAccount(q), undefined);
    });
    it(`still renders the Role and binds it to ${sa}, the account the pods run as (${name})`, () => {
      assert.equal(desiredWorkerRole(q).metadata?.name, "emails-worker");
      const binding = desiredWorkerRoleBinding(q);
      assert.deepEqual(binding.subjects, [{ kind: "ServiceAccount", name: sa, namespace: "shop" }]);
      assert.equal(desiredWorkerDeployment(q, { nats: { url: "nats://n:4222" } }).spec?.template.spec?.serviceAccountName, sa);
    });
  }
});

describe("when the RBAC builders run twice", () => {
  it("returns deep-equal objects", () => {
    const q = queueWith({ worker: { image: "i" } });
    assert.deepStrictEqual(desiredWorkerServiceAccount(q), desiredWorkerServiceAccount(q));
    assert.deepStrictEqual(desiredWorkerRole(q), desiredWorkerRole(q));
    assert.deepStrictEqual(desiredWorkerRoleBinding(q), desiredWorkerRoleBinding(q));
  });
});
