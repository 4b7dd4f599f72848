/**
 * A small Kubernetes API transport for the worker, which makes three kinds of calls (read and
 * server-side-apply a Task's status, create Events, merge-patch its own Pod's annotation) and must
 * stay small in memory: `@kubernetes/client-node` costs ~70 MiB of RSS to load, this costs ~1 MiB.
 * It implements {@link KubeTransport}, so every helper of kube/k8s-client.ts works with it.
 *
 * Sources of cluster access, as client-go's `rest.InClusterConfig` and kubeconfig loading do it:
 * - in a pod (`KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`): `https://host:port`, the
 *   ServiceAccount CA, and the bearer token file, re-read at most once a minute (the kubelet rotates
 *   projected tokens; client-go re-reads them the same way);
 * - a kubeconfig file (`KUBECONFIG`, first path): the current context's cluster (`server`,
 *   `certificate-authority(-data)`, `insecure-skip-tls-verify`) and user (`token`, `tokenFile`,
 *   `client-certificate(-data)` + `client-key(-data)`). A user with `exec`, `auth-provider` or
 *   `username`/`password` is not served: {@link lightKubeClient} returns undefined and the caller
 *   loads client-node (kube/kubeconfig.ts), which supports them all.
 */
import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { dirname, isAbsolute, resolve } from "node:path";
import { apiResponse, type KubeTransport, type RequestOptions } from "./k8s-client.js";

/** Where a pod's ServiceAccount credentials are mounted. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** How long a read bearer token file is used before it is read again, ms (client-go: 1 minute). */
const TOKEN_REREAD_MS = 60_000;

/** What {@link LightKubeClient} connects with. */
export interface LightKubeConfig {
  /** API server URL, e.g. `https://10.96.0.1:443` or `http://127.0.0.1:6443`. */
  server: string;
  /** PEM CA bundle to verify the server with (default: Node's CAs). */
  ca?: string | Buffer;
  /** Skip TLS verification (`insecure-skip-tls-verify`). */
  insecureSkipTlsVerify?: boolean;
  /** A fixed bearer token. */
  token?: string;
  /** A bearer token file, re-read at most once a minute. */
  tokenFile?: string;
  /** PEM client certificate and key. */
  clientCert?: string | Buffer;
  clientKey?: string | Buffer;
}

/** Talks to one API server over node:http(s) with a keep-alive agent. */
export class LightKubeClient implements KubeTransport {
  readonly #c: LightKubeConfig;
  readonly #url: URL;
  readonly #agent: HttpAgent | HttpsAgent;
  #token: { value: string; readAt: number } | undefined;

  /** @throws Error naming the field when `server` is not an http(s) URL */
  constructor(c: LightKubeConfig) {
    let url: URL;
    try {
      url = new URL(c.server);
    } catch {
      throw new Error(`kubeconfig: cluster server "${c.server}" is not a URL: give e.g. https://host:6443`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error(`kubeconfig: cluster server "${c.server}" is not an http(s) URL`);
    this.#c = c;
    this.#url = url;
    this.#agent = url.protocol === "https:"
      ? new HttpsAgent({ keepAlive: true, ...(c.ca ? { ca: c.ca } : {}), ...(c.clientCert ? { cert: c.clientCert } : {}), ...(c.clientKey ? { key: c.clientKey } : {}), rejectUnauthorized: !c.insecureSkipTlsVerify })
      : new HttpAgent({ keepAlive: true });
  }

  /** The API server URL. */
  get server(): string {
    return this.#c.server;
  }

  /**
   * Sends one request and parses the JSON response (same contract as `kubeRequest` over client-node).
   * @returns the parsed body (text when it is not JSON; undefined when empty)
   * @throws KubeApiError for non-2xx responses; transport errors (refused, aborted, timed out) as is
   */
  request<T = unknown>(opts: RequestOptions): Promise<T> {
    const url = new URL(this.#url.href.replace(/\/$/, "") + opts.path);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { Accept: "application/json" };
    const token = this.#bearer();
    if (token) headers.Authorization = `Bearer ${token}`;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (body !== undefined) {
      headers["Content-Type"] = opts.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(body));
    }
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise<T>((resolvePromise, reject) => {
      const req = send(url, { method: opts.method, headers, agent: this.#agent, signal }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          try {
            resolvePromise(apiResponse<T>(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8")));
          } catch (err) {
            reject(err as Error);
          }
        });
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.#agent.destroy();
  }

  #bearer(): string | undefined {
    if (this.#c.token) return this.#c.token;
    if (!this.#c.tokenFile) return undefined;
    const now = Date.now();
    if (!this.#token || now - this.#token.readAt >= TOKEN_REREAD_MS) {
      try {
        this.#token = { value: readFileSync(this.#c.tokenFile, "utf8").trim(), readAt: now };
      } catch (err) {
        // keep the last token when the file is briefly missing during the kubelet's atomic swap
        if (!this.#token) throw new Error(`read bearer token file ${this.#c.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, { cause: err });
      }
    }
    return this.#token.value;
  }
}

/**
 * The in-cluster config of a pod (client-go `rest.InClusterConfig`): server from
 * `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT` (IPv6 hosts bracketed), the ServiceAccount
 * CA and token file.
 * @param saDir the ServiceAccount mount (default {@link SERVICE_ACCOUNT_DIR})
 * @throws Error naming the variable when the host or port is missing, or the CA cannot be read
 */
export function inClusterConfig(env: NodeJS.ProcessEnv = process.env, saDir = SERVICE_ACCOUNT_DIR): LightKubeConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) throw new Error("in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (they are, in a pod)");
  let ca: Buffer;
  try {
    ca = readFileSync(`${saDir}/ca.crt`);
  } catch (err) {
    throw new Error(`in-cluster config: cannot read ${saDir}/ca.crt (${(err as NodeJS.ErrnoException).code ?? "error"}): is a ServiceAccount token mounted (automountServiceAccountToken)?`, { cause: err });
  }
  return { server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`, ca, tokenFile: `${saDir}/token` };
}

interface KubeconfigDoc {
  "current-context"?: string;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{ name: string; cluster?: Record<string, unknown> }>;
  users?: Array<{ name: string; user?: Record<string, unknown> }>;
}

/**
 * The config of a kubeconfig file's current context, or undefined when its user authenticates in a
 * way this client does not implement (`exec`, `auth-provider`, `username`/`password`).
 * @throws Error naming the file and the field when it cannot be read or parsed, or the current
 *   context, its cluster or its server is missing
 */
export async function kubeconfigFileConfig(file: string): Promise<LightKubeConfig | undefined> {
  let doc: KubeconfigDoc;
  try {
    const { parse } = await import("yaml");
    doc = parse(readFileSync(file, "utf8")) as KubeconfigDoc;
  } catch (err) {
    throw new Error(`load kubeconfig ${file}: ${(err as Error).message}`, { cause: err });
  }
  const ctxName = doc["current-context"];
  const ctx = doc.contexts?.find((c) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`load kubeconfig ${file}: no current context (current-context: ${ctxName ?? "unset"}): set one with kubectl config use-context`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== "string") throw new Error(`load kubeconfig ${file}: context ${ctxName} names cluster ${ctx.cluster ?? "(none)"}, which has no server`);
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (user.exec || user["auth-provider"] || user.username) return undefined;
  const base = dirname(file);
  const fileOrData = (data: unknown, path: unknown): Buffer | undefined => {
    if (typeof data === "string" && data) return Buffer.from(data, "base64");
    if (typeof path === "string" && path) return readFileSync(isAbsolute(path) ? path : resolve(base, path));
    return undefined;
  };
  const ca = fileOrData(cluster["certificate-authority-data"], cluster["certificate-authority"]);
  const clientCert = fileOrData(user["client-certificate-data"], user["client-certificate"]);
  const clientKey = fileOrData(user["client-key-data"], user["client-key"]);
  const tokenFile = typeof user.tokenFile === "string" && user.tokenFile ? (isAbsolute(user.tokenFile) ? user.tokenFile : resolve(base, user.tokenFile)) : undefined;
  return {
    server: cluster.server,
    ...(ca ? { ca } : {}),
    ...(cluster["insecure-skip-tls-verify"] === true ? { insecureSkipTlsVerify: true } : {}),
    ...(typeof user.token === "string" && user.token ? { token: user.token } : {}),
    ...(tokenFile ? { tokenFile } : {}),
    ...(clientCert ? { clientCert } : {}),
    ...(clientKey ? { clientKey } : {}),
  };
}

/**
 * The worker's cluster access without client-node: `KUBECONFIG` (first path) when set, else the
 * pod's in-cluster config when `KUBERNETES_SERVICE_HOST` is set.
 * @returns undefined when neither is set, or the kubeconfig's user needs client-node (see module doc)
 * @throws Error as {@link kubeconfigFileConfig} and {@link inClusterConfig}
 */
export async function lightKubeClient(env: NodeJS.ProcessEnv = process.env): Promise<LightKubeClient | undefined> {
  const file = env.KUBECONFIG?.split(":").find((f) => f);
  if (file) {
    const c = await kubeconfigFileConfig(file);
    return c ? new LightKubeClient(c) : undefined;
  }
  if (env.KUBERNETES_SERVICE_HOST) return new LightKubeClient(inClusterConfig(env));
  return undefined;
}
