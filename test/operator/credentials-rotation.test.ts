// The rotation decision: when a minted credential is replaced (pure table test).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renewAt, rotationDecision, type LiveCredential } from "../../operator/credentials/rotation.js";

const T0 = new Date("2026-01-01T00:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const HASH = "h1";
const ISSUER = "AISSUER";
const live = (o: Partial<LiveCredential> = {}): LiveCredential => ({ issuedAt: T0, expiresAt: at(900), permissionsHash: HASH, issuer: ISSUER, ...o });

describe("when a credential's renewal point is computed", () => {
  it("falls when 1/3 of the lifetime remains", () => {
    assert.deepEqual(renewAt(T0, at(900)), at(600));
    assert.deepEqual(renewAt(T0, at(6)), at(4));
    assert.deepEqual(renewAt(T0, at(86400)), at(57600));
  });
});

describe("when the rotation decision is taken", () => {
  const cases: Array<[string, LiveCredential | undefined, number, ReturnType<typeof rotationDecision>]> = [
    ["no Secret", undefined, 0, { action: "mint", reason: "Missing" }],
    ["unreadable creds data", live({ expiresAt: undefined }), 0, { action: "mint", reason: "Unreadable" }],
    ["no issued-at annotation", live({ issuedAt: undefined }), 0, { action: "mint", reason: "Unreadable" }],
    ["expiry before issue", live({ expiresAt: at(-1) }), 0, { action: "mint", reason: "Unreadable" }],
    ["permissions changed (a Queue added to the namespace)", live({ permissionsHash: "h2" }), 10, { action: "mint", reason: "PermissionsChanged" }],
    ["another signing key", live({ issuer: "AOTHER" }), 10, { action: "mint", reason: "SigningKeyChanged" }],
    ["another TTL configured", live({ expiresAt: at(3600) }), 10, { action: "mint", reason: "LifetimeChanged" }],
    ["fresh", live(), 0, { action: "keep", renewAt: at(600) }],
    ["just before the renewal point", live(), 599.999, { action: "keep", renewAt: at(600) }],
    ["at the renewal point", live(), 600, { action: "mint", reason: "Expiring" }],
    ["expired", live(), 1000, { action: "mint", reason: "Expiring" }],
  ];
  for (const [what, l, nowS, want] of cases) {
    it(`${want.action === "mint" ? `mints (${want.reason})` : "keeps"} with ${what}`, () => {
      assert.deepEqual(rotationDecision({ live: l, hash: HASH, issuer: ISSUER, ttlSeconds: 900, now: at(nowS) }), want);
    });
  }
  it("tolerates a lifetime off by up to a second (JWT times are whole seconds)", () => {
    assert.equal(rotationDecision({ live: live({ expiresAt: at(901) }), hash: HASH, issuer: ISSUER, ttlSeconds: 900, now: T0 }).action, "keep");
  });
});
