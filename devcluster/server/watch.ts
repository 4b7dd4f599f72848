/**
 * Watch streams: newline-delimited JSON events with headers flushed at once, replay from a resourceVersion
 * (410 `Expired` as an ERROR event followed by a close when it is too old), selector transitions
 * (ADDED/DELETED when an object starts/stops matching), bookmarks, the watch-list protocol
 * (`sendInitialEvents=true` → initial ADDEDs then a BOOKMARK annotated `k8s.io/initial-events-end`),
 * `timeoutSeconds`, and Table-shaped events for `kubectl get -w`. A compaction of the store's history
 * (`Store.compact`, the fault hook) ends every open watch with an ERROR 410 `Expired` event, as
 * kube-apiserver's etcd3 watcher does when etcd compacts past a watch's revision (`interpretWatchError`:
 * "The resourceVersion for the provided watch is too old.").
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Core } from "./core.js";
import { ApiError, badRequest, invalid } from "./errors.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";
import type { StoreEvent } from "./store.js";
import { renderTable, TABLE_CONTENT_TYPE } from "./table.js";
import { apiVersionOf, storageKey, type Json, type KObject, type ResourceType } from "./types.js";

/** The ERROR a watch gets when its revision was compacted away (kube-apiserver's etcd3 `interpretWatchError`). */
const COMPACTED = new ApiError(410, "Expired", "The resourceVersion for the provided watch is too old.");

/**
 * Watch event lines already encoded, per stored object (objects are never changed in place, and an
 * event's object is shared by all watchers), per served type (a new ResourceType object after every
 * CRD change, so defaults added later show up) and per event type: the JSON line.
 */
const encoded = new WeakMap<KObject, WeakMap<ResourceType, Map<string, string>>>();

/** Timing knobs of watches. */
export interface WatchTiming {
  /** Interval between BOOKMARK events when the client allows them (ms). */
  bookmarkIntervalMs: number;
  /** Lifetime of a watch without `timeoutSeconds` (ms); upstream uses 30–60 min. */
  defaultTimeoutMs: number;
}

/**
 * Serves one watch request until it times out or the client goes away.
 * @param namespace undefined = all namespaces
 * @param table true to send Table-shaped objects
 * @throws ApiError (before any byte is written) for bad selectors or a bad watch-list request
 */
export function serveWatch(core: Core, rt: ResourceType, namespace: string | undefined, query: URLSearchParams, req: IncomingMessage, res: ServerResponse, table: boolean, timing: WatchTiming): void {
  const ls = parseLabelSelector(query.get("labelSelector"));
  const fs = parseFieldSelector(query.get("fieldSelector"), rt);
  const rvParam = query.get("resourceVersion") ?? "";
  const bookmarks = query.get("allowWatchBookmarks") === "true";
  const sendInitial = query.get("sendInitialEvents");
  if (sendInitial === "true") {
    if (query.get("resourceVersionMatch") !== "NotOlderThan" || !bookmarks) {
      throw invalid("meta.k8s.io", "ListOptions", "", [
        { reason: "FieldValueForbidden", message: "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks", field: "sendInitialEvents" },
      ]);
    }
  }
  if (rvParam !== "" && !/^\d+$/.test(rvParam)) throw badRequest(`invalid resource version: ${rvParam}`);
  const gr = storageKey(rt.group, rt.resource);
  const matches = (o: KObject): boolean => (namespace === undefined || (o.metadata?.namespace ?? "") === namespace) && ls.matches(o.metadata?.labels) && fs.matches(o);

  let replay: StoreEvent[] = [];
  let initial: KObject[] | undefined;
  let expiredErr: ApiError | undefined;
  const startRv = core.store.currentRv;
  if (sendInitial === "true" || rvParam === "" || rvParam === "0") {
    initial = core.store.listRaw(gr, namespace).filter(matches);
  } else {
    try {
      replay = core.store.eventsSince(gr, Number(rvParam));
    } catch (e) {
      if (e instanceof ApiError && e.code === 410) expiredErr = e;
      else throw e;
    }
  }

  res.writeHead(200, { "Content-Type": table ? TABLE_CONTENT_TYPE : "application/json", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
  res.flushHeaders();
  let sentColumns = false;
  const send = (type: string, obj: Json): void => {
    if (res.writableEnded) return;
    res.write(`${JSON.stringify({ type, object: obj })}\n`);
  };
  const sendObj = (type: string, o: KObject): void => {
    if (!table) {
      // one encoding per stored object, event type and version, shared by every watcher of it
      let byRt = encoded.get(o);
      if (!byRt) encoded.set(o, (byRt = new WeakMap()));
      let lines = byRt.get(rt);
      if (!lines) byRt.set(rt, (lines = new Map()));
      let line = lines.get(type);
      if (line === undefined) lines.set(type, (line = `${JSON.stringify({ type, object: core.present(rt, o) })}\n`));
      if (!res.writableEnded) res.write(line);
      return;
    }
    const p = core.present(rt, o);
    if (table) {
      send(type, renderTable(rt, [p], p.metadata?.resourceVersion, "Metadata", !sentColumns));
      sentColumns = true;
    } else send(type, p);
  };
  const bookmark = (annotate: boolean): void => {
    const metadata: Json = { resourceVersion: String(core.store.currentRv) };
    if (annotate) metadata.annotations = { "k8s.io/initial-events-end": "true" };
    send("BOOKMARK", { kind: rt.kind, apiVersion: apiVersionOf(rt.group, rt.version), metadata });
  };
  if (expiredErr) {
    send("ERROR", expiredErr.toStatus());
    res.end();
    return;
  }
  const deliver = (e: StoreEvent): void => {
    const now = matches(e.obj);
    if (e.type === "MODIFIED" && e.prev) {
      const before = matches(e.prev);
      if (before && now) sendObj("MODIFIED", e.obj);
      else if (before) sendObj("DELETED", e.obj);
      else if (now) sendObj("ADDED", e.obj);
      return;
    }
    if (now) sendObj(e.type, e.obj);
  };
  if (initial) {
    for (const o of initial) sendObj("ADDED", o);
    if (sendInitial === "true") {
      const metadata: Json = { resourceVersion: String(startRv), annotations: { "k8s.io/initial-events-end": "true" } };
      send("BOOKMARK", { kind: rt.kind, apiVersion: apiVersionOf(rt.group, rt.version), metadata });
    }
  }
  for (const e of replay) deliver(e);
  const unsubscribe = core.store.subscribe((e) => {
    if (e.gr === gr) deliver(e);
  });
  const unCompact = core.store.onCompact(() => {
    send("ERROR", COMPACTED.toStatus());
    finish();
  });
  const ts = query.get("timeoutSeconds");
  const lifetime = ts && /^\d+$/.test(ts) ? Number(ts) * 1000 : timing.defaultTimeoutMs;
  const timers: NodeJS.Timeout[] = [];
  const finish = (): void => {
    unsubscribe();
    unCompact();
    for (const t of timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    if (!res.writableEnded) res.end();
  };
  timers.push(setTimeout(finish, lifetime));
  if (bookmarks) timers.push(setInterval(() => bookmark(false), timing.bookmarkIntervalMs));
  req.on("close", finish);
  res.on("close", finish);
}
