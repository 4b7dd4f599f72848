/**
 * The table of bad inputs for test/e2e/bad-inputs.test.ts: manifests (kubectl apply and celeriac validate),
 * CLI flags, and raw messages on a queue's task subject. Each case says which text must name the field
 * and which must name the fix; a case the product cannot pass yet carries a `todo` reason instead of a
 * weaker assertion.
 */
import { randomUUID } from "node:crypto";

type Obj = Record<string, unknown>;

/** Two substrings the error text must hold: one naming the field, one naming the fix. */
export interface Expect {
  field: string;
  fix: string;
}

/** A bad manifest, applied with kubectl and checked by `celeriac validate`. */
export interface ManifestCase {
  /** Case label. */
  name: string;
  /** The YAML document (or, with `ext: "json"`, the JSON text). */
  text: string;
  ext?: "yaml" | "json";
  /** Expected in both channels unless overridden. */
  expect: Expect;
  /**
   * kubectl channel: `apply` = refused by `kubectl apply` (the error record naming `key`); `status` = accepted,
   * then the operator or worker reports it in a condition (read with `kubectl get -o json`); `skip` = not a
   * kubectl case. Default `apply`.
   */
  kubectl?: "apply" | "status" | "skip";
  /** Text identifying this case's kubectl error record; default the object's quoted name. */
  key?: string;
  /** kubectl's words when they differ from `celeriac validate`'s (kube-apiserver's fixed texts). */
  kubectlExpect?: Expect;
  /** For `status`: the resource (`task/x`, `schedule/x`) and the condition type whose message is checked. */
  status?: { resource: string; condition: string };
  /** A document kubectl applies first (and must accept): the object this case then changes. */
  before?: string;
  /** `celeriac validate`: `skip` when the problem needs the cluster (an unknown queue, a handler name). */
  validate?: "check" | "skip";
  validateExpect?: Expect;
  /** For `status`: delete the object once checked (crash-looping workers cost CPU). */
  cleanup?: boolean;
  /** Why this case cannot pass yet; it is then reported as a todo, its assertions still run. */
  todo?: string;
}

const API = "celeriac.io/v1alpha1";
const doc = (kind: string, name: string, spec: unknown, apiVersion = API): string =>
  `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata:\n  name: ${JSON.stringify(name)}\nspec: ${JSON.stringify(spec)}\n`;
const ok = { queue: "default", task: "reports.generate" };
const task = (name: string, spec: Obj = {}): string => doc("Task", name, { ...ok, ...spec });
const queue = (name: string, spec: Obj = {}): string => doc("Queue", name, spec);
const schedule = (name: string, spec: Obj = {}): string => doc("Schedule", name, { schedule: "@daily", taskTemplate: { spec: ok }, ...spec });
const json = (kind: string, name: string, spec: Obj): string => JSON.stringify({ apiVersion: API, kind, metadata: { name }, spec });

/** The queue the status cases run on (its worker runs the e2e tasks module). */
export const WORK_QUEUE = "bi-work";
const LONG_NAME = `t${"a".repeat(253)}`;
const RFC1123 = "lower case alphanumeric characters, '-' or '.'";
const UNKNOWN_FIELD_FIX = "unknown field (remove it, or check its spelling with kubectl explain)";

/** Manifests, both channels. */
export const MANIFEST_CASES: ManifestCase[] = [
  // names
  { name: "uppercase Task name", text: task("Nightly-Report"), expect: { field: 'metadata.name: Invalid value: "Nightly-Report"', fix: RFC1123 } },
  { name: "Task name with _", text: task("my_task"), expect: { field: 'metadata.name: Invalid value: "my_task"', fix: RFC1123 } },
  { name: "Task name over 253 characters", text: task(LONG_NAME), expect: { field: "metadata.name", fix: "must be no more than 253 characters" } },
  { name: "Schedule name with a space", text: schedule("nightly report"), expect: { field: 'metadata.name: Invalid value: "nightly report"', fix: RFC1123 } },
  { name: "Queue name with a dot", text: queue("orders.eu"), expect: { field: "Queue name must be a DNS-1123 label", fix: "at most 63 lowercase letters, digits and '-'" } },
  { name: "Queue name of 64 characters", text: queue(`q${"x".repeat(63)}`), expect: { field: "Queue name must be a DNS-1123 label", fix: "at most 63 lowercase letters" } },
  { name: "Queue name starting with -", text: queue("-orders"), expect: { field: 'metadata.name: Invalid value: "-orders"', fix: "must start and end with an alphanumeric character" } },
  // Task spec
  { name: "Task without queue", text: doc("Task", "bi-no-queue", { task: "a.b" }), expect: { field: "spec.queue", fix: "Required value" } },
  { name: "Task without task", text: doc("Task", "bi-no-task", { queue: "default" }), expect: { field: "spec.task", fix: "Required value" } },
  { name: "eta with countdownSeconds", text: task("bi-eta-countdown", { countdownSeconds: 5, eta: "2026-11-23T10:00:00Z" }), expect: { field: "countdownSeconds and eta", fix: "mutually exclusive" } },
  { name: "countdown longer than expiresSeconds", text: task("bi-countdown-expires", { countdownSeconds: 600, expiresSeconds: 60 }), expect: { field: "countdownSeconds must not exceed expiresSeconds", fix: "the task would expire before it may run" } },
  { name: "eta after expires", text: task("bi-eta-expires", { eta: "2026-11-23T10:00:00Z", expires: "2026-11-23T09:00:00Z" }), expect: { field: "eta must not be later than expires", fix: "the task would expire before it may run" } },
  { name: "spec.args as an object", text: task("bi-args-object", { args: { image: "x.png" } }), expect: { field: "spec.args", fix: "must be of type array" } },
  { name: "spec.args as a string", text: task("bi-args-string", { args: "[1, 2]" }), expect: { field: "spec.args", fix: "must be of type array" } },
  { name: "spec.kwargs as a list", text: task("bi-kwargs-list", { kwargs: [1, 2] }), expect: { field: "spec.kwargs", fix: "must be of type object" } },
  { name: "timeoutSeconds 0", text: task("bi-timeout-zero", { timeoutSeconds: 0 }), expect: { field: "spec.timeoutSeconds", fix: "should be greater than or equal to 1" } },
  { name: "timeoutSeconds negative", text: task("bi-timeout-neg", { timeoutSeconds: -30 }), expect: { field: "spec.timeoutSeconds: Invalid value: -30", fix: "should be greater than or equal to 1" } },
  { name: "timeoutSeconds as a string", text: task("bi-timeout-string", { timeoutSeconds: "10" }), expect: { field: "spec.timeoutSeconds", fix: "must be of type integer" } },
  { name: "timeoutSeconds fractional", text: task("bi-timeout-frac", { timeoutSeconds: 1.5 }), expect: { field: "spec.timeoutSeconds", fix: "must be of type integer" } },
  { name: "timeoutSeconds over a week", text: task("bi-timeout-long", { timeoutSeconds: 700000 }), expect: { field: "spec.timeoutSeconds", fix: "should be less than or equal to 604800" } },
  { name: "countdownSeconds negative", text: task("bi-countdown-neg", { countdownSeconds: -1 }), expect: { field: "spec.countdownSeconds", fix: "should be greater than or equal to 0" } },
  { name: "expiresSeconds over a year", text: task("bi-expires-long", { expiresSeconds: 40000000 }), expect: { field: "spec.expiresSeconds", fix: "should be less than or equal to 31536000" } },
  { name: "retry.maxAttempts 0", text: task("bi-attempts-zero", { retry: { maxAttempts: 0 } }), expect: { field: "spec.retry.maxAttempts", fix: "should be greater than or equal to 1" } },
  { name: "retry.maxAttempts 5000", text: task("bi-attempts-many", { retry: { maxAttempts: 5000 } }), expect: { field: "spec.retry.maxAttempts", fix: "should be less than or equal to 1000" } },
  { name: "backoff factor below 1", text: task("bi-factor", { retry: { backoff: { factor: 0.5 } } }), expect: { field: "spec.retry.backoff.factor", fix: "should be greater than or equal to 1" } },
  { name: "backoff initialSeconds negative", text: task("bi-initial", { retry: { backoff: { initialSeconds: -1 } } }), expect: { field: "spec.retry.backoff.initialSeconds", fix: "should be greater than or equal to 0" } },
  { name: "backoff jitter as a string", text: task("bi-jitter", { retry: { backoff: { jitter: "yes" } } }), expect: { field: "spec.retry.backoff.jitter", fix: "must be of type boolean" } },
  { name: "eta not a timestamp", text: task("bi-eta-word", { eta: "tomorrow" }), expect: { field: 'spec.eta: Invalid value: "tomorrow"', fix: "must be of type date-time" } },
  { name: "task name with a space", text: task("bi-task-space", { task: "send email" }), expect: { field: "spec.task", fix: "should match '^[A-Za-z_][A-Za-z0-9_.:-]*$'" } },
  { name: "queue reference in uppercase", text: task("bi-queue-upper", { queue: "Default" }), expect: { field: 'spec.queue: Invalid value: "Default"', fix: "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'" } },
  { name: "ttlSecondsAfterFinished negative", text: task("bi-ttl", { ttlSecondsAfterFinished: -1 }), expect: { field: "spec.ttlSecondsAfterFinished", fix: "should be greater than or equal to 0" } },
  {
    name: "unknown Task field (retries)", text: task("bi-unknown-retries", { retries: 3 }), key: 'unknown field "spec.retries"',
    expect: { field: "spec.retries", fix: UNKNOWN_FIELD_FIX }, kubectlExpect: { field: 'unknown field "spec.retries"', fix: "strict decoding error" },
  },
  {
    name: "unknown nested field (retry.max_attempts)", text: task("bi-unknown-nested", { retry: { max_attempts: 3 } }), key: 'unknown field "spec.retry.max_attempts"',
    expect: { field: "spec.retry.max_attempts", fix: UNKNOWN_FIELD_FIX }, kubectlExpect: { field: 'unknown field "spec.retry.max_attempts"', fix: "strict decoding error" },
  },
  {
    name: "unknown top-level field (specs)", text: `apiVersion: ${API}\nkind: Queue\nmetadata: {name: bi-unknown-top}\nspec: {}\nspecs: {concurrency: 2}\n`, key: 'unknown field "specs"',
    expect: { field: "specs", fix: UNKNOWN_FIELD_FIX }, kubectlExpect: { field: 'unknown field "specs"', fix: "strict decoding error" },
  },
  {
    name: "spec changed after creation", before: task("bi-immutable", { args: [1] }), text: task("bi-immutable", { args: [2] }),
    expect: { field: "spec: Invalid value", fix: "spec is immutable after creation: delete and recreate the Task" }, validate: "skip",
  },
  // Queue spec
  { name: "minReplicas above maxReplicas", text: queue("bi-replicas", { autoscaling: { minReplicas: 5, maxReplicas: 2 } }), expect: { field: "spec.autoscaling", fix: "minReplicas must not exceed maxReplicas" } },
  { name: "minReplicas negative", text: queue("bi-min-neg", { autoscaling: { minReplicas: -1 } }), expect: { field: "spec.autoscaling.minReplicas", fix: "should be greater than or equal to 0" } },
  { name: "maxReplicas 0", text: queue("bi-max-zero", { autoscaling: { maxReplicas: 0 } }), expect: { field: "spec.autoscaling.maxReplicas", fix: "should be greater than or equal to 1" } },
  { name: "stream.maxAge 7d", text: queue("bi-age-7d", { stream: { maxAge: "7d" } }), expect: { field: 'spec.stream.maxAge: Invalid value: "7d"', fix: "use 168h" } },
  { name: "stream.maxAge 2 weeks", text: queue("bi-age-weeks", { stream: { maxAge: "2 weeks" } }), expect: { field: "spec.stream.maxAge", fix: "use 336h" } },
  { name: "stream.maxAge without a unit", text: queue("bi-age-bare", { stream: { maxAge: "30" } }), expect: { field: "spec.stream.maxAge", fix: "add a unit: 30s, 30m or 30h" } },
  { name: "duplicateWindow 90 seconds", text: queue("bi-dup", { stream: { duplicateWindow: "90 seconds" } }), expect: { field: "spec.stream.duplicateWindow", fix: "use 90s" } },
  { name: "deadLetter.maxAge 1 day", text: queue("bi-dlq-age", { deadLetter: { maxAge: "1 day" } }), expect: { field: "spec.deadLetter.maxAge", fix: "use 24h" } },
  { name: "stream.storage disk", text: queue("bi-storage", { stream: { storage: "disk" } }), expect: { field: 'spec.stream.storage: Unsupported value: "disk"', fix: 'supported values: "file", "memory"' } },
  { name: "stream.replicas 7", text: queue("bi-stream-replicas", { stream: { replicas: 7 } }), expect: { field: "spec.stream.replicas", fix: "should be less than or equal to 5" } },
  { name: "concurrency 0", text: queue("bi-conc-zero", { concurrency: 0 }), expect: { field: "spec.concurrency", fix: "should be greater than or equal to 1" } },
  { name: "concurrency as a word", text: queue("bi-conc-word", { concurrency: "four" }), expect: { field: "spec.concurrency", fix: "must be of type integer" } },
  { name: "ackWaitSeconds two hours", text: queue("bi-ackwait", { ackWaitSeconds: 7200 }), expect: { field: "spec.ackWaitSeconds", fix: "should be less than or equal to 3600" } },
  { name: "results.ttlSeconds 0", text: queue("bi-results-ttl", { results: { ttlSeconds: 0 } }), expect: { field: "spec.results.ttlSeconds", fix: "should be greater than or equal to 1" } },
  { name: "deletionPolicy Orphan", text: queue("bi-deletion", { deletionPolicy: "Orphan" }), expect: { field: "spec.deletionPolicy", fix: 'supported values: "Retain", "Delete"' } },
  { name: "autoscaling.provider hpa", text: queue("bi-provider", { autoscaling: { provider: "hpa" } }), expect: { field: "spec.autoscaling.provider", fix: 'supported values: "builtin", "keda"' } },
  { name: "imagePullPolicy always", text: queue("bi-pull", { worker: { imagePullPolicy: "always" } }), expect: { field: "spec.worker.imagePullPolicy", fix: 'supported values: "Always", "IfNotPresent", "Never"' } },
  { name: "worker env entry without name", text: queue("bi-env", { worker: { env: [{ value: "x" }] } }), expect: { field: "spec.worker.env[0].name", fix: "Required value" } },
  { name: "worker command as a string", text: queue("bi-command", { worker: { command: "celeriac worker" } }), expect: { field: "spec.worker.command", fix: "must be of type array" } },
  { name: "suspend as a string", text: queue("bi-suspend", { suspend: "no" }), expect: { field: "spec.suspend", fix: "must be of type boolean" } },
  { name: "retry.backoff.maxSeconds negative", text: queue("bi-max-seconds", { retry: { backoff: { maxSeconds: -5 } } }), expect: { field: "spec.retry.backoff.maxSeconds", fix: "should be greater than or equal to 0" } },
  // Schedule spec
  { name: "@every 1d", text: schedule("bi-every-1d", { schedule: "@every 1d" }), expect: { field: 'spec.schedule: Invalid value: "@every 1d"', fix: "use @every 24h" } },
  { name: "6-field cron", text: schedule("bi-cron-seconds", { schedule: "*/10 * * * * *" }), expect: { field: "spec.schedule", fix: "no seconds field: use @every for sub-minute runs" } },
  { name: "Celery crontab()", text: schedule("bi-crontab", { schedule: "crontab(minute=0, hour=3)" }), expect: { field: "spec.schedule", fix: 'use "0 3 * * *"' } },
  { name: "every 5 minutes in English", text: schedule("bi-every-english", { schedule: "every 5 minutes" }), expect: { field: "spec.schedule", fix: "use @every 5m" } },
  { name: "3-field cron", text: schedule("bi-cron-short", { schedule: "* * *" }), expect: { field: "spec.schedule", fix: "should match" } },
  { name: "Schedule without taskTemplate", text: doc("Schedule", "bi-no-template", { schedule: "@daily" }), expect: { field: "spec.taskTemplate", fix: "Required value" } },
  { name: "Schedule without schedule", text: doc("Schedule", "bi-no-schedule", { taskTemplate: { spec: ok } }), expect: { field: "spec.schedule", fix: "Required value" } },
  { name: "template without queue", text: schedule("bi-template-queue", { taskTemplate: { spec: { task: "a.b" } } }), expect: { field: "spec.taskTemplate.spec.queue", fix: "Required value" } },
  { name: "template with countdown and eta", text: schedule("bi-template-eta", { taskTemplate: { spec: { ...ok, countdownSeconds: 1, eta: "2026-11-23T10:00:00Z" } } }), expect: { field: "spec.taskTemplate.spec", fix: "countdownSeconds and eta are mutually exclusive" } },
  { name: "concurrencyPolicy Sometimes", text: schedule("bi-concurrency-policy", { concurrencyPolicy: "Sometimes" }), expect: { field: "spec.concurrencyPolicy", fix: 'supported values: "Allow", "Forbid", "Replace"' } },
  { name: "missedRunPolicy RunSome", text: schedule("bi-missed", { missedRunPolicy: "RunSome" }), expect: { field: "spec.missedRunPolicy", fix: 'supported values: "RunLatest", "Skip", "RunAll"' } },
  { name: "startingDeadlineSeconds negative", text: schedule("bi-deadline", { startingDeadlineSeconds: -10 }), expect: { field: "spec.startingDeadlineSeconds", fix: "should be greater than or equal to 0" } },
  { name: "missedRunsLimit 0", text: schedule("bi-missed-limit", { missedRunsLimit: 0 }), expect: { field: "spec.missedRunsLimit", fix: "should be greater than or equal to 1" } },
  { name: "time zone with a space", text: schedule("bi-zone-space", { timeZone: "Europe Berlin" }), expect: { field: 'spec.timeZone: Invalid value: "Europe Berlin"', fix: "should match" } },
  // kinds and versions
  {
    name: "unknown kind Tusk", text: doc("Tusk", "bi-tusk", ok), key: 'name: "bi-tusk"',
    expect: { field: 'kind: Unsupported value: "Tusk"', fix: 'supported values: "Queue", "Task", "Schedule"' }, kubectlExpect: { field: 'no matches for kind "Tusk" in version "celeriac.io/v1alpha1"', fix: "ensure CRDs are installed first" },
  },
  {
    name: "kind in lower case", text: doc("queue", "bi-lower-kind", {}), key: 'the object kind "queue"',
    expect: { field: 'kind: Unsupported value: "queue"', fix: 'supported values: "Queue", "Task", "Schedule"' },
    kubectlExpect: { field: 'the object kind "queue"', fix: 'does not match the resource kind "Queue"' },
  },
  {
    name: "unknown celeriac.io version", text: doc("Task", "bi-v1", ok, "celeriac.io/v1"), key: 'name: "bi-v1"',
    expect: { field: 'apiVersion: Unsupported value: "celeriac.io/v1"', fix: 'celeriac.io serves only "celeriac.io/v1alpha1"' },
    kubectlExpect: { field: 'no matches for kind "Task" in version "celeriac.io/v1"', fix: "ensure CRDs are installed first" },
  },
  // accepted by the API server, refused by the operator or the worker
  {
    name: "args over 256 KiB", text: task("bi-big-args", { args: ["x".repeat(300 * 1024)] }), kubectl: "status", status: { resource: "task/bi-big-args", condition: "Accepted" },
    expect: { field: "args and kwargs hold", fix: "pass a reference (an object-store key, a URL) instead of the data" },
  },
  {
    name: "cron minute 61", text: schedule("bi-cron-61", { schedule: "61 * * * *" }), kubectl: "status", status: { resource: "schedule/bi-cron-61", condition: "Ready" },
    expect: { field: 'spec.schedule: "61 * * * *"', fix: "minute is 0-59" },
  },
  {
    name: "cron day-of-week misspelt", text: schedule("bi-cron-dow", { schedule: "0 9 * * MON-FRY" }), kubectl: "status", status: { resource: "schedule/bi-cron-dow", condition: "Ready" },
    expect: { field: "spec.schedule", fix: "day-of-week is 0-7 or SUN MON TUE WED THU FRI SAT" },
  },
  {
    name: "@every under a second", text: schedule("bi-every-ms", { schedule: "@every 500ms" }), kubectl: "status", status: { resource: "schedule/bi-every-ms", condition: "Ready" },
    expect: { field: 'spec.schedule: "@every 500ms"', fix: "must be a whole number of seconds, at least 1s" },
  },
  {
    name: "unknown time zone (celeriac validate)", text: schedule("bi-zone-berlin", { timeZone: "Germany/Berlin" }), kubectl: "skip",
    expect: { field: 'spec.timeZone: unknown time zone "Germany/Berlin"', fix: 'use "Europe/Berlin"' },
  },
  {
    name: "unknown time zone", text: schedule("bi-zone-mars", { timeZone: "Mars/Olympus" }), kubectl: "status", status: { resource: "schedule/bi-zone-mars", condition: "Ready" },
    expect: { field: 'spec.timeZone: unknown time zone "Mars/Olympus"', fix: "use an IANA time zone name" }, validate: "skip",
  },
  {
    name: "Task on a queue that does not exist", text: task("bi-no-such-queue", { queue: "no-such-queue" }), kubectl: "status", status: { resource: "task/bi-no-such-queue", condition: "Accepted" },
    expect: { field: 'queue "no-such-queue" does not exist in namespace "default"', fix: "the task waits until it is applied" }, validate: "skip",
  },
  {
    name: "Task naming no registered handler", text: task("bi-no-handler", { queue: WORK_QUEUE, task: "e2e.nope" }), kubectl: "status", status: { resource: "task/bi-no-handler", condition: "Succeeded" },
    expect: { field: 'no handler registered for "e2e.nope"', fix: "registered: e2e.echo" }, validate: "skip",
  },
  {
    name: "Queue naming no tasks module", text: queue("bi-no-tasks", { worker: { image: "celeriac-e2e:dev", command: ["celeriac", "worker"] }, autoscaling: { minReplicas: 1, maxReplicas: 1 } }),
    kubectl: "status", status: { resource: "queue/bi-no-tasks", condition: "WorkersReady" }, validate: "skip", cleanup: true,
    expect: { field: "spec.worker names no tasks module", fix: "set CELERIAC_TASKS to the compiled tasks module" },
  },
  {
    name: "Queue with a tasks module that does not exist", kubectl: "status", status: { resource: "queue/bi-bad-tasks", condition: "WorkersReady" }, validate: "skip", cleanup: true,
    text: queue("bi-bad-tasks", { worker: { image: "celeriac-e2e:dev", command: ["celeriac", "worker"], env: [{ name: "CELERIAC_TASKS", value: "/nonexistent/bi-tasks.js" }] }, autoscaling: { minReplicas: 1, maxReplicas: 1 } }),
    expect: { field: "/nonexistent/bi-tasks.js", fix: "CELERIAC_TASKS" },
  },
];

/** Files only `celeriac validate` sees (kubectl refuses them before any request). */
export const VALIDATE_ONLY_CASES: ManifestCase[] = [
  { name: "YAML with an unclosed flow map", text: `apiVersion: ${API}\nkind: Task\nmetadata: {name: x\n`, expect: { field: "not valid YAML", fix: "Flow map" }, kubectl: "skip" },
  { name: "JSON with a trailing comma", text: `{"apiVersion": "${API}", "kind": "Task",}`, ext: "json", expect: { field: "not valid JSON", fix: "position" }, kubectl: "skip" },
  { name: "JSON array instead of an object", text: "[1, 2]", ext: "json", expect: { field: "a manifest must be an object", fix: "with apiVersion and kind" }, kubectl: "skip" },
  { name: "JSON Task with args as an object", text: json("Task", "bi-json-args", { ...ok, args: { a: 1 } }), ext: "json", expect: { field: "spec.args", fix: "must be of type array" }, kubectl: "skip" },
  { name: "JSON Queue with minReplicas above maxReplicas", text: json("Queue", "bi-json-replicas", { autoscaling: { minReplicas: 3, maxReplicas: 1 } }), ext: "json", expect: { field: "spec.autoscaling", fix: "minReplicas must not exceed maxReplicas" }, kubectl: "skip" },
];

/** A CLI invocation that must fail, naming the flag (or command) and the fix. */
export interface FlagCase {
  name: string;
  /** Arguments after `node bin/celeriac.js`; `$NATS` is replaced by the platform's NATS URL. */
  args: string[];
  expect: Expect;
  /** Text that must not appear (e.g. a printed task id when the enqueue must have been refused). */
  not?: string;
  todo?: string;
}

export const FLAG_CASES: FlagCase[] = [
  { name: "command typo valdate", args: ["valdate", "x.yaml"], expect: { field: "unknown command 'valdate'", fix: "Did you mean validate?" } },
  { name: "command typo enqeue", args: ["enqeue", "a.b"], expect: { field: "unknown command 'enqeue'", fix: "Did you mean enqueue?" } },
  { name: "dev subcommand typo", args: ["dev", "upp"], expect: { field: "unknown command 'upp'", fix: "Did you mean up?" } },
  { name: "option typo --prot", args: ["dev", "up", "--prot", "1"], expect: { field: "unknown option '--prot'", fix: "Did you mean --port?" } },
  { name: "option typo --queu", args: ["enqueue", "a.b", "--queu", "default"], expect: { field: "unknown option '--queu'", fix: "Did you mean --queue?" } },
  { name: "--port 99999", args: ["dev", "up", "--port", "99999"], expect: { field: "option '--port <n>' argument '99999' is invalid", fix: "must be an integer from 0 to 65535" } },
  { name: "--port -1", args: ["dev", "up", "--port=-1"], expect: { field: "option '--port <n>' argument '-1' is invalid", fix: "must be an integer from 0 to 65535" } },
  { name: "--operator-replicas abc", args: ["dev", "up", "--operator-replicas", "abc"], expect: { field: "option '--operator-replicas <n>' argument 'abc' is invalid", fix: "must be an integer from 1 to 10" } },
  { name: "--operator-replicas 0", args: ["dev", "up", "--operator-replicas", "0"], expect: { field: "--operator-replicas", fix: "must be an integer from 1 to 10" } },
  { name: "--timeout 0", args: ["dev", "up", "--timeout", "0"], expect: { field: "option '--timeout <seconds>' argument '0' is invalid", fix: "must be an integer from 1 to 3600" } },
  { name: "dev apiserver --port 70000", args: ["dev", "apiserver", "--port", "70000"], expect: { field: "--port", fix: "must be an integer from 0 to 65535" } },
  { name: "validate without a path", args: ["validate"], expect: { field: "missing required argument 'paths'", fix: "Usage: celeriac validate" } },
  { name: "validate a missing file", args: ["validate", "/nonexistent/bi.yaml"], expect: { field: "/nonexistent/bi.yaml: cannot read", fix: "no such file or directory" } },
  { name: "enqueue without --queue", args: ["enqueue", "a.b", "--nats", "$NATS"], expect: { field: "--queue (or CELERIAC_QUEUE)", fix: "is required" } },
  { name: "enqueue --args not JSON", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--args", "{x}"], expect: { field: "--args", fix: `quote it for the shell, e.g. --args '[1, "two"]'` } },
  { name: "enqueue --args an object", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--args", '{"a": 1}'], expect: { field: "--args must be a JSON array", fix: "e.g. --args '[1, 2]'" } },
  { name: "enqueue --kwargs a list", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--kwargs", "[1]"], expect: { field: "--kwargs must be a JSON object", fix: `e.g. --kwargs '{"a": 1}'` } },
  { name: "enqueue --countdown soon", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--countdown", "soon"], expect: { field: '--countdown: "soon"', fix: "a number of seconds ≥ 0" } },
  { name: "enqueue --timeout later", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--wait", "--timeout", "later"], expect: { field: '--timeout: "later"', fix: "a number of seconds ≥ 0" } },
  { name: "enqueue --eta tomorrow", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--eta", "tomorrow"], expect: { field: '--eta: "tomorrow"', fix: "RFC 3339" } },
  { name: "enqueue --expires nope", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--expires", "nope"], expect: { field: '--expires: "nope"', fix: "RFC 3339" } },
  { name: "enqueue --countdown with --eta", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--countdown", "5", "--eta", "2026-01-01T00:00:00Z"], expect: { field: "--countdown and --eta", fix: "give one" } },
  { name: "enqueue --task-id with a dot", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--nats", "$NATS", "--task-id", "has.dot"], expect: { field: '--task-id "has.dot"', fix: "use 1-256 of A-Z a-z 0-9 _ = -" } },
  { name: "enqueue --queue not a DNS label", args: ["enqueue", "a.b", "--queue", "Bad_Q", "--nats", "$NATS"], expect: { field: 'queue "Bad_Q" is not a DNS-1123 label', fix: 'use lowercase letters, digits and "-"' } },
  { name: "enqueue --namespace not a DNS label", args: ["enqueue", "a.b", "--queue", WORK_QUEUE, "--namespace", "Bad_NS", "--nats", "$NATS"], expect: { field: 'namespace "Bad_NS" is not a DNS-1123 label', fix: 'use lowercase letters, digits and "-"' } },
  { name: "enqueue task name with a space", args: ["enqueue", "send email", "--queue", WORK_QUEUE, "--nats", "$NATS"], expect: { field: 'task name "send email" is invalid', fix: "use letters, digits and _ . : -" } },
  { name: "enqueue two task names", args: ["enqueue", "send", "email", "--queue", WORK_QUEUE], expect: { field: "too many arguments for 'enqueue'", fix: "Expected 1 argument but got 2" } },
  { name: "enqueue to an unknown queue", args: ["enqueue", "e2e.echo", "--queue", "no-such-queue", "--nats", "$NATS"], expect: { field: 'queue "no-such-queue" does not exist in namespace "default"', fix: "existing queues: " } },
  { name: "enqueue --max-attempts 0", args: ["enqueue", "e2e.echo", "--queue", WORK_QUEUE, "--nats", "$NATS", "--max-attempts", "0"], expect: { field: "--max-attempts", fix: "must be a positive integer" } },
  { name: "enqueue --timeout-seconds 1.5", args: ["enqueue", "e2e.echo", "--queue", WORK_QUEUE, "--nats", "$NATS", "--timeout-seconds", "1.5"], expect: { field: "--timeout-seconds", fix: "must be a positive integer" } },
  { name: "enqueue --args @missing-file", args: ["enqueue", "e2e.echo", "--queue", WORK_QUEUE, "--nats", "$NATS", "--args", "@/nonexistent/args.json"], expect: { field: "--args: cannot read file /nonexistent/args.json", fix: "no such file or directory" } },
  { name: "enqueue to an unreachable NATS", args: ["enqueue", "e2e.echo", "--queue", WORK_QUEUE, "--nats", "nats://127.0.0.1:1"], expect: { field: "nats://127.0.0.1:1", fix: "--nats" } },
  { name: "worker without --tasks", args: ["worker", "--queue", WORK_QUEUE], expect: { field: "--tasks (or CELERIAC_TASKS) is required", fix: "e.g. dist/tasks.js" } },
  { name: "dev logs of an unknown pod", args: ["dev", "logs", "bi-no-pod", "--dir", "/nonexistent-celeriac"], expect: { field: "no log for pod default/bi-no-pod", fix: "does not exist" } },
];

/** A raw message published onto the work queue's task subject. */
export interface MessageCase {
  name: string;
  /** The body, and headers to send (Nats-Msg-Id is sent only when given here). */
  body: string;
  headers?: Record<string, string>;
  /** Expected `Celeriac-Dead-Reason` and the detail's field and fix. */
  reason: "InvalidMessage" | "UnknownTask";
  expect: Expect;
  todo?: string;
}

/** A valid envelope for queue `queue` in namespace `default`, with `over` merged in. */
export function envelope(queue: string, over: Obj = {}): Obj {
  return {
    v: 1, id: randomUUID(), task: "e2e.echo", args: [1], kwargs: {}, queue, namespace: "default", origin: { kind: "Client" },
    timeoutSeconds: 30, retry: { maxAttempts: 1, backoff: { initialSeconds: 0, factor: 1, maxSeconds: 0, jitter: false } }, createdAt: new Date().toISOString(), ...over,
  };
}
const without = (o: Obj, k: string): Obj => Object.fromEntries(Object.entries(o).filter(([key]) => key !== k));
const q = WORK_QUEUE;

export const MESSAGE_CASES: MessageCase[] = [
  { name: "invalid JSON", body: '{"v": 1, "id": ', reason: "InvalidMessage", expect: { field: "body is not JSON", fix: "docs/protocol.md" } },
  { name: "plain text", body: "send the report please", reason: "InvalidMessage", expect: { field: "body is not JSON", fix: "docs/protocol.md" } },
  { name: "envelope version 2", body: JSON.stringify(envelope(q, { v: 2 })), reason: "InvalidMessage", expect: { field: "v: Unsupported value: 2", fix: "supported values: 1" } },
  { name: "no version", body: JSON.stringify(without(envelope(q), "v")), reason: "InvalidMessage", expect: { field: "v: Required value", fix: "Required value" } },
  { name: "no task name", body: JSON.stringify(without(envelope(q), "task")), reason: "InvalidMessage", expect: { field: "task: Required value", fix: "Required value" } },
  { name: "no id", body: JSON.stringify(without(envelope(q), "id")), reason: "InvalidMessage", expect: { field: "id: Required value", fix: "Required value" } },
  { name: "args not an array", body: JSON.stringify(envelope(q, { args: { a: 1 } })), reason: "InvalidMessage", expect: { field: "args", fix: "must be of type array" } },
  { name: "kwargs a list", body: JSON.stringify(envelope(q, { kwargs: [1] })), reason: "InvalidMessage", expect: { field: "kwargs", fix: "must be of type object" } },
  { name: "timeoutSeconds 0", body: JSON.stringify(envelope(q, { timeoutSeconds: 0 })), reason: "InvalidMessage", expect: { field: "timeoutSeconds", fix: "should be greater than or equal to 1" } },
  { name: "origin kind Job", body: JSON.stringify(envelope(q, { origin: { kind: "Job" } })), reason: "InvalidMessage", expect: { field: "origin.kind", fix: 'supported values: "Task", "Client"' } },
  { name: "task id with a dot", body: JSON.stringify(envelope(q, { id: "has.a.dot" })), reason: "InvalidMessage", expect: { field: 'id: "has.a.dot" is not a valid task id', fix: "use 1-256 of A-Z a-z 0-9 _ = -" } },
  { name: "unknown task name", body: JSON.stringify(envelope(q, { task: "e2e.nope" })), reason: "UnknownTask", expect: { field: 'no handler registered for "e2e.nope"', fix: "registered: e2e.echo" } },
  { name: "envelope queue not the subject's", body: JSON.stringify(envelope("other-queue")), reason: "InvalidMessage", expect: { field: 'envelope queue/namespace "default/other-queue"', fix: "does not match the subject it came on" } },
  { name: "envelope namespace not the subject's", body: JSON.stringify(envelope(q, { namespace: "shop" })), reason: "InvalidMessage", expect: { field: `envelope queue/namespace "shop/${q}"`, fix: "does not match the subject it came on" } },
  { name: "createdAt not a timestamp", body: JSON.stringify(envelope(q, { createdAt: "yesterday" })), reason: "InvalidMessage", expect: { field: "createdAt", fix: "must be of type date-time" } },
  { name: "retry.maxAttempts 0", body: JSON.stringify(envelope(q, { retry: { maxAttempts: 0, backoff: { initialSeconds: 0, factor: 1, maxSeconds: 0, jitter: false } } })), reason: "InvalidMessage", expect: { field: "retry.maxAttempts", fix: "should be greater than or equal to 1" } },
  { name: "a JSON array", body: "[1, 2, 3]", reason: "InvalidMessage", expect: { field: "must be of type object", fix: "must be of type object" } },
];
