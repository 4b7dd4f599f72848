/**
 * The NATS permissions of Celeriac's minted users, declared once: what a Queue's worker and a
 * namespace's producer may publish and subscribe to. Pure. The operator signs these into user JWTs
 * (nats/credentials.ts `mintUserCreds`); the isolation tests (test/nats/isolation.test.ts) prove
 * each rule against a real nats-server in operator mode, and every allowed subject below was found
 * by running the real worker and client under these permissions (nats-server logs each refusal as
 * `Permissions Violation for Publish to "…"`).
 *
 * NATS permissions are token-based: `*` matches one token, `>` the rest. Stream, consumer and bucket
 * names are single tokens and NATS has no partial-token wildcard, so every stream of every queue is
 * listed by name; a `*` in a stream position would grant the other tenants' streams too.
 *
 * What neither credential can do: create, update, delete or purge a stream (`STREAM.CREATE` /
 * `UPDATE` / `DELETE` / `PURGE`), create a consumer on a work, delayed or dead-letter stream, list
 * the account's streams (`STREAM.NAMES` / `STREAM.LIST`, which would reveal other tenants' queue
 * names), or touch any subject of another queue or namespace. Only the operator's own, unrestricted
 * credential creates streams.
 *
 * Residual rights, on the tenant's own names only (documented in docs/security.md):
 * - `$JS.API.INFO` (account usage totals, no names): nats.js calls it when a JetStream manager is
 *   made with `checkAPI` (the worker's default).
 * - `CONSUMER.CREATE` on the queue's own results-bucket stream: a KV watch creates an ephemeral
 *   ordered consumer there. Its deliver subject is not in the request subject, so permissions
 *   cannot pin it to the caller's inbox; the data it can deliver is the caller's own bucket.
 */
import { controlSubject } from "./control.js";
import { heldNames } from "./flow.js";
import { dashboardBucket, queueNames, type QueueNames } from "./naming.js";

/** Publish and subscribe permissions of one NATS user (the `pub` / `sub` of a user JWT). */
export interface NatsPermissions {
  /** Subjects the user may publish to (`allow`), minus `deny`. */
  pub: { allow: string[]; deny?: string[] };
  /** Subjects the user may subscribe to (`allow`), minus `deny`. */
  sub: { allow: string[]; deny?: string[] };
  /**
   * Response permission (the user JWT's `resp`, nats-server config `allow_responses`): the user may
   * publish up to `max` messages to the reply subject of each request it received, for
   * `expiresMs` milliseconds after it, whatever `pub` says. Absent: none.
   */
  resp?: { max: number; expiresMs: number };
}

/** How long a worker may answer a control request, in ms (60 s: longer than any `inspect --timeout` worth waiting). */
export const CONTROL_RESPONSE_EXPIRES_MS = 60_000;

/** JetStream API subject prefix (default domain). */
const API = "$JS.API";

/**
 * Inbox prefix of a Queue's worker user, e.g. `_INBOX_celeriac_team-a_emails`: one subject token
 * (namespace and queue are DNS-1123 labels, so `_` keeps them apart). The worker connects with it as
 * nats.js `inboxPrefix` (`CELERIAC_NATS_INBOX_PREFIX`, or read from its creds) and may subscribe to
 * `<prefix>.>` only, so no other user's replies or deliveries reach it.
 * @throws Error when the namespace or queue is not a DNS-1123 label
 */
export function workerInboxPrefix(namespace: string, queue: string): string {
  queueNames(namespace, queue);
  return `_INBOX_celeriac_${namespace}_${queue}`;
}

/**
 * Inbox prefix of a namespace's producer user, e.g. `_INBOX_celeriac_team-a`. A distinct token from
 * every worker prefix (`_INBOX_celeriac_team-a_emails` is another token, not an extension of it).
 * @throws Error when the namespace is not a DNS-1123 label
 */
export function producerInboxPrefix(namespace: string): string {
  queueNames(namespace, "x");
  return `_INBOX_celeriac_${namespace}`;
}

/** Subjects that read a queue's results bucket: KV get (both APIs), and watch (ordered consumer). */
function bucketReadSubjects(n: QueueNames): string[] {
  const kvStream = `KV_${n.resultsBucket}`;
  return [
    `${API}.STREAM.INFO.${kvStream}`,
    // KV get: MSG.GET, or DIRECT.GET when the bucket allows direct gets (with and without the key in the subject)
    `${API}.STREAM.MSG.GET.${kvStream}`,
    `${API}.DIRECT.GET.${kvStream}`,
    `${API}.DIRECT.GET.${kvStream}.>`,
    // KV watch: an ephemeral ordered push consumer (new create API carries name and filter in the subject)
    `${API}.CONSUMER.CREATE.${kvStream}`,
    `${API}.CONSUMER.CREATE.${kvStream}.>`,
    `${API}.CONSUMER.INFO.${kvStream}.*`,
    `${API}.CONSUMER.DELETE.${kvStream}.*`,
    // flow-control replies of the ordered consumer's deliveries
    `$JS.FC.${kvStream}.>`,
  ];
}

/**
 * Subjects of the dashboard's history bucket of `namespace` ({@link dashboardBucket},
 * dashboard/history-store.ts), for the producer credential the dashboard runs with: create the
 * bucket when it is missing (`STREAM.CREATE` of that one stream only: a producer can create no
 * other stream, nor update, purge or delete this one), read its info, write its points
 * (`$KV.<bucket>.>`), and read them back with an ordered consumer of its own (create, info,
 * pull, delete).
 *
 * Part of {@link producerPermissions} (once per namespace, about 330 bytes of the user JWT), so
 * `celeriac dashboard` under the minted producer credential keeps its history in NATS. A credential
 * without them (e.g. a user made with `nsc` from an older list) still runs the dashboard, with its
 * history in memory, and the dashboard says so.
 * @throws Error when the namespace is not a DNS-1123 label
 */
export function dashboardHistorySubjects(namespace: string): string[] {
  const b = dashboardBucket(namespace);
  const kvStream = `KV_${b}`;
  return [
    `${API}.STREAM.INFO.${kvStream}`,
    `${API}.STREAM.CREATE.${kvStream}`,
    `$KV.${b}.>`,
    // CONSUMER.CREATE.<stream>.<name>.<filter>, CONSUMER.INFO|DELETE.<stream>.<name> in one (no DURABLE, LIST or NAMES: other positions)
    `${API}.CONSUMER.*.${kvStream}.>`,
    `${API}.CONSUMER.MSG.NEXT.${kvStream}.*`,
  ];
}

/**
 * Permissions of the worker user of Queue `queue` in `namespace`: pull from and ack on its queue's
 * `workers` consumer; run the delay mover (pull/ack on the delayed stream's `delay-mover` consumer,
 * publish due tasks to the task subject, or a flow-controlled queue's to its held subjects); publish
 * dead letters (and delayed tasks); read the stream and consumer info of its own streams (the
 * start-up check of `ensureQueueResources`); read, watch and write task records in its results
 * bucket (keys are task ids: one token, `$KV.<bucket>.*`); write its tasks' code defaults
 * (`$KV.<bucket>.task-defaults.*`, flow control); take, hand on and release singleton locks
 * (`$KV.<bucket>.unique.*`); create and update canvas join records and their slots
 * (`$KV.<bucket>.join.>`: `join.<id>` and `join.<id>.<index>`, canvas/runtime.ts); write the
 * step-end notices of Workflow steps (`$KV.<bucket>.wf.>`: `wf.<uid>.<task id>`). A canvas step on
 * another queue is published, and its records read, with this queue's credential only when it is
 * open: a minted credential reaches its own queue alone (docs/canvas.md).
 * It cannot write `revoked.<id>` markers (producers revoke) nor `queue.settings` (the operator's)
 * nor `queue.paused` (producers pause; it only watches it, which the bucket reads allow).
 * It keeps its worker registry entry (`$KV.<bucket>.worker.*`, api/control.ts) and answers
 * `celeriac inspect`: it subscribes to its queue's control subject and replies once to each
 * request's reply subject through the response permission (`resp`: 1 reply within
 * {@link CONTROL_RESPONSE_EXPIRES_MS}; the worker answers inbox reply subjects only).
 * Subscribe: only its inbox, {@link workerInboxPrefix}, and its queue's control subject.
 * @throws Error when the namespace or queue is not a DNS-1123 label
 */
export function workerPermissions(namespace: string, queue: string): NatsPermissions {
  const n = queueNames(namespace, queue);
  return {
    pub: {
      allow: [
        `${API}.INFO`,
        `${API}.STREAM.INFO.${n.stream}`,
        `${API}.STREAM.INFO.${n.delayedStream}`,
        `${API}.STREAM.INFO.${n.deadLetterStream}`,
        `${API}.CONSUMER.INFO.${n.stream}.${n.workerConsumer}`,
        `${API}.CONSUMER.INFO.${n.delayedStream}.${n.delayConsumer}`,
        `${API}.CONSUMER.MSG.NEXT.${n.stream}.${n.workerConsumer}`,
        `${API}.CONSUMER.MSG.NEXT.${n.delayedStream}.${n.delayConsumer}`,
        `$JS.ACK.${n.stream}.${n.workerConsumer}.>`,
        `$JS.ACK.${n.delayedStream}.${n.delayConsumer}.>`,
        n.taskSubject,
        n.delayedSubject,
        // flow control: the delay mover moves a due flow-controlled task to the held stream
        `${heldNames(n).subjectPrefix}.*`,
        n.deadLetterSubject,
        ...bucketReadSubjects(n),
        `$KV.${n.resultsBucket}.*`,
        `$KV.${n.resultsBucket}.task-defaults.*`,
        `$KV.${n.resultsBucket}.unique.*`,
        `$KV.${n.resultsBucket}.join.>`,
        `$KV.${n.resultsBucket}.wf.>`,
        `$KV.${n.resultsBucket}.worker.*`,
      ],
    },
    sub: { allow: [`${workerInboxPrefix(namespace, queue)}.>`, controlSubject(namespace, queue)] },
    resp: { max: 1, expiresMs: CONTROL_RESPONSE_EXPIRES_MS },
  };
}

/**
 * Permissions of the producer user of `namespace` (clients and `celeriac enqueue`), for the listed
 * queues: publish tasks, delayed tasks and (flow-controlled queues) held tasks; take singleton
 * locks (`$KV.<bucket>.unique.*`); start canvases (`client.apply`): write canvas records
 * (`$KV.<bucket>.canvas.*`) and create join records and slots (`$KV.<bucket>.join.>`); check that a queue exists (its work stream's info); read
 * and watch results and `queue.settings`; read the info of its queues' streams and consumers (so a
 * client with `createQueues` verifies an existing queue, and gets `OperatorCreatesResourcesError`
 * for a missing one); revoke, i.e. write `revoked.<id>` markers and — because
 * `revokeTask` (nats/task-publish.ts) records a not-yet-started task `Cancelled` with a
 * compare-and-set create/update — write task records (`$KV.<bucket>.*`). A producer can therefore
 * overwrite a record of its own namespace's queues (it could already publish any task there); it
 * cannot write `queue.settings`. It may pause and resume its queues (`celeriac queue pause|resume`:
 * create and delete `$KV.<bucket>.queue.paused`), and link a retry or replay to the task it re-runs
 * (`retry.<new id>`, `retries.<old id>`: `celeriac tasks retry`, `celeriac dlq replay`). It cannot consume: no `MSG.NEXT` on a work, delayed, held or
 * dead-letter stream, and no `$JS.ACK` on any stream. For `celeriac tasks` and `celeriac dlq` it may
 * read its queues' queued messages and dead letters one by one (`STREAM.MSG.GET`, and `DIRECT.GET`
 * on the dead-letter stream: never a consumer on those streams), and pull from its own ordered
 * consumer on a results-bucket stream (`CONSUMER.MSG.NEXT.KV_<bucket>.*`: `tasks list`; it can read
 * and watch that bucket anyway). It cannot delete dead letters (`dlq purge`, `dlq replay --remove`):
 * that takes an unrestricted credential.
 * It runs `celeriac inspect`: publish on its queues' control subjects (the replies come to its
 * inbox; the worker registry's `worker.*` keys are read like any key), and read the delayed
 * stream's messages one by one (`STREAM.MSG.GET`, `inspect scheduled`: tasks it could publish).
 * It keeps `celeriac dashboard`'s history: the namespace's dashboard history bucket
 * ({@link dashboardHistorySubjects}, once, after the queues' subjects).
 * Subscribe: only its inbox, {@link producerInboxPrefix}.
 *
 * Size: the user JWT carrying these grows by about 2,250 bytes per queue with short names (up to
 * about 7,200 with 63-character names), and the CONNECT line that carries it must fit the server's
 * `max_control_line` (nats-server's default 4096 bytes is exceeded at two queues): every NATS config
 * Celeriac generates sets 256 KiB, and the operator warns when a minted credential exceeds the limit
 * it is told (api/nats-control-line.ts, operator/credentials/connect-line.ts).
 * @param queues every Queue of the namespace, by name (a stream name is one token: no wildcard can stand for them)
 * @throws Error when the namespace or a queue is not a DNS-1123 label
 */
export function producerPermissions(namespace: string, queues: readonly string[]): NatsPermissions {
  const allow = [`${API}.INFO`];
  for (const q of [...new Set(queues)].sort()) {
    const n = queueNames(namespace, q);
    allow.push(
      n.taskSubject,
      n.delayedSubject,
      // flow control: a flow-controlled queue's due tasks go to its held stream (one subject per level)
      `${heldNames(n).subjectPrefix}.*`,
      // the queue check (work stream), and the read-only pass of ensureQueueResources (`createQueues`)
      `${API}.STREAM.INFO.${n.stream}`,
      `${API}.STREAM.INFO.${n.delayedStream}`,
      `${API}.STREAM.INFO.${n.deadLetterStream}`,
      `${API}.CONSUMER.INFO.${n.stream}.${n.workerConsumer}`,
      `${API}.CONSUMER.INFO.${n.delayedStream}.${n.delayConsumer}`,
      ...bucketReadSubjects(n),
      `$KV.${n.resultsBucket}.*`,
      `$KV.${n.resultsBucket}.revoked.*`,
      `$KV.${n.resultsBucket}.unique.*`,
      `$KV.${n.resultsBucket}.canvas.*`,
      `$KV.${n.resultsBucket}.join.>`,
      // celeriac tasks get / dlq list|show|replay: read queued messages and dead letters by sequence (no consumer on these streams)
      `${API}.STREAM.MSG.GET.${n.stream}`,
      `${API}.STREAM.MSG.GET.${n.delayedStream}`,
      `${API}.STREAM.INFO.${heldNames(n).stream}`,
      `${API}.STREAM.MSG.GET.${heldNames(n).stream}`,
      `${API}.STREAM.MSG.GET.${n.deadLetterStream}`,
      `${API}.DIRECT.GET.${n.deadLetterStream}`,
      // celeriac tasks list: pull from its own ordered consumer on the results-bucket stream (it may already watch that bucket)
      `${API}.CONSUMER.MSG.NEXT.KV_${n.resultsBucket}.*`,
      controlSubject(namespace, q),
      `$KV.${n.resultsBucket}.queue.paused`,
      // celeriac tasks retry and dlq replay: the retry links (`retry.<new id>`, `retries.<old id>`)
      `$KV.${n.resultsBucket}.retry.*`,
      `$KV.${n.resultsBucket}.retries.*`,
    );
  }
  // celeriac dashboard: its history bucket (one per namespace)
  allow.push(...dashboardHistorySubjects(namespace));
  return { pub: { allow }, sub: { allow: [`${producerInboxPrefix(namespace)}.>`] } };
}
