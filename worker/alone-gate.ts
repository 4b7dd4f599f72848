/**
 * The gate that lets one attempt run alone on this worker process (see attribution.ts): attempts
 * enter it shared, or alone; an alone entry waits until no other attempt is inside, and while one
 * waits or is inside, shared entries wait and the consumer pulls nothing. Alone entries go one at a
 * time, in arrival order; the shared ones waiting go in together once no alone entry is waiting.
 */

/** Releases an entry; calling it again does nothing. */
export type GateRelease = () => void;

/** A readers–writer gate with writer preference, in-process (no I/O). */
export class AloneGate {
  #shared = 0;
  #alone = false;
  readonly #aloneWaiters: (() => void)[] = [];
  #sharedWaiters: (() => void)[] = [];
  readonly #onChange: () => void;

  /** @param onChange called whenever `holding` may have turned false (the consumer resumes pulling) */
  constructor(onChange: () => void = () => undefined) {
    this.#onChange = onChange;
  }

  /** True while an alone entry is inside or waiting: pull nothing new. */
  get holding(): boolean {
    return this.#alone || this.#aloneWaiters.length > 0;
  }

  /** Attempts inside the gate now (shared ones, or 1 alone). */
  get inside(): number {
    return this.#alone ? 1 : this.#shared;
  }

  /**
   * Enters shared: at once when no alone entry is inside or waiting (the common case, no await), else
   * when the alone entries are done.
   * @returns the release, or a promise of it
   */
  shared(): GateRelease | Promise<GateRelease> {
    if (!this.holding) return this.#enterShared();
    return new Promise((resolve) => this.#sharedWaiters.push(() => resolve(this.#enterShared())));
  }

  /**
   * Enters alone: when no other attempt is inside. From the call on, new shared entries wait.
   * @returns a promise of the release
   */
  alone(): Promise<GateRelease> {
    return new Promise((resolve) => {
      this.#aloneWaiters.push(() => {
        this.#alone = true;
        let done = false;
        resolve(() => {
          if (done) return;
          done = true;
          this.#alone = false;
          this.#next();
        });
      });
      this.#next();
    });
  }

  #enterShared(): GateRelease {
    this.#shared++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#shared--;
      this.#next();
    };
  }

  #next(): void {
    if (this.#alone) return;
    if (this.#aloneWaiters.length > 0) {
      if (this.#shared === 0) this.#aloneWaiters.shift()!();
      return;
    }
    const waiting = this.#sharedWaiters;
    this.#sharedWaiters = [];
    waiting.forEach((w) => w());
    this.#onChange();
  }
}
