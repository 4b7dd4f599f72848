import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TokenBucket } from "../../../operator/flow/token-bucket.js";

const T0 = 1_700_000_000_000;

describe("when a token bucket refills", () => {
  it("starts full at its capacity and empties one token per take", () => {
    const b = new TokenBucket(10, 3, T0);
    assert.equal(b.tokens(T0), 3);
    assert.equal(b.take(T0), true);
    assert.equal(b.take(T0), true);
    assert.equal(b.take(T0), true);
    assert.equal(b.take(T0), false);
    assert.equal(b.available(T0), false);
  });

  it("refills continuously at its rate and never above its capacity", () => {
    const b = new TokenBucket(10, 2, T0);
    b.take(T0);
    b.take(T0);
    assert.ok(Math.abs(b.tokens(T0 + 50) - 0.5) < 1e-9);
    assert.equal(b.available(T0 + 99), false);
    assert.equal(b.available(T0 + 100), true);
    assert.equal(b.tokens(T0 + 10_000), 2);
  });

  it("says when the next token is there, in whole ms rounded up", () => {
    const b = new TokenBucket(3, 1, T0);
    assert.equal(b.readyAtMs(T0), T0);
    b.take(T0);
    assert.equal(b.readyAtMs(T0), T0 + 334);
    assert.equal(b.available(T0 + 333), false);
    assert.equal(b.available(T0 + 334), true);
    b.take(T0 + 334);
    // the fraction earned past the token is kept: no drift
    assert.equal(b.readyAtMs(T0 + 334), T0 + 667);
  });

  it("does not lose rate when the caller comes back late (capacity 1: up to half a token of slack), and keeps the window bound", () => {
    const b = new TokenBucket(50, 1, T0);
    const times: number[] = [];
    let now = T0;
    while (now <= T0 + 10_000) {
      if (b.take(now)) times.push(now);
      now = b.readyAtMs(now) + 1; // 1 ms late every time
    }
    assert.ok(times.length >= 499 && times.length <= 501, `${times.length} takes in 10 s at 50/s`);
    let most = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[j]! < times[i]! - 1_000) j++;
      most = Math.max(most, i - j + 1);
    }
    assert.ok(most <= 51, `${most} in a 1 s window`);
    // idle: the slack is not shown, and the burst is still the capacity
    assert.equal(b.tokens(T0 + 60_000), 1);
    assert.equal(b.take(T0 + 60_000), true);
    assert.equal(b.take(T0 + 60_000), false);
  });

  it("adds nothing when the clock goes back", () => {
    const b = new TokenBucket(1, 1, T0);
    b.take(T0);
    assert.equal(b.tokens(T0 - 5_000), 0);
    assert.ok(Math.abs(b.tokens(T0 + 500) - 0.5) < 1e-9);
  });

  it("keeps its earned tokens, capped, when reconfigured", () => {
    const b = new TokenBucket(1, 5, T0);
    for (let i = 0; i < 5; i++) b.take(T0);
    b.reconfigure(100, 5, T0 + 2_000); // 2 tokens earned at 1/s
    assert.ok(Math.abs(b.tokens(T0 + 2_000) - 2) < 1e-9);
    assert.ok(Math.abs(b.tokens(T0 + 2_010) - 3) < 1e-9);
    b.reconfigure(100, 1, T0 + 2_010);
    assert.equal(b.tokens(T0 + 2_010), 1);
  });

  it("refuses a rate or capacity that is not positive, naming it", () => {
    assert.throws(() => new TokenBucket(0, 1, T0), /perSecond: 0/);
    assert.throws(() => new TokenBucket(Number.NaN, 1, T0), /perSecond: NaN/);
    assert.throws(() => new TokenBucket(1, 0.5, T0), /capacity: 0.5/);
  });
});
