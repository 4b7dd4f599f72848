// `celeriac enqueue --canvas`: the flag's parsing (pure), and the built bin against a real
// nats-server with a Worker running in this process.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { InvalidCanvasError } from "../../api/canvas.js";
import { parseCanvasFlag } from "../../cli/commands/enqueue.js";
import { chain, connect, type CeleriacClient } from "../../client/index.js";
import { defineTask, UnrecoverableError, Worker } from "../../worker/index.js";
import { startNatsServer, uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

const run = promisify(execFile);
const BIN = fileURLToPath(new URL("../../../bin/celeriac.js", import.meta.url));
const DIR = mkdtempSync(join(tmpdir(), "celeriac-canvas-cli-"));
after(() => rmSync(DIR, { recursive: true, force: true }));

const CHAIN = { kind: "chain", steps: [{ kind: "task", task: "math.add", args: [2, 2] }, { kind: "task", task: "math.mul", args: [4] }] };

describe("when parsing --canvas", () => {
  const files: Record<string, string> = { "c.json": JSON.stringify({ v: 1, canvas: CHAIN }), "-": JSON.stringify(CHAIN) };
  const readFile = (p: string) => {
    const t = files[p];
    if (t === undefined) throw new Error("ENOENT: no such file");
    return t;
  };

  it("reads a document from @file, a bare node from - or @-, and inline JSON", () => {
    assert.deepEqual(parseCanvasFlag("@c.json", readFile), CHAIN);
    assert.deepEqual(parseCanvasFlag("-", readFile), CHAIN);
    assert.deepEqual(parseCanvasFlag("@-", readFile), CHAIN);
    assert.deepEqual(parseCanvasFlag(JSON.stringify(CHAIN), readFile), CHAIN);
  });

  it("is the same wire form as the builders'", async () => {
    const add = defineTask("math.add", () => 0);
    const mul = defineTask("math.mul", () => 0);
    assert.deepEqual(parseCanvasFlag(JSON.stringify({ v: 1, canvas: chain(add.s([2, 2]), mul.s([4])) })), CHAIN);
  });

  const refusals: Array<[string, string, RegExp]> = [
    ["an unreadable file", "@nope.json", /--canvas: cannot read file nope\.json: ENOENT/],
    ["a bare @", "@", /--canvas: "@" needs a file/],
    ["bad JSON", "{", /--canvas: "\{" is not valid JSON/],
    ["another version", '{"v": 2, "canvas": {}}', /"v" must be 1/],
    ["an unknown document field", '{"v": 1, "canvas": {"kind": "task", "task": "a"}, "x": 1}', /unknown field "x" of a canvas document/],
    ["a document without canvas", '{"v": 1}', /the document has no "canvas"/],
  ];
  for (const [what, value, expected] of refusals) {
    it(`refuses ${what}, naming the flag`, () => assert.throws(() => parseCanvasFlag(value, readFile), expected));
  }

  it("refuses a malformed node with InvalidCanvasError naming the source and the path", () => {
    files["bad.json"] = JSON.stringify({ v: 1, canvas: { kind: "chain", steps: [{ kind: "task", task: "a" }, { kind: "task", task: "b", args: 1 }] } });
    assert.throws(
      () => parseCanvasFlag("@bad.json", readFile),
      (e: unknown) => e instanceof InvalidCanvasError && e.path === "canvas.steps[1].args" && e.message === "--canvas (file bad.json): canvas.steps[1].args: must be a JSON array, e.g. [1, 2]",
    );
  });
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `celeriac <args>` without CELERIAC_* variables from the test's environment. */
async function celeriac(args: string[], input?: string): Promise<Ran> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CELERIAC_")));
  const p = run(process.execPath, [BIN, ...args], { cwd: DIR, env, maxBuffer: 16 * 1024 * 1024 });
  p.child.stdin?.end(input ?? "");
  return p.then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

describe("when celeriac enqueue --canvas runs against a worker", () => {
  let srv: NatsServer;
  let client: CeleriacClient;
  let worker: Worker;
  const queue = uniqueQueue("cvc");
  before(async () => {
    srv = await startNatsServer();
    client = await connect({ servers: srv.url, queue, createQueues: true });
    const tasks = [
      defineTask("math.add", ([a, b]: unknown[]) => (a as number) + (b as number)),
      defineTask("math.mul", ([a, b]: unknown[]) => (a as number) * (b as number)),
      defineTask("math.boom", () => {
        throw new UnrecoverableError("boom");
      }),
    ];
    worker = new Worker({ nc: client.connection, tasks, queue, concurrency: 8, logger: pino({ level: "silent" }) });
    await worker.start();
  });
  after(async () => {
    await worker?.close();
    await client?.close();
    await srv?.cleanup();
  });
  const flags = () => ["--queue", queue, "--nats", srv.url];

  it("prints a chain's result with --wait, from @file.json", async () => {
    const file = join(DIR, "chain.json");
    writeFileSync(file, JSON.stringify({ v: 1, canvas: CHAIN }));
    const r = await celeriac(["enqueue", "--canvas", `@${file}`, "--wait", "--timeout", "20", ...flags()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "16");
    // the steps' status.canvas on stderr: both steps Succeeded, the second's parent the first
    const rows = r.stderr.trim().split("\n").map((l) => l.split(/\s{3,}/));
    assert.deepEqual(rows[0], ["STEP", "TASK", "PHASE", "PARENT", "INDEX", "FAILED-STEP"]);
    assert.equal(rows.length, 3, r.stderr);
    assert.deepEqual(rows[1]!.slice(1, 5), ["math.add", "Succeeded", "-", "0"]);
    assert.deepEqual(rows[2]!.slice(1, 5), ["math.mul", "Succeeded", rows[1]![0], "1"]);
  });

  it("reads a bare node from standard input with -, and prints the canvas id without --wait", async () => {
    const id = `cli-${Date.now()}`;
    const r = await celeriac(["enqueue", "--canvas", "-", "--task-id", id, ...flags()], JSON.stringify({ kind: "group", members: [CHAIN, { kind: "task", task: "math.add", args: [1, 2] }] }));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), id);
    assert.deepEqual(await client.canvas(id, (await client.getCanvasRecord(id))!.tree!).result({ timeoutMs: 20_000 }), [16, 3]);
    // another canvas under the same id: refused, naming the flag
    const again = await celeriac(["enqueue", "--canvas", JSON.stringify(CHAIN), "--task-id", id, ...flags()]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`--task-id: canvas id "${id}" is already used by another canvas .*give a new --task-id`));
  });

  it("exits 1 with the failing step's error when a step failed", async () => {
    const r = await celeriac(["enqueue", "--canvas", JSON.stringify({ kind: "chain", steps: [{ kind: "task", task: "math.boom" }, { kind: "task", task: "math.add", args: [1] }] }), "--wait", "--timeout", "20", ...flags()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /-0 \(math\.boom\) failed: UnrecoverableError: boom/);
    assert.match(r.stderr, /-0\s+math\.boom\s+Failed\s/);
  });

  it("exits 1 naming the step whose queue does not exist, publishing nothing", async () => {
    const id = `nq-${Date.now()}`;
    const r = await celeriac(["enqueue", "--canvas", JSON.stringify({ kind: "chain", steps: [{ kind: "task", task: "math.add", args: [1, 1] }, { kind: "task", task: "math.mul", args: [2], options: { queue: "nosuchq" } }] }), "--task-id", id, ...flags()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`canvas step ${id}-1 \\(math\\.mul\\): options\\.queue: queue "nosuchq" does not exist in namespace "default"; existing queues: .*${queue}`));
    assert.equal(await client.get(`${id}-0`).status(), undefined);
  });

  it("exits 1 naming the path of a malformed node, and refuses task flags with --canvas", async () => {
    const bad = await celeriac(["enqueue", "--canvas", "-", ...flags()], JSON.stringify({ v: 1, canvas: { kind: "chain", steps: [{ kind: "task", task: "math.add" }, { kind: "task", task: "no such" }] } }));
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim(), '--canvas (standard input): canvas.steps[1].task: "no such" is not a task name: use letters, digits and _ . : - (starting with a letter or _), at most 200');
    const both = await celeriac(["enqueue", "math.add", "--canvas", "-", ...flags()], JSON.stringify(CHAIN));
    assert.equal(both.code, 1);
    assert.match(both.stderr, /give either a task name \("math\.add"\) or --canvas, not both/);
    const args = await celeriac(["enqueue", "--canvas", "-", "--args", "[1]", ...flags()], JSON.stringify(CHAIN));
    assert.equal(args.code, 1);
    assert.match(args.stderr, /--args cannot be used with --canvas: set it per step/);
    const none = await celeriac(["enqueue", ...flags()]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /give a task name .* or a canvas with --canvas @canvas\.json/);
  });
});
