// The pure parts of the operator's credential minting: which user each Secret holds, its hash, the
// desired Secret, what a live Secret holds, and the configuration that turns minting on.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createAccount, createUser } from "@nats-io/nkeys";
import { decode } from "@nats-io/jwt";
import { LABELS, MANAGED_BY } from "../../api/constants.js";
import { NATS_CREDS_ANNOTATIONS, NATS_CREDS_LABELS, NATS_CREDS_SECRET_KEY, PRODUCER_CREDS_SECRET_NAME } from "../../api/nats-creds-secrets.js";
import { producerPermissions, workerPermissions } from "../../api/nats-permissions.js";
import { natsMintConfigFrom, operatorConfigFrom } from "../../operator/config.js";
import {
  canonicalJson, credsOwnerReferences, CredentialMinter, desiredCredsSecret, isMintedCredsSecret, liveCredential, loadCredentialMinter,
  producerCredentialSpec, workerCredentialSpec,
} from "../../operator/credentials/index.js";
import { parseAccountSigner } from "../../nats/credentials.js";
import { rotationDecision } from "../../operator/credentials/rotation.js";
import { queueWith } from "./queue/fixtures.js";

const te = new TextEncoder();
const td = new TextDecoder();
const account = createAccount();
const ACCOUNT = account.getPublicKey();
const accountSeed = td.decode(account.getSeed());
const minter = new CredentialMinter(parseAccountSigner(accountSeed));

describe("when the credential of a Queue's workers is described", () => {
  it("names the Secret <queue>-worker-nats and takes exactly workerPermissions of the Queue", () => {
    const s = workerCredentialSpec("shop", "emails", ACCOUNT);
    assert.equal(s.secretName, "emails-worker-nats");
    assert.equal(s.role, "worker");
    assert.equal(s.userName, "celeriac-worker.shop.emails");
    assert.deepEqual(s.permissions, workerPermissions("shop", "emails"));
    assert.match(s.hash, /^[0-9a-f]{64}$/);
  });

  it("gives two Queues, or one Queue in two namespaces, different hashes, and the same Queue the same hash", () => {
    const a = workerCredentialSpec("shop", "emails", ACCOUNT).hash;
    assert.equal(workerCredentialSpec("shop", "emails", ACCOUNT).hash, a);
    assert.notEqual(workerCredentialSpec("shop", "orders", ACCOUNT).hash, a);
    assert.notEqual(workerCredentialSpec("bank", "emails", ACCOUNT).hash, a);
    assert.notEqual(workerCredentialSpec("shop", "emails", createAccount().getPublicKey()).hash, a, "another account re-mints");
  });
});

describe("when the producer credential of a namespace is described", () => {
  it("lists every Queue of the namespace in producerPermissions, sorted", () => {
    const s = producerCredentialSpec("shop", ["orders", "emails"], ACCOUNT);
    assert.equal(s.secretName, PRODUCER_CREDS_SECRET_NAME);
    assert.equal(s.role, "producer");
    assert.deepEqual(s.permissions, producerPermissions("shop", ["emails", "orders"]));
  });

  it("changes its hash when a Queue is added or removed, and not when the order or a duplicate changes", () => {
    const one = producerCredentialSpec("shop", ["emails"], ACCOUNT).hash;
    const two = producerCredentialSpec("shop", ["emails", "orders"], ACCOUNT).hash;
    assert.notEqual(one, two);
    assert.equal(producerCredentialSpec("shop", ["orders", "emails", "emails"], ACCOUNT).hash, two);
    assert.equal(producerCredentialSpec("shop", ["emails"], ACCOUNT).hash, one);
  });

  it("hashes canonical JSON: key order does not matter, array order does", () => {
    assert.equal(canonicalJson({ b: 1, a: [2, 1] }), canonicalJson({ a: [2, 1], b: 1 }));
    assert.notEqual(canonicalJson({ a: [1, 2] }), canonicalJson({ a: [2, 1] }));
  });
});

describe("when the desired Secret is built from a minted credential", () => {
  it("holds the creds file under nats.creds, the public facts in annotations, and the Queue as controller owner", async () => {
    const q = queueWith({}, "emails", "shop");
    const spec = workerCredentialSpec("shop", "emails", ACCOUNT);
    // The JWT's iat is the signing time, so mint at the current second.
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const minted = await minter.mint({ name: spec.userName, permissions: spec.permissions, ttlSeconds: 900, now });
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
    const t0 = minted.issuedAt.getTime();
    assert.ok(Math.abs(t0 - now.getTime()) <= 1000, "issued now");
    const s = desiredCredsSecret(spec, minted, credsOwnerReferences(spec, [q]));
    assert.equal(s.metadata.name, "emails-worker-nats");
    assert.equal(s.metadata.namespace, "shop");
    assert.equal(s.type, "Opaque");
    assert.deepEqual(s.metadata.labels, { [LABELS.managedBy]: MANAGED_BY, [NATS_CREDS_LABELS.role]: "worker", [LABELS.queue]: "emails" });
    const creds = Buffer.from(s.data![NATS_CREDS_SECRET_KEY]!, "base64").toString("utf8");
    assert.equal(creds, minted.creds);
    const a = s.metadata.annotations!;
    assert.equal(a[NATS_CREDS_ANNOTATIONS.issuedAt], iso(t0));
    assert.equal(a[NATS_CREDS_ANNOTATIONS.expiresAt], iso(now.getTime() + 900_000));
    assert.equal(a[NATS_CREDS_ANNOTATIONS.renewAt], iso(t0 + Math.floor((now.getTime() + 900_000 - t0) * 2 / 3)));
    assert.equal(a[NATS_CREDS_ANNOTATIONS.permissionsHash], spec.hash);
    assert.equal(a[NATS_CREDS_ANNOTATIONS.issuer], ACCOUNT);
    assert.equal(a[NATS_CREDS_ANNOTATIONS.user], minted.userPublicKey);
    for (const v of Object.values(a)) assert.ok(!v.includes("eyJ") && !/^S[UA]/.test(v), "no secret in annotations");
    assert.deepEqual(s.metadata.ownerReferences, [{ apiVersion: "celeriac.io/v1alpha1", kind: "Queue", name: "emails", uid: "uid-shop-emails", controller: true, blockOwnerDeletion: true }]);
    assert.ok(isMintedCredsSecret(s));

    // The JWT in it carries the permissions and the expiry.
    const jwt = /-----BEGIN NATS USER JWT-----\s*(\S+)/.exec(creds)![1]!;
    const claims = decode<{ pub?: { allow?: string[] }; sub?: { allow?: string[] } }>(jwt);
    assert.equal(claims.exp, now.getTime() / 1000 + 900);
    assert.deepEqual(claims.nats.pub?.allow, spec.permissions.pub.allow);
    assert.deepEqual(claims.nats.sub?.allow, spec.permissions.sub.allow);
  });

  it("makes every Queue of the namespace a plain (non-controller) owner of the producer Secret", () => {
    const qs = [queueWith({}, "orders", "shop"), queueWith({}, "emails", "shop")];
    const spec = producerCredentialSpec("shop", ["orders", "emails"], ACCOUNT);
    const refs = credsOwnerReferences(spec, qs);
    assert.deepEqual(refs.map((r) => [r.name, r.controller, r.blockOwnerDeletion]), [["emails", undefined, undefined], ["orders", undefined, undefined]]);
  });

  it("reads back what the live Secret holds from its creds data, not its annotations", async () => {
    const spec = workerCredentialSpec("shop", "emails", ACCOUNT);
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const minted = await minter.mint({ name: spec.userName, permissions: spec.permissions, ttlSeconds: 60, now });
    const s = desiredCredsSecret(spec, minted, []);
    assert.deepEqual(liveCredential(s), { expiresAt: new Date(now.getTime() + 60_000), issuedAt: minted.issuedAt, permissionsHash: spec.hash, issuer: ACCOUNT });
    assert.equal(liveCredential(undefined), undefined);
    assert.deepEqual(liveCredential({ ...s, data: { [NATS_CREDS_SECRET_KEY]: Buffer.from("garbage").toString("base64") } })?.expiresAt, undefined);
  });

  it("sees another Queue's creds pasted into a Secret, annotations and all, as changed permissions", async () => {
    const spec = workerCredentialSpec("shop", "emails", ACCOUNT);
    const other = workerCredentialSpec("shop", "orders", ACCOUNT);
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const mine = desiredCredsSecret(spec, await minter.mint({ name: spec.userName, permissions: spec.permissions, ttlSeconds: 60, now }), []);
    const theirs = desiredCredsSecret(other, await minter.mint({ name: other.userName, permissions: other.permissions, ttlSeconds: 60, now }), []);
    const edited = { ...mine, data: theirs.data };
    const d = rotationDecision({ live: liveCredential(edited), hash: spec.hash, issuer: minter.issuer, ttlSeconds: 60, now });
    assert.deepEqual(d, { action: "mint", reason: "PermissionsChanged" });
    assert.equal(rotationDecision({ live: liveCredential(mine), hash: spec.hash, issuer: minter.issuer, ttlSeconds: 60, now }).action, "keep");
  });
});

describe("when the minter holds the signing key", () => {
  it("never shows the seed when serialised", () => {
    const text = JSON.stringify({ minter }) + String(minter);
    assert.ok(!text.includes(accountSeed), text);
    assert.deepEqual(JSON.parse(JSON.stringify(minter)), { account: ACCOUNT, issuer: ACCOUNT });
  });

  it("loads the seed from a file and names the variable when the file is missing or holds no account seed", () => {
    const dir = mkdtempSync(join(tmpdir(), "celeriac-creds-"));
    try {
      const file = join(dir, "seed");
      writeFileSync(file, `${accountSeed}\n`);
      assert.equal(loadCredentialMinter(file).account, ACCOUNT);
      assert.throws(() => loadCredentialMinter(join(dir, "absent")), /^Error: CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: cannot read .*absent \(ENOENT\): mount/);
      const userSeed = td.decode(createUser().getSeed());
      writeFileSync(file, userSeed);
      assert.throws(() => loadCredentialMinter(file), (err: Error) => {
        assert.match(err.message, /^CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: .* holds no valid account signing key seed/);
        assert.ok(!err.message.includes(userSeed), "the message does not echo the seed");
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("when the operator configuration turns minting on", () => {
  const file = "/run/secrets/signing-key/seed";
  it("is off without CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE and on with it, TTL 86400 s by default", () => {
    assert.equal(operatorConfigFrom({}, {}).natsMint, undefined);
    assert.deepEqual(natsMintConfigFrom({ CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file }), { mode: "account", signingKeyFile: file, credsTtlSeconds: 86400, maxControlLine: 4096 });
    assert.deepEqual(operatorConfigFrom({}, { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: ACCOUNT, CELERIAC_NATS_CREDS_TTL_SECONDS: "600" }).natsMint, { mode: "account", signingKeyFile: file, accountPublicKey: ACCOUNT, credsTtlSeconds: 600, maxControlLine: 4096 });
  });

  it("takes the NATS server's max_control_line from CELERIAC_NATS_MAX_CONTROL_LINE or --nats-max-control-line (the flag wins), 4096 by default", () => {
    const env = { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_MAX_CONTROL_LINE: "262144" };
    assert.equal(operatorConfigFrom({}, env).natsMint?.maxControlLine, 262144);
    assert.equal(operatorConfigFrom({ natsMaxControlLine: "65536" }, env).natsMint?.maxControlLine, 65536);
    assert.equal(operatorConfigFrom({}, { CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/op.nk", CELERIAC_NATS_SYSTEM_CREDS: "/s", CELERIAC_NATS_MAX_CONTROL_LINE: "8192" }).natsMint?.maxControlLine, 8192);
    assert.throws(() => operatorConfigFrom({ natsMaxControlLine: "4k" }, env), /^Error: --nats-max-control-line: "4k" is not a whole number of bytes ≥ 256: give the max_control_line of your NATS server's config/);
  });

  it("turns on an account per namespace with the operator signing key and system creds; the main connection is the system user's", () => {
    const env = { CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/keys/op.nk", CELERIAC_NATS_SYSTEM_CREDS: "/keys/sys.creds", POD_NAMESPACE: "celeriac-system" };
    const c = operatorConfigFrom({}, env);
    assert.deepEqual(c.natsMint, { mode: "accounts", operatorSigningKeyFile: "/keys/op.nk", systemCredsFile: "/keys/sys.creds", accountsNamespace: "celeriac-system", credsTtlSeconds: 86400, maxControlLine: 4096 });
    assert.equal(c.nats.credsFile, "/keys/sys.creds");
    assert.equal(operatorConfigFrom({}, { ...env, CELERIAC_NATS_ACCOUNTS_NAMESPACE: "keys", CELERIAC_NATS_CREDS_TTL_SECONDS: "600" }).natsMint?.credsTtlSeconds, 600);
    const n = natsMintConfigFrom({ ...env, CELERIAC_NATS_ACCOUNTS_NAMESPACE: "keys" });
    assert.equal(n?.mode === "accounts" && n.accountsNamespace, "keys");
  });

  const bad: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
    ["a TTL that is not a whole number", { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_CREDS_TTL_SECONDS: "1.5" }, /^CELERIAC_NATS_CREDS_TTL_SECONDS: "1.5" is not a whole number of seconds ≥ 3: set e\.g\. 86400/],
    ["a TTL below 3 s", { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_CREDS_TTL_SECONDS: "2" }, /^CELERIAC_NATS_CREDS_TTL_SECONDS: "2"/],
    ["a user key as the account key", { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: createUser().getPublicKey() }, /^CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: "U\w+" is not an account public key .*nsc describe account/],
    ["a garbled account key", { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: "Anope" }, /^CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: "Anope"/],
    ["an account key without the key file", { CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: ACCOUNT }, /^CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: only used when minting credentials: set CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE/],
    ["a TTL without the key file", { CELERIAC_NATS_CREDS_TTL_SECONDS: "600" }, /^CELERIAC_NATS_CREDS_TTL_SECONDS: only used when minting/],
    ["a max_control_line below 256 bytes", { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_MAX_CONTROL_LINE: "100" }, /^CELERIAC_NATS_MAX_CONTROL_LINE: "100" is not a whole number of bytes ≥ 256/],
    ["a max_control_line without the key file", { CELERIAC_NATS_MAX_CONTROL_LINE: "262144" }, /^CELERIAC_NATS_MAX_CONTROL_LINE: only used when minting/],
    ["a shared worker creds Secret as well", { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_CREDS_SECRET: "nats/creds" }, /^CELERIAC_NATS_CREDS_SECRET: workers get minted per-Queue credentials .*: unset CELERIAC_NATS_CREDS_SECRET/],
    ["a user/password Secret as well", { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_USER_SECRET: "nats/u/p" }, /^CELERIAC_NATS_USER_SECRET: /],
    ["an operator user/password", { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file, CELERIAC_NATS_USER: "op" }, /^CELERIAC_NATS_USER: a NATS server in operator mode takes no user\/password/],
    ["system creds without the operator key", { CELERIAC_NATS_SYSTEM_CREDS: "/sys.creds" }, /^CELERIAC_NATS_SYSTEM_CREDS: only used with an account per namespace: set CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE/],
    ["an accounts namespace without the operator key", { CELERIAC_NATS_ACCOUNTS_NAMESPACE: "x" }, /^CELERIAC_NATS_ACCOUNTS_NAMESPACE: only used with an account per namespace/],
    ["the operator key without system creds", { CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/op.nk" }, /^CELERIAC_NATS_SYSTEM_CREDS: required with CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: .*nsc generate creds -a SYS/],
    ["both signing key files", { CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/op.nk", CELERIAC_NATS_SYSTEM_CREDS: "/s", CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file }, /^CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: with CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE .*unset one of the two/],
    ["an account public key with the operator key", { CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/op.nk", CELERIAC_NATS_SYSTEM_CREDS: "/s", CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: ACCOUNT }, /^CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: not used with CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE/],
    ["a creds file with the operator key", { CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/op.nk", CELERIAC_NATS_SYSTEM_CREDS: "/s", CELERIAC_NATS_CREDS: "/c" }, /^CELERIAC_NATS_CREDS: with CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE .*unset CELERIAC_NATS_CREDS/],
    ["a shared creds Secret with the operator key", { CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/op.nk", CELERIAC_NATS_SYSTEM_CREDS: "/s", CELERIAC_NATS_CREDS_SECRET: "n/k" }, /^CELERIAC_NATS_CREDS_SECRET: workers get minted per-Queue credentials when CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE is set/],
    ["a bad accounts namespace", { CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/op.nk", CELERIAC_NATS_SYSTEM_CREDS: "/s", CELERIAC_NATS_ACCOUNTS_NAMESPACE: "Bad_NS" }, /^CELERIAC_NATS_ACCOUNTS_NAMESPACE: "Bad_NS" is not a namespace name/],
  ];
  for (const [what, env, re] of bad) {
    it(`refuses ${what}, naming the variable and the fix`, () => {
      assert.throws(() => operatorConfigFrom({}, env), (err: Error) => re.test(err.message));
    });
  }
  it("keeps the signing key in a file it does not read (only the path is in the config)", () => {
    const c = operatorConfigFrom({}, { CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: file });
    assert.ok(!JSON.stringify(c).includes("SA"), "no seed in the config");
    void te;
  });
});
