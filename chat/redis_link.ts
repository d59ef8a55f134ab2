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
 * @module
 */

import type { RedisClientType } from "npm:@redis/client@5.9.0";

/** Not a literal in `import()`, so that `deno run` fetches it only when `redis` is set. */
const REDIS_CLIENT: string = "npm:@redis/client@5.9.0";

/** A client of the library, whatever its modules and scripts. */
export type RedisClient = RedisClientType;

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

/** A connection to Redis for one use (`role`: commands, or the subscription to events). */
export class RedisLink {
  /** Called each time the connection is ready again after it was lost. */
  onUp: () => void = () => {};
  /** Called once each time the connection is lost. */
  onDown: () => void = () => {};
  readonly #client: RedisClient;
  readonly #host: string;
  #closed = false;
  #reviving = false;
  /** When the connection was lost, if it is down. */
  #downSince: number | null = null;

  private constructor(
    client: RedisClient,
    url: string,
    readonly role: string,
    private readonly timeoutMs: number,
    private readonly onError: (message: string) => void,
  ) {
    this.#client = client;
    this.#host = redisHost(url);
  }

  /**
   * Connects; a Redis that cannot be reached now is an error. Once connected, the link
   * reconnects by itself for as long as it is open. The client library is loaded here, so only
   * when `redis` is configured.
   */
  static async open(
    url: string,
    role: string,
    onError: (message: string) => void,
    timeoutMs = COMMAND_TIMEOUT_MS,
  ): Promise<RedisLink> {
    const { createClient } = await import(REDIS_CLIENT) as typeof import("npm:@redis/client@5.9.0");
    let started = false;
    const client = createClient({
      url,
      name: `parley-${role}`,
      disableClientInfo: true,
      maintNotifications: "disabled",
      // Fail a command at once while Redis is away (the caller tries again), instead of
      // queueing it without bound.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: timeoutMs,
        reconnectStrategy: (retries: number, cause: Error) =>
          started ? Math.min(50 * 2 ** retries, RECONNECT_MAX_MS) : cause,
      },
    }) as unknown as RedisClient;
    const link = new RedisLink(client, url, role, timeoutMs, onError);
    client.on("error", (error: Error) => started && link.#lost(error.message));
    try {
      await client.connect();
    } catch (error) {
      await link.close();
      throw new Error(
        `cannot reach Redis at ${link.#host}: ${(error as Error).message}; start it or fix "redis"`,
      );
    }
    started = true;
    client.on("ready", () => link.#ready());
    return link;
  }

  /** Whether the connection is ready for commands. */
  get up(): boolean {
    return !this.#closed && this.#downSince === null && this.#client.isReady;
  }

  /**
   * Runs `command` on the connection. Fails with a {@link RedisUnavailableError} at once while
   * the connection is down, and after the timeout if Redis does not answer.
   */
  async call<T>(what: string, command: (client: RedisClient) => Promise<T>): Promise<T> {
    if (!this.up) {
      throw new RedisUnavailableError(
        `Redis at ${this.#host} is unreachable (reconnecting); ${what} was not done`,
      );
    }
    const running = command(this.#client);
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
      if (this.up) this.revive(error.message);
      throw error;
    }
  }

  /** Closes the connection at once: calls in flight fail; nothing waits for Redis. */
  close(): Promise<void> {
    this.#closed = true;
    try {
      this.#client.destroy();
    } catch {
      // Already closed.
    }
    return Promise.resolve();
  }

  #lost(reason: string): void {
    if (this.#closed || this.#client.isReady || this.#downSince !== null) return;
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
    if (this.#closed || this.#reviving) return;
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
