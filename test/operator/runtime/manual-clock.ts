/** A hand-driven {@link Clock} for tests: timers fire only inside {@link ManualClock.advance}. */
import type { Clock } from "../../../operator/runtime/workqueue.js";

/** Clock whose time moves only when the test calls `advance(ms)`. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Array<{ at: number; seq: number; fn: () => void }> = [];

  /** @param start initial time in ms */
  constructor(start = 1_000_000) {
    this.t = start;
  }

  /** Current time in ms. */
  now(): number {
    return this.t;
  }

  /** Registers a timer due at now + ms; returns its cancel function. */
  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  /** Moves time forward by `ms`, firing due timers in deadline order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }

  /** Number of pending timers. */
  pending(): number {
    return this.timers.length;
  }
}
