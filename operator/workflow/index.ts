/** The Workflow controller's parts: the planner, the reconciler and the step-end notice watches. */
export * from "./plan.js";
export * from "./step-notices.js";
export * from "./workflow-reconciler.js";
