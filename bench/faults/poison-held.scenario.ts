/**
 * Fault scenario `poison-held`: see bench/faults/poison.ts. One worker, 8 innocents of 1,000 ms held
 * behind a poison task with maxAttempts 12 (13 crashes), the poison task enqueued first so the first
 * innocents are pulled beside it.
 */
import { poisonScenario } from "./poison.js";

export default poisonScenario({ name: "poison-held", innocents: 8, innocentMs: 1000, workers: 1, maxAttempts: 12, maxRestarts: 20, poisonAfter: 0 });
