/**
 * `operator/queue`: pure desired-state builders for a Queue's Kubernetes children — the worker
 * Deployment and the workers' ServiceAccount, Role and RoleBinding. The Queue reconciler applies them.
 */
export * from "./labels.js";
export * from "./desired-workers.js";
export * from "./desired-rbac.js";
