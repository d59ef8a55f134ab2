/**
 * What one bench run measures, started and stopped as a whole: the baseline, parley (with
 * `workers: N` if asked), or two parley instances sharing a redis-server the tool starts. Every
 * process of it is pinned to the server's CPUs when the run is pinned.
 */

import { type RedisProcess, startRedis } from "./redis_process.ts";
import { type ServerKind, type ServerProcess, startServer } from "./server_process.ts";

/** How to deploy the server under test. */
export interface DeploymentOptions {
  /** `taskset -c` CPU list for every server process; null: not pinned. */
  cpus: string | null;
  /** parley only: `auth.mode`, `workers`, and whether to run two instances on Redis. */
  authMode?: "open" | "accounts";
  workers?: number;
  redis?: boolean;
}

/** The running server processes of a run. */
export interface Deployment {
  /** The URL each instance printed (`http://127.0.0.1:PORT/`); the senders use the first. */
  urls: string[];
  /** The first instance's stdout up to its URL (parley's setup link is there). */
  banner: string;
  /** Every instance's process id, for RSS and CPU. */
  pids: number[];
  /** redis-server's process id; null without Redis. */
  redisPid: number | null;
  cpus: string | null;
  /** Stops every instance, then redis-server. */
  stop(): Promise<void>;
}

/** Starts `kind` as `options` say and waits until every process is ready. */
export async function startDeployment(
  kind: ServerKind,
  options: DeploymentOptions,
): Promise<Deployment> {
  const { cpus } = options;
  let redis: RedisProcess | null = null;
  const instances: ServerProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(instances.map((instance) => instance.stop()));
    await redis?.stop();
  };
  try {
    if (kind === "parley" && options.redis) redis = await startRedis(cpus);
    const config = {
      authMode: options.authMode,
      workers: options.workers,
      redis: redis?.url,
    };
    // One after the other: two instances starting at once on one pinned CPU only start slower.
    for (let i = 0; i < (redis ? 2 : 1); i++) {
      instances.push(await startServer(kind, { cpus, config: kind === "parley" ? config : {} }));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    urls: instances.map((instance) => instance.url),
    banner: instances[0].banner,
    pids: instances.map((instance) => instance.pid),
    redisPid: redis?.pid ?? null,
    cpus,
    stop,
  };
}
