// Unit tests for the Kubernetes protobuf body decoder, with request bodies captured from kubectl 1.32 and helm 4
// (traces f05, h01, h02, h04 in the shared k8s-api spec).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeProtobufObject } from "../../devcluster/protobuf.js";

const fixture = (name: string): Buffer =>
  readFileSync(new URL(`../../../test/fixtures/protobuf/${name}.pb`, import.meta.url));

/** Encodes a length-delimited protobuf field (enough for hand-built envelopes). */
const ld = (no: number, payload: Buffer | string): Buffer => {
  const b = typeof payload === "string" ? Buffer.from(payload) : payload;
  return Buffer.concat([Buffer.from([(no << 3) | 2, b.length]), b]);
};
const envelope = (apiVersion: string, kind: string, raw: Buffer, contentEncoding = ""): Buffer =>
  Buffer.concat([
    Buffer.from("k8s\0", "latin1"),
    ld(1, Buffer.concat([ld(1, apiVersion), ld(2, kind)])),
    ld(2, raw),
    ld(3, contentEncoding),
    ld(4, ""),
  ]);

describe("when decoding bodies sent by kubectl create", () => {
  const cases: { name: string; want: Record<string, unknown> }[] = [
    { name: "namespace-create", want: { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-a" } } },
    {
      name: "secret-create",
      want: { apiVersion: "v1", kind: "Secret", metadata: { name: "s1" }, data: { a: Buffer.from("b").toString("base64") } },
    },
    { name: "configmap-create", want: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c1" }, data: { a: "b" } } },
  ];
  for (const c of cases) {
    it(`decodes ${c.name} to the JSON object, dropping proto2 empty strings`, () => {
      const got = decodeProtobufObject(fixture(c.name));
      assert.equal(got.apiVersion, c.want.apiVersion);
      assert.equal(got.kind, c.want.kind);
      assert.deepEqual(got.object, c.want);
    });
  }
});

describe("when decoding helm 4 release storage bodies", () => {
  it("decodes the release Secret with labels, type and base64 data", () => {
    const { object } = decodeProtobufObject(fixture("helm-release-secret-create"));
    assert.equal(object.type, "helm.sh/release.v1");
    assert.deepEqual((object.metadata as Record<string, unknown>).labels, {
      createdAt: "1795328474",
      name: "demo",
      owner: "helm",
      status: "pending-install",
      version: "1",
    });
    assert.equal((object.metadata as Record<string, unknown>).name, "sh.helm.release.v1.demo.v1");
    const release = (object.data as Record<string, string>).release ?? "";
    // helm stores base64(gzip(json)); the decoder adds the JSON codec's base64 layer on top.
    const inner = Buffer.from(Buffer.from(release, "base64").toString("utf8"), "base64");
    assert.deepEqual([...inner.subarray(0, 2)], [0x1f, 0x8b]);
  });

  it("decodes the superseding PUT body", () => {
    const { object } = decodeProtobufObject(fixture("helm-release-secret-supersede"));
    assert.equal(((object.metadata as Record<string, unknown>).labels as Record<string, string>).status, "superseded");
  });

  it("decodes an empty DeleteOptions body to an empty object", () => {
    const got = decodeProtobufObject(fixture("helm-delete-options"));
    assert.deepEqual(got, { apiVersion: "v1", kind: "DeleteOptions", object: { apiVersion: "v1", kind: "DeleteOptions" } });
  });
});

describe("when decoding hand-built bodies", () => {
  it("decodes DeleteOptions fields", () => {
    const raw = Buffer.concat([
      Buffer.from([0x08, 0x1e]), // gracePeriodSeconds 30
      ld(2, Buffer.concat([ld(1, "u-1"), ld(2, "")])),
      ld(4, "Foreground"),
      ld(5, "All"),
    ]);
    const { object } = decodeProtobufObject(envelope("meta.k8s.io/v1", "DeleteOptions", raw));
    assert.deepEqual(object, {
      apiVersion: "meta.k8s.io/v1",
      kind: "DeleteOptions",
      gracePeriodSeconds: 30,
      preconditions: { uid: "u-1" },
      propagationPolicy: "Foreground",
      dryRun: ["All"],
    });
  });

  it("decodes ObjectMeta owner references, finalizers, annotations and a creation timestamp", () => {
    const owner = Buffer.concat([ld(1, "Deployment"), ld(3, "w"), ld(4, "uid-9"), ld(5, "apps/v1"), Buffer.from([0x30, 1])]);
    const ts = Buffer.from([0x08, 0x80, 0xa3, 0xc3, 0xeb, 0x06]); // seconds varint
    const meta = Buffer.concat([
      ld(1, "cm"),
      ld(3, "ns1"),
      ld(8, ts),
      ld(12, Buffer.concat([ld(1, "k"), ld(2, "v")])),
      ld(13, owner),
      ld(14, "example.com/f"),
    ]);
    const { object } = decodeProtobufObject(envelope("v1", "ConfigMap", Buffer.concat([ld(1, meta), ld(3, Buffer.concat([ld(1, "bin"), ld(2, Buffer.from([0xff, 0x00]))]))])));
    const m = object.metadata as Record<string, unknown>;
    assert.equal(m.namespace, "ns1");
    assert.match(String(m.creationTimestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(m.annotations, { k: "v" });
    assert.deepEqual(m.ownerReferences, [{ kind: "Deployment", name: "w", uid: "uid-9", apiVersion: "apps/v1", controller: true }]);
    assert.deepEqual(m.finalizers, ["example.com/f"]);
    assert.deepEqual(object.binaryData, { bin: "/wA=" });
  });
});

describe("when the body cannot be decoded", () => {
  it("rejects a body without the k8s magic", () => {
    assert.throws(() => decodeProtobufObject(Buffer.from('{"kind":"Secret"}')), /magic/);
  });

  it("rejects an unsupported kind, naming it", () => {
    assert.throws(() => decodeProtobufObject(envelope("apps/v1", "Deployment", ld(1, ld(1, "d")))), /apps\/v1 Deployment/);
  });

  it("rejects an unknown field, naming the message and field number", () => {
    assert.throws(() => decodeProtobufObject(envelope("v1", "Secret", ld(9, "x"))), /Secret: unknown field 9/);
  });

  it("rejects a truncated message", () => {
    const body = fixture("secret-create");
    assert.throws(() => decodeProtobufObject(body.subarray(0, body.length - 3)), /decode protobuf/);
  });

  it("rejects a content encoding", () => {
    assert.throws(() => decodeProtobufObject(envelope("v1", "Secret", Buffer.alloc(0), "gzip")), /contentEncoding/);
  });
});
