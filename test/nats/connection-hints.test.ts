/**
 * What a refused NATS connection says to do (nats/connection.ts `authorizationHint`), against a real
 * nats-server in operator mode: no credential, an expired one, one of another account.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount } from "@nats-io/jwt";
import { connectNats, mintUserCreds, natsSettingsFrom, parseAccountSigner } from "../../nats/index.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";

describe("when NATS refuses a connection", () => {
  let srv: NatsServer;
  let dir: string;
  before(async () => {
    srv = await startNatsServer({ operatorMode: true });
    dir = mkdtempSync(join(tmpdir(), "celeriac-hints-"));
  });
  after(async () => {
    await srv.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const refusal = async (env: NodeJS.ProcessEnv): Promise<string> => {
    const err = await connectNats(natsSettingsFrom({ url: srv.url }, env)).then(
      async (nc) => {
        await nc.close();
        return undefined;
      },
      (e: Error) => e,
    );
    assert.ok(err, "the connection was accepted");
    return err.message;
  };

  it("without a credential, it says to set CELERIAC_NATS_CREDS and where minted ones are", async () => {
    const m = await refusal({});
    assert.match(m, /Authorization Violation; the server requires credentials: set CELERIAC_NATS_CREDS to a \.creds file/);
    assert.match(m, /Secret celeriac-producer-nats in your namespace/);
  });

  it("with an expired credential, it says when it expired and to get a fresh one, without printing it", async () => {
    const c = await mintUserCreds(srv.operator!.signer, { name: "old", ttlSeconds: 3, now: new Date(Date.now() - 60_000) });
    const file = join(dir, "expired.creds");
    writeFileSync(file, c.creds);
    const m = await refusal({ CELERIAC_NATS_CREDS: file });
    assert.match(m, new RegExp(`the credential in ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(CELERIAC_NATS_CREDS\\) expired at ${c.expiresAt.toISOString().replace(/[.]/g, "\\.")}: get a fresh one`));
    assert.ok(!m.includes(c.jwt) && !m.includes("SU"), "the message holds no credential");
  });

  it("with a credential of an account the server does not know, it says it was refused", async () => {
    const other = createAccount();
    const signer = parseAccountSigner(new TextDecoder().decode(other.getSeed()));
    const c = await mintUserCreds(signer, { name: "stranger", ttlSeconds: 600 });
    const file = join(dir, "stranger.creds");
    writeFileSync(file, c.creds);
    const m = await refusal({ CELERIAC_NATS_CREDS: file });
    assert.match(m, /the server refused the credential in .*stranger\.creds \(CELERIAC_NATS_CREDS\): it is for another NATS operator or account, or was revoked/);
  });
});
