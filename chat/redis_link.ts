/**
 * One connection to Redis that comes back by itself whenever Redis does, and whose every call
 * fails within a bound instead of waiting for an answer that may never come.
 *
 * The client library reconnects on its own, but with Redis killed and restarted under traffic a
 * connection was seen to come back "ready" on a socket that had already died: its handshake was
 * only commands whose failures it ignores (`CLIENT SETINFO`, `CLIENT MAINT_NOTIFICATIONS`), so a
 * handshake cut off by the socket's death still counted as done, and every later command waited
 * for an answer forever. So the handshake is one command whose failure counts (`CLIENT SETNAME`),
 * every call has a deadline, and a connection that lets a call pass its deadline while it claims
 * to be ready is torn down and made again.
 *
 * A link to a Redis Cluster is the client's cluster mode: a connection per master, each coming
 * back by itself; a command goes to the master of its first key's slot, and fails at once while
 * that master is away, while the others keep answering. The link is down while any master is.
 * A call past its deadline is not taken for a dead connection there (the handshake guards those
 * too): it fails, and the connection is left to the client.
 *
 * @module
 */

import type { RedisClientType, RedisClusterType } from "npm:@redis/client@5.9.0";
import type { RedisTarget } from "./redis_target.ts";

/** Not a literal in `import()`, so that `deno run` fetches it only when `redis` is set. */
const REDIS_CLIENT: string = "npm:@redis/client@5.9.0";

/**
 * A client of the library, whatever its modules and scripts. A cluster is one too: it answers
 * the same commands, routed by their first key (a command without one goes to any node).
 */
export type RedisClient = RedisClientType;

type Cluster = RedisClusterType;

/** A master of a cluster (or the one server), with its client and its address for messages. */
export interface RedisNode {
  client: RedisClient;
  host: string;
}

/**
 * Redis could not be reached, or did not answer in time: what was asked may or may not have
 * happened, so a caller tries again the same way (a message with the same clientId).
 */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

/** How long a call waits for Redis before it fails, by default. */
export const COMMAND_TIMEOUT_MS = 2000;

/** The longest pause between two attempts to reconnect. */
export const RECONNECT_MAX_MS = 500;

/** How often a cluster link looks whether every master's connection is ready. */
const CLUSTER_POLL_MS = 100;

/** Rejects with a {@link RedisUnavailableError} saying `what` if `promise` takes over `ms`. */
export async function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new RedisUnavailableError(`${what} took over ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A Redis URL as messages show it: without a user name or password. */
export function redisHost(url: string): string {
  try {
    const { protocol, host, pathname } = new URL(url);
    return host === "" ? "the configured URL" : `${protocol}//${host}${pathname}`;
  } catch {
    return "the configured URL";
  }
}

/** The target as messages show it: without user names or passwords. */
export function targetHost(target: RedisTarget): string {
  if (!target.cluster) return redisHost(target.url);
  return `the Redis Cluster at ${target.urls.map(redisHost).join(", ")}`;
}

/** A connection to Redis for one use (`role`: commands, or the subscription to events). */
export class RedisLink {
  /** Called each time the connection is ready again after it was lost. */
  onUp: () => void = () => {};
  /** Called once each time the connection is lost. */
  onDown: () => void = () => {};
  readonly #client: RedisClient;
  /** The same client as a cluster, if it is one. */
  readonly #cluster: Cluster | null;
  readonly #host: string;
  #closed = false;
  #reviving = false;
  /** When the connection was lost, if it is down. */
  #downSince: number | null = null;
  #poll: ReturnType<typeof setInterval> | undefined;

  private constructor(
    client: RedisClient | Cluster,
    target: RedisTarget,
    readonly role: string,
    private readonly timeoutMs: number,
    private readonly onError: (message: string) => void,
  ) {
    this.#client = client as RedisClient;
    this.#cluster = target.cluster ? client as Cluster : null;
    this.#host = targetHost(target);
  }

  /** Whether this is a link to a Redis Cluster. */
  get cluster(): boolean {
    return this.#cluster !== null;
  }

  /**
   * Connects; a Redis that cannot be reached now is an error. Once connected, the link
   * reconnects by itself for as long as it is open. The client library is loaded here, so only
   * when `redis` is configured.
   */
  static async open(
    target: RedisTarget,
    role: string,
    onError: (message: string) => void,
    timeoutMs = COMMAND_TIMEOUT_MS,
  ): Promise<RedisLink> {
    const redis = await import(REDIS_CLIENT) as typeof import("npm:@redis/client@5.9.0");
    let started = false;
    const options = {
      name: `parley-${role}`,
      disableClientInfo: true,
      maintNotifications: "disabled" as const,
      // Fail a command at once while Redis is away (the caller tries again), instead of
      // queueing it without bound.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: timeoutMs,
        reconnectStrategy: (retries: number, cause: Error) =>
          started ? Math.min(50 * 2 ** retries, RECONNECT_MAX_MS) : cause,
      },
    };
    const client = target.cluster
      ? redis.createCluster({
        rootNodes: target.urls.map((url) => ({ url })),
        defaults: nodeDefaults(options, target.urls[0]),
      }) as unknown as Cluster
      : redis.createClient({ url: target.url, ...options }) as unknown as RedisClient;
    const link = new RedisLink(client, target, role, timeoutMs, onError);
    const lost = (error: Error) => started && link.#lost(error.message);
    client.on("error", lost);
    if (target.cluster) client.on("node-error", lost);
    try {
      await client.connect();
    } catch (error) {
      await link.close();
      throw new Error(
        `cannot reach Redis at ${link.#host}: ${(error as Error).message}; start it or fix "redis"`,
      );
    }
    started = true;
    if (target.cluster) link.#poll = setInterval(() => link.#watch(), CLUSTER_POLL_MS);
    else client.on("ready", () => link.#ready());
    return link;
  }

  /** Whether the connection is ready for commands (to a cluster: every master's). */
  get up(): boolean {
    return !this.#closed && this.#downSince === null && this.#clientReady();
  }

  /**
   * Whether commands may be tried: the connection is up, or for a cluster, open (a command
   * fails at once if its master is away).
   */
  get usable(): boolean {
    return this.#cluster === null ? this.up : !this.#closed && this.#cluster.isOpen;
  }

  /** Whether the client is ready: for a cluster, every master's connection. */
  #clientReady(): boolean {
    if (this.#cluster === null) return this.#client.isReady;
    const masters = this.#cluster.masters;
    return this.#cluster.isOpen && masters.length > 0 &&
      masters.every(({ client }) => client?.isReady === true);
  }

  /** A cluster link's look at its masters' connections, to say when they are lost or back. */
  #watch(): void {
    const ready = this.#clientReady();
    if (!ready && this.#downSince === null) this.#lost("a master is unreachable");
    else if (ready && this.#downSince !== null) this.#ready();
  }

  /** Every master, with its client: the one server, if this is not a cluster. */
  masters(): Promise<RedisNode[]> {
    if (this.#cluster === null) {
      return Promise.resolve([{ client: this.#client, host: this.#host }]);
    }
    const cluster = this.#cluster;
    return this.call(
      "finding the masters",
      () =>
        Promise.all(cluster.masters.map(async (master) => ({
          client: await cluster.nodeClient(master) as unknown as RedisClient,
          host: `redis://${master.address}`,
        }))),
    );
  }

  /**
   * Runs `command` on the connection (or on `node`, a client of {@link masters}). Fails with a
   * {@link RedisUnavailableError} at once while the connection is down (to a cluster: while the
   * master it needs is), and after the timeout if Redis does not answer.
   */
  async call<T>(
    what: string,
    command: (client: RedisClient) => Promise<T>,
    node: RedisClient = this.#client,
  ): Promise<T> {
    if (!this.usable) {
      throw new RedisUnavailableError(
        `Redis at ${this.#host} is unreachable (reconnecting); ${what} was not done`,
      );
    }
    const running = command(node);
    // Past the deadline nobody awaits it: its failure is already reported.
    running.catch(() => {});
    try {
      return await deadline(running, this.timeoutMs, `Redis at ${this.#host} answering ${what}`);
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) {
        throw new RedisUnavailableError(
          `Redis at ${this.#host} failed ${what}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      if (this.up && this.#cluster === null) this.revive(error.message);
      throw error;
    }
  }

  /** Closes the connection at once: calls in flight fail; nothing waits for Redis. */
  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#poll);
    try {
      this.#client.destroy();
    } catch {
      // Already closed.
    }
    return Promise.resolve();
  }

  #lost(reason: string): void {
    if (this.#closed || this.#clientReady() || this.#downSince !== null) return;
    this.#downSince = Date.now();
    this.onError(
      `redis: lost the ${this.role} connection to ${this.#host} (${reason}); reconnecting`,
    );
    this.onDown();
  }

  #ready(): void {
    if (this.#closed) return;
    const since = this.#downSince;
    this.#downSince = null;
    if (since !== null) {
      this.onError(
        `redis: the ${this.role} connection to ${this.#host} is back after ${
          Date.now() - since
        } ms`,
      );
    }
    this.onUp();
  }

  /**
   * Tears the connection down and makes it again: for a connection that claims to be ready but
   * carries nothing (`reason` says how that showed).
   */
  revive(reason: string): void {
    if (this.#closed || this.#reviving || this.#cluster !== null) return;
    this.#reviving = true;
    try {
      this.#client.destroy();
    } catch {
      // Already closed.
    }
    this.#lost(`${reason}; making the connection again`);
    this.#client.connect().catch(() => {}).finally(() => this.#reviving = false);
  }
}

/**
 * The options of every node of a cluster: those of a connection, and the first node's user name,
 * password and TLS, for the nodes discovered from it.
 */
function nodeDefaults<T extends { socket: object }>(options: T, url: string): T {
  const { protocol, username, password } = new URL(url);
  const defaults: T & { username?: string; password?: string } = { ...options };
  if (username !== "") defaults.username = decodeURIComponent(username);
  if (password !== "") defaults.password = decodeURIComponent(password);
  if (protocol === "rediss:") defaults.socket = { ...options.socket, tls: true };
  return defaults;
}
