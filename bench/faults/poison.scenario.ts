/** Fault scenario `poison`: see bench/faults/poison.ts. 200 innocents of 100 ms on 3 workers, poison maxAttempts 3. */
import { poisonScenario } from "./poison.js";

export default poisonScenario({ name: "poison", innocents: 200, innocentMs: 100, workers: 3, maxAttempts: 3, maxRestarts: 12, poisonAfter: 10 });
