/**
 * Per-tenant NATS credentials minted by the operator (issue 13): the desired credentials and Secrets,
 * the rotation rule, the CONNECT-line size check, the account signing key holder, the operator's own credential and the Queue
 * reconciler's credentials sub-step; in accounts mode the tenant accounts, their key store and the
 * operator's connection per tenant account.
 */
export * from "./credential-spec.js";
export * from "./rotation.js";
export * from "./desired-secrets.js";
export * from "./minter.js";
export * from "./operator-credential.js";
export * from "./queue-credentials.js";
export * from "./connect-line.js";
export * from "./orphan-producers.js";
export * from "./operator-connection.js";
export * from "./account-keys.js";
export * from "./tenant-accounts.js";
export * from "./tenant-connections.js";
