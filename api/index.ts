/**
 * `celeriac/api`: the contract shared by operator, worker and client — resource schemas and types,
 * constants, names, the task message, conditions and validation.
 */
export * from "./constants.js";
export * from "./defaults.js";
export * from "./policies.js";
export * from "./naming.js";
export * from "./task.js";
export * from "./queue.js";
export * from "./schedule.js";
export * from "./message.js";
export * from "./conditions.js";
export * from "./crd.js";
export * from "./manifest.js";
export * from "./validation.js";
export * from "./objects.js";
export * from "./task-message.js";
export * from "./hints.js";
export * from "./cel.js";
export * from "./queue-settings.js";
export * from "./flow.js";
export * from "./nats-permissions.js";
export * from "./nats-creds-secrets.js";
export * from "./canvas.js";
export * from "./workflow.js";
export * from "./workflow-check.js";
export * from "./durations.js";
export * from "./control.js";
export * from "./tracing.js";
