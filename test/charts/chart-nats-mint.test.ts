/**
 * The chart in minting mode (`natsAuth.mint`, test/fixtures/charts/nats-mint.yaml): the account
 * signing key Secret mounted read-only into the operator pod and the minting variables set, settings
 * the operator parses into minting mode, worker pods on `<queue>-worker-nats`, still restricted; and
 * the value combinations it refuses.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1Deployment, V1EnvVar } from "@kubernetes/client-node";
import { operatorConfigFrom } from "../../operator/config.js";
import { desiredWorkerDeployment } from "../../operator/queue/desired-workers.js";
import { NATS_CREDS_SECRET_KEY, workerCredsSecretName } from "../../api/nats-creds-secrets.js";
import { queueWith } from "../operator/queue/fixtures.js";
import { assertRestricted, CHART_DIR, HELM, makeHelm, podTemplatesOf, VALUES_DIR, type Helm, type K8sObject } from "./chart-helpers.js";

const skip = HELM ? false : "helm 4 not available";
const ACCOUNT = "ADRPEY3RK6NPRCWFZSZJBVJHTYT6PEZANGCKVKJEHPXGQ7ZEGAMTPWWV";

const operatorOf = (objs: readonly K8sObject[]): V1Deployment => {
  const d = objs.find((o) => o.kind === "Deployment" && o.metadata.name === "celeriac");
  assert.ok(d, "the operator Deployment celeriac is rendered");
  return d as unknown as V1Deployment;
};
const envOf = (d: V1Deployment): Map<string, V1EnvVar> => new Map((d.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e]));

describe("when the chart mints NATS credentials (nats-mint.yaml)", { skip }, () => {
  let helm: Helm;
  let objs: K8sObject[];
  before(async () => {
    helm = makeHelm();
    objs = await helm.render(["nats-mint.yaml"]);
  });
  after(() => helm?.close());

  it("passes helm lint --strict", async () => {
    const r = await helm.run("lint", "--strict", CHART_DIR, "-f", join(VALUES_DIR, "nats-mint.yaml"));
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it("mounts the account signing key read-only and sets the minting variables", () => {
    const d = operatorOf(objs);
    const env = envOf(d);
    assert.equal(env.get("CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE")?.value, "/var/run/secrets/celeriac.io/nats-account/seed");
    assert.equal(env.get("CELERIAC_NATS_ACCOUNT_PUBLIC_KEY")?.value, ACCOUNT);
    assert.equal(env.get("CELERIAC_NATS_CREDS_TTL_SECONDS")?.value, "3600");
    for (const shared of ["CELERIAC_NATS_CREDS", "CELERIAC_NATS_CREDS_SECRET", "CELERIAC_NATS_USER", "CELERIAC_NATS_USER_SECRET"]) assert.equal(env.get(shared), undefined, shared);
    const pod = d.spec?.template.spec;
    const vol = pod?.volumes?.find((v) => v.name === "nats-account-signing-key");
    assert.deepEqual(vol?.secret, { secretName: "celeriac-nats-account", defaultMode: 0o440, items: [{ key: "signing-key", path: "seed" }] });
    const mount = pod?.containers[0]?.volumeMounts?.find((m) => m.name === "nats-account-signing-key");
    assert.deepEqual(mount, { name: "nats-account-signing-key", mountPath: "/var/run/secrets/celeriac.io/nats-account", readOnly: true });
    assert.deepEqual(objs.filter((o) => o.kind === "Secret"), [], "the chart never renders a Secret");
    for (const [where, tpl] of podTemplatesOf(objs)) assertRestricted(tpl.spec, where);
  });

  it("tells the operator the NATS server's max_control_line: natsAuth.maxControlLine, 4096 by default", async () => {
    assert.equal(envOf(operatorOf(objs)).get("CELERIAC_NATS_MAX_CONTROL_LINE")?.value, "4096");
    const o = await helm.render(["nats-mint.yaml"], ["natsAuth.maxControlLine=262144"]);
    assert.equal(envOf(operatorOf(o)).get("CELERIAC_NATS_MAX_CONTROL_LINE")?.value, "262144");
    const bad = await helm.run("template", "celeriac", CHART_DIR, "-f", join(VALUES_DIR, "nats-mint.yaml"), "--set", "natsAuth.maxControlLine=100");
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /at '\/natsAuth\/maxControlLine': minimum: got 100, want 256/);
  });

  it("reads the account public key from the Secret when given accountPublicKeyKey", async () => {
    const o = await helm.render(["nats-mint.yaml"], ["natsAuth.mint.accountSigningKeySecret.accountPublicKey=", "natsAuth.mint.accountSigningKeySecret.accountPublicKeyKey=account"]);
    assert.deepEqual(envOf(operatorOf(o)).get("CELERIAC_NATS_ACCOUNT_PUBLIC_KEY")?.valueFrom?.secretKeyRef, { name: "celeriac-nats-account", key: "account" });
  });

  it("keeps nats.credentials for the operator's own connection only", async () => {
    const o = await helm.render(["nats-mint.yaml"], ["nats.credentials.existingSecret=celeriac-operator-creds"]);
    const env = envOf(operatorOf(o));
    assert.equal(env.get("CELERIAC_NATS_CREDS")?.value, "/var/run/secrets/celeriac.io/nats-creds/nats.creds");
    assert.equal(env.get("CELERIAC_NATS_CREDS_SECRET"), undefined, "workers do not get the operator's credential");
  });

  it("gives the operator settings it parses into minting mode, and worker pods mount <queue>-worker-nats", () => {
    const env: NodeJS.ProcessEnv = {};
    for (const [name, e] of envOf(operatorOf(objs))) env[name] = e.value ?? `from-${name.toLowerCase()}`;
    const config = operatorConfigFrom({}, env);
    assert.deepEqual(config.natsMint, { mode: "account", signingKeyFile: "/var/run/secrets/celeriac.io/nats-account/seed", accountPublicKey: ACCOUNT, credsTtlSeconds: 3600, maxControlLine: 4096 });
    const q = queueWith({}, "emails", "shop");
    const workers = desiredWorkerDeployment(q, { nats: { ...config.workerNats, credsSecret: { name: workerCredsSecretName("emails"), key: NATS_CREDS_SECRET_KEY } }, workerImage: config.workerImage });
    const pod = workers.spec?.template.spec;
    assert.deepEqual(pod?.volumes?.find((v) => v.secret)?.secret, { secretName: "emails-worker-nats", items: [{ key: "nats.creds", path: "nats.creds" }] });
    const mount = pod?.containers[0]?.volumeMounts?.find((m) => m.mountPath.includes("nats-creds"));
    assert.ok(mount && mount.readOnly && mount.subPath === undefined, "a whole-directory mount, so Kubernetes updates the file on rotation");
    assertRestricted(pod, "worker Deployment");
  });
});

describe("when minting values contradict each other", { skip }, () => {
  let helm: Helm;
  before(() => {
    helm = makeHelm();
  });
  after(() => helm?.close());
  const refused = async (sets: string[], message: RegExp): Promise<void> => {
    const r = await helm.run("template", "celeriac", CHART_DIR, ...sets.flatMap((s) => ["--set", s]));
    assert.notEqual(r.code, 0, `accepted: ${sets.join(" ")}`);
    assert.match(r.stderr, message);
  };

  it("refuses minting without the signing key Secret, with nats.deploy, with user/password, and a malformed key", async () => {
    await refused(["natsAuth.mint.enabled=true"], /natsAuth.mint.enabled needs natsAuth.mint.accountSigningKeySecret.name/);
    await refused(["natsAuth.mint.enabled=true", "natsAuth.mint.accountSigningKeySecret.name=k", "nats.deploy=true"], /NATS server in operator mode .* nats.deploy does not run/);
    await refused(["natsAuth.mint.enabled=true", "natsAuth.mint.accountSigningKeySecret.name=k", "nats.auth.existingSecret=u"], /takes no user\/password; unset nats.auth.existingSecret/);
    await refused(["natsAuth.mint.accountSigningKeySecret.accountPublicKey=UABC"], /\/natsAuth\/mint\/accountSigningKeySecret\/accountPublicKey/);
    await refused(["natsAuth.mint.credsTtlSeconds=1"], /\/natsAuth\/mint\/credsTtlSeconds/);
  });
});
