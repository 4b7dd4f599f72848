import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { BUILTIN_TYPES, LeaderElector, canAcquire, getObject, microTime } from "../../../operator/runtime/index.js";
import type { Lease } from "../../../operator/runtime/index.js";
import { eventually, startCluster, type TestCluster } from "./cluster.js";

describe("when a lease is checked for acquisition", () => {
  const now = Date.parse("2026-11-22T06:00:20Z");
  const table: Array<[string, Parameters<typeof canAcquire>[0], boolean]> = [
    ["absent", undefined, true],
    ["unheld", { holderIdentity: "" }, true],
    ["held by me", { holderIdentity: "me", renewTime: "2026-11-22T06:00:19.000000Z" }, true],
    ["held by another, fresh", { holderIdentity: "other", renewTime: "2026-11-22T06:00:10.000000Z" }, false],
    ["held by another, expired", { holderIdentity: "other", renewTime: "2026-11-22T06:00:05.000000Z" }, true],
    ["held by another, no renewTime", { holderIdentity: "other" }, true],
  ];
  for (const [name, spec, want] of table) {
    it(`says ${name} → ${want}`, () => assert.equal(canAcquire(spec, "me", now, 15_000), want));
  }
  it("formats MicroTime with 6 fractional digits", () => {
    assert.equal(microTime(Date.parse("2026-11-22T06:23:11.553Z")), "2026-11-22T06:23:11.553000Z");
  });
});

interface Candidate {
  elector: LeaderElector;
  started: number;
  stopped: number;
}

describe("when two electors compete for one lease", () => {
  let c: TestCluster;
  before(async () => {
    c = await startCluster([]);
  });
  after(async () => {
    await c.close();
  });

  const timing = { leaseDurationMs: 1500, renewDeadlineMs: 1000, retryPeriodMs: 100 };

  function candidate(lease: string, identity: string): Candidate {
    const cand: Candidate = { started: 0, stopped: 0, elector: undefined as unknown as LeaderElector };
    cand.elector = new LeaderElector({
      kc: c.kc,
      namespace: "default",
      name: lease,
      identity,
      ...timing,
      registry: new Registry(),
      onStartedLeading: () => cand.started++,
      onStoppedLeading: () => cand.stopped++,
    });
    return cand;
  }

  async function leaseSpec(name: string): Promise<Lease["spec"]> {
    return (await getObject<Lease>(c.kc, { ...BUILTIN_TYPES.Lease, namespace: "default", name })).spec;
  }

  it("lets exactly one lead, and the other take over after expiry when the leader dies", async () => {
    const a = candidate("le-expiry", "a");
    const b = candidate("le-expiry", "b");
    a.elector.start();
    b.elector.start();
    try {
      await eventually(() => a.elector.isLeader() || b.elector.isLeader(), 3000, "a leader");
      // Stay a while: still exactly one leader, and it keeps renewing.
      const firstRenew = (await leaseSpec("le-expiry"))?.renewTime;
      await eventually(async () => (await leaseSpec("le-expiry"))?.renewTime !== firstRenew, 2000, "renewal");
      assert.notEqual(a.elector.isLeader(), b.elector.isLeader());
      const [leader, standby] = a.elector.isLeader() ? [a, b] : [b, a];
      assert.equal((await leaseSpec("le-expiry"))?.holderIdentity, leader.elector.identity);
      // The standby learns the holder at its next retry period.
      await eventually(() => standby.elector.leader() === leader.elector.identity, 1000, "standby observed the leader");
      // The leader dies without releasing.
      const killedAt = Date.now();
      await leader.elector.stop({ release: false });
      await eventually(() => standby.elector.isLeader(), 4000, "takeover");
      const took = Date.now() - killedAt;
      assert.ok(took <= timing.leaseDurationMs + 3 * timing.retryPeriodMs + 200, `took over within the lease duration (${took} ms)`);
      assert.ok(took >= 300, `waited for expiry rather than taking a live lease (${took} ms)`);
      const spec = await leaseSpec("le-expiry");
      assert.equal(spec?.holderIdentity, standby.elector.identity);
      assert.equal(spec?.leaseTransitions, 1);
      assert.equal(standby.started, 1);
      assert.equal(leader.stopped, 1, "onStoppedLeading called on stop");
    } finally {
      await a.elector.stop();
      await b.elector.stop();
    }
  });

  it("has attempted only once its first acquire attempt is decided, won or lost", async () => {
    const a = candidate("le-attempt", "a");
    assert.equal(a.elector.hasAttempted(), false, "not before start");
    a.elector.start();
    assert.equal(a.elector.hasAttempted(), false, "not while the first attempt is in flight");
    try {
      await eventually(() => a.elector.hasAttempted(), 3000, "a attempted");
      assert.equal(a.elector.isLeader(), true, "a's first attempt won the free lease");
      const b = candidate("le-attempt", "b");
      b.elector.start();
      try {
        await eventually(() => b.elector.hasAttempted(), 3000, "b attempted");
        assert.equal(b.elector.state(), "standby", "b's first attempt lost to a");
      } finally {
        await b.elector.stop();
      }
    } finally {
      await a.elector.stop();
    }
  });

  it("hands over at once when the leader releases the lease", async () => {
    const a = candidate("le-release", "a");
    a.elector.start();
    await eventually(() => a.elector.isLeader(), 3000, "a leads");
    const b = candidate("le-release", "b");
    b.elector.start();
    try {
      await eventually(() => b.elector.leader() === "a", 3000, "b sees a");
      assert.equal(b.elector.isLeader(), false);
      const releasedAt = Date.now();
      await a.elector.stop();
      assert.equal((await leaseSpec("le-release"))?.holderIdentity === "", true, "released");
      await eventually(() => b.elector.isLeader(), 3000, "b takes over");
      const took = Date.now() - releasedAt;
      assert.ok(took < timing.leaseDurationMs / 2, `took over without waiting for expiry (${took} ms)`);
    } finally {
      await a.elector.stop();
      await b.elector.stop();
    }
  });

  it("gives up leadership when renewals fail past the renew deadline", async () => {
    const a = candidate("le-lost", "a");
    a.elector.start();
    try {
      await eventually(() => a.elector.isLeader(), 3000, "a leads");
      // Steal the lease behind a's back (as another replica would after a partition).
      const lease = await getObject<Lease>(c.kc, { ...BUILTIN_TYPES.Lease, namespace: "default", name: "le-lost" });
      const far = Date.now() + 60_000;
      const { replaceObject } = await import("../../../operator/runtime/index.js");
      await replaceObject(c.kc, { ...BUILTIN_TYPES.Lease, namespace: "default", name: "le-lost" }, {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "thief", renewTime: microTime(far) },
      }, "test");
      await eventually(() => a.stopped === 1, 3000, "a stops leading");
      assert.equal(a.elector.state(), "stopped");
    } finally {
      await a.elector.stop();
    }
  });
});
