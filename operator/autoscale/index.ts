/**
 * `operator/autoscale`: the pure autoscaling decision for worker Deployments and the KEDA
 * ScaledObject rendered in KEDA mode. The scaling loop (reading consumer info, writing the scale
 * subresource, status, Events, metrics) lives with the Queue reconciler and calls these.
 */
export * from "./policy.js";
export * from "./decision.js";
export * from "./keda.js";
