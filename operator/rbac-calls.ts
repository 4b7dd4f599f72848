/**
 * Every Kubernetes API call the operator makes, as data: the single list the Helm chart's RBAC is
 * checked against (`test/charts/rbac.test.ts`). Pure data, no imports of runtime code.
 *
 * When you add a call to the operator (a new resource, verb or subresource), add it here; the chart
 * test then fails until `charts/celeriac/templates/rbac.yaml` grants it, and it also fails when the
 * chart grants something that is neither listed here nor granted onward to workers.
 *
 * Not listed here but also required of the operator (the test adds them from the code itself): every
 * rule of the worker Role it renders (`workerRoleRules()` in `operator/queue/desired-rbac.ts`),
 * because Kubernetes RBAC refuses to create a Role or RoleBinding granting permissions the creator
 * does not hold (no escalation).
 */

/** Where a permission is needed. */
export type RbacScope =
  /** In every watched namespace (cluster-wide when the operator watches all namespaces). */
  | "watched"
  /**
   * Only in the operator's own namespace, where its leader-election Lease lives (and, in accounts
   * mode, the account key Secrets: the chart sets CELERIAC_NATS_ACCOUNTS_NAMESPACE to it).
   */
  | "lease";

/** One resource (or subresource) the operator calls, with the verbs it uses and where in the code. */
export interface OperatorApiCall {
  /** API group; `""` is the core group. */
  readonly group: string;
  /** Plural resource name, `plural/subresource` for a subresource. */
  readonly resource: string;
  /** RBAC verbs, sorted. */
  readonly verbs: readonly string[];
  /** Where the permission is needed. */
  readonly scope: RbacScope;
  /** Which code makes the call, and why. */
  readonly why: string;
  /**
   * Needed only in a mode the chart switches on; absent = always. `natsMint`: minting NATS credentials
   * in either mode (chart `natsAuth.mint.enabled` or `natsAuth.accounts.enabled`), so the operator
   * holds no Secret permissions when it does not mint. `natsAccounts`: an account per namespace only
   * (chart `natsAuth.accounts.enabled`, `CELERIAC_NATS_OPERATOR_SIGNING_KEY_FILE`).
   */
  readonly when?: "natsMint" | "natsAccounts";
}

/** The operator's API calls, one entry per (group, resource), sorted by group then resource. */
export const OPERATOR_API_CALLS: readonly OperatorApiCall[] = Object.freeze([
  { group: "", resource: "events", verbs: ["create", "patch"], scope: "watched", why: "runtime/events.ts: EventRecorder creates Events and patches count/lastTimestamp of a repeated one" },
  { group: "", resource: "secrets", verbs: ["create", "delete", "list", "patch", "watch"], scope: "watched", when: "natsMint", why: "main.ts: Secret informer over minted credential Secrets (label celeriac.io/nats-credentials); credentials/queue-credentials.ts creates, merge-patches (rotation) and deletes <queue>-worker-nats and celeriac-producer-nats" },
  { group: "", resource: "secrets", verbs: ["create", "get"], scope: "lease", when: "natsAccounts", why: "credentials/account-keys.ts: reads, or creates once, Secret celeriac-nats-account-<namespace> holding each tenant account's key (never updated or deleted)" },
  { group: "", resource: "pods", verbs: ["list", "watch"], scope: "watched", why: "main.ts: Pod informer over worker Pods (managed-by label); queue-reconciler.ts reads their container states for WorkersReady" },
  { group: "", resource: "serviceaccounts", verbs: ["create", "get", "patch"], scope: "watched", why: "queue-reconciler.ts: applyChild of the workers' ServiceAccount <queue>-worker" },
  { group: "apps", resource: "deployments", verbs: ["create", "get", "list", "patch", "watch"], scope: "watched", why: "main.ts: Deployment informer (managed-by label); queue-reconciler.ts: applyChild of <queue>-workers" },
  { group: "apps", resource: "deployments/scale", verbs: ["patch"], scope: "watched", why: "scale-loop.ts: patchScale scales workers through the scale subresource" },
  { group: "celeriac.io", resource: "queues", verbs: ["list", "patch", "watch"], scope: "watched", why: "main.ts: Queue informer; queue-reconciler.ts: adds/removes the finalizer by merge patch" },
  {
    group: "celeriac.io", resource: "queues/finalizers", verbs: ["update"], scope: "watched",
    why: "children carry blockOwnerDeletion ownerReferences to their Queue; the OwnerReferencesPermissionEnforcement admission plugin (OpenShift and others) requires update on the owner's finalizers",
  },
  { group: "celeriac.io", resource: "queues/status", verbs: ["patch"], scope: "watched", why: "queue-reconciler.ts: the one status write per reconcile" },
  { group: "celeriac.io", resource: "schedules", verbs: ["list", "watch"], scope: "watched", why: "main.ts: Schedule informer (the operator never writes a Schedule's spec)" },
  {
    group: "celeriac.io", resource: "schedules/finalizers", verbs: ["update"], scope: "watched",
    why: "Tasks created by a Schedule carry a blockOwnerDeletion ownerReference to it (see queues/finalizers)",
  },
  { group: "celeriac.io", resource: "schedules/status", verbs: ["patch"], scope: "watched", why: "schedule-reconciler.ts: status write" },
  { group: "celeriac.io", resource: "tasks", verbs: ["create", "delete", "list", "patch", "watch"], scope: "watched", why: "main.ts: Task informer; task-reconciler.ts: finalizer patch, ttlSecondsAfterFinished delete; schedule-reconciler.ts: creates and prunes runs" },
  { group: "celeriac.io", resource: "tasks/status", verbs: ["patch"], scope: "watched", why: "task-reconciler.ts: Pending/Queued status (server-side apply with a resourceVersion precondition)" },
  { group: "celeriac.io", resource: "workflows", verbs: ["create", "delete", "list", "patch", "watch"], scope: "watched", why: "main.ts: Workflow informer; workflow-reconciler.ts: finalizer patch, ttlSecondsAfterFinished delete; schedule-reconciler.ts: creates and prunes runs of a workflowTemplate" },
  { group: "celeriac.io", resource: "workflows/status", verbs: ["patch"], scope: "watched", why: "workflow-reconciler.ts: status (server-side apply)" },
  { group: "coordination.k8s.io", resource: "leases", verbs: ["create", "get", "update"], scope: "lease", why: "runtime/leader-election.ts: reads, creates and replaces (renew, take over, release) the Lease" },
  { group: "keda.sh", resource: "scaledobjects", verbs: ["create", "get", "patch"], scope: "watched", why: "queue-reconciler.ts: applyChild of the ScaledObject of a Queue with autoscaling.provider keda" },
  { group: "rbac.authorization.k8s.io", resource: "rolebindings", verbs: ["create", "get", "patch"], scope: "watched", why: "queue-reconciler.ts: applyChild of the workers' RoleBinding" },
  { group: "rbac.authorization.k8s.io", resource: "roles", verbs: ["create", "get", "patch"], scope: "watched", why: "queue-reconciler.ts: applyChild of the workers' Role" },
]);
