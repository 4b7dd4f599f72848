/**
 * `celeriac/worker`: define tasks and run workers.
 */
export { defineTask, isTaskDefinition, collectTasks, type TaskRegistry, type TaskSignature, type SignatureOf, type TaskContext, type TaskHandler, type TaskOptions, type TaskDefinition } from "./define-task.js";
export { UnrecoverableError, ResultTooLargeError, RetryError, TimeoutError, CancelledError, UnknownTaskError, WorkerLostError } from "./errors.js";
export { backoffDelay, classifyOutcome, describeError, type Outcome } from "./outcome.js";
export { progressReport, ProgressReporter, type ProgressValue, type ProgressChannel, type ProgressClock } from "./progress.js";
export type { TaskProgress } from "../api/task.js";
export { KvStatusSink, REVOKED_PREFIX, TASK_ID_PATTERN, type StatusSink } from "./status-sink.js";
export { Worker, WorkerShutdownError, defaultWorkerName, type WorkerOptions } from "./worker.js";
export { createWorkerMetrics, type WorkerMetrics, type TaskOutcomeLabel } from "./metrics.js";
export { msUntilDue } from "../nats/delay-mover.js";
export { signature, immutableSignature, chain, group, chord, map, starmap, chunks, isCanvas, toCanvasNode, Canvas, Signature, Chain, Group, Chord, MapCanvas, Chunks, type CanvasLike, type ResultOf, type ResultsOf, type ArgsSuffix } from "../canvas/build.js";
