/**
 * The NATS server's `max_control_line` and the CONNECT line a minted user sends. Pure constants and
 * arithmetic, shared by the operator (which checks each credential it mints against the limit it is
 * told) and by every NATS config the project ships or generates (devcluster/platform
 * nats-operator-mode.ts, the chart's `nats.server.maxControlLine`).
 *
 * A NATS client sends its user JWT inside the CONNECT line, and nats-server refuses any protocol line
 * longer than `max_control_line` (default 4096 bytes): it logs "maximum control line exceeded" and
 * drops the connection before authenticating, and the client only sees a timeout. The server does
 * not announce the limit in its INFO (only the monitoring `/varz` and `$SYS…VARZ` report it), so the
 * operator is told it (`CELERIAC_NATS_MAX_CONTROL_LINE`).
 *
 * A minted user's JWT grows with the permissions in it (measured): a producer's by about 2,250 bytes
 * per Queue of its namespace for short names (3,464 bytes for one Queue, 5,717 for two, 23,744 for
 * ten, 226,544 for a hundred) and about 7,200 bytes per Queue for 63-character namespace and Queue
 * names; a worker's is about 2,900 bytes for short names and 7,600 for 63-character ones.
 */

/** nats-server's default `max_control_line`, in bytes (4 KiB): what a NATS the operator does not configure is assumed to allow. */
export const NATS_DEFAULT_MAX_CONTROL_LINE = 4096;

/**
 * The `max_control_line` of every NATS config Celeriac ships or generates, in bytes (256 KiB): fits
 * the producer credential of a namespace of about 115 Queues with short names (a 100-Queue JWT is
 * 226,544 bytes, measured), or 35 Queues with 63-character names (254,620 bytes). It bounds only how long one protocol
 * line may be; nats-server allocates what a line actually needs, so a larger limit costs nothing for
 * the short lines of ordinary traffic. nats-server 2.9 accepts it (a 234 KB JWT, 110 Queues,
 * connected, measured; test/nats/credential-size.test.ts connects with 5 Queues' JWT).
 */
export const CELERIAC_NATS_MAX_CONTROL_LINE = 262_144;

/**
 * Bytes of a CONNECT line besides the user JWT, in bytes: `CONNECT {…}\r\n` with nats.js 3's fields
 * (protocol flags, the user's public nkey, the 88-character nonce signature, lang, version) is 300
 * bytes, measured, 333 with a 23-character connection name; the other bytes cover a longer name and
 * other clients' fields. An estimate: a line within about 80 bytes of the limit may go either way.
 */
export const CONNECT_LINE_OVERHEAD_BYTES = 384;

/**
 * How long the CONNECT line of a client presenting `jwt` is, at most, in bytes (the JWT is base64url:
 * one byte per character, JSON needs no escaping).
 * @param jwt the user JWT (or its length in bytes)
 */
export function connectLineBytes(jwt: string | number): number {
  return (typeof jwt === "number" ? jwt : Buffer.byteLength(jwt, "utf8")) + CONNECT_LINE_OVERHEAD_BYTES;
}

/**
 * The user JWT of `.creds` text, or undefined when there is no `-----BEGIN NATS USER JWT-----` block.
 * Does not verify it.
 */
export function credsJwt(credsText: string): string | undefined {
  return /-----BEGIN NATS USER JWT-----\s*([A-Za-z0-9_\-.=]+)\s*------END NATS USER JWT------/.exec(credsText)?.[1];
}

/**
 * Parses a `max_control_line` setting, in bytes.
 * @param name the flag or variable, for the error
 * @param v the text; empty or undefined gives `dflt`
 * @param dflt the value when unset
 * @throws Error naming `name` and the fix when `v` is not a whole number of bytes of at least 256
 */
export function parseMaxControlLine(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined || v.trim() === "") return dflt;
  const n = Number(v.trim());
  if (!Number.isInteger(n) || n < 256) {
    throw new Error(`${name}: "${v}" is not a whole number of bytes ≥ 256: give the max_control_line of your NATS server's config (nats-server's default is ${NATS_DEFAULT_MAX_CONTROL_LINE}; Celeriac's own configs set ${CELERIAC_NATS_MAX_CONTROL_LINE})`);
  }
  return n;
}
