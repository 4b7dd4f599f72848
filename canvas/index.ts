/**
 * `celeriac/canvas` runtime side: the planner (pure) and the runtime that publishes and continues
 * canvases (client `start`, worker `afterFinal` / `resolveArgs`). The builders live in build.ts.
 */
export { planLaunch, canvasTaskIds, frozenTasks, resultTarget, cancelledBy, stepOf, setJoinBits, joinBit, emptyBitmap, jsonBytes, MAX_INLINE_INPUT_BYTES, type LaunchInput, type Place, type Plan, type PlannedMessage, type PlannedJoin } from "./plan.js";
export { CanvasRuntime, CanvasResultMissingError, JoinMissingError, MAX_SLOT_VALUE_BYTES, type CanvasRuntimeDeps, type CanvasProducerSettings } from "./runtime.js";
