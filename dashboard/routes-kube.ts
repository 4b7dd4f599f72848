/**
 * The dashboard's Kubernetes routes (docs/dashboard.md, JSON API): `GET /api/kube/queues`,
 * `/api/kube/pods`, `/api/kube/events`, answered from one {@link startKubeReader} snapshot (read
 * every 5 s, never per request). Each answers `{configured, namespace, at, error?, items}`:
 * `configured: false` when the dashboard has no Kubernetes API, `error` when the last read of that
 * resource failed (the items are then the last good ones, or none).
 */
import express, { type Router } from "express";
import type { Logger } from "pino";
import type { KubeClient } from "../kube/k8s-client.js";
import { MAX_EVENTS, startKubeReader, type KubeReader, type KubeSnapshot } from "./kube-reader.js";

/** Options of {@link kubeRoutes}. */
export interface KubeRoutesOptions {
  /** The Kubernetes API (DashboardOptions.kube); absent: every route answers `configured: false`. */
  kube?: KubeClient;
  namespace: string;
  /** Time between reads, ms (default 5000). */
  intervalMs?: number;
  logger?: Logger;
}

/** The routes and the reader behind them. */
export interface KubeRoutes {
  /** Mount under `/api/kube`. */
  router: Router;
  reader: KubeReader;
  /** Stops the reader (idempotent). */
  close(): void;
}

/** Why there is no answer: the dashboard was started without a Kubernetes API. */
export const NO_KUBE_API = "no Kubernetes API: start the dashboard with --kubeconfig (or KUBECONFIG, a running celeriac dev up, in-cluster)";

/** A query parameter as one non-empty string. */
function param(v: unknown): string | undefined {
  if (Array.isArray(v)) return param(v[0]);
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** The envelope every route answers with. Pure. */
export function envelope<T>(s: KubeSnapshot, key: "queues" | "pods" | "events", items: T[]): { configured: boolean; namespace: string; at?: string; error?: string; items: T[] } {
  const error = s.configured ? s.errors[key] : NO_KUBE_API;
  return { configured: s.configured, namespace: s.namespace, ...(s.at ? { at: s.at } : {}), ...(error ? { error } : {}), items };
}

/**
 * Builds the routes and starts their reader.
 * Query parameters: `queue=<name>` narrows pods and events to one Queue; events also take
 * `reason=<Reason>` (e.g. `Scaled`) and `limit=` (1..500, default 100).
 * A bad `limit` answers 400 naming it.
 */
export function kubeRoutes(o: KubeRoutesOptions): KubeRoutes {
  const reader = startKubeReader({ ...(o.kube ? { kube: o.kube } : {}), namespace: o.namespace, ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}), ...(o.logger ? { logger: o.logger } : {}) });
  const r = express.Router();
  r.get("/queues", (_req, res) => {
    const s = reader.snapshot();
    res.json(envelope(s, "queues", s.queues));
  });
  r.get("/pods", (req, res) => {
    const s = reader.snapshot();
    const q = param(req.query.queue);
    res.json(envelope(s, "pods", q === undefined ? s.pods : s.pods.filter((p) => p.queue === q)));
  });
  r.get("/events", (req, res) => {
    const s = reader.snapshot();
    const q = param(req.query.queue);
    const reason = param(req.query.reason);
    const ls = param(req.query.limit);
    const limit = ls === undefined ? 100 : Number(ls);
    if (ls !== undefined && (!/^\d+$/.test(ls) || limit < 1 || limit > MAX_EVENTS)) {
      res.status(400).json({ error: `limit: "${ls}" is not a whole number from 1 to ${MAX_EVENTS}` });
      return;
    }
    const items = s.events.filter((e) => (q === undefined || e.queue === q) && (reason === undefined || e.reason === reason)).slice(0, limit);
    res.json(envelope(s, "events", items));
  });
  return { router: r, reader, close: () => reader.close() };
}
