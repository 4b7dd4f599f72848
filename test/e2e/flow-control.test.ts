/**
 * End-to-end (issue 15): flow control through kubectl on the local platform — a Queue with
 * concurrency keys and priorities, Tasks with keys, priorities and unique keys: the fields are
 * explained by `kubectl explain`, a key's tasks run one at a time while another key's task is not
 * delayed, a held task says why on the Task (`status.waiting`, the WAITING column), the Queue shows
 * what it holds (`status.flow`, the HELD column), and what the Queue cannot honour is refused on
 * the Task with the field named.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { waitFor } from "../helpers/k8s-tools.js";
import { queueYaml, startE2E, taskYaml, type E2E } from "./helpers.js";

const FLOW = `  concurrencyKeys:
    from: kwargs.tenant
    limit: 1
    overrides: { vip: 3, paused: 0 }
  priorities:
    levels: 3
    default: 0
`;

describe("when a Queue has flow control", { timeout: 240_000 }, () => {
  let e: E2E;
  before(async () => {
    e = await startE2E();
    const q = await e.apply(queueYaml("fc", e.eventsLog, FLOW));
    assert.equal(q.code, 0, q.stderr);
    await waitFor("Queue fc Ready", async () => (await e.kubectl(["get", "queue", "fc", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])).stdout === "True", 90_000, 200);
  });
  after(() => e?.stop());

  it("keeps the per-key maps as applied", async () => {
    const r = await e.kubectl(["get", "queue", "fc", "-o", "jsonpath={.spec.concurrencyKeys.overrides}"]);
    assert.deepEqual(JSON.parse(r.stdout), { vip: 3, paused: 0 });
  });

  it("explains the flow-control fields", async () => {
    const q = await e.kubectl(["explain", "queue.spec.concurrencyKeys"]);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /limit/);
    assert.match(q.stdout, /fairness/);
    const t = await e.kubectl(["explain", "task.spec.unique.policy"]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /Reject/);
  });

  it("runs one key's tasks one at a time, says why the others wait, and does not delay another key", async () => {
    const names = ["a-1", "a-2", "a-3"];
    for (const n of names) {
      const r = await e.apply(taskYaml(n, "fc", "e2e.sleep", "  kwargs:\n    tenant: a\n    ms: 1500\n"));
      assert.equal(r.code, 0, r.stderr);
    }
    const b = await e.apply(taskYaml("b-1", "fc", "e2e.echo", "  kwargs:\n    tenant: b\n"));
    assert.equal(b.code, 0, b.stderr);
    // a held Task says why, on the Task and in kubectl's wide columns
    const waiting = await waitFor("a Task of key a ConcurrencyLimited", async () => {
      const r = await e.kubectl(["get", "tasks", "-o", "wide"]);
      return /ConcurrencyLimited/.test(r.stdout) ? r.stdout : undefined;
    }, 60_000, 100);
    assert.match(waiting!.split("\n")[0]!, /WAITING/);
    const q = await e.kubectl(["get", "queue", "fc", "-o", "wide"]);
    assert.match(q.stdout.split("\n")[0]!, /HELD/);
    for (const n of [...names, "b-1"]) {
      await waitFor(`${n} Succeeded`, async () => (await e.kubectl(["get", "task", n, "-o", "jsonpath={.status.phase}"])).stdout === "Succeeded", 90_000, 200);
    }
    const w = await e.kubectl(["get", "task", "a-3", "-o", "jsonpath={.status.waiting}"]);
    assert.equal(w.stdout, "", "status.waiting is cleared once the task ran");
    // key a never ran two at once; key b's task started before key a's backlog drained
    const uids = new Map<string, string>();
    for (const n of [...names, "b-1"]) uids.set((await e.kubectl(["get", "task", n, "-o", "jsonpath={.metadata.uid}"])).stdout, n);
    const ev = e.events().filter((x) => uids.has(x.taskId));
    const spans = names.map((n) => {
      const id = [...uids].find(([, v]) => v === n)![0];
      return { start: ev.find((x) => x.taskId === id && x.event === "start")!.at, finish: ev.find((x) => x.taskId === id && x.event === "finish")!.at };
    }).sort((x, y) => x.start - y.start);
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i]!.start >= spans[i - 1]!.finish, `key a ran two tasks at once: ${JSON.stringify(spans)}`);
    const bStart = ev.find((x) => uids.get(x.taskId) === "b-1" && x.event === "start")!.at;
    assert.ok(bStart < spans[2]!.start, "key b's task waited behind key a's backlog");
  });

  it("refuses a priority the Queue does not have, naming the field", async () => {
    const r = await e.apply(taskYaml("too-high", "fc", "e2e.echo", "  priority: 7\n"));
    assert.equal(r.code, 0, r.stderr);
    const msg = await waitFor("too-high Failed", async () => {
      const t = await e.kubectl(["get", "task", "too-high", "-o", "jsonpath={.status.phase} {.status.conditions[?(@.type==\"Accepted\")].message}"]);
      return t.stdout.startsWith("Failed") ? t.stdout : undefined;
    }, 60_000, 200);
    assert.match(msg!, /priority/);
    assert.match(msg!, /0 … 2|levels/);
  });
});
