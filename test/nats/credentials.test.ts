/**
 * Minting NATS user creds (nats/credentials.ts): the JWT's issuer, account, permissions and expiry,
 * the creds file's expiry and inbox prefix, and bad signer input rejected with a message that names
 * the fix and never contains a seed. Pure (no server); the server-side proof is isolation.test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount, createOperator, createUser, decode, parseCreds, type User } from "@nats-io/jwt";
import { workerInboxPrefix, workerPermissions } from "../../api/nats-permissions.js";
import { credsExpiry, credsIdentity, credsInboxPrefix, mintUserCreds, parseAccountSigner } from "../../nats/credentials.js";
import { natsConnectionOptions, natsSettingsFrom } from "../../nats/connection.js";

const seedOf = (kp: { getSeed(): Uint8Array }) => new TextDecoder().decode(kp.getSeed());

/** Every 58-character nkey seed appearing in `s`. */
const seedsIn = (s: string) => s.match(/S[A-Z][A-Z2-7]{56}/g) ?? [];

describe("when minting user creds", () => {
  const account = createAccount();
  const signingKey = createAccount();
  const accountPub = account.getPublicKey();
  const now = new Date("2030-01-02T03:04:05Z");

  it("signs with an account signing key, naming the account as issuer_account", async () => {
    const signer = parseAccountSigner(seedOf(signingKey), accountPub);
    const m = await mintUserCreds(signer, { name: "w", ttlSeconds: 90, permissions: workerPermissions("team-a", "emails"), now });
    const c = decode<User>(m.jwt);
    assert.equal(c.iss, signingKey.getPublicKey());
    assert.equal(c.nats.issuer_account, accountPub);
    assert.equal(c.sub, m.publicKey);
    assert.match(m.publicKey, /^U[A-Z2-7]{55}$/);
    assert.equal(c.exp, now.getTime() / 1000 + 90);
    assert.equal(m.expiresAt.toISOString(), "2030-01-02T03:05:35.000Z");
    assert.ok(Math.abs(m.issuedAt.getTime() - Date.now()) < 5000);
    assert.deepEqual(c.nats.pub?.allow, workerPermissions("team-a", "emails").pub.allow);
    assert.deepEqual(c.nats.sub?.allow, [`${workerInboxPrefix("team-a", "emails")}.>`, "celeriac.team-a.emails.control.inspect"]);
    const parsed = await parseCreds(new TextEncoder().encode(m.creds));
    assert.equal(parsed.jwt, m.jwt);
    assert.equal(parsed.aid, accountPub);
    assert.match(parsed.key, /^SU/);
  });

  it("signs with the account's identity key when no account key is given, without issuer_account", async () => {
    const signer = parseAccountSigner(`# account key\n${seedOf(account)}\n`);
    assert.equal(signer.account, accountPub);
    const m = await mintUserCreds(signer, { name: "op", ttlSeconds: 60, now });
    const c = decode<User>(m.jwt);
    assert.equal(c.iss, accountPub);
    assert.equal(c.nats.issuer_account, undefined);
    // unrestricted: no allow lists
    assert.deepEqual(c.nats.pub?.allow ?? [], []);
    assert.deepEqual(c.nats.sub?.allow ?? [], []);
  });

  it("mints a fresh user key every time", async () => {
    const signer = parseAccountSigner(seedOf(signingKey), accountPub);
    const [x, y] = await Promise.all([mintUserCreds(signer, { name: "a", ttlSeconds: 60 }), mintUserCreds(signer, { name: "a", ttlSeconds: 60 })]);
    assert.notEqual(x.publicKey, y.publicKey);
  });

  it("rejects a bad name or ttl naming the field", async () => {
    const signer = parseAccountSigner(seedOf(signingKey), accountPub);
    await assert.rejects(mintUserCreds(signer, { name: "", ttlSeconds: 60 }), /name is empty/);
    for (const ttl of [0, -1, 1.5, Number.NaN]) await assert.rejects(mintUserCreds(signer, { name: "a", ttlSeconds: ttl }), /ttlSeconds must be a positive integer/);
  });
});

describe("when reading a creds file", () => {
  it("gives its expiry and its inbox prefix", async () => {
    const signer = parseAccountSigner(seedOf(createAccount()));
    const m = await mintUserCreds(signer, { name: "w", ttlSeconds: 3600, permissions: workerPermissions("team-a", "emails"), now: new Date("2031-05-06T00:00:00Z") });
    assert.equal(credsExpiry(m.creds)?.toISOString(), "2031-05-06T01:00:00.000Z");
    assert.equal(credsInboxPrefix(m.creds), "_INBOX_celeriac_team-a_emails");
    const open = await mintUserCreds(signer, { name: "admin", ttlSeconds: 60 });
    assert.equal(credsInboxPrefix(open.creds), undefined);
    // the worker's sub allow has its inbox and its control subject: the inbox is picked; two inboxes are ambiguous
    const two = await mintUserCreds(signer, { name: "x", ttlSeconds: 60, permissions: { pub: { allow: [] }, sub: { allow: ["celeriac.a.b.control.inspect", "_INBOX_a.>", "_INBOX_b.>"] } } });
    assert.equal(credsInboxPrefix(two.creds), undefined);
  });

  it("signs the response permission into the JWT (ttl in nanoseconds) and reads it back unchanged", async () => {
    const signer = parseAccountSigner(seedOf(createAccount()));
    const perms = workerPermissions("team-a", "emails");
    const m = await mintUserCreds(signer, { name: "w", ttlSeconds: 60, permissions: perms });
    assert.deepEqual(decode<User>(m.jwt).nats.resp, { max: 1, ttl: 60e9 });
    assert.deepEqual(credsIdentity(m.creds).permissions, perms, "so the operator's permissions hash of a live Secret matches the spec's");
    const producer = await mintUserCreds(signer, { name: "p", ttlSeconds: 60, permissions: { pub: { allow: ["x"] }, sub: { allow: ["_INBOX_p.>"] } } });
    assert.equal(credsIdentity(producer.creds).permissions.resp, undefined);
  });

  it("rejects text that is not a creds file, naming the fix", () => {
    assert.throws(() => credsExpiry("hello"), /no `-----BEGIN NATS USER JWT-----` block found; give a .creds file/);
    assert.throws(() => credsExpiry("-----BEGIN NATS USER JWT-----\nabc.def.ghi\n------END NATS USER JWT------\n"), /does not decode.*regenerate the .creds file/);
  });

  it("connection options take the inbox prefix from the creds and read the file again on each connect", async () => {
    const dir = mkdtempSync(join(tmpdir(), "celeriac-creds-"));
    try {
      const signer = parseAccountSigner(seedOf(createAccount()));
      const file = join(dir, "w.creds");
      const first = await mintUserCreds(signer, { name: "w", ttlSeconds: 60, permissions: workerPermissions("team-a", "emails") });
      writeFileSync(file, first.creds);
      const opts = natsConnectionOptions(natsSettingsFrom({ url: "nats://127.0.0.1:1" }, { CELERIAC_NATS_CREDS: file }));
      assert.equal(opts.inboxPrefix, "_INBOX_celeriac_team-a_emails");
      const auth = opts.authenticator as (nonce?: string) => { jwt?: string };
      assert.equal(auth("n1").jwt, first.jwt);
      const second = await mintUserCreds(signer, { name: "w", ttlSeconds: 60, permissions: workerPermissions("team-a", "emails") });
      writeFileSync(file, second.creds);
      assert.equal(auth("n2").jwt, second.jwt);
      const explicit = natsConnectionOptions(natsSettingsFrom({ url: "nats://127.0.0.1:1" }, { CELERIAC_NATS_CREDS: file, CELERIAC_NATS_INBOX_PREFIX: "_INBOX_mine" }));
      assert.equal(explicit.inboxPrefix, "_INBOX_mine");
      assert.throws(() => natsConnectionOptions(natsSettingsFrom({}, { CELERIAC_NATS_CREDS: join(dir, "missing.creds") })), /read NATS creds file .*missing\.creds/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("when the account signer is given bad input", () => {
  const account = createAccount();
  const cases: [string, () => string, string | undefined, RegExp][] = [
    ["empty text", () => "  ", undefined, /seed text is empty; give the account signing key seed/],
    ["no seed", () => "not a key", undefined, /no nkey seed found.*give the account signing key seed/],
    ["an operator seed", () => seedOf(createOperator()), undefined, /holds an operator seed \(SO…\), not an account seed; give the account signing key seed/],
    ["a user seed", () => seedOf(createUser()), undefined, /holds a user seed \(SU…\), not an account seed/],
    ["two account seeds", () => `${seedOf(createAccount())}\n${seedOf(createAccount())}`, undefined, /holds 2 account seeds; give exactly one/],
    ["a corrupted seed", () => seedOf(account).slice(0, -2) + (seedOf(account).endsWith("AA") ? "BB" : "AA"), undefined, /not a valid nkey .*copy the seed again/],
    ["an account key that is not a public account key", () => seedOf(account), "UABC", /"UABC" is not an account public key: give the account's A… key/],
    ["an account key with a bad checksum", () => seedOf(account), account.getPublicKey().slice(0, -1) + (account.getPublicKey().endsWith("A") ? "B" : "A"), /is not a valid nkey \(bad checksum\)/],
  ];
  for (const [what, text, accountKey, fix] of cases) {
    it(`rejects ${what}, naming the fix, with no seed in the message`, () => {
      const t = text();
      let msg = "";
      try {
        parseAccountSigner(t, accountKey);
      } catch (err) {
        msg = (err as Error).message;
      }
      assert.match(msg, fix);
      assert.deepEqual(seedsIn(msg), []);
      for (const s of seedsIn(t)) assert.ok(!msg.includes(s.slice(2, 20)), "no part of the seed in the message");
    });
  }

  it("mintUserCreds rejects a signer whose seed is not an account seed without printing it", async () => {
    const op = seedOf(createOperator());
    await assert.rejects(mintUserCreds({ seed: op, account: account.getPublicKey() }, { name: "a", ttlSeconds: 60 }), (e: unknown) => /not an account seed \(SA…\); build the signer with parseAccountSigner/.test((e as Error).message) && !(e as Error).message.includes(op));
    await assert.rejects(mintUserCreds({ seed: "SAnonsense", account: account.getPublicKey() }, { name: "a", ttlSeconds: 60 }), (e: unknown) => /not a valid nkey seed/.test((e as Error).message) && !(e as Error).message.includes("SAnonsense"));
  });
});
