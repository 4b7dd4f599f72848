/**
 * Shared NATS plumbing of Celeriac's worker, client and operator: connection settings and the
 * idempotent ensure of a queue's streams, consumers and results bucket.
 */
export * from "./connection.js";
export * from "./queue-settings.js";
export * from "./queue-desired.js";
export * from "./queue-resources.js";
export * from "./delay-mover.js";
export * from "./task-publish.js";
export * from "./credentials.js";
export * from "./accounts.js";
export * from "./server-limits.js";
export * from "./pipelined-publisher.js";
export * from "./kv-put.js";
