/** Shared setup for worker integration tests: a worker + client on a real nats-server. */
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { pino } from "pino";
import { connect, type CeleriacClient } from "../../client/index.js";
import { Worker, type WorkerOptions } from "../../worker/index.js";
import { queueNames, type QueueNames } from "../../api/naming.js";
import { uniqueQueue, type NatsServer } from "../helpers/nats-server.js";

export const quietLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

/** A worker, a client and raw NATS handles on one fresh queue. */
export interface Fixture {
  queue: string;
  names: QueueNames;
  nc: NatsConnection;
  jsm: JetStreamManager;
  client: CeleriacClient;
  workers: Worker[];
  startWorker(extra?: Partial<WorkerOptions>): Promise<Worker>;
  close(): Promise<void>;
}

/** Fast test settings: 2 s ack wait, 1 s abort grace. */
export async function fixture(srv: NatsServer, tasks: WorkerOptions["tasks"], base: Partial<WorkerOptions> = {}): Promise<Fixture> {
  const queue = uniqueQueue();
  const names = queueNames("default", queue);
  const nc = await natsConnect({ servers: srv.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const client = await connect({ servers: srv.url, queue, queueSettings: { ackWaitSeconds: 2 } });
  const workers: Worker[] = [];
  const ncs: NatsConnection[] = [nc];
  const f: Fixture = {
    queue,
    names,
    nc,
    jsm: await jetstreamManager(nc),
    client,
    workers,
    async startWorker(extra = {}) {
      const wnc = await natsConnect({ servers: srv.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      ncs.push(wnc);
      const w = new Worker({ nc: wnc, tasks, queue, logger: quietLogger, settings: { ackWaitSeconds: 2 }, abortGraceSeconds: 1, shutdownGraceSeconds: 5, fetchExpiresMs: 1000, ...base, ...extra });
      await w.start();
      workers.push(w);
      return w;
    },
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await client.close();
      await Promise.all(ncs.map((c) => c.close()));
    },
  };
  return f;
}
