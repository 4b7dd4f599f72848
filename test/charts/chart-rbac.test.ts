/**
 * The chart's RBAC against the operator's API calls: the rules bound to the operator's ServiceAccount
 * are exactly the calls listed in `operator/rbac-calls.ts` plus the worker Role the operator renders
 * (RBAC forbids granting what one does not hold) — every call covered, nothing extra, no wildcards —
 * in cluster mode and in namespaced mode. A scan of the operator sources catches a resource the code
 * touches that the list misses.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { RESOURCES } from "../../api/constants.js";
import { BUILTIN_TYPES } from "../../kube/k8s-client.js";
import { workerRoleRules } from "../../operator/queue/desired-rbac.js";
import { OPERATOR_API_CALLS, type RbacScope } from "../../operator/rbac-calls.js";
import { HELM, makeHelm, REPO_ROOT, type Helm, type K8sObject } from "./chart-helpers.js";

const skip = HELM ? false : "helm 4 not available";
const RELEASE_NS = "celeriac";

/** `group|resource|verb` triples of RBAC rules. */
function triples(rules: K8sObject["rules"]): Set<string> {
  const out = new Set<string>();
  for (const r of rules ?? []) {
    assert.equal(r.resourceNames, undefined, "no resourceNames expected");
    for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${g}|${res}|${v}`);
  }
  return out;
}

/**
 * What the operator must hold in a scope: its calls, plus (in watched namespaces) the worker Role's
 * rules; the calls of minting (`when: "natsMint"`) only with `natsAuth.mint.enabled` or
 * `natsAuth.accounts.enabled`, those of accounts mode (`when: "natsAccounts"`) only with the latter.
 */
function expected(scope: RbacScope, mint: boolean | "accounts" = false): Set<string> {
  const out = new Set<string>();
  const needed = (when: "natsMint" | "natsAccounts" | undefined) => !when || (when === "natsMint" ? mint !== false : mint === "accounts");
  for (const c of OPERATOR_API_CALLS) if (c.scope === scope && needed(c.when)) for (const v of c.verbs) out.add(`${c.group}|${c.resource}|${v}`);
  if (scope === "watched") for (const t of triples(workerRoleRules())) out.add(t);
  return out;
}

const sorted = (s: Set<string>): string[] => [...s].sort();

/** Rules bound to the operator's ServiceAccount, keyed by where they apply (`*` = cluster-wide). */
function boundRules(objs: readonly K8sObject[], sa: string): Map<string, Set<string>> {
  const byName = (kind: string, name: string, ns?: string) => objs.find((o) => o.kind === kind && o.metadata.name === name && (ns === undefined || o.metadata.namespace === ns));
  const out = new Map<string, Set<string>>();
  for (const b of objs.filter((o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding")) {
    const subjects = b.subjects as Array<{ kind: string; name: string; namespace?: string }>;
    if (!subjects.some((s) => s.kind === "ServiceAccount" && s.name === sa && s.namespace === RELEASE_NS)) continue;
    const ref = b.roleRef as { kind: string; name: string };
    const role = ref.kind === "ClusterRole" ? byName("ClusterRole", ref.name) : byName("Role", ref.name, b.metadata.namespace);
    assert.ok(role, `${b.kind} ${b.metadata.name} refers to a rendered ${ref.kind} ${ref.name}`);
    const where = b.kind === "ClusterRoleBinding" ? "*" : (b.metadata.namespace as string);
    const set = out.get(where) ?? new Set<string>();
    for (const t of triples(role.rules)) {
      assert.ok(!t.includes("*"), `${role.kind} ${role.metadata.name} uses a wildcard: ${t}`);
      set.add(t);
    }
    out.set(where, set);
  }
  return out;
}

describe("when the chart's RBAC is compared with the operator's API calls", { skip }, () => {
  let helm: Helm;
  before(() => {
    helm = makeHelm();
  });
  after(() => helm?.close());

  it("binds exactly the listed calls cluster-wide and the Lease rules in the release namespace (cluster mode)", async () => {
    const objs = await helm.render([], [], RELEASE_NS);
    const bound = boundRules(objs, "celeriac");
    assert.deepEqual([...bound.keys()].sort(), ["*", RELEASE_NS]);
    assert.deepEqual(sorted(bound.get("*") as Set<string>), sorted(expected("watched")), "ClusterRole celeriac");
    assert.deepEqual(sorted(bound.get(RELEASE_NS) as Set<string>), sorted(expected("lease")), "Role celeriac-leader-election");
  });

  it("binds the listed calls in each watched namespace and nothing cluster-wide (namespaced mode)", async () => {
    const objs = await helm.render(["namespaced.yaml"], [], RELEASE_NS);
    const bound = boundRules(objs, "celeriac");
    assert.deepEqual([...bound.keys()].sort(), [RELEASE_NS, "team-a", "team-b"]);
    for (const ns of ["team-a", "team-b"]) assert.deepEqual(sorted(bound.get(ns) as Set<string>), sorted(expected("watched")), `Role ${ns}/celeriac`);
    assert.deepEqual(sorted(bound.get(RELEASE_NS) as Set<string>), sorted(expected("lease")));
  });

  it("adds the Secret calls of minting mode only with natsAuth.mint.enabled, in both modes", async () => {
    const mint = ["natsAuth.mint.enabled=true", "natsAuth.mint.accountSigningKeySecret.name=nats-account-signing-key"];
    const cluster = boundRules(await helm.render([], mint, RELEASE_NS), "celeriac");
    assert.deepEqual(sorted(cluster.get("*") as Set<string>), sorted(expected("watched", true)), "ClusterRole celeriac");
    assert.ok(cluster.get("*")?.has("|secrets|create"));
    const namespaced = boundRules(await helm.render(["namespaced.yaml"], [...mint, "nats.deploy=false", "nats.url=nats://nats.nats.svc:4222"], RELEASE_NS), "celeriac");
    for (const ns of ["team-a", "team-b"]) assert.deepEqual(sorted(namespaced.get(ns) as Set<string>), sorted(expected("watched", true)), `Role ${ns}/celeriac`);
    assert.deepEqual(sorted(namespaced.get(RELEASE_NS) as Set<string>), sorted(expected("lease", true)), "no Secret rule in the release namespace");
    const plain = boundRules(await helm.render([], [], RELEASE_NS), "celeriac");
    assert.ok(![...(plain.get("*") ?? [])].some((t) => t.startsWith("|secrets|")), "no Secret access without minting");
  });

  it("binds the aggregated edit/view ClusterRoles to no one, and grants them only Celeriac resources", async () => {
    const objs = await helm.render([], [], RELEASE_NS);
    for (const name of ["celeriac-edit", "celeriac-view"]) {
      const role = objs.find((o) => o.kind === "ClusterRole" && o.metadata.name === name);
      assert.ok(role, name);
      assert.ok(Object.keys(role.metadata.labels ?? {}).some((k) => k.startsWith("rbac.authorization.k8s.io/aggregate-to-")));
      for (const t of triples(role.rules)) assert.match(t, /^celeriac\.io\|/);
      assert.ok(!objs.some((o) => (o.roleRef as { name?: string } | undefined)?.name === name), `${name} is only aggregated`);
    }
  });

  it("keeps the worker Role's rules within what the operator holds (no escalation)", () => {
    const held = expected("watched");
    for (const t of triples(workerRoleRules())) assert.ok(held.has(t), t);
    for (const t of triples(workerRoleRules({ patchPods: false }))) assert.ok(held.has(t), t);
  });
});

describe("when the operator sources are scanned for resources", () => {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const f of readdirSync(dir)) {
      const p = join(dir, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(".ts") && !p.endsWith("rbac-calls.ts")) files.push(p);
    }
  };
  walk(join(REPO_ROOT, "operator"));
  const source = files.map((f) => readFileSync(f, "utf8")).join("\n");
  const listed = new Set(OPERATOR_API_CALLS.map((c) => `${c.group}|${c.resource.split("/")[0]}`));
  for (const t of triples(workerRoleRules())) listed.add(t.split("|").slice(0, 2).join("|").replace(/\/.*$/, ""));

  it("finds every resource the operator code names in the list of calls", () => {
    assert.ok(files.length > 20, "scanned the operator sources");
    const named = new Set<string>();
    const builtins = BUILTIN_TYPES as Record<string, { group: string; plural: string }>;
    for (const m of source.matchAll(/BUILTIN_TYPES\.(\w+)/g)) {
      const t = builtins[m[1] as string];
      assert.ok(t, `unknown BUILTIN_TYPES.${m[1]}`);
      named.add(`${t.group}|${t.plural}`);
    }
    const crds = RESOURCES as Record<string, { plural: string }>;
    for (const m of source.matchAll(/(?:RESOURCES|CELERIAC_TYPES)\.(\w+)/g)) named.add(`celeriac.io|${(crds[m[1] as string] as { plural: string }).plural}`);
    for (const m of source.matchAll(/\{\s*group:\s*"([^"]*)",\s*version:\s*"[^"]+",\s*plural:\s*"([^"]+)"/g)) named.add(`${m[1]}|${m[2]}`);
    assert.ok(named.has("keda.sh|scaledobjects") && named.has("coordination.k8s.io|leases") && named.has("apps|deployments"), `scan found ${[...named].join(", ")}`);
    const missing = [...named].filter((r) => !listed.has(r));
    assert.deepEqual(missing, [], "resources the operator code uses but operator/rbac-calls.ts does not list (add them, then the chart's rules)");
  });

  it("finds every listed call's resource named in the operator code (no stale entries)", () => {
    const names = new Set<string>([...source.matchAll(/plural:\s*"([^"]+)"/g)].map((m) => m[1] as string));
    for (const m of source.matchAll(/BUILTIN_TYPES\.(\w+)/g)) names.add((BUILTIN_TYPES as Record<string, { plural: string }>)[m[1] as string]?.plural as string);
    for (const m of source.matchAll(/(?:RESOURCES|CELERIAC_TYPES)\.(\w+)/g)) names.add((RESOURCES as Record<string, { plural: string }>)[m[1] as string]?.plural as string);
    for (const c of OPERATOR_API_CALLS) assert.ok(names.has(c.resource.split("/")[0] as string), `${c.group}/${c.resource} is listed but the operator code never names it`);
    for (const c of OPERATOR_API_CALLS.filter((x) => x.resource.endsWith("/scale"))) assert.match(source, /"scale"\)|patchScale\(/, c.resource);
  });
});
