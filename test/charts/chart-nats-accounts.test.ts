/**
 * The chart in accounts mode (`natsAuth.accounts`: one NATS account per tenant namespace): the operator
 * signing key and the system user's creds mounted read-only into the operator pod, the accounts-mode
 * variables set and the shared/minting ones absent, the Secret rules in watched namespaces plus `get` and
 * `create` on Secrets in the release namespace (where the account seeds live) — in cluster and namespaced
 * mode —, nothing of it by default, and every value combination it refuses, each with its message.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { V1Deployment, V1EnvVar } from "@kubernetes/client-node";
import { operatorConfigFrom } from "../../operator/config.js";
import { assertRestricted, CHART_DIR, HELM, makeHelm, podTemplatesOf, type Helm, type K8sObject } from "./chart-helpers.js";

const skip = HELM ? false : "helm 4 not available";
const RELEASE_NS = "celeriac";
const OPERATOR_KEY_DIR = "/var/run/secrets/celeriac.io/nats-operator-key";
const SYSTEM_CREDS_DIR = "/var/run/secrets/celeriac.io/nats-system-creds";
/** The `--set`s of a valid accounts-mode install against the official NATS chart. */
const ACCOUNTS = [
  "natsAuth.accounts.enabled=true",
  "natsAuth.accounts.operatorSigningKeySecret.name=celeriac-nats-operator",
  "natsAuth.accounts.operatorSigningKeySecret.key=signing-key",
  "natsAuth.accounts.systemCredsSecret.name=celeriac-nats-sys",
  "natsAuth.accounts.systemCredsSecret.key=sys.creds",
  "natsAuth.accounts.credsTtlSeconds=3600",
  "nats.url=nats://nats.nats.svc:4222",
];
/** Every variable of the other NATS auth modes, none of which accounts mode may render. */
const OTHER_MODES = [
  "CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE",
  "CELERIAC_NATS_ACCOUNT_PUBLIC_KEY",
  "CELERIAC_NATS_CREDS",
  "CELERIAC_NATS_CREDS_SECRET",
  "CELERIAC_NATS_USER",
  "CELERIAC_NATS_PASSWORD",
  "CELERIAC_NATS_USER_SECRET",
];
const ACCOUNTS_VARS = ["CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE", "CELERIAC_NATS_SYSTEM_CREDS", "CELERIAC_NATS_ACCOUNTS_NAMESPACE"];

const operatorOf = (objs: readonly K8sObject[]): V1Deployment => {
  const d = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "celeriac");
  assert.ok(d, "the operator Deployment celeriac is rendered");
  return d as unknown as V1Deployment;
};
const envOf = (d: V1Deployment): Map<string, V1EnvVar> => new Map((d.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e]));

/**
 * Secret verbs bound to the operator's ServiceAccount, by where they apply (`*` = cluster-wide), from
 * every (Cluster)RoleBinding naming it; a rule on Secrets with resourceNames or a wildcard fails.
 */
function secretVerbs(objs: readonly K8sObject[]): Map<string, string[]> {
  const out = new Map<string, Set<string>>();
  for (const b of objs.filter((o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding")) {
    const subjects = b.subjects as Array<{ kind: string; name: string; namespace?: string }>;
    if (!subjects.some((s) => s.kind === "ServiceAccount" && s.name === "celeriac" && s.namespace === RELEASE_NS)) continue;
    const ref = b.roleRef as { kind: string; name: string };
    const role = objs.find((o) => o.kind === ref.kind && o.metadata.name === ref.name && (ref.kind === "ClusterRole" || o.metadata.namespace === b.metadata.namespace));
    assert.ok(role, `${b.kind} ${b.metadata.name} refers to a rendered ${ref.kind} ${ref.name}`);
    const where = b.kind === "ClusterRoleBinding" ? "*" : (b.metadata.namespace as string);
    for (const r of role.rules ?? []) {
      if (!(r.apiGroups ?? []).includes("") || !(r.resources ?? []).some((x) => x === "secrets" || x === "*")) continue;
      assert.equal(r.resourceNames, undefined, `${role.kind} ${role.metadata.name}: no resourceNames`);
      assert.ok(!r.verbs.includes("*") && !(r.resources ?? []).includes("*"), `${role.kind} ${role.metadata.name}: no wildcard`);
      const set = out.get(where) ?? new Set<string>();
      for (const v of r.verbs) set.add(v);
      out.set(where, set);
    }
  }
  return new Map([...out].map(([k, v]) => [k, [...v].sort()]));
}

const WATCHED_SECRET_VERBS = ["create", "delete", "list", "patch", "watch"];
const SEED_SECRET_VERBS = ["create", "get"];

describe("when the chart runs the operator in accounts mode (natsAuth.accounts)", { skip }, () => {
  let helm: Helm;
  let objs: K8sObject[];
  before(async () => {
    helm = makeHelm();
    objs = await helm.render([], ACCOUNTS, RELEASE_NS);
  });
  after(() => helm?.close());

  it("passes helm lint --strict", async () => {
    const r = await helm.run("lint", "--strict", CHART_DIR, "--namespace", RELEASE_NS, ...ACCOUNTS.flatMap((s) => ["--set", s]));
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it("sets the accounts-mode variables, with the accounts namespace = the release namespace, and none of the other modes'", () => {
    const env = envOf(operatorOf(objs));
    assert.equal(env.get("CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE")?.value, `${OPERATOR_KEY_DIR}/seed`);
    assert.equal(env.get("CELERIAC_NATS_SYSTEM_CREDS")?.value, `${SYSTEM_CREDS_DIR}/nats.creds`);
    assert.equal(env.get("CELERIAC_NATS_ACCOUNTS_NAMESPACE")?.value, RELEASE_NS);
    assert.equal(env.get("CELERIAC_NATS_CREDS_TTL_SECONDS")?.value, "3600");
    assert.equal(env.get("CELERIAC_NATS_MAX_CONTROL_LINE")?.value, "4096", "natsAuth.maxControlLine: nats-server's default unless told");
    assert.equal(env.get("CELERIAC_NATS_URL")?.value, "nats://nats.nats.svc:4222");
    for (const other of OTHER_MODES) assert.equal(env.get(other), undefined, `${other} is not rendered in accounts mode`);
  });

  it("gives the operator settings it parses into accounts mode, the main connection on the system user", () => {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, e] of envOf(operatorOf(objs))) env[name] = e.value ?? `from-${name.toLowerCase()}`;
    const config = operatorConfigFrom({}, env);
    assert.deepEqual(config.natsMint, { mode: "accounts", operatorSigningKeyFile: `${OPERATOR_KEY_DIR}/seed`, systemCredsFile: `${SYSTEM_CREDS_DIR}/nats.creds`, accountsNamespace: RELEASE_NS, credsTtlSeconds: 3600, maxControlLine: 4096 });
    assert.equal(config.nats.credsFile, `${SYSTEM_CREDS_DIR}/nats.creds`);
  });

  it("follows the release namespace and defaults the creds lifetime to 86400 s", async () => {
    const o = await helm.render([], ACCOUNTS.filter((s) => !s.startsWith("natsAuth.accounts.credsTtlSeconds")), "platform");
    const env = envOf(operatorOf(o));
    assert.equal(env.get("CELERIAC_NATS_ACCOUNTS_NAMESPACE")?.value, "platform");
    assert.equal(env.get("CELERIAC_NATS_CREDS_TTL_SECONDS")?.value, "86400");
  });

  it("mounts the operator signing key and the system creds read-only from their Secrets, in a restricted pod", () => {
    const pod = operatorOf(objs).spec?.template.spec;
    const vol = (name: string) => pod?.volumes?.find((v) => v.name === name);
    const mount = (name: string) => pod?.containers[0]?.volumeMounts?.find((m) => m.name === name);
    assert.deepEqual(vol("nats-operator-signing-key")?.secret, { secretName: "celeriac-nats-operator", defaultMode: 0o440, items: [{ key: "signing-key", path: "seed" }] });
    assert.deepEqual(mount("nats-operator-signing-key"), { name: "nats-operator-signing-key", mountPath: OPERATOR_KEY_DIR, readOnly: true });
    assert.deepEqual(vol("nats-system-creds")?.secret, { secretName: "celeriac-nats-sys", defaultMode: 0o440, items: [{ key: "sys.creds", path: "nats.creds" }] });
    assert.deepEqual(mount("nats-system-creds"), { name: "nats-system-creds", mountPath: SYSTEM_CREDS_DIR, readOnly: true });
    for (const absent of ["nats-account-signing-key", "nats-creds"]) assert.equal(vol(absent), undefined, `no ${absent} volume`);
    assert.deepEqual(objs.filter((o) => o.kind === "Secret"), [], "the chart never renders a Secret (the account seeds are the operator's)");
    for (const [where, tpl] of podTemplatesOf(objs)) assertRestricted(tpl.spec, where);
  });

  it("grants the minting Secret rules cluster-wide and get/create on Secrets in the release namespace only (cluster mode)", () => {
    const verbs = secretVerbs(objs);
    assert.deepEqual([...verbs.keys()].sort(), ["*", RELEASE_NS]);
    assert.deepEqual(verbs.get("*"), WATCHED_SECRET_VERBS, "ClusterRole celeriac");
    assert.deepEqual(verbs.get(RELEASE_NS), SEED_SECRET_VERBS, "the account seeds' Role");
    const role = objs.find((o) => o.kind === "Role" && o.metadata.name === "celeriac-nats-accounts");
    assert.equal(role?.metadata.namespace, RELEASE_NS);
    assert.deepEqual(role?.rules, [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "create"] }], "the seeds' Role holds nothing else");
    const lease = objs.find((o) => o.kind === "Role" && o.metadata.name === "celeriac-leader-election");
    assert.deepEqual(lease?.rules, [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] }], "the leader-election Role is unchanged");
  });

  it("grants the minting Secret rules in each watched namespace and get/create in the release namespace (namespaced mode)", async () => {
    const o = await helm.render(["namespaced.yaml"], [...ACCOUNTS, "nats.deploy=false"], RELEASE_NS);
    const verbs = secretVerbs(o);
    assert.deepEqual([...verbs.keys()].sort(), [RELEASE_NS, "team-a", "team-b"], "nothing cluster-wide");
    for (const ns of ["team-a", "team-b"]) assert.deepEqual(verbs.get(ns), WATCHED_SECRET_VERBS, `Role ${ns}/celeriac`);
    assert.deepEqual(verbs.get(RELEASE_NS), SEED_SECRET_VERBS);
  });

  it("keeps the release namespace's rules apart when it is also watched", async () => {
    const o = await helm.render([], [...ACCOUNTS, `watchNamespaces={${RELEASE_NS},team-a}`], RELEASE_NS);
    const verbs = secretVerbs(o);
    assert.deepEqual(verbs.get("team-a"), WATCHED_SECRET_VERBS);
    assert.deepEqual(verbs.get(RELEASE_NS), [...new Set([...WATCHED_SECRET_VERBS, ...SEED_SECRET_VERBS])].sort(), "the watched rules plus get for the seeds");
  });
});

describe("when accounts mode is off (the defaults)", { skip }, () => {
  let helm: Helm;
  before(() => {
    helm = makeHelm();
  });
  after(() => helm?.close());

  it("renders none of its variables, volumes or rules, alone or with minting", async () => {
    const mint = ["natsAuth.mint.enabled=true", "natsAuth.mint.accountSigningKeySecret.name=k", "nats.url=nats://nats.nats.svc:4222"];
    for (const [label, sets] of [["defaults", []], ["minting", mint]] as const) {
      const o = await helm.render([], sets, RELEASE_NS);
      const d = operatorOf(o);
      const env = envOf(d);
      for (const v of ACCOUNTS_VARS) assert.equal(env.get(v), undefined, `${label}: ${v}`);
      const pod = d.spec?.template.spec;
      for (const name of ["nats-operator-signing-key", "nats-system-creds"]) {
        assert.equal(pod?.volumes?.find((v) => v.name === name), undefined, `${label}: volume ${name}`);
        assert.equal(pod?.containers[0]?.volumeMounts?.find((m) => m.name === name), undefined, `${label}: mount ${name}`);
      }
      assert.equal(o.find((x) => x.metadata.name === "celeriac-nats-accounts"), undefined, `${label}: no nats-accounts Role or RoleBinding`);
      assert.equal(secretVerbs(o).get(RELEASE_NS), undefined, `${label}: no Secret rule in the release namespace`);
    }
    assert.deepEqual(secretVerbs(await helm.render([], [], RELEASE_NS)), new Map(), "no Secret access at all by default");
  });
});

describe("when accounts-mode values contradict each other", { skip }, () => {
  let helm: Helm;
  before(() => {
    helm = makeHelm();
  });
  after(() => helm?.close());
  /** Asserts `helm template` with the sets exits non-zero with a message matching `message`. */
  const refused = async (sets: string[], message: RegExp): Promise<void> => {
    const r = await helm.run("template", "celeriac", CHART_DIR, ...sets.flatMap((s) => ["--set", s]));
    assert.notEqual(r.code, 0, `accepted: ${sets.join(" ")}`);
    assert.match(r.stderr, message);
  };

  it("refuses accounts mode together with minting", async () => {
    await refused([...ACCOUNTS, "natsAuth.mint.enabled=true", "natsAuth.mint.accountSigningKeySecret.name=k"], /natsAuth\.accounts\.enabled and natsAuth\.mint\.enabled: choose one; .* set natsAuth\.mint\.enabled=false/);
  });

  it("refuses accounts mode with nats.deploy, whose server runs no operator mode", async () => {
    await refused([...ACCOUNTS.filter((s) => !s.startsWith("nats.url")), "nats.deploy=true"], /natsAuth\.accounts\.enabled needs a NATS server in operator mode .* full resolver, which nats\.deploy does not run: .* set nats\.url and nats\.deploy=false/);
  });

  it("refuses accounts mode without the operator signing key Secret or the system creds Secret", async () => {
    await refused(["natsAuth.accounts.enabled=true", "natsAuth.accounts.systemCredsSecret.name=s"], /natsAuth\.accounts\.enabled needs natsAuth\.accounts\.operatorSigningKeySecret\.name: the Secret in the release namespace holding the NATS operator signing key seed/);
    await refused(["natsAuth.accounts.enabled=true", "natsAuth.accounts.operatorSigningKeySecret.name=o"], /natsAuth\.accounts\.enabled needs natsAuth\.accounts\.systemCredsSecret\.name: the Secret in the release namespace holding the \.creds file of a system account user/);
  });

  it("refuses accounts mode with a shared user/password or a shared creds file", async () => {
    await refused([...ACCOUNTS, "nats.auth.existingSecret=u"], /natsAuth\.accounts\.enabled and nats\.auth\.existingSecret: .* takes no user\/password; unset nats\.auth\.existingSecret/);
    await refused([...ACCOUNTS, "nats.credentials.existingSecret=c"], /natsAuth\.accounts\.enabled and nats\.credentials\.existingSecret: .* unset nats\.credentials\.existingSecret/);
  });

  it("refuses, by the schema, a too short lifetime, an invalid Secret name, an empty key and an unknown key", async () => {
    await refused(["natsAuth.accounts.credsTtlSeconds=1"], /\/natsAuth\/accounts\/credsTtlSeconds/);
    await refused(["natsAuth.accounts.operatorSigningKeySecret.name=Not_A_Name"], /\/natsAuth\/accounts\/operatorSigningKeySecret\/name/);
    await refused(["natsAuth.accounts.systemCredsSecret.key="], /\/natsAuth\/accounts\/systemCredsSecret\/key/);
    await refused(["natsAuth.accounts.systemCreds.name=s"], /at '\/natsAuth\/accounts': additional properties 'systemCreds' not allowed/);
  });
});
