/**
 * Deterministic names of the Tasks a Schedule creates: `<schedule>-<unix seconds of the nominal run time>`.
 * The name is the idempotency key of a run: a second operator replica, a restart or a replayed event
 * computes the same name, so the API server's AlreadyExists means "this run was already created"
 * (the CronJob controller uses the Job name the same way, at minute granularity; seconds here
 * because `@every` may be sub-minute). Pure.
 */
import { createHash } from "node:crypto";

/** Longest Kubernetes object name (DNS-1123 subdomain), in characters. */
export const MAX_TASK_NAME_LENGTH = 253;

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** True when `name` is a valid Kubernetes object name (DNS-1123 subdomain, at most 253 characters). */
export function isDnsSubdomain(name: string): boolean {
  return name.length <= MAX_TASK_NAME_LENGTH && DNS1123_SUBDOMAIN.test(name);
}

/**
 * Name of the Task for the run of `scheduleName` at `nominalTime`.
 *
 * `<schedule>-<seconds>`, e.g. `nightly-report-1732330800`. When that would exceed 253 characters the
 * schedule name is cut and an 8-hex-digit hash of the full name inserted
 * (`<prefix>-<hash>-<seconds>`), so two long names sharing a prefix still get distinct Tasks.
 * @param scheduleName the Schedule's metadata.name (a DNS-1123 subdomain)
 * @param nominalTime the run's nominal time; sub-second parts are dropped (runs are whole seconds)
 * @returns a valid DNS-1123 subdomain of at most 253 characters
 * @throws Error when `scheduleName` is not a DNS-1123 subdomain or the time is before the epoch
 */
export function taskNameFor(scheduleName: string, nominalTime: Date): string {
  if (!isDnsSubdomain(scheduleName)) throw new Error(`task name for schedule "${scheduleName}": not a DNS-1123 subdomain`);
  const ms = nominalTime.getTime();
  if (!(ms >= 0)) throw new Error(`task name for schedule "${scheduleName}": nominal time ${String(nominalTime)} is before 1970 or invalid`);
  const suffix = `-${Math.floor(ms / 1000)}`;
  if (scheduleName.length + suffix.length <= MAX_TASK_NAME_LENGTH) return `${scheduleName}${suffix}`;
  const hash = createHash("sha256").update(scheduleName).digest("hex").slice(0, 8);
  const room = MAX_TASK_NAME_LENGTH - suffix.length - hash.length - 1;
  const prefix = scheduleName.slice(0, room).replace(/[-.]+$/, "");
  return `${prefix}-${hash}${suffix}`;
}

/**
 * The nominal run time encoded in a Task name made by taskNameFor, when the name belongs to `scheduleName`.
 * @returns the time, or undefined when `taskName` is not a run of that schedule
 */
export function nominalTimeFromTaskName(scheduleName: string, taskName: string): Date | undefined {
  const m = /-([0-9]{1,15})$/.exec(taskName);
  if (!m || m[1] === undefined) return undefined;
  const t = new Date(Number(m[1]) * 1000);
  return taskNameFor(scheduleName, t) === taskName ? t : undefined;
}
