/**
 * Decoder for Kubernetes protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`).
 *
 * Typed clients send them with no fallback on 415: `kubectl create namespace|secret|configmap` and all of
 * helm 4's release storage (Secrets, plus `DeleteOptions` on DELETE). See SPEC §2 T5.
 *
 * Wire shape: the magic bytes `6b 38 73 00` ("k8s\0"), then a `runtime.Unknown` message
 * `{1: typeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}` whose `raw` is the
 * object message. Only the kinds listed in {@link decodeProtobufObject} are understood; Deployments and
 * everything else are deliberately not (PodSpec is large): clients should `kubectl apply` those as JSON.
 *
 * Go's protobuf encoder writes proto2 optional strings even when empty, so `""` (and an empty embedded
 * message) means "absent" throughout.
 */

/** The four magic bytes that open every Kubernetes protobuf body. */
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** One decoded field: its number, and either a varint value or the bytes of a length-delimited field. */
type Field = { no: number; varint?: bigint; bytes?: Buffer };

/** Splits one message into its fields; throws on truncation or on wire types Kubernetes never uses. */
function fields(buf: Buffer, what: string): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length || shift > 63n) throw new Error(`decode protobuf ${what}: truncated varint`);
      const b = buf[pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) {
      out.push({ no, varint: varint() });
    } else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new Error(`decode protobuf ${what}: field ${no} overruns the message`);
      out.push({ no, bytes: buf.subarray(pos, pos + len) });
      pos += len;
    } else {
      throw new Error(`decode protobuf ${what}: field ${no} has unsupported wire type ${wire}`);
    }
  }
  return out;
}

/** A per-message table: field number → how to store it into the JSON object being built. */
type Handler = (obj: Record<string, unknown>, f: Field) => void;

/** Decodes `buf` with `handlers`; an unknown field number is an error naming the message and field. */
function message(buf: Buffer, what: string, handlers: Record<number, Handler>): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (const f of fields(buf, what)) {
    const h = handlers[f.no];
    if (!h) throw new Error(`decode protobuf ${what}: unknown field ${f.no}`);
    h(obj, f);
  }
  return obj;
}

const bytesOf = (f: Field, what: string): Buffer => {
  if (!f.bytes) throw new Error(`decode protobuf ${what}: field ${f.no} is not length-delimited`);
  return f.bytes;
};
const varintOf = (f: Field, what: string): bigint => {
  if (f.varint === undefined) throw new Error(`decode protobuf ${what}: field ${f.no} is not a varint`);
  return f.varint;
};

/** Handler builders. `""`, empty messages and empty maps are treated as absent (proto2, see the module doc). */
const str = (key: string, what: string): Handler => (o, f) => {
  const s = bytesOf(f, what).toString("utf8");
  if (s !== "") o[key] = s;
};
const strList = (key: string, what: string): Handler => (o, f) => {
  ((o[key] ??= []) as string[]).push(bytesOf(f, what).toString("utf8"));
};
const int = (key: string, what: string): Handler => (o, f) => {
  o[key] = Number(BigInt.asIntN(64, varintOf(f, what)));
};
const bool = (key: string, what: string): Handler => (o, f) => {
  o[key] = varintOf(f, what) !== 0n;
};
const sub = (key: string, what: string, handlers: Record<number, Handler>): Handler => (o, f) => {
  const v = message(bytesOf(f, what), `${what}.${key}`, handlers);
  if (Object.keys(v).length > 0) o[key] = v;
};
const subList = (key: string, what: string, handlers: Record<number, Handler>): Handler => (o, f) => {
  ((o[key] ??= []) as unknown[]).push(message(bytesOf(f, what), `${what}.${key}`, handlers));
};
/** A `map<string, string|bytes>` entry (`{1: key, 2: value}`); bytes values become base64 as in JSON. */
const mapEntry = (key: string, what: string, valueAs: "string" | "base64"): Handler => (o, f) => {
  let k = "";
  let v: Buffer = Buffer.alloc(0);
  for (const e of fields(bytesOf(f, what), `${what}.${key}`)) {
    if (e.no === 1) k = bytesOf(e, `${what}.${key}`).toString("utf8");
    else if (e.no === 2) v = bytesOf(e, `${what}.${key}`);
  }
  ((o[key] ??= {}) as Record<string, string>)[k] = valueAs === "base64" ? v.toString("base64") : v.toString("utf8");
};
/** `metav1.Time` `{1: seconds, 2: nanos}` → RFC 3339 with second precision, as the JSON codec writes it. */
const time = (key: string, what: string): Handler => (o, f) => {
  const t = message(bytesOf(f, what), `${what}.${key}`, { 1: int("seconds", what), 2: int("nanos", what) });
  if (t.seconds === undefined && t.nanos === undefined) return;
  o[key] = new Date(Number(t.seconds ?? 0) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
};

const OWNER_REFERENCE: Record<number, Handler> = {
  1: str("kind", "OwnerReference"),
  3: str("name", "OwnerReference"),
  4: str("uid", "OwnerReference"),
  5: str("apiVersion", "OwnerReference"),
  6: bool("controller", "OwnerReference"),
  7: bool("blockOwnerDeletion", "OwnerReference"),
};

const MANAGED_FIELDS_ENTRY: Record<number, Handler> = {
  1: str("manager", "ManagedFieldsEntry"),
  2: str("operation", "ManagedFieldsEntry"),
  3: str("apiVersion", "ManagedFieldsEntry"),
  4: time("time", "ManagedFieldsEntry"),
  6: str("fieldsType", "ManagedFieldsEntry"),
  7: (o, f) => {
    const raw = message(bytesOf(f, "ManagedFieldsEntry"), "ManagedFieldsEntry.fieldsV1", {
      1: (r, e) => (r.raw = bytesOf(e, "FieldsV1").toString("utf8")),
    });
    if (typeof raw.raw === "string" && raw.raw !== "") o.fieldsV1 = JSON.parse(raw.raw) as unknown;
  },
  8: str("subresource", "ManagedFieldsEntry"),
};

const OBJECT_META: Record<number, Handler> = {
  1: str("name", "ObjectMeta"),
  2: str("generateName", "ObjectMeta"),
  3: str("namespace", "ObjectMeta"),
  4: str("selfLink", "ObjectMeta"),
  5: str("uid", "ObjectMeta"),
  6: str("resourceVersion", "ObjectMeta"),
  7: (o, f) => {
    const g = Number(varintOf(f, "ObjectMeta"));
    if (g !== 0) o.generation = g;
  },
  8: time("creationTimestamp", "ObjectMeta"),
  9: time("deletionTimestamp", "ObjectMeta"),
  10: int("deletionGracePeriodSeconds", "ObjectMeta"),
  11: mapEntry("labels", "ObjectMeta", "string"),
  12: mapEntry("annotations", "ObjectMeta", "string"),
  13: subList("ownerReferences", "ObjectMeta", OWNER_REFERENCE),
  14: strList("finalizers", "ObjectMeta"),
  17: subList("managedFields", "ObjectMeta", MANAGED_FIELDS_ENTRY),
};

const POLICY_RULE: Record<number, Handler> = {
  1: strList("verbs", "PolicyRule"),
  2: strList("apiGroups", "PolicyRule"),
  3: strList("resources", "PolicyRule"),
  4: strList("resourceNames", "PolicyRule"),
  5: strList("nonResourceURLs", "PolicyRule"),
};
const SUBJECT: Record<number, Handler> = { 1: str("kind", "Subject"), 2: str("apiGroup", "Subject"), 3: str("name", "Subject"), 4: str("namespace", "Subject") };
const ROLE_REF: Record<number, Handler> = { 1: str("apiGroup", "RoleRef"), 2: str("kind", "RoleRef"), 3: str("name", "RoleRef") };
const BINDING = (what: string): Record<number, Handler> => ({ 1: sub("metadata", what, OBJECT_META), 2: subList("subjects", what, SUBJECT), 3: sub("roleRef", what, ROLE_REF) });
const RESOURCE_ATTRIBUTES: Record<number, Handler> = {
  1: str("namespace", "ResourceAttributes"),
  2: str("verb", "ResourceAttributes"),
  3: str("group", "ResourceAttributes"),
  4: str("version", "ResourceAttributes"),
  5: str("resource", "ResourceAttributes"),
  6: str("subresource", "ResourceAttributes"),
  7: str("name", "ResourceAttributes"),
};
const NON_RESOURCE_ATTRIBUTES: Record<number, Handler> = { 1: str("path", "NonResourceAttributes"), 2: str("verb", "NonResourceAttributes") };
/** A status a client sends empty on create: ignored (the server writes it). */
const ignored: Handler = () => undefined;
/** `map<string, ExtraValue>` entry: `{1: key, 2: ExtraValue{1: repeated items}}`. */
const extraEntry = (what: string): Handler => (o, f) => {
  let k = "";
  const items: string[] = [];
  for (const e of fields(bytesOf(f, what), `${what}.extra`)) {
    if (e.no === 1) k = bytesOf(e, what).toString("utf8");
    else if (e.no === 2) for (const i of fields(bytesOf(e, what), `${what}.extra`)) if (i.no === 1) items.push(bytesOf(i, what).toString("utf8"));
  }
  ((o.extra ??= {}) as Record<string, string[]>)[k] = items;
};

/** The object messages this decoder understands, keyed by `apiVersion/kind` (core group: `v1/Kind`). */
const KINDS: Record<string, Record<number, Handler>> = {
  "v1/Secret": {
    1: sub("metadata", "Secret", OBJECT_META),
    2: mapEntry("data", "Secret", "base64"),
    3: str("type", "Secret"),
    4: mapEntry("stringData", "Secret", "string"),
    5: bool("immutable", "Secret"),
  },
  "v1/ConfigMap": {
    1: sub("metadata", "ConfigMap", OBJECT_META),
    2: mapEntry("data", "ConfigMap", "string"),
    3: mapEntry("binaryData", "ConfigMap", "base64"),
    4: bool("immutable", "ConfigMap"),
  },
  "v1/Namespace": {
    1: sub("metadata", "Namespace", OBJECT_META),
    2: sub("spec", "Namespace", { 1: strList("finalizers", "NamespaceSpec") }),
    3: sub("status", "Namespace", { 1: str("phase", "NamespaceStatus") }),
  },
  // kubectl create serviceaccount|role|rolebinding|clusterrole|clusterrolebinding|token, kubectl auth can-i|whoami
  "v1/ServiceAccount": {
    1: sub("metadata", "ServiceAccount", OBJECT_META),
    3: bool("automountServiceAccountToken", "ServiceAccount"),
  },
  "rbac.authorization.k8s.io/v1/Role": { 1: sub("metadata", "Role", OBJECT_META), 2: subList("rules", "Role", POLICY_RULE) },
  "rbac.authorization.k8s.io/v1/ClusterRole": { 1: sub("metadata", "ClusterRole", OBJECT_META), 2: subList("rules", "ClusterRole", POLICY_RULE) },
  "rbac.authorization.k8s.io/v1/RoleBinding": BINDING("RoleBinding"),
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": BINDING("ClusterRoleBinding"),
  "authentication.k8s.io/v1/TokenRequest": {
    1: sub("metadata", "TokenRequest", OBJECT_META),
    2: sub("spec", "TokenRequest", {
      1: strList("audiences", "TokenRequestSpec"),
      4: int("expirationSeconds", "TokenRequestSpec"),
      3: sub("boundObjectRef", "TokenRequestSpec", { 1: str("kind", "BoundObjectReference"), 2: str("apiVersion", "BoundObjectReference"), 3: str("name", "BoundObjectReference"), 4: str("uid", "BoundObjectReference") }),
    }),
    3: ignored,
  },
  "authentication.k8s.io/v1/SelfSubjectReview": { 1: sub("metadata", "SelfSubjectReview", OBJECT_META), 2: ignored },
  "authorization.k8s.io/v1/SelfSubjectAccessReview": {
    1: sub("metadata", "SelfSubjectAccessReview", OBJECT_META),
    2: sub("spec", "SelfSubjectAccessReview", { 1: sub("resourceAttributes", "SelfSubjectAccessReviewSpec", RESOURCE_ATTRIBUTES), 2: sub("nonResourceAttributes", "SelfSubjectAccessReviewSpec", NON_RESOURCE_ATTRIBUTES) }),
    3: ignored,
  },
  "authorization.k8s.io/v1/SubjectAccessReview": {
    1: sub("metadata", "SubjectAccessReview", OBJECT_META),
    2: sub("spec", "SubjectAccessReview", {
      1: sub("resourceAttributes", "SubjectAccessReviewSpec", RESOURCE_ATTRIBUTES),
      2: sub("nonResourceAttributes", "SubjectAccessReviewSpec", NON_RESOURCE_ATTRIBUTES),
      3: str("user", "SubjectAccessReviewSpec"),
      4: strList("groups", "SubjectAccessReviewSpec"),
      5: extraEntry("SubjectAccessReviewSpec"),
      6: str("uid", "SubjectAccessReviewSpec"),
    }),
    3: ignored,
  },
  // DeleteOptions is registered in every group version; helm and kubectl send it as meta/v1 or v1.
  "v1/DeleteOptions": {
    1: int("gracePeriodSeconds", "DeleteOptions"),
    2: sub("preconditions", "DeleteOptions", {
      1: str("uid", "Preconditions"),
      2: str("resourceVersion", "Preconditions"),
    }),
    3: bool("orphanDependents", "DeleteOptions"),
    4: str("propagationPolicy", "DeleteOptions"),
    5: strList("dryRun", "DeleteOptions"),
  },
};

/**
 * Decodes a Kubernetes protobuf request body into the JSON object the same request would have carried.
 *
 * Understood kinds: `v1` Secret (`data` and `binaryData` bytes become base64 strings, as in JSON), ConfigMap,
 * Namespace, ServiceAccount, and DeleteOptions (any group version, e.g. `meta.k8s.io/v1`); Role, ClusterRole,
 * RoleBinding, ClusterRoleBinding; TokenRequest, SelfSubjectReview, SubjectAccessReview and
 * SelfSubjectAccessReview. Proto2 empty strings, empty
 * embedded messages and zero generations are treated as absent. Timestamps become RFC 3339 strings with
 * second precision.
 *
 * @param body the raw request body, starting with the magic bytes "k8s\0"
 * @returns `apiVersion` and `kind` from the envelope's TypeMeta, and `object`: the decoded object with
 *   `apiVersion` and `kind` set
 * @throws Error when the magic bytes are missing, the message is malformed, `contentEncoding` is set,
 *   the kind is not one of the above (the message names the apiVersion and kind), or an object message
 *   carries a field number this decoder does not know (the message names the message type and field)
 */
export function decodeProtobufObject(body: Buffer): {
  apiVersion: string;
  kind: string;
  object: Record<string, unknown>;
} {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new Error('decode protobuf body: missing the "k8s\\0" magic prefix');
  }
  let apiVersion = "";
  let kind = "";
  let raw: Buffer = Buffer.alloc(0);
  for (const f of fields(body.subarray(MAGIC.length), "runtime.Unknown")) {
    if (f.no === 1) {
      for (const t of fields(bytesOf(f, "runtime.Unknown"), "runtime.TypeMeta")) {
        if (t.no === 1) apiVersion = bytesOf(t, "TypeMeta").toString("utf8");
        else if (t.no === 2) kind = bytesOf(t, "TypeMeta").toString("utf8");
      }
    } else if (f.no === 2) {
      raw = bytesOf(f, "runtime.Unknown");
    } else if (f.no === 3) {
      const enc = bytesOf(f, "runtime.Unknown").toString("utf8");
      if (enc !== "") throw new Error(`decode protobuf ${apiVersion} ${kind}: unsupported contentEncoding "${enc}"`);
    }
  }
  if (kind === "") throw new Error("decode protobuf body: the envelope has no kind");
  const key = kind === "DeleteOptions" ? "v1/DeleteOptions" : `${apiVersion}/${kind}`;
  const handlers = KINDS[key];
  if (!handlers) {
    throw new Error(
      `decode protobuf ${apiVersion} ${kind}: unsupported kind (only v1 Secret, ConfigMap, Namespace, ServiceAccount, DeleteOptions, the rbac kinds, TokenRequest and the access reviews; send JSON instead)`,
    );
  }
  const object = { apiVersion, kind, ...message(raw, kind, handlers) };
  return { apiVersion, kind, object };
}
