/**
 * The dashboard's Schedules and Workflows API (docs/dashboard.md), mounted under `/api` by
 * dashboard/server.ts: GET `/schedules`, `/schedules/:name`, `/workflows`, `/workflows/:name`,
 * answered from the Kubernetes API through dashboard/workloads.ts. Without a Kubernetes API each
 * answers 503 {@link NO_KUBE_MESSAGE}; a name that does not exist is 404 naming those that do.
 *
 * Also the static route of cytoscape (the Workflow page's DAG), served from its package's `dist/`.
 */
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import type { Logger } from "pino";
import type { KubeClient } from "../kube/k8s-client.js";
import { NO_KUBE_MESSAGE, WorkloadsError, WorkloadsReader } from "./workloads.js";

export { NO_KUBE_MESSAGE };

/** A Kubernetes object name as a path segment may carry it (DNS-1123 subdomain, at most 253 characters). */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Options of {@link workloadsRouter}. */
export interface WorkloadsRouterOptions {
  /** The Kubernetes API; absent: every route answers 503. */
  kube?: KubeClient;
  /** The dashboard's namespace. */
  namespace: string;
  logger?: Logger;
}

/**
 * The router of the Schedules and Workflows API (paths relative to `/api`). Answers JSON; errors as
 * `{error}` with 400 (a malformed name), 404, 503 (no Kubernetes API or CRD) or 502 (the API failed).
 */
export function workloadsRouter(o: WorkloadsRouterOptions): Router {
  const reader = new WorkloadsReader(o.kube, o.namespace);
  const r = express.Router();
  const nameOf = (req: Request, kind: string): string => {
    const n = String(req.params.name);
    if (!NAME.test(n)) throw new WorkloadsError(400, `${kind} name ${JSON.stringify(n)} is invalid: a Kubernetes name is lowercase letters, digits, '-' and '.'`);
    return n;
  };
  const wrap = (f: (req: Request) => Promise<unknown>) => (req: Request, res: Response, next: NextFunction) => {
    f(req).then((body) => res.json(body), next);
  };
  r.get("/schedules", wrap(() => reader.schedules()));
  r.get("/schedules/:name", wrap((req) => reader.schedule(nameOf(req, "schedule"))));
  r.get("/workflows", wrap(() => reader.workflows()));
  r.get("/workflows/:name", wrap((req) => reader.workflow(nameOf(req, "workflow"))));
  r.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (!(err instanceof WorkloadsError)) {
      next(err);
      return;
    }
    if (err.status >= 500) o.logger?.warn({ path: req.path, status: err.status, err: err.cause ?? err }, "Dashboard Kubernetes read failed");
    res.status(err.status).json({ error: err.message });
  });
  return r;
}

/** The folder of the cytoscape package's browser build (`cytoscape.min.js`). */
export function cytoscapeDir(): string {
  return dirname(createRequire(import.meta.url).resolve("cytoscape/dist/cytoscape.min.js"));
}

/** Serves cytoscape's `dist/` (mounted at `/vendor/cytoscape`). */
export function cytoscapeStatic(): express.Handler {
  return express.static(cytoscapeDir(), { index: false });
}
