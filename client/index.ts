/**
 * `celeriac/client`: enqueue tasks and await their results.
 * ```ts
 * import { connect } from "celeriac/client";
 * const client = await connect({ servers: "nats://127.0.0.1:4222", queue: "emails" });
 * const h = await client.enqueue("emails.send", ["a@example.com", "Hi"]);
 * console.log(await h.result({ timeoutMs: 30_000 }));
 * await client.close();
 * ```
 */
export { connect, CeleriacClient, buildTaskMessage, type ConnectOptions, type EnqueueOptions, type ApplyOptions, type EnqueueManyTask, type EnqueueManyResult, ENQUEUE_MANY_WINDOW, type TaskHandle, type TaskRecordOrNone } from "./client.js";
export type { ProgressCallback, ProgressSubscription } from "./progress-watch.js";
export type { TaskProgress } from "../api/task.js";
export { TaskFailedError, ResultTimeoutError, EnqueueError, EnqueueManyError, QueueNotFoundError, UniqueKeyHeldError, queueNotFoundMessage } from "./errors.js";
export { resolveEnqueueFlow, type EnqueueFlowOptions, type ResolvedEnqueueFlow } from "./enqueue-flow.js";
export { signature, immutableSignature, chain, group, chord, map, starmap, chunks, isCanvas, toCanvasNode, Canvas, Signature, Chain, Group, Chord, MapCanvas, Chunks, type CanvasLike, type ResultOf, type ResultsOf, type ArgsSuffix } from "../canvas/build.js";
export type { CanvasHandle, CanvasChild } from "./canvas-handle.js";
export { InvalidCanvasError, type CanvasNode, type CanvasDocument, type SignatureOptions } from "../api/canvas.js";
