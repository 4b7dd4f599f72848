/**
 * The Celeriac controller runtime: informers, a client-go style work queue, controllers with
 * reconcile/requeue/terminal-error semantics, leader election on a Lease, Events, metrics and the
 * health server. Reconcilers (`operator/queue`, `operator/task`, …) build on this package only
 * through this index.
 */
export * from "../../kube/k8s-client.js";
export * from "../../kube/kubeconfig.js";
export * from "./workqueue.js";
export * from "./informer.js";
export * from "./controller.js";
export * from "./leader-election.js";
export * from "./events.js";
export * from "./health.js";
export * from "./metrics.js";
