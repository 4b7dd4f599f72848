/** The alone gate (worker/alone-gate.ts): shared entries overlap, an alone entry has the process to itself. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AloneGate, type GateRelease } from "../../worker/alone-gate.js";

const enter = async (p: GateRelease | Promise<GateRelease>) => (typeof p === "function" ? p : await p);
const settled = async (p: Promise<unknown>) => Promise.race([p.then(() => true), new Promise((r) => setImmediate(() => r(false)))]);

describe("when attempts enter the alone gate", () => {
  it("lets shared entries in at once, without a promise", () => {
    const g = new AloneGate();
    const a = g.shared();
    const b = g.shared();
    assert.equal(typeof a, "function");
    assert.equal(typeof b, "function");
    assert.equal(g.inside, 2);
    assert.equal(g.holding, false);
  });

  it("makes an alone entry wait for the shared ones inside, and holds new shared ones (and pulls) meanwhile", async () => {
    let changes = 0;
    const g = new AloneGate(() => changes++);
    const s1 = await enter(g.shared());
    const alone = g.alone();
    assert.equal(g.holding, true);
    const s2 = enter(g.shared());
    assert.equal(await settled(alone), false);
    s1();
    const releaseAlone = await alone;
    assert.equal(g.inside, 1);
    assert.equal(await settled(s2), false, "a shared entry got in beside the alone one");
    releaseAlone();
    const r2 = await s2;
    assert.equal(g.holding, false);
    assert.ok(changes > 0, "onChange not called when the gate opened");
    r2();
    assert.equal(g.inside, 0);
  });

  it("runs alone entries one at a time, in arrival order", async () => {
    const g = new AloneGate();
    const order: string[] = [];
    const a = g.alone().then((r) => (order.push("a"), r));
    const b = g.alone().then((r) => (order.push("b"), r));
    const ra = await a;
    assert.equal(await settled(b), false);
    ra();
    ra(); // a second release does nothing
    (await b)();
    assert.deepEqual(order, ["a", "b"]);
    assert.equal(g.holding, false);
  });
});
