/**
 * Server-side Table rendering (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): CR columns from
 * `additionalPrinterColumns`, built-in columns for Deployments, Pods, Namespaces, ConfigMaps, Secrets, Leases,
 * and `Name, Created At` for everything else.
 */
import { jsonPathAll } from "./jsonpath.js";
import type { Json, KObject, PrinterColumn, ResourceType } from "./types.js";
import { humanAge, isObject } from "./util.js";

/** Content-Type of a Table response. */
export const TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io";

/** True when the Accept header asks for a Table. */
export function wantsTable(accept: string | undefined): boolean {
  return /as=Table/.test(accept ?? "");
}

const NAME_COL = {
  name: "Name",
  type: "string",
  format: "name",
  description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
  priority: 0,
};

interface BuiltinCol {
  name: string;
  type: string;
  format?: string;
  priority?: number;
  cell: (o: KObject) => Json;
}

const age: BuiltinCol = { name: "Age", type: "date", cell: (o) => humanAge(o.metadata?.creationTimestamp) };

function containers(o: KObject): KObject[] {
  return o.spec?.template?.spec?.containers ?? o.spec?.containers ?? [];
}

function selectorString(sel: Json): string {
  if (!isObject(sel)) return "<none>";
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${String(v)}`);
  for (const e of sel.matchExpressions ?? []) parts.push(`${e.key} ${String(e.operator).toLowerCase()} (${(e.values ?? []).join(",")})`);
  return parts.length ? parts.join(",") : "<none>";
}

const BUILTIN: Record<string, BuiltinCol[]> = {
  "apps/deployments": [
    { name: "Ready", type: "string", cell: (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 1}` },
    { name: "Up-to-date", type: "integer", cell: (o) => o.status?.updatedReplicas ?? 0 },
    { name: "Available", type: "integer", cell: (o) => o.status?.availableReplicas ?? 0 },
    age,
    { name: "Containers", type: "string", priority: 1, cell: (o) => containers(o).map((c) => c.name).join(",") },
    { name: "Images", type: "string", priority: 1, cell: (o) => containers(o).map((c) => c.image).join(",") },
    { name: "Selector", type: "string", priority: 1, cell: (o) => selectorString(o.spec?.selector) },
  ],
  "apps/replicasets": [
    { name: "Desired", type: "integer", cell: (o) => o.spec?.replicas ?? 1 },
    { name: "Current", type: "integer", cell: (o) => o.status?.replicas ?? 0 },
    { name: "Ready", type: "integer", cell: (o) => o.status?.readyReplicas ?? 0 },
    age,
  ],
  "/pods": [
    {
      name: "Ready",
      type: "string",
      cell: (o) => `${(o.status?.containerStatuses ?? []).filter((c: KObject) => c.ready).length}/${(o.spec?.containers ?? []).length}`,
    },
    { name: "Status", type: "string", cell: (o) => (o.metadata?.deletionTimestamp ? "Terminating" : (o.status?.reason ?? o.status?.phase ?? "Pending")) },
    { name: "Restarts", type: "string", cell: (o) => String((o.status?.containerStatuses ?? []).reduce((n: number, c: KObject) => n + (c.restartCount ?? 0), 0)) },
    age,
    { name: "IP", type: "string", priority: 1, cell: (o) => o.status?.podIP ?? "<none>" },
    { name: "Node", type: "string", priority: 1, cell: (o) => o.spec?.nodeName ?? "<none>" },
  ],
  "/namespaces": [{ name: "Status", type: "string", cell: (o) => o.status?.phase ?? "Active" }, age],
  "/configmaps": [{ name: "Data", type: "integer", cell: (o) => Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length }, age],
  "/secrets": [{ name: "Type", type: "string", cell: (o) => o.type ?? "Opaque" }, { name: "Data", type: "integer", cell: (o) => Object.keys(o.data ?? {}).length }, age],
  "/serviceaccounts": [{ name: "Secrets", type: "integer", cell: (o) => (o.secrets ?? []).length }, age],
  "/services": [
    { name: "Type", type: "string", cell: (o) => o.spec?.type ?? "ClusterIP" },
    { name: "Cluster-IP", type: "string", cell: (o) => o.spec?.clusterIP ?? "<none>" },
    { name: "Ports", type: "string", cell: (o) => (o.spec?.ports ?? []).map((p: KObject) => `${p.port}/${p.protocol ?? "TCP"}`).join(",") || "<none>" },
    age,
  ],
  "/events": [
    { name: "Last Seen", type: "string", cell: (o) => humanAge(o.lastTimestamp ?? o.eventTime ?? o.metadata?.creationTimestamp) },
    { name: "Type", type: "string", cell: (o) => o.type ?? "" },
    { name: "Reason", type: "string", cell: (o) => o.reason ?? "" },
    { name: "Object", type: "string", cell: (o) => `${String(o.involvedObject?.kind ?? "").toLowerCase()}/${o.involvedObject?.name ?? ""}` },
    { name: "Message", type: "string", cell: (o) => o.message ?? "" },
  ],
  "coordination.k8s.io/leases": [{ name: "Holder", type: "string", cell: (o) => o.spec?.holderIdentity ?? "" }, age],
};

const CREATED_AT: BuiltinCol = { name: "Created At", type: "date", cell: (o) => o.metadata?.creationTimestamp ?? null };

function cellFor(col: PrinterColumn, o: KObject): Json {
  const vals = jsonPathAll(o, col.jsonPath);
  if (vals.length === 0) return null;
  const v = vals[0];
  switch (col.type) {
    case "integer":
      return typeof v === "number" && Number.isInteger(v) ? v : null;
    case "number":
      return typeof v === "number" ? v : null;
    case "boolean":
      return typeof v === "boolean" ? v : null;
    case "date":
      return typeof v === "string" ? humanAge(v) : null;
    default:
      return vals.map((x) => (typeof x === "string" ? x : JSON.stringify(x))).join(" ");
  }
}

function columnsOf(rt: ResourceType): { defs: Json[]; cells: (o: KObject) => Json[] } {
  if (rt.custom) {
    const cols = rt.printerColumns ?? [];
    return {
      defs: [NAME_COL, ...cols.map((c) => ({ name: c.name, type: c.type, format: c.format ?? "", description: c.description ?? "", priority: c.priority ?? 0 }))],
      cells: (o) => [o.metadata?.name, ...cols.map((c) => cellFor(c, o))],
    };
  }
  const cols = BUILTIN[`${rt.group}/${rt.resource}`] ?? [CREATED_AT];
  return {
    defs: [NAME_COL, ...cols.map((c) => ({ name: c.name, type: c.type, format: c.format ?? "", description: "", priority: c.priority ?? 0 }))],
    cells: (o) => [o.metadata?.name, ...cols.map((c) => c.cell(o))],
  };
}

function rowObject(o: KObject, include: string | null): Json {
  if (include === "None") return undefined;
  if (include === "Object") return o;
  return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata };
}

/**
 * Renders objects as a `meta.k8s.io/v1` Table.
 * @param resourceVersion the Table's `metadata.resourceVersion` (the list RV; kubectl `get -w` watches from it)
 * @param includeObject `Metadata` (default), `Object` or `None`
 * @param withColumns false to leave `columnDefinitions` empty (watch events after the first)
 */
export function renderTable(rt: ResourceType, objs: KObject[], resourceVersion: string | undefined, includeObject: string | null, withColumns = true): Json {
  const { defs, cells } = columnsOf(rt);
  const meta: Json = {};
  if (resourceVersion !== undefined) meta.resourceVersion = resourceVersion;
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: meta,
    columnDefinitions: withColumns ? defs : [],
    rows: objs.map((o) => {
      const row: Json = { cells: cells(o) };
      const obj = rowObject(o, includeObject);
      if (obj !== undefined) row.object = obj;
      return row;
    }),
  };
}
