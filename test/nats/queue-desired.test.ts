import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { queueNames } from "../../api/naming.js";
import {
  configDrift,
  desiredDeadLetterStreamConfig,
  desiredDelayConsumerConfig,
  desiredDelayedStreamConfig,
  desiredResultsBucket,
  desiredStreamConfig,
  desiredWorkerConsumerConfig,
  natsSettingsFrom,
  parseGoDuration,
  queueSettings,
} from "../../nats/index.js";

const names = queueNames("prod", "emails");

describe("when mapping queue settings to NATS configs", () => {
  const s = queueSettings({ ackWaitSeconds: 45, resultsTtlSeconds: 3600, duplicateWindow: "5m", deadLetterMaxAge: "24h", replicas: 3, maxAckPending: 50 });
  const cases: [string, () => unknown, Record<string, unknown>][] = [
    ["the work stream is a WorkQueue on the task subject with the duplicate window", () => desiredStreamConfig(names, s), { name: "CELERIAC_prod_emails", subjects: ["celeriac.prod.emails.tasks"], retention: "workqueue", num_replicas: 3, duplicate_window: 300e9, storage: "file" }],
    ["the delayed stream is a separate WorkQueue with its own duplicate window", () => desiredDelayedStreamConfig(names, s), { name: "CELERIAC_prod_emails_DELAYED", subjects: ["celeriac.prod.emails.delayed"], retention: "workqueue", duplicate_window: 300e9 }],
    ["the dead-letter stream keeps messages for deadLetterMaxAge", () => desiredDeadLetterStreamConfig(names, s), { name: "CELERIAC_prod_emails_DLQ", retention: "limits", max_age: 24 * 3600e9 }],
    ["the worker consumer uses the ack wait and unlimited deliveries", () => desiredWorkerConsumerConfig(names, s), { durable_name: "workers", ack_policy: "explicit", ack_wait: 45e9, max_deliver: -1, max_ack_pending: 50, filter_subject: "celeriac.prod.emails.tasks" }],
    ["the delay consumer allows unlimited pending naks", () => desiredDelayConsumerConfig(names, s), { durable_name: "delay-mover", max_deliver: -1, max_ack_pending: -1, filter_subject: "celeriac.prod.emails.delayed" }],
    ["the results bucket TTL is the results TTL in ms", () => desiredResultsBucket(names, s), { bucket: "CELERIAC_prod_emails_RESULTS", ttlMs: 3_600_000, history: 1, replicas: 3 }],
    ["memory storage maps to memory", () => desiredStreamConfig(names, queueSettings({ storage: "memory" })), { storage: "memory" }],
  ];
  for (const [name, make, want] of cases) {
    it(name, () => {
      const got = make() as Record<string, unknown>;
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, k);
    });
  }
});

describe("when diffing desired and live configs", () => {
  const cases: [string, Record<string, unknown>, Record<string, unknown>, string[]][] = [
    ["equal configs have no drift", { a: 1, s: ["x", "y"] }, { a: 1, s: ["x", "y"], extra: 9 }, []],
    ["subject order does not matter", { s: ["x", "y"] }, { s: ["y", "x"] }, []],
    ["a changed number drifts", { a: 1 }, { a: 2 }, ["a"]],
    ["a missing subject drifts", { s: ["x", "y"] }, { s: ["x"] }, ["s"]],
    ["false equals absent", { allow_direct: false }, {}, []],
  ];
  for (const [name, desired, live, fields] of cases) {
    it(name, () => assert.deepEqual(configDrift(desired, live).map((d) => d.field), fields));
  }
});

describe("when parsing Go durations", () => {
  const cases: [string, number][] = [["0", 0], ["2m", 120e9], ["1h30m", 5400e9], ["500ms", 500e6], ["1.5s", 1.5e9], ["336h", 336 * 3600e9]];
  for (const [d, ns] of cases) it(`parses ${d}`, () => assert.equal(parseGoDuration(d), ns));
  for (const bad of ["", "2", "2 m", "1d", "m"]) it(`rejects "${bad}" naming it`, () => assert.throws(() => parseGoDuration(bad), new RegExp(`"${bad}" is not a Go duration`)));
});

describe("when reading NATS settings", () => {
  it("takes the flag over CELERIAC_NATS_URL and splits several servers", () => {
    const s = natsSettingsFrom({ url: "nats://a:4222, nats://b:4222" }, { CELERIAC_NATS_URL: "nats://env:4222" });
    assert.deepEqual(s.servers, ["nats://a:4222", "nats://b:4222"]);
  });
  it("reads credentials and TLS CA from the environment", () => {
    const s = natsSettingsFrom({}, { CELERIAC_NATS_URL: "tls://n:4222", CELERIAC_NATS_USER: "u", CELERIAC_NATS_PASSWORD: "p", CELERIAC_NATS_TLS_CA: "/ca.pem", CELERIAC_NATS_CREDS: "/x.creds" });
    assert.deepEqual({ ...s }, { servers: ["tls://n:4222"], user: "u", password: "p", tlsCaFile: "/ca.pem", credsFile: "/x.creds" });
    assert.ok(Object.isFrozen(s));
  });
});
