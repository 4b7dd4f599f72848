/**
 * The permissions contract (api/nats-permissions.ts), checked as data: every subject names the
 * tenant's own streams or subjects, no wildcard stands for a stream, bucket or queue token, and the
 * refused operations are absent. The server-side proof is test/nats/isolation.test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { queueNames } from "../../api/naming.js";
import { dashboardHistorySubjects, producerInboxPrefix, producerPermissions, workerInboxPrefix, workerPermissions } from "../../api/nats-permissions.js";

/** True when `subject` concerns only `names` (its streams, bucket or subjects) or the account-level API INFO. */
function ownOnly(subject: string, ns: string, queues: string[]): boolean {
  if (subject === "$JS.API.INFO") return true;
  return queues.some((q) => {
    const n = queueNames(ns, q);
    const tokens = subject.split(".");
    const own = [n.stream, n.delayedStream, n.deadLetterStream, `${n.stream}_HELD`, `KV_${n.resultsBucket}`, n.resultsBucket];
    return tokens.some((t) => own.includes(t)) || subject.startsWith(`celeriac.${ns}.${q}.`);
  });
}

describe("when building NATS permissions", () => {
  it("gives inbox prefixes that are single tokens, distinct per queue and namespace", () => {
    assert.equal(workerInboxPrefix("team-a", "emails"), "_INBOX_celeriac_team-a_emails");
    assert.equal(producerInboxPrefix("team-a"), "_INBOX_celeriac_team-a");
    for (const p of [workerInboxPrefix("a", "b-c"), workerInboxPrefix("a-b", "c"), producerInboxPrefix("a")]) assert.ok(!p.includes("."));
    assert.notEqual(workerInboxPrefix("a", "b-c"), workerInboxPrefix("a-b", "c"));
    assert.throws(() => workerInboxPrefix("Team_A", "x"), /namespace "Team_A" is not a DNS-1123 label/);
    assert.throws(() => producerPermissions("team-a", ["Bad.Q"]), /queue "Bad.Q" is not a DNS-1123 label/);
  });

  it("limits a worker to its own queue's names, with no wildcard in a name position", () => {
    const p = workerPermissions("team-a", "emails");
    for (const s of p.pub.allow) {
      assert.ok(ownOnly(s, "team-a", ["emails"]), s);
      // wildcards only after the names: `*`/`>` never as the stream, consumer or bucket token
      const tokens = s.split(".");
      const firstWild = tokens.findIndex((t) => t === "*" || t === ">");
      // (or after the queue's own subject prefix: the held subjects, one per priority level)
      if (firstWild >= 0) assert.ok(tokens.slice(0, firstWild).some((t) => t.includes("team-a_emails")) || s.startsWith("celeriac.team-a.emails.held."), s);
    }
    assert.ok(p.pub.allow.includes("celeriac.team-a.emails.held.*"), "the delay mover moves flow-controlled tasks to the held stream");
    assert.deepEqual(p.sub.allow, ["_INBOX_celeriac_team-a_emails.>", "celeriac.team-a.emails.control.inspect"]);
    assert.deepEqual(p.resp, { max: 1, expiresMs: 60_000 }, "one reply per control request");
    assert.ok(p.pub.allow.includes("$KV.CELERIAC_team-a_emails_RESULTS.worker.*"), "its worker registry entry");
    const joined = p.pub.allow.join(" ");
    for (const refused of ["STREAM.CREATE", "STREAM.UPDATE", "STREAM.DELETE", "STREAM.PURGE", "STREAM.NAMES", "STREAM.LIST", "CONSUMER.CREATE.CELERIAC_", "CONSUMER.DURABLE", "revoked", "queue.settings"]) {
      assert.ok(!joined.includes(refused), refused);
    }
  });

  it("lets a producer publish and read but never pull a task, ack or delete, for every listed queue", () => {
    const all = producerPermissions("team-a", ["b", "a", "b"]);
    // the dashboard history bucket's subjects are checked in their own test below
    const history = dashboardHistorySubjects("team-a");
    const p = { ...all, pub: { allow: all.pub.allow.filter((s) => !history.includes(s)) } };
    assert.equal(all.pub.allow.length - p.pub.allow.length, history.length);
    for (const s of p.pub.allow) assert.ok(ownOnly(s, "team-a", ["a", "b"]), s);
    for (const q of ["a", "b"]) {
      const n = queueNames("team-a", q);
      assert.ok(p.pub.allow.includes(n.taskSubject) && p.pub.allow.includes(n.delayedSubject));
      assert.ok(p.pub.allow.includes(`$KV.${n.resultsBucket}.revoked.*`));
      assert.ok(p.pub.allow.includes(`celeriac.team-a.${q}.held.*`), "a flow-controlled queue's due tasks go to its held stream");
      assert.ok(!p.pub.allow.includes(n.deadLetterSubject));
    }
    assert.ok(!p.pub.allow.some((s) => /\$JS\.ACK|STREAM\.(CREATE|UPDATE|DELETE|PURGE|NAMES|LIST)|MSG\.DELETE/.test(s)));
    // the one pull: its own ordered consumer on a results-bucket stream (celeriac tasks list); never a work, delayed, held or dead-letter stream
    for (const s of p.pub.allow.filter((x) => x.includes("MSG.NEXT"))) assert.match(s, /^\$JS\.API\.CONSUMER\.MSG\.NEXT\.KV_CELERIAC_team-a_[ab]_RESULTS\.\*$/);
    // dead letters are read by sequence (MSG.GET, DIRECT.GET), never through a consumer
    assert.ok(!p.pub.allow.some((s) => /CONSUMER\.CREATE\.CELERIAC_/.test(s)));
    assert.deepEqual(p.sub.allow, ["_INBOX_celeriac_team-a.>"]);
    assert.equal(p.resp, undefined, "a producer answers no requests");
    for (const q of ["a", "b"]) assert.ok(p.pub.allow.includes(`celeriac.team-a.${q}.control.inspect`), "celeriac inspect on its own queues");
    // listed once each, in a stable order
    assert.equal(new Set(p.pub.allow).size, p.pub.allow.length);
    assert.deepEqual(producerPermissions("team-a", ["a", "b"]), all);
  });

  it("names only the namespace's dashboard history bucket in the dashboard's rights, creating it but never updating, purging or deleting it", () => {
    const d = dashboardHistorySubjects("team-a");
    for (const s of d) assert.ok(s.split(".").some((t) => t === "KV_CELERIAC_team-a_DASHBOARD" || t === "CELERIAC_team-a_DASHBOARD"), s);
    assert.deepEqual(d.filter((s) => s.includes("STREAM.")), ["$JS.API.STREAM.INFO.KV_CELERIAC_team-a_DASHBOARD", "$JS.API.STREAM.CREATE.KV_CELERIAC_team-a_DASHBOARD"]);
    assert.ok(!d.some((s) => /STREAM\.\*|STREAM\.>|\.>$/.test(s) && !s.startsWith("$KV.") && !s.includes("CONSUMER.*")), "no wildcard over stream operations");
    // in the producer credential, once whatever the number of queues, so `celeriac dashboard` under it
    // keeps its history in NATS (the CONNECT-line size this adds, ~330 bytes of JWT, is covered by the
    // raised max_control_line of every config Celeriac generates: api/nats-control-line.ts)
    for (const queues of [["a"], ["a", "b", "c"]]) {
      const p = producerPermissions("team-a", queues).pub.allow;
      for (const s of d) assert.equal(p.filter((x) => x === s).length, 1, `${s} once in the producer credential for ${queues.length} queue(s)`);
    }
    assert.ok(!workerPermissions("team-a", "a").pub.allow.some((s) => d.includes(s)), "not in a worker credential");
  });

  it("lets workers and producers write canvas join records and slots, and producers canvas records, in their own buckets only", () => {
    const n = queueNames("team-a", "emails");
    const w = workerPermissions("team-a", "emails").pub.allow;
    const p = producerPermissions("team-a", ["emails"]).pub.allow;
    assert.ok(w.includes(`$KV.${n.resultsBucket}.join.>`), "join.<id> and join.<id>.<index>");
    assert.ok(p.includes(`$KV.${n.resultsBucket}.join.>`));
    assert.ok(p.includes(`$KV.${n.resultsBucket}.canvas.*`));
    assert.ok(!w.some((s) => s.includes(".canvas.")), "a worker never writes canvas records");
    for (const s of [...w, ...p].filter((x) => x.includes(".join.") || x.includes(".canvas."))) assert.ok(s.startsWith(`$KV.${n.resultsBucket}.`), s);
  });
});
