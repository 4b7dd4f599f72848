/**
 * The kubeconfig the server writes: plain http, `insecure-skip-tls-verify: true` (client-node 1.4 refuses http
 * without it), and the admin token (access.ts `ADMIN_TOKEN`: user `celeriac-dev` in `system:masters`). kubectl, helm and client-node all accept it.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { stringify } from "yaml";
import { ADMIN_TOKEN } from "./access.js";

/** The kubeconfig document for a server URL. */
export function kubeconfigFor(url: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "celeriac-dev", cluster: { server: url, "insecure-skip-tls-verify": true } }],
    users: [{ name: "celeriac-dev", user: { token: ADMIN_TOKEN } }],
    contexts: [{ name: "celeriac-dev", context: { cluster: "celeriac-dev", user: "celeriac-dev", namespace: "default" } }],
    "current-context": "celeriac-dev",
    preferences: {},
  };
}

/** Writes the kubeconfig for `url` to `path` (mode 0600), creating parent directories. */
export function writeKubeconfig(path: string, url: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, stringify(kubeconfigFor(url)), { mode: 0o600 });
}
