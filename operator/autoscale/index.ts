/**
 * `operator/autoscale`: the pure autoscaling decision for worker Deployments and the KEDA
 * ScaledObject rendered in KEDA mode. The scale loop (reading consumer info, writing the scale
 * subresource, status, Events, metrics) is operator/queue/scale-loop.ts; the Queue reconciler starts it.
 */
export * from "./policy.js";
export * from "./decision.js";
export * from "./keda.js";
