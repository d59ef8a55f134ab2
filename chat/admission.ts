/**
 * Who may connect and how fast: the connection limits (in all and per address), the origin
 * check, and the rate buckets of connections and posts.
 */

import type { Config } from "./config.ts";

/** Allows `rate` events per second on average and `burst` at once. */
export class TokenBucket {
  #tokens: number;
  #last = performance.now();

  constructor(private readonly rate: number, private readonly burst: number) {
    this.#tokens = burst;
  }

  /** Takes a token if there is one. */
  take(): boolean {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#last) * this.rate / 1000);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** One admitted connection's place in the counts; it holds it until released. */
export interface Lease {
  /** Gives the place back. Only the first call counts: a socket may report its close twice. */
  release(): void;
  /**
   * Gives back the place among its address's connections only, keeping the one in the total:
   * for a socket the server is done with but the runtime has not closed yet.
   */
  releaseAddress(): void;
}

/** The limits admission enforces, from the config. */
export type AdmissionLimits = Pick<
  Config["limits"],
  "maxConnections" | "maxConnectionsPerIp" | "messagesPerSecond" | "burst"
>;

/** More post buckets than this and all are forgotten: it bounds the map, and only refills them. */
const MAX_POST_BUCKETS = 10_000;

/** Decides whether a connection or a post is let in; one per server. */
export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #allowedOrigins: readonly string[];
  /** Leases held, by address; an address with none is absent. */
  readonly #perAddress = new Map<string, number>();
  #open = 0;
  readonly #postBuckets = new Map<string, TokenBucket>();

  constructor(limits: AdmissionLimits, allowedOrigins: readonly string[]) {
    this.#limits = limits;
    this.#allowedOrigins = allowedOrigins;
  }

  /** Connections holding a lease. */
  get open(): number {
    return this.#open;
  }

  /** Whether the server holds `maxConnections` leases already. */
  get full(): boolean {
    return this.#open >= this.#limits.maxConnections;
  }

  /** A lease for a connection from `address`, or null if it has `maxConnectionsPerIp` already. */
  lease(address: string): Lease | null {
    const held = this.#perAddress.get(address) ?? 0;
    if (held >= this.#limits.maxConnectionsPerIp) return null;
    this.#perAddress.set(address, held + 1);
    this.#open++;
    let released = false;
    let addressReleased = false;
    const releaseAddress = () => {
      if (addressReleased) return;
      addressReleased = true;
      const left = this.#perAddress.get(address)! - 1;
      if (left === 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, left);
    };
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#open--;
        releaseAddress();
      },
      releaseAddress,
    };
  }

  /** Leases held by `address`. */
  heldBy(address: string): number {
    return this.#perAddress.get(address) ?? 0;
  }

  /**
   * Whether a request with this `Origin` header may act: none (not a browser), the server's own
   * origin `own`, or one listed in `allowedOrigins`.
   */
  originAllowed(origin: string | null, own: string): boolean {
    return origin === null || origin === own || this.#allowedOrigins.includes(origin);
  }

  /** Takes a token from `address`'s post bucket, which has a connection's rate and burst. */
  mayPost(address: string): boolean {
    let bucket = this.#postBuckets.get(address);
    if (bucket === undefined) {
      if (this.#postBuckets.size >= MAX_POST_BUCKETS) this.#postBuckets.clear();
      bucket = new TokenBucket(this.#limits.messagesPerSecond, this.#limits.burst);
      this.#postBuckets.set(address, bucket);
    }
    return bucket.take();
  }
}
