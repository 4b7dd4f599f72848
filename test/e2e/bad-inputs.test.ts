/**
 * Bad inputs, end to end, on one local platform: every case in test/e2e/bad-inputs-table.ts must be refused
 * with a text naming the field and the fix — manifests through `kubectl apply` (one apply of many documents,
 * one error record each) and through `celeriac validate`, CLI flags through `node bin/celeriac.js`, and raw
 * messages on a queue's task subject, which must land in the dead-letter stream with their reason and their
 * original bytes. Nothing is lost: afterwards the operator and the workers still run a good Task to Succeeded.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { HEADERS } from "../../api/message.js";
import { queueNames } from "../../api/naming.js";
import { REPO_ROOT } from "../../devcluster/platform/paths.js";
import { runTool, waitFor, type ToolRun } from "../helpers/k8s-tools.js";
import { FLAG_CASES, MANIFEST_CASES, MESSAGE_CASES, VALIDATE_ONLY_CASES, WORK_QUEUE, envelope, type Expect, type ManifestCase } from "./bad-inputs-table.js";
import { LOCAL_ONLY, queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- kubectl -o json output is arbitrary JSON
type J = any;

/** Asserts that `text` names the field and the fix of `want`. */
function assertNames(text: string | undefined, want: Expect, what: string): void {
  assert.ok(text !== undefined, `${what}: no error text found`);
  assert.ok(text.includes(want.field), `${what} should name the field (${JSON.stringify(want.field)}):\n${text}`);
  assert.ok(text.includes(want.fix), `${what} should name the fix (${JSON.stringify(want.fix)}):\n${text}`);
}

const nameOf = (c: ManifestCase): string => /\n {2}name: (".*")\n/.exec(c.text)?.[1] ?? /name: ([^}\s]+)/.exec(c.text)?.[1] ?? "";

/** Runs `node bin/celeriac.js args…` in `cwd` with a clean Celeriac environment. */
function celeriac(args: string[], cwd: string, timeoutMs = 30_000): Promise<ToolRun> {
  return runTool(process.execPath, [join(REPO_ROOT, "bin", "celeriac.js"), ...args], {}, timeoutMs, { cwd, dropEnv: (k) => k.startsWith("CELERIAC_") || k === "KUBECONFIG" });
}

/** Maps `fn` over `items`, at most `limit` at a time. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

describe("when bad inputs reach Celeriac", { timeout: 180_000, skip: LOCAL_ONLY }, () => {
  let e: E2E;
  let work: string;
  before(async () => {
    e = await startE2E();
    work = mkdtempSync(join(e.dir, "bad-inputs-"));
    const r = await e.apply(queueYaml(WORK_QUEUE, e.eventsLog));
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => e?.stop());

  describe("when manifests are applied with kubectl", () => {
    const cases = MANIFEST_CASES.filter((c) => c.kubectl !== "skip");
    let run: ToolRun;
    let records: string[];
    before(async () => {
      const befores = cases.filter((c) => c.before).map((c) => c.before!);
      if (befores.length > 0) {
        const b = await e.apply(befores.join("---\n"));
        assert.equal(b.code, 0, b.stderr);
      }
      // one apply of every document: kubectl reports one error record per refused object
      run = await e.apply(cases.map((c) => c.text).join("---\n"));
      records = run.stderr.split(/(?=Error from server|resource mapping not found|\nerror: |\nThe [A-Z][A-Za-z]* ")/);
    });

    it("exits non-zero and creates none of the refused objects", async () => {
      assert.notEqual(run.code, 0);
      const created = run.stdout.split("\n").filter((l) => / (created|configured)$/.test(l));
      const accepted = cases.filter((c) => c.kubectl === "status").map((c) => nameOf(c).replace(/"/g, ""));
      for (const line of created) assert.ok(accepted.some((n) => line.includes(`/${n} `)), `kubectl accepted an object it should refuse: ${line}`);
    });
    for (const c of cases) {
      const want = c.kubectlExpect ?? c.expect;
      if (c.kubectl === "status") {
        it(`reports ${c.name} in ${c.status!.resource}'s ${c.status!.condition} condition`, c.todo ? { todo: c.todo } : {}, async () => {
          let message: string | undefined;
          // the condition may first say less (`0 of 1 workers ready`) before it says why: poll for the field
          await waitFor(`${c.status!.resource} ${c.status!.condition}=False naming ${want.field}`, async () => {
            const r = await e.kubectl(["get", c.status!.resource, "-o", "json"]);
            const cond = r.code === 0 ? (JSON.parse(r.stdout) as J).status?.conditions?.find((x: J) => x.type === c.status!.condition && x.status === "False") : undefined;
            message = cond?.message ?? message;
            return message?.includes(want.field) === true;
          }, 60_000, 200).catch(() => undefined); // assertNames below says what the message lacks
          if (c.cleanup) await e.kubectl(["delete", c.status!.resource, "--wait=false"]);
          assertNames(message, want, `${c.status!.resource} condition`);
        });
      } else {
        it(`refuses ${c.name}`, c.todo ? { todo: c.todo } : {}, () => {
          const key = c.key ?? nameOf(c);
          assertNames(records.find((r) => r.includes(key)), want, `kubectl's error for ${key.slice(0, 60)}`);
        });
      }
    }
  });

  describe("when the same manifests are checked with celeriac validate", () => {
    const cases = [...MANIFEST_CASES, ...VALIDATE_ONLY_CASES].filter((c) => c.validate !== "skip");
    const files = cases.map((c, i) => `${String(i).padStart(3, "0")}-${c.name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/-$/, "")}.${c.ext ?? "yaml"}`);
    let dir: string;
    let run: ToolRun;
    const block = (file: string): string | undefined => {
      const lines = run.stdout.split("\n");
      const i = lines.findIndex((l) => l.startsWith(join(dir, file)));
      if (i < 0) return undefined;
      const end = lines.findIndex((l, j) => j > i && !l.startsWith("  "));
      return lines.slice(i, end < 0 ? undefined : end).join("\n");
    };
    before(async () => {
      dir = join(work, "validate");
      mkdirSync(dir);
      cases.forEach((c, i) => writeFileSync(join(dir, files[i]!), c.text));
      run = await celeriac(["validate", dir], work);
    });

    it("reports every file invalid, with a summary, and exits 1", () => {
      assert.equal(run.code, 1, run.stderr);
      assert.equal(run.stderr.trim(), `${cases.length} files: 0 valid, ${cases.length} invalid, 0 skipped`);
    });
    cases.forEach((c, i) => {
      it(`refuses ${c.name}`, c.todo ? { todo: c.todo } : {}, () => {
        const b = block(files[i]!);
        assert.ok(b && /: invalid/.test(b), `${files[i]} should be reported invalid:\n${b}`);
        assertNames(b, c.validateExpect ?? c.expect, `celeriac validate ${files[i]}`);
      });
    });

    it("reports each file of a mixed folder, good and bad, YAML and JSON, with the summary", async () => {
      const mixed = join(work, "mixed");
      mkdirSync(mixed);
      writeFileSync(join(mixed, "a-good.yaml"), taskYaml("good-a", "default", "a.b"));
      writeFileSync(join(mixed, "b-good.json"), JSON.stringify({ apiVersion: "celeriac.io/v1alpha1", kind: "Queue", metadata: { name: "good-b" }, spec: {} }));
      writeFileSync(join(mixed, "c-bad.yaml"), `${taskYaml("bad-c", "default", "a.b", "  timeoutSeconds: 0\n")}---\n${taskYaml("good-c", "default", "a.b")}`);
      writeFileSync(join(mixed, "d-bad.json"), "{\"apiVersion\": ");
      writeFileSync(join(mixed, "e-other.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n");
      writeFileSync(join(mixed, "f-notes.txt"), "not a manifest");
      const r = await celeriac(["validate", mixed], work);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), "5 files: 3 valid, 2 invalid, 1 skipped");
      assert.match(r.stdout, /a-good\.yaml: Task\/good-a: valid/);
      assert.match(r.stdout, /b-good\.json: Queue\/good-b: valid/);
      assert.match(r.stdout, /c-bad\.yaml: Task\/bad-c: invalid:\n {2}spec\.timeoutSeconds: Invalid value: 0: spec\.timeoutSeconds in body should be greater than or equal to 1/);
      assert.match(r.stdout, /c-bad\.yaml: Task\/good-c: valid/);
      assert.match(r.stdout, /d-bad\.json: invalid: not valid JSON/);
      assert.match(r.stdout, /e-other\.yaml: ConfigMap\/cm: skipped \(not celeriac\.io\)/);
      assert.ok(!r.stdout.includes("f-notes.txt"));
      const good = await celeriac(["validate", join(mixed, "a-good.yaml"), join(mixed, "b-good.json")], work);
      assert.equal(good.code, 0, good.stdout + good.stderr);
      assert.match(good.stdout, /2 files: 2 valid, 0 invalid, 0 skipped/);
    });
  });

  describe("when the CLI is given bad commands and flags", () => {
    let runs: ToolRun[];
    before(async () => {
      const natsUrl = e.platform.natsUrl;
      runs = await pool(FLAG_CASES, 3, (c) => celeriac(c.args.map((a) => a.replace("$NATS", natsUrl)), work));
    });
    after(async () => {
      // a `dev up` that was wrongly accepted started a platform in <work>/.celeriac: stop it
      if (FLAG_CASES.some((c, i) => c.args[0] === "dev" && runs?.[i]?.code === 0)) await celeriac(["dev", "down"], work);
    });
    FLAG_CASES.forEach((c, i) => {
      it(`refuses ${c.name}`, c.todo ? { todo: c.todo } : {}, () => {
        const r = runs[i]!;
        assert.notEqual(r.code, 0, `exit code 0:\n${r.stdout}${r.stderr}`);
        // errors go to stderr; `celeriac validate` reports each file on stdout and the summary on stderr
        assertNames(c.args[0] === "validate" ? r.stdout + r.stderr : r.stderr, c.expect, `celeriac ${c.args.join(" ")}`);
        if (c.not) assert.ok(!r.stdout.includes(c.not), r.stdout);
      });
    });
  });

  describe("when raw messages are published on the task subject", () => {
    const names = queueNames("default", WORK_QUEUE);
    let nc: NatsConnection;
    let js: JetStreamClient;
    let jsm: JetStreamManager;
    let kv: KV;
    /** Dead letters by the work-stream sequence they came from. */
    const dead = new Map<number, { reason: string; detail: string; data: Uint8Array; stream: string }>();
    const seqs: number[] = [];
    let good: string;

    const readDeadLetters = async (): Promise<void> => {
      const info = await jsm.streams.info(names.deadLetterStream);
      for (let s = info.state.first_seq; s <= info.state.last_seq && info.state.messages > 0; s++) {
        const m = await jsm.streams.getMessage(names.deadLetterStream, { seq: s }).catch(() => null);
        if (!m) continue;
        dead.set(Number(m.header.get(HEADERS.deadStreamSeq)), { reason: m.header.get(HEADERS.deadReason), detail: m.header.get(HEADERS.deadDetail), data: m.data, stream: m.header.get(HEADERS.deadStream) });
      }
    };

    before(async () => {
      nc = await connect({ servers: e.platform.natsUrl });
      js = jetstream(nc);
      jsm = await jetstreamManager(nc);
      await waitFor("work stream", () => jsm.streams.info(names.stream).then(() => true, () => false), 30_000, 100);
      kv = await new Kvm(js).open(names.resultsBucket);
      for (const c of MESSAGE_CASES) {
        const h = natsHeaders();
        for (const [k, v] of Object.entries(c.headers ?? {})) h.set(k, v);
        seqs.push((await js.publish(names.taskSubject, c.body, { headers: h })).seq);
      }
      // a good task after the bad ones: the worker still runs it
      const ok = envelope(WORK_QUEUE, { args: ["after the bad ones"] });
      good = String(ok.id);
      await js.publish(names.taskSubject, JSON.stringify(ok), { msgID: good });
      await waitFor("every bad message dead-lettered", async () => {
        await readDeadLetters();
        return seqs.every((s) => dead.has(s));
      }, 60_000, 200).catch(() => undefined); // the per-case tests say which one is missing
    });
    after(() => nc?.close());

    MESSAGE_CASES.forEach((c, i) => {
      it(`dead-letters ${c.name} as ${c.reason}, naming the field and the fix, with the original bytes`, c.todo ? { todo: c.todo } : {}, () => {
        const d = dead.get(seqs[i]!);
        assert.ok(d, `no dead letter for ${c.name} (work-stream seq ${seqs[i]})`);
        assert.equal(d.reason, c.reason, d.detail);
        assert.equal(d.stream, names.stream);
        assertNames(d.detail, c.expect, `dead-letter detail of ${c.name}`);
        assert.equal(Buffer.from(d.data).toString("utf8"), c.body);
      });
    });

    it("refuses a body over the server's max payload at publish, so the producer knows", async () => {
      const big = JSON.stringify(envelope(WORK_QUEUE, { args: ["x".repeat(nc.info!.max_payload + 1)] }));
      await assert.rejects(js.publish(names.taskSubject, big), (err: Error) => /max.?payload/i.test(`${err.message} ${String((err as { code?: string }).code)}`));
    });

    it("still runs a good task published after the bad ones", async () => {
      const rec = await waitFor("good task record Succeeded", async () => {
        const v = await kv.get(good);
        const r = v?.operation === "PUT" ? (v.json() as J) : undefined;
        return r?.status?.phase === "Succeeded" ? r : undefined;
      }, 60_000, 200);
      assert.deepEqual(rec.status.result, { args: ["after the bad ones"], kwargs: {} });
    });

    describe("when a message's origin names a Task it does not belong to", () => {
      for (const [label, uid] of [["without a uid", undefined], ["with another uid", "00000000-0000-4000-8000-000000000000"]] as const) {
        it(`runs it ${label}, keeps its record, and leaves the Task's status alone`, async () => {
          const name = `bi-origin-${uid ? "uid" : "nouid"}`;
          assert.equal((await e.apply(taskYaml(name, WORK_QUEUE, "e2e.echo", "  args: [\"mine\"]\n"))).code, 0);
          const w = await e.kubectl(["wait", "--for=condition=Succeeded", `task/${name}`, "--timeout=60s"]);
          assert.equal(w.code, 0, w.stderr);
          const rogue = envelope(WORK_QUEUE, { args: ["rogue"], origin: { kind: "Task", namespace: "default", name, ...(uid ? { uid } : {}) } });
          await js.publish(names.taskSubject, JSON.stringify(rogue), { msgID: String(rogue.id) });
          await waitFor("rogue record", async () => (await kv.get(String(rogue.id)))?.operation === "PUT", 30_000, 100);
          const why = uid ? `the message's origin uid ${uid} is not the Task's uid` : "the message's origin names the Task without a uid";
          await waitFor(`worker log says: ${why}`, () => readdirSync(join(e.dir, "logs")).some((f) => f.startsWith(`default_${WORK_QUEUE}-workers`) && readFileSync(join(e.dir, "logs", f), "utf8").includes(why)), 30_000, 200);
          const t = JSON.parse((await e.kubectl(["get", "task", name, "-o", "json"])).stdout) as J;
          assert.deepEqual(t.status.result, { args: ["mine"], kwargs: {} });
        });
      }
    });
  });

  describe("when the table is done", () => {
    it("the operator and the workers still run a good Task to Succeeded", async () => {
      assert.ok(e.platform.operators.every((o) => o.exitCode === null && o.signalCode === null), "an operator process exited");
      assert.equal((await e.apply(taskYaml("bi-final", WORK_QUEUE, "e2e.echo", "  args: [\"last\"]\n"))).code, 0);
      const w = await e.kubectl(["wait", "--for=condition=Succeeded", "task/bi-final", "--timeout=60s"]);
      assert.equal(w.code, 0, w.stderr);
      const t = JSON.parse((await e.kubectl(["get", "task", "bi-final", "-o", "json"])).stdout) as J;
      assert.deepEqual(t.status.result, { args: ["last"], kwargs: {} });
    });
  });
});
