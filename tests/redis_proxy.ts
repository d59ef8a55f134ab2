/**
 * A TCP proxy in front of a test's Redis that makes, on demand, the faults a restart of Redis or
 * a broken network causes: connections dropped, a connection cut off in the middle of its
 * handshake, connections that stay open but carry nothing more.
 */

/** One proxied connection: the client's side and Redis's. */
interface Pair {
  client: Deno.Conn;
  redis: Deno.Conn | null;
  /** Nothing more is forwarded either way; the sockets stay open. */
  stalled: boolean;
}

/** A proxy on a free port of 127.0.0.1 to Redis on `port`. */
export class RedisProxy {
  readonly #listener: Deno.Listener;
  readonly #pairs = new Set<Pair>();
  readonly #accepting: Promise<void>;
  readonly #pumps = new Set<Promise<void>>();
  #cuts = 0;

  private constructor(private readonly redisPort: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  /** Starts a proxy to the Redis on `redisPort`. */
  static start(redisPort: number): RedisProxy {
    return new RedisProxy(redisPort);
  }

  /** Where clients connect. */
  get url(): string {
    return `redis://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  /** How many connections are open through the proxy. */
  get open(): number {
    return this.#pairs.size;
  }

  /**
   * The next `count` connections are closed once they have sent their first bytes (their
   * handshake), which are never answered: what a Redis that dies as it accepts them does.
   */
  cutHandshakes(count: number): void {
    this.#cuts += count;
  }

  /** Closes every open connection, as a restart of Redis does. */
  dropAll(): void {
    for (const pair of [...this.#pairs]) this.#end(pair);
  }

  /** The open connections carry nothing more, and stay open; new ones work. */
  stallAll(): void {
    for (const pair of this.#pairs) pair.stalled = true;
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    this.dropAll();
    await Promise.all(this.#pumps);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch {
        return;
      }
      const pair: Pair = { client, redis: null, stalled: false };
      this.#pairs.add(pair);
      this.#track(this.#cuts > 0 ? this.#cut(pair) : this.#forward(pair));
      if (this.#cuts > 0) this.#cuts--;
    }
  }

  #track(pump: Promise<void>): void {
    this.#pumps.add(pump);
    pump.finally(() => this.#pumps.delete(pump));
  }

  async #cut(pair: Pair): Promise<void> {
    await pair.client.read(new Uint8Array(4096)).catch(() => null);
    this.#end(pair);
  }

  async #forward(pair: Pair): Promise<void> {
    try {
      pair.redis = await Deno.connect({ hostname: "127.0.0.1", port: this.redisPort });
    } catch {
      return this.#end(pair);
    }
    await Promise.all([
      this.#pipe(pair, pair.client, pair.redis),
      this.#pipe(pair, pair.redis, pair.client),
    ]);
  }

  async #pipe(pair: Pair, from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) break;
        if (pair.stalled) continue;
        let written = 0;
        while (written < n) written += await to.write(buffer.subarray(written, n));
      }
    } catch {
      // The other side closed.
    }
    this.#end(pair);
  }

  #end(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    for (const conn of [pair.client, pair.redis]) {
      try {
        conn?.close();
      } catch {
        // Already closed.
      }
    }
  }
}
