/**
 * The local platform's NATS auth modes below the whole platform: which environment the operator
 * processes get per mode (`operatorNatsAuthEnv`, pure), which key files `setupNatsOperatorMode`
 * writes, and, against a real nats-server run by the platform's own `startNatsServer` with the
 * `full` resolver of accounts mode, that an account pushed at run time survives a restart of the
 * server (its JWT is kept under the platform directory).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { queueNames } from "../../api/naming.js";
import { connectNats, ensureQueueResources, mintTenantAccount, mintUserCreds, natsSettingsFrom, parseOperatorSigner, pushAccountJwt, queueSettings } from "../../nats/index.js";
import { setupNatsOperatorMode, NATS_RESOLVER_DIR } from "../../devcluster/platform/nats-operator-mode.js";
import { startNatsServer, type NatsProcess } from "../../devcluster/platform/nats-process.js";
import { NATS_AUTH_MODES, operatorNatsAuthEnv, type PlatformNatsAuth } from "../../devcluster/platform/platform.js";

describe("when the platform builds its operators' NATS environment", () => {
  const cases: Array<{ name: string; auth: PlatformNatsAuth; want: Record<string, string | undefined> }> = [
    { name: "shared: nothing", auth: { mode: "shared" }, want: {} },
    {
      name: "minted: the account signing key, CELERIAC_NATS_CREDS blanked",
      auth: { mode: "minted", signingKeyFile: "/k/account.nk", accountPublicKey: "ACEL", adminCredsFile: "/k/admin.creds" },
      want: { CELERIAC_NATS_CREDS: "", CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: "/k/account.nk", CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: "ACEL", CELERIAC_NATS_MAX_CONTROL_LINE: "262144" },
    },
    {
      name: "accounts: the operator key and system creds, every other NATS credential removed",
      auth: { mode: "accounts", operatorSigningKeyFile: "/k/operator.nk", systemCredsFile: "/k/sys.creds", accountPublicKey: "ACEL" },
      want: {
        CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE: "/k/operator.nk",
        CELERIAC_NATS_SYSTEM_CREDS: "/k/sys.creds",
        CELERIAC_NATS_MAX_CONTROL_LINE: "262144",
        CELERIAC_NATS_CREDS: undefined,
        CELERIAC_NATS_ACCOUNT_SIGNING_KEY_FILE: undefined,
        CELERIAC_NATS_ACCOUNT_PUBLIC_KEY: undefined,
        CELERIAC_NATS_USER: undefined,
        CELERIAC_NATS_PASSWORD: undefined,
        CELERIAC_NATS_CREDS_SECRET: undefined,
        CELERIAC_NATS_USER_SECRET: undefined,
      },
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(operatorNatsAuthEnv(c.auth), c.want);
    });
  }

  it("accepts exactly shared, minted and accounts", () => {
    assert.deepEqual(NATS_AUTH_MODES, ["shared", "minted", "accounts"]);
  });

  it("refuses a mode whose files are missing, naming the field", () => {
    assert.throws(() => operatorNatsAuthEnv({ mode: "accounts", systemCredsFile: "/k/sys.creds" }), /natsAuth accounts: operatorSigningKeyFile is not set/);
    assert.throws(() => operatorNatsAuthEnv({ mode: "accounts", operatorSigningKeyFile: "/k/op.nk" }), /natsAuth accounts: systemCredsFile is not set/);
    assert.throws(() => operatorNatsAuthEnv({ mode: "minted", accountPublicKey: "A" }), /natsAuth minted: signingKeyFile is not set/);
  });
});

describe("when accounts mode's nats-server (full resolver under the platform dir) is restarted", () => {
  let dir: string;
  let nats: NatsProcess | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "celeriac-platform-auth-"));
  });
  after(async () => {
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes the operator key seed alone (0600) and a system user's creds", async () => {
    const om = await setupNatsOperatorMode(join(dir, "nats-auth"), { resolver: "full" });
    const seed = readFileSync(om.operatorSigningKeyFile, "utf8");
    assert.match(seed, /^SO[A-Z2-7]{50,}\n$/, "one SO… seed and a newline");
    assert.equal(parseOperatorSigner(seed).seed, om.operatorSigner.seed);
    assert.equal(statSync(om.operatorSigningKeyFile).mode & 0o777, 0o600);
    assert.equal(statSync(om.systemCredsFile).mode & 0o777, 0o600);
    assert.match(om.configText, /type: full/);
    assert.ok(om.configText.includes(JSON.stringify(join(dir, "nats-auth", NATS_RESOLVER_DIR))), "the resolver dir is under the platform dir");
  });

  it("keeps a pushed account and its streams across a restart", async () => {
    const om = await setupNatsOperatorMode(join(dir, "nats-auth"), { resolver: "full" });
    const start = (port?: number) => startNatsServer({ dir: join(dir, "nats"), configFile: om.configFile, ...(port ? { port } : {}) });
    nats = await start();
    const sys = await connectNats(natsSettingsFrom({ url: nats.url, name: "system" }, { CELERIAC_NATS_CREDS: om.systemCredsFile }));
    const acc = await mintTenantAccount(parseOperatorSigner(readFileSync(om.operatorSigningKeyFile, "utf8")), { name: "team-a" });
    await pushAccountJwt(sys, acc.jwt);
    await sys.close();
    assert.ok(readdirSync(join(dir, "nats-auth", NATS_RESOLVER_DIR)).some((f) => f.startsWith(acc.publicKey)), "the JWT is stored in the resolver dir");
    const credsFile = join(dir, "team-a-admin.creds");
    writeFileSync(credsFile, (await mintUserCreds(acc.signer, { name: "team-a-admin", ttlSeconds: 600 })).creds, { mode: 0o600 });
    const names = queueNames("team-a", "work");
    let nc = await connectNats(natsSettingsFrom({ url: nats.url, name: "team-a-admin" }, { CELERIAC_NATS_CREDS: credsFile }));
    await ensureQueueResources(await jetstreamManager(nc), names, queueSettings({}));
    await nc.close();

    const port = nats.port;
    await nats.stop();
    // the platform's restart: setup again (same state file), same port and store
    const again = await setupNatsOperatorMode(join(dir, "nats-auth"), { resolver: "full" });
    assert.equal(again.operatorPublicKey, om.operatorPublicKey);
    nats = await start(port);
    // no push this time: the resolver loaded the account from its dir
    nc = await connectNats(natsSettingsFrom({ url: nats.url, name: "team-a-admin" }, { CELERIAC_NATS_CREDS: credsFile }));
    assert.equal((await (await jetstreamManager(nc)).streams.info(names.stream)).config.name, names.stream);
    await nc.close();
    assert.ok(existsSync(join(dir, "nats", "jetstream")));
  });
});
