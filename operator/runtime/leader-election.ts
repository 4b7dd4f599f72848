/**
 * Leader election on a `coordination.k8s.io/v1` Lease, following client-go's `leaderelection`:
 *
 * - every `retryPeriodMs` a candidate reads the Lease; it takes it when it is absent (create),
 *   unheld (`holderIdentity` empty) or expired (`renewTime + leaseDuration < now`), writing with
 *   the read `resourceVersion` so a 409 means another candidate won the race;
 * - the leader renews every `retryPeriodMs`; if no renew succeeds for `renewDeadlineMs` it has lost
 *   the lease and `onStoppedLeading` is called (the caller then exits the process);
 * - {@link LeaderElector.stop} with `release` (the default) clears `holderIdentity` so a standby
 *   replica takes over on its next retry instead of waiting for expiry.
 *
 * Expiry compares the Lease's `renewTime` with this process's clock, so replicas need roughly
 * synchronised clocks (true on one node and under NTP); the lease duration is this elector's own
 * setting, as in client-go.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { BUILTIN_TYPES, createObject, getObject, isAlreadyExists, isConflict, isNotFound, replaceObject } from "../../kube/k8s-client.js";
import type { KubeObject } from "../../kube/k8s-client.js";
import { runtimeMetrics } from "./metrics.js";

/** `coordination.k8s.io/v1` LeaseSpec. Times are MicroTime strings (6 fractional digits). */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** A Lease object. */
export type Lease = KubeObject & { spec?: LeaseSpec };

/** Options of {@link LeaderElector}. */
export interface LeaderElectorOptions {
  kc: KubeConfig;
  /** Namespace of the Lease. */
  namespace: string;
  /** Lease name, e.g. `celeriac-operator`. */
  name: string;
  /** Holder identity. Default `$POD_NAME`, else `<host>_<pid>_<random>`. */
  identity?: string;
  /** How long a lease is valid after its last renew, ms. Default 15 000. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before giving up, ms. Default 10 000. */
  renewDeadlineMs?: number;
  /** Interval between acquire/renew attempts, ms. Default 2 000. */
  retryPeriodMs?: number;
  /** Called once when this replica becomes leader: start the controllers. */
  onStartedLeading: () => void;
  /** Called once when leadership ends (lost or stopped): the caller should exit. */
  onStoppedLeading: () => void;
  /** Called when the observed leader changes (including to this replica). */
  onNewLeader?: (identity: string) => void;
  logger?: Logger;
  /** Registry for `celeriac_leader_election_is_leader`. Default prom-client's global one. */
  registry?: Registry;
  /** Time source, ms. Default `Date.now`. */
  now?: () => number;
}

/** Elector state: `standby` (trying to acquire), `leading`, or `stopped`. */
export type LeaderState = "standby" | "leading" | "stopped";

/** Kubernetes MicroTime: RFC 3339 with 6 fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** The default holder identity: `$POD_NAME` or `<host>_<pid>_<8 hex>`. */
export function defaultIdentity(): string {
  return process.env.POD_NAME || `${hostname()}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/**
 * Pure check: may `identity` take a lease with this spec at `now`?
 *
 * @returns true when unheld, held by `identity`, or expired (`renewTime + leaseDurationMs <= now`)
 */
export function canAcquire(spec: LeaseSpec | undefined, identity: string, now: number, leaseDurationMs: number): boolean {
  const holder = spec?.holderIdentity ?? "";
  if (holder === "" || holder === identity) return true;
  const renew = spec?.renewTime ? Date.parse(spec.renewTime) : NaN;
  if (Number.isNaN(renew)) return true;
  return renew + leaseDurationMs <= now;
}

/** A leader-election candidate. `start()` once; `stop()` once. */
export class LeaderElector {
  /** This candidate's holder identity. */
  readonly identity: string;
  private readonly o: Required<Pick<LeaderElectorOptions, "leaseDurationMs" | "renewDeadlineMs" | "retryPeriodMs">> & LeaderElectorOptions;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private readonly gauge;
  private st: LeaderState = "standby";
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  private observedHolder = "";
  private lease: Lease | undefined;
  private busy: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private started = false;
  private attempted = false;

  /** @param opts see {@link LeaderElectorOptions} */
  constructor(opts: LeaderElectorOptions) {
    this.o = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, ...opts };
    if (this.o.renewDeadlineMs >= this.o.leaseDurationMs) throw new Error("create leader elector: renewDeadline must be shorter than leaseDuration");
    this.identity = opts.identity ?? defaultIdentity();
    this.now = opts.now ?? Date.now;
    this.log = opts.logger?.child({ lease: `${opts.namespace}/${opts.name}`, identity: this.identity });
    this.gauge = runtimeMetrics(opts.registry).isLeader;
    this.gauge.set({ lease: opts.name }, 0);
  }

  /** Current state. */
  state(): LeaderState {
    return this.st;
  }

  /** True while this replica holds the lease. */
  isLeader(): boolean {
    return this.st === "leading";
  }

  /**
   * True once the first acquire attempt has finished (won, lost or timed out after the renew
   * deadline). Before that, `state()` is `standby` without meaning another replica leads.
   */
  hasAttempted(): boolean {
    return this.attempted;
  }

  /** The holder last observed on the Lease (`""` when none). */
  leader(): string {
    return this.observedHolder;
  }

  /** Starts trying to acquire the lease (first attempt at once). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.schedule(0);
  }

  /**
   * Stops the elector. When leading and `release` is true (default), clears the holder so another
   * replica takes over at once; then calls `onStoppedLeading` if it was leading. Memoised.
   */
  stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      const wasLeading = this.st === "leading";
      this.st = "stopped";
      if (this.timer) clearTimeout(this.timer);
      await this.busy.catch(() => undefined);
      if (wasLeading && opts.release !== false) await this.release();
      this.gauge.set({ lease: this.o.name }, 0);
      if (wasLeading) this.o.onStoppedLeading();
    })();
    return this.stopping;
  }

  private schedule(ms: number): void {
    if (this.st === "stopped") return;
    this.timer = setTimeout(() => {
      this.busy = this.tick().catch((err) => this.log?.warn({ err }, "Leader election attempt failed"));
      void this.busy.then(() => this.schedule(this.jitter()));
    }, ms);
  }

  private jitter(): number {
    return this.st === "leading" ? this.o.retryPeriodMs : Math.round(this.o.retryPeriodMs * (1 + Math.random() * 0.2));
  }

  private async tick(): Promise<void> {
    if (this.st === "stopped") return;
    let ok = false;
    try {
      // A hung request must not outlive the renew deadline: treat it as a failed attempt.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.o.renewDeadlineMs);
      });
      ok = await Promise.race([this.tryAcquireOrRenew(), timeout]);
      clearTimeout(timer);
    } catch (err) {
      this.log?.debug({ err }, "Lease acquire or renew failed");
    }
    this.attempted = true;
    // Re-read state after the await: stop() may have run meanwhile.
    const state = this.st as LeaderState;
    if (state === "stopped") return;
    const now = this.now();
    if (ok) {
      this.lastRenew = now;
      if (state === "standby") {
        this.st = "leading";
        this.gauge.set({ lease: this.o.name }, 1);
        this.log?.info("Leader lease acquired");
        this.o.onStartedLeading();
      }
    } else if (state === "leading" && now - this.lastRenew >= this.o.renewDeadlineMs) {
      this.st = "stopped";
      this.gauge.set({ lease: this.o.name }, 0);
      this.log?.error({ lastRenew: microTime(this.lastRenew) }, "Leader lease lost");
      this.o.onStoppedLeading();
    }
  }

  private observe(holder: string): void {
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder) {
        this.log?.info({ leader: holder }, "New leader observed");
        this.o.onNewLeader?.(holder);
      }
    }
  }

  private ref() {
    return { ...BUILTIN_TYPES.Lease, namespace: this.o.namespace, name: this.o.name };
  }

  /** One attempt: true when this replica holds a freshly renewed lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    const durationSeconds = Math.max(1, Math.ceil(this.o.leaseDurationMs / 1000));
    let current: Lease;
    try {
      current = await getObject<Lease>(this.o.kc, this.ref());
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        this.lease = await createObject<Lease>(this.o.kc, BUILTIN_TYPES.Lease, {
          metadata: { name: this.o.name, namespace: this.o.namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        }, this.identity.slice(0, 128));
        this.observe(this.identity);
        return true;
      } catch (e) {
        if (isAlreadyExists(e)) return false;
        throw e;
      }
    }
    const spec = current.spec ?? {};
    this.observe(spec.holderIdentity ?? "");
    if (!canAcquire(spec, this.identity, now, this.o.leaseDurationMs)) return false;
    const mine = spec.holderIdentity === this.identity;
    const next: Lease = {
      ...current,
      spec: {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      this.lease = await replaceObject<Lease>(this.o.kc, this.ref(), next, this.identity.slice(0, 128));
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    this.observe(this.identity);
    return true;
  }

  private async release(): Promise<void> {
    try {
      const current = await getObject<Lease>(this.o.kc, this.ref());
      if (current.spec?.holderIdentity !== this.identity) return;
      const now = this.now();
      await replaceObject<Lease>(this.o.kc, this.ref(), {
        ...current,
        spec: { ...current.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime(now) },
      }, this.identity.slice(0, 128));
      this.log?.info("Leader lease released");
    } catch (err) {
      this.log?.warn({ err }, "Leader lease not released");
    }
  }
}
