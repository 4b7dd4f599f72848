import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decideReplicas, resolveAutoscaling, type Recommendation, type ScaleInput, type ScaleRule, type ScalingPolicy } from "../../../operator/autoscale/index.js";

const T0 = 1_700_000_000_000;
const s = (seconds: number): number => seconds * 1000;
const policy: ScalingPolicy = { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 10, activationBacklog: 1, scaleDownStabilizationSeconds: 60, cooldownSeconds: 300 };
const base: ScaleInput = { backlog: 0, inFlight: 0, current: 0, policy, suspended: false, now: T0, history: [] };
const input = (over: Partial<Omit<ScaleInput, "policy">> & { policy?: Partial<ScalingPolicy> }): ScaleInput => ({ ...base, ...over, policy: { ...policy, ...over.policy } });
const ago = (seconds: number, replicas: number): Recommendation => ({ at: T0 - s(seconds), replicas });

/** [case, input, desired, rule, reason] */
const cases: Array<[string, ScaleInput, number, ScaleRule, string]> = [
  // suspend
  ["suspended with a backlog scales to zero", input({ suspended: true, backlog: 100, current: 3 }), 0, "suspended", "suspended"],
  ["suspended beats a fixed size", input({ suspended: true, current: 3, policy: { minReplicas: 3, maxReplicas: 3 } }), 0, "suspended", "suspended"],
  // fixed
  ["min == max is a fixed size whatever the backlog", input({ backlog: 0, current: 0, policy: { minReplicas: 3, maxReplicas: 3 } }), 3, "fixed", "fixed size"],
  ["min == max overrides a user's scale", input({ backlog: 500, current: 7, policy: { minReplicas: 3, maxReplicas: 3 } }), 3, "fixed", "fixed size"],
  // activation (0 → 1)
  ["at zero with no backlog stays at zero", input({}), 0, "idle", "idle"],
  ["at zero below the activation backlog stays at zero", input({ backlog: 4, policy: { activationBacklog: 5 } }), 0, "belowActivation", "backlog 4 below activation 5"],
  ["at zero at the activation backlog wakes", input({ backlog: 5, policy: { activationBacklog: 5 } }), 1, "backlog", "backlog 5"],
  ["at zero a burst scales straight to ceil(backlog / target)", input({ backlog: 48 }), 5, "backlog", "backlog 48"],
  ["at zero a burst above max is clamped to max", input({ backlog: 300 }), 5, "backlog", "backlog 300"],
  ["an activation of 0 counts as 1", input({ backlog: 0, policy: { activationBacklog: 0 } }), 0, "idle", "idle"],
  ["min > 0 never stays at zero", input({ backlog: 0, current: 0, policy: { minReplicas: 1 } }), 1, "backlog", "backlog 0"],
  // scale up at once
  ["scales up at once despite a lower window", input({ backlog: 48, current: 2, history: [ago(10, 2), ago(5, 2)] }), 5, "backlog", "backlog 48"],
  ["a user's scale-down below the recommendation is undone at once", input({ backlog: 48, current: 1 }), 5, "backlog", "backlog 48"],
  // stabilization (scale down)
  ["holds while a higher recommendation is in the window", input({ backlog: 20, current: 5, history: [ago(30, 5)] }), 5, "stabilizing", "stabilizing"],
  ["scales down to the highest recommendation in the window", input({ backlog: 20, current: 5, history: [ago(90, 5), ago(30, 4), ago(10, 3)] }), 4, "stabilizing", "stabilizing"],
  ["scales down once the higher recommendations left the window", input({ backlog: 20, current: 5, history: [ago(61, 5), ago(30, 2)] }), 2, "backlog", "backlog 20"],
  ["keeps a sample exactly at the window's edge (HPA: only older ones drop)", input({ backlog: 20, current: 5, history: [ago(60, 5)] }), 5, "stabilizing", "stabilizing"],
  ["scales down at once with a zero window", input({ backlog: 20, current: 5, history: [ago(0.001, 5)], policy: { scaleDownStabilizationSeconds: 0 } }), 2, "backlog", "backlog 20"],
  ["a user's scale-up above the window's highest is undone at once", input({ backlog: 20, current: 9, history: [ago(10, 3)], policy: { maxReplicas: 10 } }), 3, "stabilizing", "stabilizing"],
  ["a lowered maxReplicas applies at once", input({ backlog: 100, current: 5, history: [ago(10, 5)], policy: { maxReplicas: 3 } }), 3, "backlog", "backlog 100"],
  ["minReplicas is a floor when idle", input({ backlog: 0, current: 3, lastActiveAt: T0 - s(1000), policy: { minReplicas: 2 } }), 2, "backlog", "backlog 0"],
  // cooldown (1 → 0)
  ["an empty queue holds one worker during the cooldown", input({ current: 1, lastActiveAt: T0 - s(100) }), 1, "cooldown", "cooldown"],
  ["an empty queue scales to zero when the cooldown has passed", input({ current: 1, lastActiveAt: T0 - s(300) }), 0, "idle", "idle"],
  ["scaling to zero is not delayed by the stabilization window", input({ current: 2, lastActiveAt: T0 - s(301), history: [ago(5, 2)] }), 0, "idle", "idle"],
  ["something in flight blocks scaling to zero", input({ current: 1, inFlight: 1, lastActiveAt: T0 - s(1000) }), 1, "cooldown", "cooldown"],
  ["an unknown last activity starts the cooldown now", input({ current: 2 }), 1, "cooldown", "cooldown"],
  ["a zero cooldown scales to zero on the first empty read", input({ current: 3, history: [ago(1, 3)], policy: { cooldownSeconds: 0 } }), 0, "idle", "idle"],
  ["during the cooldown a higher recent recommendation still holds", input({ current: 3, lastActiveAt: T0 - s(10), history: [ago(10, 3)] }), 3, "stabilizing", "stabilizing"],
];

describe("when the autoscaler decides a worker count", () => {
  for (const [name, i, desired, rule, reason] of cases) {
    it(`${name}: ${desired} (${rule})`, () => {
      const d = decideReplicas(i);
      assert.equal(d.desired, desired);
      assert.equal(d.rule, rule);
      assert.equal(d.reason, reason);
    });
  }
});

describe("when the decision returns its history", () => {
  it("drops recommendations older than the window and appends this one", () => {
    const d = decideReplicas(input({ backlog: 20, current: 2, history: [ago(120, 5), ago(61, 4), ago(59, 3)] }));
    assert.deepEqual(d.history, [ago(59, 3), { at: T0, replicas: 2 }]);
    assert.equal(d.recommendation, 2);
  });

  it("records 1 as the recommendation while holding for the cooldown", () => {
    const d = decideReplicas(input({ current: 1, lastActiveAt: T0 - s(5) }));
    assert.equal(d.recommendation, 1);
    assert.deepEqual(d.history.at(-1), { at: T0, replicas: 1 });
  });

  it("clears the history when suspended", () => {
    assert.deepEqual(decideReplicas(input({ suspended: true, history: [ago(1, 5)] })).history, []);
  });

  it("sets lastActiveAt to now while there is work and keeps it when idle", () => {
    assert.equal(decideReplicas(input({ backlog: 3, current: 1, lastActiveAt: T0 - s(50) })).lastActiveAt, T0);
    assert.equal(decideReplicas(input({ backlog: 0, inFlight: 2, current: 1, lastActiveAt: T0 - s(50) })).lastActiveAt, T0);
    assert.equal(decideReplicas(input({ current: 1, lastActiveAt: T0 - s(50) })).lastActiveAt, T0 - s(50));
  });

  it("does not modify its input", () => {
    const i = input({ backlog: 20, current: 5, history: [ago(30, 5)] });
    const before = structuredClone(i);
    decideReplicas(i);
    assert.deepStrictEqual(i, before);
  });
});

describe("when a burst arrives at an idle queue and drains (min 0, max 5, target 10, 2 s polling)", () => {
  it("goes 0 → 5 on the first read, holds through the window, and returns to 0 after the cooldown", () => {
    const p = resolveAutoscaling({ autoscaling: { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 10 } });
    let current = 0;
    let history: Recommendation[] = [];
    let lastActiveAt: number | undefined;
    const trace: Array<[number, number]> = [];
    // Backlog 300 for 20 s, then draining to 0 by 40 s, then empty.
    const backlogAt = (t: number): number => (t < 20 ? 300 : t < 40 ? Math.round(300 * (1 - (t - 20) / 20)) : 0);
    for (let t = 0; t <= 500; t += 2) {
      const b = backlogAt(t);
      const d = decideReplicas({ backlog: b, inFlight: Math.min(b, current * 4), current, policy: p, suspended: false, now: T0 + s(t), history, lastActiveAt });
      if (d.desired !== current) trace.push([t, d.desired]);
      current = d.desired;
      history = d.history;
      lastActiveAt = d.lastActiveAt;
    }
    assert.deepEqual(trace[0], [0, 5], "scales to max on the first read");
    const lastBusy = 38; // last read with a backlog
    const down = trace.filter(([, r]) => r < 5 && r > 0);
    assert.ok(down.every(([t]) => t > 20 + p.scaleDownStabilizationSeconds - 2), `no scale-down before the window: ${JSON.stringify(trace)}`);
    const zero = trace.find(([, r]) => r === 0);
    assert.ok(zero, "returns to zero");
    assert.equal(zero[0], lastBusy + p.cooldownSeconds, `zero exactly one cooldown after the last read with work: ${JSON.stringify(trace)}`);
    assert.equal(current, 0);
  });
});

describe("when the input is invalid", () => {
  /** [case, input] */
  const bad: Array<[string, ScaleInput]> = [
    ["a negative backlog", input({ backlog: -1 })],
    ["a fractional current", input({ current: 1.5 })],
    ["a NaN time", input({ now: Number.NaN })],
    ["a target of 0", input({ policy: { targetBacklogPerReplica: 0 } })],
    ["min above max", input({ policy: { minReplicas: 6, maxReplicas: 5 } })],
    ["a negative cooldown", input({ policy: { cooldownSeconds: -1 } })],
  ];
  for (const [name, i] of bad) {
    it(`throws a RangeError for ${name}`, () => {
      assert.throws(() => decideReplicas(i), RangeError);
    });
  }
});

describe("when a Queue's autoscaling is resolved", () => {
  it("fills absent fields from the documented defaults", () => {
    assert.deepEqual(resolveAutoscaling({}), {
      provider: "builtin",
      minReplicas: 0,
      maxReplicas: 10,
      targetBacklogPerReplica: 10,
      activationBacklog: 1,
      pollingIntervalSeconds: 2,
      scaleDownStabilizationSeconds: 60,
      cooldownSeconds: 300,
    });
  });

  it("keeps the values the Queue sets", () => {
    const r = resolveAutoscaling({ autoscaling: { provider: "keda", minReplicas: 2, maxReplicas: 4, cooldownSeconds: 0 } });
    assert.equal(r.provider, "keda");
    assert.equal(r.minReplicas, 2);
    assert.equal(r.maxReplicas, 4);
    assert.equal(r.cooldownSeconds, 0);
  });
});
