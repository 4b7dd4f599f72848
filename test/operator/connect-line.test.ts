// The CONNECT-line size check of minted credentials (operator/credentials/connect-line.ts), as a
// table: JWT sizes measured for one, two and a hundred Queues, the boundary, and the message's size,
// limit and fix.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CELERIAC_NATS_MAX_CONTROL_LINE, CONNECT_LINE_OVERHEAD_BYTES, connectLineBytes, credsJwt, NATS_DEFAULT_MAX_CONTROL_LINE, parseMaxControlLine } from "../../api/nats-control-line.js";
import { connectLineCheck, type ConnectLineInput } from "../../operator/credentials/connect-line.js";

const producer = (jwtBytes: number, queues: number, maxControlLine: number): ConnectLineInput => ({ role: "producer", secretName: "celeriac-producer-nats", jwtBytes, queues, maxControlLine });
const worker = (jwtBytes: number, maxControlLine: number): ConnectLineInput => ({ role: "worker", secretName: "emails-worker-nats", jwtBytes, queues: 1, maxControlLine });

describe("when a minted credential's CONNECT line is checked against max_control_line", () => {
  const cases: Array<{ name: string; in: ConnectLineInput; fits: boolean; message?: RegExp[] }> = [
    { name: "a worker of short names (2,906-byte JWT) fits nats-server's default", in: worker(2906, 4096), fits: true },
    { name: "a producer of one Queue (3,464 bytes) fits the default", in: producer(3464, 1, 4096), fits: true },
    {
      name: "a producer of two Queues (5,717 bytes) exceeds the default, naming size, limit and fixes",
      in: producer(5717, 2, 4096),
      fits: false,
      message: [/^The NATS producer credential \(2 Queues of the namespace\) in Secret celeriac-producer-nats has a 5717-byte user JWT/, /needs up to 6101 bytes, over the NATS server's max_control_line of 4096 bytes \(CELERIAC_NATS_MAX_CONTROL_LINE\)/, /maximum control line exceeded/, /set max_control_line: 262144 in the NATS server config and CELERIAC_NATS_MAX_CONTROL_LINE \(chart natsAuth\.maxControlLine\) to match, or split the Queues across namespaces/],
    },
    { name: "the same producer fits Celeriac's 256 KiB", in: producer(5717, 2, CELERIAC_NATS_MAX_CONTROL_LINE), fits: true },
    { name: "a producer of 100 Queues (226,544 bytes, measured) fits 256 KiB", in: producer(226_544, 100, CELERIAC_NATS_MAX_CONTROL_LINE), fits: true },
    { name: "exactly at the limit fits", in: producer(4096 - CONNECT_LINE_OVERHEAD_BYTES, 1, 4096), fits: true },
    { name: "one byte over does not", in: producer(4096 - CONNECT_LINE_OVERHEAD_BYTES + 1, 1, 4096), fits: false, message: [/\(1 Queue of the namespace\)/, /needs up to 4097 bytes/] },
    { name: "over 256 KiB, the fix names the next power of two", in: producer(300_000, 130, CELERIAC_NATS_MAX_CONTROL_LINE), fits: false, message: [/set max_control_line: 524288 /] },
    { name: "a worker of 63-character names (7,577 bytes) exceeds the default; the fix is the limit or shorter names", in: worker(7577, 4096), fits: false, message: [/^The NATS worker credential in Secret emails-worker-nats/, /or shorten the namespace and Queue names$/] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = connectLineCheck(c.in);
      assert.equal(r.fits, c.fits);
      assert.equal(r.connectBytes, c.in.jwtBytes + CONNECT_LINE_OVERHEAD_BYTES);
      if (c.fits) assert.equal(r.message, undefined);
      for (const re of c.message ?? []) assert.match(r.message ?? "", re);
    });
  }

  it("counts a JWT's bytes and reads it from creds text", () => {
    assert.equal(connectLineBytes("abc"), 3 + CONNECT_LINE_OVERHEAD_BYTES);
    assert.equal(connectLineBytes(100), 100 + CONNECT_LINE_OVERHEAD_BYTES);
    assert.equal(credsJwt("-----BEGIN NATS USER JWT-----\neyJ0.eyJh.c2ln\n------END NATS USER JWT------\n\nseed"), "eyJ0.eyJh.c2ln");
    assert.equal(credsJwt("not a creds file"), undefined);
  });

  it("parses a max_control_line setting, refusing what nats-server would not use", () => {
    assert.equal(parseMaxControlLine("X", undefined, NATS_DEFAULT_MAX_CONTROL_LINE), 4096);
    assert.equal(parseMaxControlLine("X", " ", 4096), 4096);
    assert.equal(parseMaxControlLine("X", "262144", 4096), 262144);
    for (const bad of ["4k", "1.5", "-1", "255"]) assert.throws(() => parseMaxControlLine("X", bad, 4096), new RegExp(`^Error: X: "${bad.replace(".", "\\.")}" is not a whole number of bytes ≥ 256`));
  });
});
