/** Crash attribution (worker/attribution.ts): table tests of the pure rule. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { attributeDelivery, type Attribution, type DeliveryTrace, type TracedRecord } from "../../worker/attribution.js";

const rec = (phase: "Running" | "Retrying" | "Queued", attempts: number, delivery?: DeliveryTrace): TracedRecord => ({
  id: "t1",
  task: "hello",
  queue: "q",
  namespace: "default",
  origin: { kind: "Client" },
  status: { phase, attempts },
  updatedAt: "2026-01-01T00:00:00Z",
  ...(delivery ? { delivery } : {}),
});
const tr = (count: number, alone: boolean, workerLost = 0, workerLostAlone = 0, workerLostWaiting = 0): DeliveryTrace => ({ count, alone, workerLost, workerLostAlone, workerLostWaiting });
const want = (attempt: number, alone: boolean, lost: Attribution["lost"], trace: DeliveryTrace): Attribution => ({ attempt, alone, lost, trace });

describe("when attributing a delivery to its task", () => {
  const cases: [string, number, TracedRecord | undefined, Attribution][] = [
    ["a first delivery with no record runs shared as attempt 1", 1, undefined, want(1, false, "none", tr(1, false))],
    ["a second delivery with no record was lost untraced beside others: attempt 1 again, alone", 2, undefined, want(1, true, "beside", tr(2, true, 1))],
    ["a producer's Queued record counts as no record (delivery 2 ran alone, so it was lost waiting)", 3, rec("Queued", 0), want(1, true, "beside", tr(3, true, 2, 0, 1))],
    ["a retry recorded by the previous delivery: next attempt, shared", 2, rec("Retrying", 1, tr(1, false)), want(2, false, "none", tr(2, false))],
    ["a retry recorded two deliveries ago: one lost untraced, next attempt alone", 3, rec("Retrying", 1, tr(1, false)), want(2, true, "beside", tr(3, true, 1))],
    ["Running shared, then lost: not counted, same attempt, alone", 2, rec("Running", 1, tr(1, false)), want(1, true, "beside", tr(2, true, 1))],
    ["Running alone, then lost: counted, next attempt, alone", 3, rec("Running", 1, tr(2, true, 1)), want(2, true, "alone", tr(3, true, 2, 1))],
    ["Running alone, then lost, then one more lost untraced (it waited to run alone)", 4, rec("Running", 2, tr(2, true, 1, 1)), want(3, true, "alone", tr(4, true, 3, 2, 1))],
    ["a retry recorded three deliveries ago: the first after it may have run, the second waited", 4, rec("Retrying", 1, tr(1, false)), want(2, true, "beside", tr(4, true, 2, 0, 1))],
    // the new-user trial's case: an innocent lost once beside a poison task, then held 10 times behind it waiting to run alone
    ["Running shared, then lost once beside, then lost 10 times while waiting: one uncounted loss, not eleven", 12, rec("Running", 1, tr(1, false)), want(1, true, "beside", tr(12, true, 11, 0, 10))],
    ["a delivery count that went back (server crash) is no evidence: same attempt, shared", 1, rec("Running", 2, tr(3, false, 1)), want(2, false, "none", tr(1, false, 1))],
    ["…and an alone run stays alone", 1, rec("Running", 2, tr(3, true, 1)), want(2, true, "none", tr(1, true, 1))],
    ["…and after a retry, the next attempt", 1, rec("Retrying", 2, tr(3, false)), want(3, false, "none", tr(1, false))],
    ["a Running record with no trace (older worker): the delivery count is the attempt", 3, rec("Running", 2), want(3, false, "none", tr(3, false))],
  ];
  for (const [name, count, record, expected] of cases) it(name, () => assert.deepEqual(attributeDelivery(count, record), expected));
});
