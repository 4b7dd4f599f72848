import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { V1Container, V1Deployment, V1EnvVar, V1PodTemplateSpec } from "@kubernetes/client-node";
import type { QueueSpec } from "../../../api/queue.js";
import {
  desiredWorkerDeployment,
  InvalidWorkerTemplateError,
  isInvalidWorkerTemplate,
  NATS_CREDS_DIR,
  NATS_TLS_CA_DIR,
  type WorkerDeploymentOptions,
} from "../../../operator/queue/index.js";
import { queueWith } from "./fixtures.js";

const nats = { url: "nats://nats.celeriac.svc:4222" };
const opts: WorkerDeploymentOptions = { nats, replicas: 2 };
const withSecrets: WorkerDeploymentOptions = {
  nats: {
    url: "tls://nats.celeriac.svc:4222",
    credsSecret: { name: "nats-creds", key: "worker.creds" },
    userSecret: { name: "nats-user", userKey: "username", passwordKey: "password" },
    tlsCaSecret: { name: "nats-ca", key: "ca.pem" },
  },
  replicas: 1,
};

function podOf(d: V1Deployment): V1PodTemplateSpec {
  assert.ok(d.spec?.template);
  return d.spec.template;
}
function workerOf(d: V1Deployment): V1Container {
  const c = podOf(d).spec?.containers[0];
  assert.ok(c);
  return c;
}
function env(c: V1Container, name: string): V1EnvVar | undefined {
  return c.env?.find((e) => e.name === name);
}
function envValue(c: V1Container, name: string): string | undefined {
  return env(c, name)?.value;
}

const fullTemplate = {
  metadata: { labels: { team: "mail", "celeriac.io/queue": "spoofed" }, annotations: { "prometheus.io/scrape": "true" } },
  spec: {
    serviceAccountName: "mail-sa",
    priorityClassName: "batch",
    securityContext: { runAsUser: 1000, fsGroup: 2000 },
    initContainers: [{ name: "migrate", image: "mail/migrate:1" }],
    containers: [
      {
        name: "mailer",
        image: "mail/worker:2",
        env: [{ name: "SMTP_HOST", value: "smtp" }],
        readinessProbe: { exec: { command: ["true"] } },
        volumeMounts: [{ name: "templates", mountPath: "/templates" }],
      },
      { name: "proxy", image: "envoy:1", securityContext: { capabilities: { add: ["NET_BIND_SERVICE"] } } },
    ],
    volumes: [{ name: "templates", configMap: { name: "mail-templates" } }],
  },
};

/** [variant, spec, options]: every way a worker pod template can be rendered. */
const variants: Array<[string, QueueSpec, WorkerDeploymentOptions]> = [
  ["image only", { worker: { image: "acme/worker:1" } }, opts],
  ["no image, the operator's default", {}, { ...opts, workerImage: "ghcr.io/celeriac/worker:0.1.0" }],
  [
    "env, resources and scheduling fields",
    {
      worker: {
        image: "acme/worker:1",
        env: [{ name: "LOG_LEVEL", value: "debug" }],
        envFrom: [{ configMapRef: { name: "acme" } }],
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
        nodeSelector: { pool: "batch" },
        tolerations: [{ key: "batch", operator: "Exists", effect: "NoSchedule" }],
        podLabels: { team: "acme" },
        podAnnotations: { note: "x" },
      },
    },
    opts,
  ],
  ["full template", { worker: { template: fullTemplate } }, opts],
  ["full template with NATS secrets", { worker: { template: fullTemplate } }, withSecrets],
  ["image with NATS secrets", { worker: { image: "acme/worker:1" } }, withSecrets],
];

describe("when a Queue names only an image", () => {
  const q = queueWith({ worker: { image: "acme/worker:1" } });
  const d = desiredWorkerDeployment(q, opts);

  it("names the Deployment <queue>-workers in the Queue's namespace", () => {
    assert.equal(d.apiVersion, "apps/v1");
    assert.equal(d.kind, "Deployment");
    assert.equal(d.metadata?.name, "emails-workers");
    assert.equal(d.metadata?.namespace, "shop");
  });

  it("sets a controller ownerReference to the Queue", () => {
    assert.deepEqual(d.metadata?.ownerReferences, [
      { apiVersion: "celeriac.io/v1alpha1", kind: "Queue", name: "emails", uid: "uid-shop-emails", controller: true, blockOwnerDeletion: true },
    ]);
  });

  it("labels the Deployment and selects pods by queue and instance", () => {
    const labels = {
      "celeriac.io/queue": "emails",
      "app.kubernetes.io/instance": "emails",
      "app.kubernetes.io/name": "celeriac-worker",
      "app.kubernetes.io/component": "worker",
      "app.kubernetes.io/managed-by": "celeriac-operator",
    };
    assert.deepEqual(d.metadata?.labels, labels);
    assert.deepEqual(d.spec?.selector.matchLabels, { "celeriac.io/queue": "emails", "app.kubernetes.io/instance": "emails" });
    assert.deepEqual(podOf(d).metadata?.labels, labels);
  });

  it("sets spec.replicas from the options, and leaves it out when none is given", () => {
    assert.equal(d.spec?.replicas, 2);
    assert.equal(desiredWorkerDeployment(q, { nats, replicas: 0 }).spec?.replicas, 0);
    assert.ok(!("replicas" in (desiredWorkerDeployment(q, { nats }).spec ?? {})));
  });

  it("rolls out with maxUnavailable 0 and a surge", () => {
    assert.deepEqual(d.spec?.strategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: "25%" } });
  });

  it("runs `celeriac worker` in a container named worker", () => {
    const c = workerOf(d);
    assert.equal(c.name, "worker");
    assert.equal(c.image, "acme/worker:1");
    assert.deepEqual(c.command, ["celeriac", "worker"]);
    assert.equal(c.args, undefined);
    assert.equal(podOf(d).spec?.containers.length, 1);
  });

  const envTable: Array<[string, string]> = [
    ["CELERIAC_QUEUE", "emails"],
    ["CELERIAC_NAMESPACE", "shop"],
    ["CELERIAC_CONCURRENCY", "4"],
    ["CELERIAC_NATS_URL", "nats://nats.celeriac.svc:4222"],
    ["CELERIAC_ACK_WAIT_SECONDS", "30"],
    ["CELERIAC_TIMEOUT_SECONDS", "3600"],
    ["CELERIAC_GRACE_PERIOD_SECONDS", "3600"],
  ];
  for (const [name, value] of envTable) {
    it(`sets ${name}=${value}`, () => {
      assert.equal(envValue(workerOf(d), name), value);
    });
  }

  for (const [name, fieldPath] of [
    ["CELERIAC_WORKER_NAME", "metadata.name"],
    ["POD_NAME", "metadata.name"],
    ["POD_NAMESPACE", "metadata.namespace"],
  ] as const) {
    it(`sets ${name} from the downward API ${fieldPath}`, () => {
      assert.deepEqual(env(workerOf(d), name), { name, valueFrom: { fieldRef: { fieldPath } } });
    });
  }

  it("adds no NATS credential variables or volumes when none are configured", () => {
    const c = workerOf(d);
    for (const name of ["CELERIAC_NATS_CREDS", "CELERIAC_NATS_USER", "CELERIAC_NATS_PASSWORD", "CELERIAC_NATS_TLS_CA"]) assert.equal(env(c, name), undefined);
    assert.deepEqual(podOf(d).spec?.volumes, [{ name: "celeriac-tmp", emptyDir: {} }]);
  });

  it("exposes port 8080 as http with /readyz and /healthz probes on it", () => {
    const c = workerOf(d);
    assert.deepEqual(c.ports, [{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    assert.deepEqual(c.readinessProbe?.httpGet, { path: "/readyz", port: "http" });
    assert.deepEqual(c.livenessProbe?.httpGet, { path: "/healthz", port: "http" });
  });

  it("runs as the ServiceAccount <queue>-worker", () => {
    assert.equal(podOf(d).spec?.serviceAccountName, "emails-worker");
  });

  it("mounts an emptyDir at /tmp", () => {
    assert.deepEqual(workerOf(d).volumeMounts, [{ name: "celeriac-tmp", mountPath: "/tmp" }]);
  });
});

describe("when the termination grace period is derived from the queue's timeout", () => {
  /** [case, spec, expected seconds] */
  const cases: Array<[string, QueueSpec, number]> = [
    ["default timeout 3600 s is capped at 3600", { worker: { image: "i" } }, 3600],
    ["timeout 60 s gives 90", { worker: { image: "i" }, timeoutSeconds: 60 }, 90],
    ["timeout 3570 s gives exactly the cap", { worker: { image: "i" }, timeoutSeconds: 3570 }, 3600],
    ["timeout 3571 s is capped", { worker: { image: "i" }, timeoutSeconds: 3571 }, 3600],
    ["an explicit spec.worker value wins", { worker: { image: "i", terminationGracePeriodSeconds: 7 }, timeoutSeconds: 60 }, 7],
    ["an explicit 0 is kept", { worker: { image: "i", terminationGracePeriodSeconds: 0 } }, 0],
    ["the template's value wins over spec.worker", { worker: { terminationGracePeriodSeconds: 7, template: { spec: { terminationGracePeriodSeconds: 11, containers: [{ image: "i" }] } } } }, 11],
  ];
  for (const [name, spec, seconds] of cases) {
    it(`sets ${seconds} s: ${name}`, () => {
      const d = desiredWorkerDeployment(queueWith(spec), opts);
      assert.equal(podOf(d).spec?.terminationGracePeriodSeconds, seconds);
      assert.equal(envValue(workerOf(d), "CELERIAC_GRACE_PERIOD_SECONDS"), String(seconds));
    });
  }
});

describe("when the Queue sets the simple worker fields", () => {
  const spec: QueueSpec = {
    concurrency: 16,
    ackWaitSeconds: 45,
    timeoutSeconds: 120,
    worker: {
      image: "acme/worker:1",
      imagePullPolicy: "Always",
      args: ["--tasks", "./tasks.js"],
      env: [
        { name: "LOG_LEVEL", value: "debug" },
        { name: "CELERIAC_QUEUE", value: "other" },
        { name: "API_KEY", valueFrom: { secretKeyRef: { name: "acme", key: "api" } } },
      ],
      envFrom: [{ configMapRef: { name: "acme" } }],
      resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
      serviceAccountName: "acme-sa",
      nodeSelector: { pool: "batch" },
      tolerations: [{ key: "batch", operator: "Exists", effect: "NoSchedule" }],
      podLabels: { team: "acme", "app.kubernetes.io/name": "spoofed" },
      podAnnotations: { "example.com/note": "x" },
    },
  };
  const d = desiredWorkerDeployment(queueWith(spec), opts);
  const c = workerOf(d);
  const pod = podOf(d);

  it("passes the queue's concurrency, ack wait and timeout", () => {
    assert.equal(envValue(c, "CELERIAC_CONCURRENCY"), "16");
    assert.equal(envValue(c, "CELERIAC_ACK_WAIT_SECONDS"), "45");
    assert.equal(envValue(c, "CELERIAC_TIMEOUT_SECONDS"), "120");
  });

  it("appends the user's env after the operator's and drops user values for operator variables", () => {
    const names = (c.env ?? []).map((e) => e.name);
    assert.deepEqual(names.slice(-2), ["LOG_LEVEL", "API_KEY"]);
    assert.equal(names.filter((n) => n === "CELERIAC_QUEUE").length, 1);
    assert.equal(envValue(c, "CELERIAC_QUEUE"), "emails");
    assert.deepEqual(env(c, "API_KEY")?.valueFrom, { secretKeyRef: { name: "acme", key: "api" } });
  });

  it("keeps the user's args without adding the default command", () => {
    assert.deepEqual(c.args, ["--tasks", "./tasks.js"]);
    assert.equal(c.command, undefined);
  });

  it("copies envFrom, resources and the pull policy", () => {
    assert.deepEqual(c.envFrom, [{ configMapRef: { name: "acme" } }]);
    assert.deepEqual(c.resources, { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } });
    assert.equal(c.imagePullPolicy, "Always");
  });

  it("copies the ServiceAccount, nodeSelector and tolerations to the pod", () => {
    assert.equal(pod.spec?.serviceAccountName, "acme-sa");
    assert.deepEqual(pod.spec?.nodeSelector, { pool: "batch" });
    assert.deepEqual(pod.spec?.tolerations, [{ key: "batch", operator: "Exists", effect: "NoSchedule" }]);
  });

  it("adds the user's pod labels and annotations without letting them override the operator's labels", () => {
    assert.equal(pod.metadata?.labels?.team, "acme");
    assert.equal(pod.metadata?.labels?.["app.kubernetes.io/name"], "celeriac-worker");
    assert.deepEqual(pod.metadata?.annotations, { "example.com/note": "x" });
  });

  it("uses the user's command when one is given", () => {
    const d2 = desiredWorkerDeployment(queueWith({ worker: { image: "i", command: ["node", "worker.js"] } }), opts);
    assert.deepEqual(workerOf(d2).command, ["node", "worker.js"]);
    assert.equal(workerOf(d2).args, undefined);
  });
});

describe("when the Queue gives a full pod template", () => {
  const d = desiredWorkerDeployment(queueWith({ worker: { template: fullTemplate } }), opts);
  const pod = podOf(d);
  const [mailer, proxy] = pod.spec?.containers ?? [];

  it("merges the operator's env, port and mounts into the first container and keeps its name and image", () => {
    assert.ok(mailer);
    assert.equal(mailer.name, "mailer");
    assert.equal(mailer.image, "mail/worker:2");
    assert.equal(envValue(mailer, "CELERIAC_QUEUE"), "emails");
    assert.equal(envValue(mailer, "SMTP_HOST"), "smtp");
    assert.deepEqual(mailer.command, ["celeriac", "worker"]);
    assert.deepEqual(mailer.ports, [{ name: "http", containerPort: 8080, protocol: "TCP" }]);
    assert.deepEqual(mailer.volumeMounts, [
      { name: "templates", mountPath: "/templates" },
      { name: "celeriac-tmp", mountPath: "/tmp" },
    ]);
  });

  it("keeps the template's own probe and adds the missing one", () => {
    assert.deepEqual(mailer?.readinessProbe, { exec: { command: ["true"] } });
    assert.deepEqual(mailer?.livenessProbe?.httpGet, { path: "/healthz", port: "http" });
  });

  it("leaves other containers' env alone", () => {
    assert.equal(proxy?.env, undefined);
    assert.equal(proxy?.name, "proxy");
  });

  it("keeps the template's pod fields, ServiceAccount and volumes and adds /tmp", () => {
    assert.equal(pod.spec?.priorityClassName, "batch");
    assert.equal(pod.spec?.serviceAccountName, "mail-sa");
    assert.deepEqual(pod.spec?.volumes, [
      { name: "templates", configMap: { name: "mail-templates" } },
      { name: "celeriac-tmp", emptyDir: {} },
    ]);
    assert.equal(pod.spec?.securityContext?.runAsUser, 1000);
    assert.equal(pod.spec?.securityContext?.fsGroup, 2000);
  });

  it("puts the operator's labels over the template's and keeps its annotations", () => {
    assert.equal(pod.metadata?.labels?.team, "mail");
    assert.equal(pod.metadata?.labels?.["celeriac.io/queue"], "emails");
    assert.deepEqual(pod.metadata?.annotations, { "prometheus.io/scrape": "true" });
  });

  it("keeps the NET_BIND_SERVICE capability a sidecar adds back", () => {
    assert.deepEqual(proxy?.securityContext?.capabilities, { add: ["NET_BIND_SERVICE"], drop: ["ALL"] });
  });

  it("fills a missing image from spec.worker.image, then the operator default", () => {
    const tpl = { spec: { containers: [{ name: "w" }] } };
    assert.equal(workerOf(desiredWorkerDeployment(queueWith({ worker: { image: "a:1", template: tpl } }), opts)).image, "a:1");
    assert.equal(workerOf(desiredWorkerDeployment(queueWith({ worker: { template: tpl } }), { ...opts, workerImage: "d:1" })).image, "d:1");
  });

  it("does not add /tmp when the user mounts something there", () => {
    const tpl = {
      spec: { containers: [{ image: "i", volumeMounts: [{ name: "scratch", mountPath: "/tmp" }] }], volumes: [{ name: "scratch", emptyDir: { medium: "Memory" } }] },
    };
    const p = podOf(desiredWorkerDeployment(queueWith({ worker: { template: tpl } }), opts));
    assert.deepEqual(p.spec?.volumes, [{ name: "scratch", emptyDir: { medium: "Memory" } }]);
    assert.deepEqual(p.spec?.containers[0]?.volumeMounts, [{ name: "scratch", mountPath: "/tmp" }]);
  });

  it("names an unnamed first container worker", () => {
    const c = workerOf(desiredWorkerDeployment(queueWith({ worker: { template: { spec: { containers: [{ image: "i" }] } } } }), opts));
    assert.equal(c.name, "worker");
  });
});

describe("when NATS credentials are configured", () => {
  for (const [variant, spec] of [
    ["image", { worker: { image: "acme/worker:1" } }],
    ["template", { worker: { template: fullTemplate } }],
  ] as const) {
    const d = desiredWorkerDeployment(queueWith(spec), withSecrets);
    const c = workerOf(d);
    const pod = podOf(d);

    it(`references user and password through secretKeyRef (${variant})`, () => {
      assert.deepEqual(env(c, "CELERIAC_NATS_USER"), { name: "CELERIAC_NATS_USER", valueFrom: { secretKeyRef: { name: "nats-user", key: "username" } } });
      assert.deepEqual(env(c, "CELERIAC_NATS_PASSWORD"), { name: "CELERIAC_NATS_PASSWORD", valueFrom: { secretKeyRef: { name: "nats-user", key: "password" } } });
    });

    it(`mounts the creds and CA Secrets read-only and points the env at the files (${variant})`, () => {
      assert.equal(envValue(c, "CELERIAC_NATS_CREDS"), `${NATS_CREDS_DIR}/nats.creds`);
      assert.equal(envValue(c, "CELERIAC_NATS_TLS_CA"), `${NATS_TLS_CA_DIR}/ca.crt`);
      assert.deepEqual(
        c.volumeMounts?.filter((m) => m.name.startsWith("celeriac-nats")),
        [
          { name: "celeriac-nats-creds", mountPath: NATS_CREDS_DIR, readOnly: true },
          { name: "celeriac-nats-tls-ca", mountPath: NATS_TLS_CA_DIR, readOnly: true },
        ],
      );
      assert.deepEqual(
        pod.spec?.volumes?.filter((v) => v.name.startsWith("celeriac-nats")),
        [
          { name: "celeriac-nats-creds", secret: { secretName: "nats-creds", items: [{ key: "worker.creds", path: "nats.creds" }] } },
          { name: "celeriac-nats-tls-ca", secret: { secretName: "nats-ca", items: [{ key: "ca.pem", path: "ca.crt" }] } },
        ],
      );
    });

    it(`puts no credential in a literal value anywhere in the pod (${variant})`, () => {
      for (const container of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
        for (const e of container.env ?? []) {
          if (/USER|PASSWORD|TOKEN|SECRET/.test(e.name)) assert.equal(e.value, undefined, `${e.name} must come from a secretKeyRef`);
        }
      }
      const json = JSON.stringify(d);
      assert.ok(!json.includes('"data"') && !json.includes('"stringData"'));
    });
  }
});

describe("when a pod template variant is rendered", () => {
  for (const [variant, spec, o] of variants) {
    it(`meets Pod Security Standards restricted on the pod and every container (${variant})`, () => {
      const pod = podOf(desiredWorkerDeployment(queueWith(spec), o));
      assert.equal(pod.spec?.securityContext?.runAsNonRoot, true);
      assert.deepEqual(pod.spec?.securityContext?.seccompProfile, { type: "RuntimeDefault" });
      const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
      assert.ok(all.length >= 1);
      for (const c of all) {
        const sc = c.securityContext;
        assert.equal(sc?.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`);
        assert.deepEqual(sc?.capabilities?.drop, ["ALL"], `${c.name}: drop ALL`);
        assert.ok((sc?.capabilities?.add ?? []).every((cap) => cap === "NET_BIND_SERVICE"), `${c.name}: added capabilities`);
        assert.equal(sc?.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
        assert.equal(sc?.runAsNonRoot, true, `${c.name}: runAsNonRoot`);
        assert.notEqual(sc?.privileged, true);
      }
      assert.ok(pod.spec?.volumes?.some((v) => v.emptyDir !== undefined));
      assert.ok(pod.spec?.containers[0]?.volumeMounts?.some((m) => m.mountPath === "/tmp"));
    });

    it(`renders a deep-equal object twice and leaves the input untouched (${variant})`, () => {
      const q = queueWith(spec);
      const before = structuredClone(q);
      const a = desiredWorkerDeployment(q, o);
      const b = desiredWorkerDeployment(q, o);
      assert.deepStrictEqual(a, b);
      assert.notEqual(a.spec?.template, b.spec?.template);
      assert.deepStrictEqual(q, before);
    });
  }

  it("keeps a Localhost seccomp profile and an explicit readOnlyRootFilesystem: false", () => {
    const tpl = {
      spec: {
        securityContext: { seccompProfile: { type: "Localhost", localhostProfile: "profiles/worker.json" } },
        containers: [{ image: "i", securityContext: { readOnlyRootFilesystem: false } }],
      },
    };
    const pod = podOf(desiredWorkerDeployment(queueWith({ worker: { template: tpl } }), opts));
    assert.deepEqual(pod.spec?.securityContext?.seccompProfile, { type: "Localhost", localhostProfile: "profiles/worker.json" });
    assert.equal(pod.spec?.containers[0]?.securityContext?.readOnlyRootFilesystem, false);
  });
});

describe("when the template contradicts the restricted profile", () => {
  const c0 = (extra: object) => ({ spec: { containers: [{ image: "i", ...extra }] } });
  /** [case, template, field named in the error] */
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["hostNetwork", { spec: { hostNetwork: true, containers: [{ image: "i" }] } }, "spec.worker.template.spec.hostNetwork"],
    ["hostPID", { spec: { hostPID: true, containers: [{ image: "i" }] } }, "spec.worker.template.spec.hostPID"],
    ["a hostPath volume", { spec: { containers: [{ image: "i" }], volumes: [{ name: "h", hostPath: { path: "/" } }] } }, "spec.worker.template.spec.volumes[0].hostPath"],
    ["pod runAsUser 0", { spec: { securityContext: { runAsUser: 0 }, containers: [{ image: "i" }] } }, "spec.worker.template.spec.securityContext.runAsUser"],
    ["pod runAsNonRoot false", { spec: { securityContext: { runAsNonRoot: false }, containers: [{ image: "i" }] } }, "spec.worker.template.spec.securityContext.runAsNonRoot"],
    ["Unconfined seccomp", { spec: { securityContext: { seccompProfile: { type: "Unconfined" } }, containers: [{ image: "i" }] } }, "spec.worker.template.spec.securityContext.seccompProfile.type"],
    ["a privileged container", c0({ securityContext: { privileged: true } }), "spec.worker.template.spec.containers[0].securityContext.privileged"],
    ["privilege escalation", c0({ securityContext: { allowPrivilegeEscalation: true } }), "spec.worker.template.spec.containers[0].securityContext.allowPrivilegeEscalation"],
    ["an added SYS_ADMIN", c0({ securityContext: { capabilities: { add: ["SYS_ADMIN"] } } }), "spec.worker.template.spec.containers[0].securityContext.capabilities.add"],
    ["a container running as root", c0({ securityContext: { runAsUser: 0 } }), "spec.worker.template.spec.containers[0].securityContext.runAsUser"],
    ["a host port", c0({ ports: [{ containerPort: 9000, hostPort: 9000 }] }), "spec.worker.template.spec.containers[0].ports[0].hostPort"],
    [
      "a privileged init container",
      { spec: { initContainers: [{ name: "x", image: "i", securityContext: { privileged: true } }], containers: [{ image: "i" }] } },
      "spec.worker.template.spec.initContainers[0].securityContext.privileged",
    ],
  ];
  for (const [name, template, field] of cases) {
    it(`throws InvalidWorkerTemplateError naming ${field} for ${name}`, () => {
      assert.throws(
        () => desiredWorkerDeployment(queueWith({ worker: { template } }), opts),
        (err: unknown) => isInvalidWorkerTemplate(err) && err.field === field && err.message.includes("Pod Security Standards"),
      );
    });
  }

  it("throws naming spec.worker.image when no image is known anywhere", () => {
    assert.throws(() => desiredWorkerDeployment(queueWith({}), opts), (err: unknown) => err instanceof InvalidWorkerTemplateError && err.field === "spec.worker.image");
  });
});
