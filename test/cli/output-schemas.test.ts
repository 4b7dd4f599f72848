// The `-o json` output of every `celeriac tasks` and `celeriac dlq` command, run as a user runs
// them (the built bin, a real nats-server, a worker with real tasks and dead letters), validated
// with Ajv against the published schemas in docs/schemas/cli/ (written by scripts/generate.ts from
// api/cli-output.ts). The schemas are closed, so a renamed field fails here.
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { CLI_OUTPUT_SCHEMAS, cliSchemaFile } from "../../api/cli-output.js";
import { defineTask, UnrecoverableError } from "../../worker/index.js";
import { startNatsServer, waitFor, type NatsServer } from "../helpers/nats-server.js";
import { fixture, type Fixture } from "../worker/fixture.js";
import { runCeleriac, type CliRun } from "../helpers/cli.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const EMPTY_CWD = mkdtempSync(join(tmpdir(), "celeriac-cwd-"));
after(() => rmSync(EMPTY_CWD, { recursive: true, force: true }));

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => Ajv;
const ajv = new Ajv({ strict: true, allErrors: true });
addFormats(ajv);

/** The validator of `command`'s published schema file (docs/schemas/cli/…). */
function validator(command: string): ValidateFunction {
  const schema = JSON.parse(readFileSync(join(ROOT, "docs", "schemas", "cli", cliSchemaFile(command)), "utf8")) as { $id: string };
  return ajv.getSchema(schema.$id) ?? ajv.compile(schema);
}

/** Asserts that `value` is valid `command` output. */
function assertValid(command: string, value: unknown): void {
  const v = validator(command);
  assert.ok(v(value), `${command}: ${ajv.errorsText(v.errors)}\n${JSON.stringify(value, null, 2).slice(0, 2000)}`);
}

/** Runs `celeriac <args>` as a user would (test/helpers/cli.ts). */
const celeriac = (args: string[]): Promise<CliRun> => runCeleriac(args, EMPTY_CWD);

let healed = false;
const tasks = [
  defineTask("math.add", (args: unknown[]) => (args as number[]).reduce((a, b) => a + b, 0)),
  defineTask("heals", (args: unknown[]) => {
    if (!healed) throw new UnrecoverableError("not yet");
    return { args };
  }),
];

describe("when every tasks and dlq command prints -o json", () => {
  let srv: NatsServer;
  let f: Fixture;
  let common: string[];
  /** Runs the command with -o json, expects exit 0, validates and returns the parsed output. */
  const json = async (command: string, ...args: string[]): Promise<unknown> => {
    const r = await celeriac([...command.split(" "), ...args, ...common, "-o", "json"]);
    assert.equal(r.code, 0, `${command} ${args.join(" ")}: ${r.stderr}`);
    const value: unknown = JSON.parse(r.stdout);
    assertValid(command, value);
    return value;
  };

  before(async () => {
    srv = await startNatsServer();
    f = await fixture(srv, tasks, { concurrency: 4 });
    await f.startWorker();
    common = ["--queue", f.queue, "--namespace", "default", "--nats", srv.url];
    assert.equal(await (await f.client.enqueue("math.add", [2, 3], {}, { taskId: "ok-1" })).result({ timeoutMs: 10_000 }), 5);
    for (const id of ["dead-1", "dead-2"]) await assert.rejects((await f.client.enqueue("heals", [id], { k: 1 }, { taskId: id })).result({ timeoutMs: 10_000 }));
    await waitFor("2 dead letters", async () => (await f.jsm.streams.info(f.names.deadLetterStream)).state.messages === 2);
  });
  after(async () => {
    await f?.close();
    await srv?.cleanup();
  });

  it("publishes one schema file per command, each with its $id", () => {
    for (const [command, schema] of Object.entries(CLI_OUTPUT_SCHEMAS)) {
      const file = JSON.parse(readFileSync(join(ROOT, "docs", "schemas", "cli", cliSchemaFile(command)), "utf8")) as Record<string, unknown>;
      assert.deepEqual(file, JSON.parse(JSON.stringify(schema)), `${command}: run node dist/scripts/generate.js`);
      assert.equal(file.$id, `https://celeriac.io/schemas/cli/${cliSchemaFile(command)}`);
    }
  });

  it("tasks get, list and result match their schemas, and a renamed field does not", async () => {
    const ok = (await json("tasks get", "ok-1")) as Record<string, unknown>;
    assert.equal(ok.phase, "Succeeded");
    const dead = (await json("tasks get", "dead-1")) as Record<string, unknown>;
    assert.equal(dead.argsSource, "dead-letter");
    // a queued task no worker has recorded yet (due in 60 s): the view without a record
    await f.client.enqueue("math.add", [1], {}, { taskId: "later-1", countdownSeconds: 60 });
    const queued = (await json("tasks get", "later-1")) as Record<string, unknown>;
    assert.equal(queued.phase, "Queued");
    assert.equal(queued.record, undefined);
    const list = (await json("tasks list")) as { items: unknown[] };
    assert.ok(list.items.length >= 3);
    assert.equal(await json("tasks result", "ok-1"), 5);

    // the schemas are closed: renaming a field at the top or inside the record fails
    const v = validator("tasks get");
    const { phase, ...rest } = ok;
    assert.equal(v({ ...rest, state: phase }), false);
    const rec = ok.record as { status: Record<string, unknown> };
    const { attempts, ...status } = rec.status;
    assert.equal(v({ ...ok, record: { ...rec, status: { ...status, attempt: attempts } } }), false);
    assert.equal(validator("tasks list")({ items: list.items, total: 1 }), false);
  });

  it("tasks revoke and retry match their schemas", async () => {
    // later-1 is delayed, unrecorded: marked; ok-1 already ended
    const revoked = (await json("tasks revoke", "later-1", "ok-1")) as { items: Array<{ action: string }> };
    assert.deepEqual(revoked.items.map((o) => o.action), ["marked", "finished"]);
    healed = true;
    const retried = (await json("tasks retry", "dead-1")) as { id: string; retryOf: string };
    assert.equal(retried.retryOf, "dead-1");
    assert.deepEqual(await f.client.get(retried.id).result({ timeoutMs: 10_000 }), { args: ["dead-1"] });
    const v = validator("tasks retry");
    const { retryOf, ...rest } = retried;
    assert.equal(v({ ...rest, retry_of: retryOf }), false);
  });

  it("dlq list, show, replay and purge match their schemas", async () => {
    const list = (await json("dlq list")) as { items: Array<{ seq: number; reason: string }> };
    assert.equal(list.items.length, 2);
    assert.ok(list.items.every((d) => d.reason === "Unrecoverable"));
    const [a, b] = list.items as unknown as [{ seq: number }, { seq: number }];
    const shown = (await json("dlq show", String(a.seq))) as Record<string, unknown>;
    assert.equal(typeof shown.bodyBase64, "string");
    const replayed = (await json("dlq replay", String(a.seq))) as { items: Array<{ outcome: string }> };
    assert.deepEqual(replayed.items.map((o) => o.outcome), ["Replayed"]);
    // replayed dead letters list with their replay's state
    await waitFor("the replay recorded", async () => {
      const l = JSON.parse((await celeriac(["dlq", "list", ...common, "-o", "json"])).stdout) as { items: Array<{ seq: number; replay?: { phase?: string } }> };
      return l.items.find((d) => d.seq === a.seq)?.replay?.phase === "Succeeded";
    });
    await json("dlq list");
    const purged = (await json("dlq purge", String(b.seq), "--yes")) as { deleted: number };
    assert.equal(purged.deleted, 1);
    const { bytes, ...rest } = shown;
    assert.equal(validator("dlq show")({ ...rest, size: bytes }), false);
    assert.equal(validator("dlq purge")({ removed: 1, seqs: [b.seq] }), false);
  });
});
