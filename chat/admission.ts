/**
 * Who may connect and how fast: the connection limits (in all and per address), the origin and
 * Host checks, and the rate buckets of connections, posts and reads.
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

/** More buckets than this and all are forgotten: it bounds the map, and only refills them. */
const MAX_BUCKETS = 10_000;

/** A {@link TokenBucket} per address, all with one rate and burst. */
class AddressBuckets {
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(private readonly rate: number, private readonly burst: number) {}

  take(address: string): boolean {
    let bucket = this.#buckets.get(address);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#buckets.clear();
      bucket = new TokenBucket(this.rate, this.burst);
      this.#buckets.set(address, bucket);
    }
    return bucket.take();
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
  "maxConnections" | "maxConnectionsPerIp" | "messagesPerSecond" | "burst" | "readsPerSecond"
>;

/** Decides whether a connection, a request or a post is let in; one per server. */
export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #allowedOrigins: readonly string[];
  readonly #allowedHosts: readonly HostName[] | null;
  /** Leases held, by address; an address with none is absent. */
  readonly #perAddress = new Map<string, number>();
  #open = 0;
  readonly #posts: AddressBuckets;
  readonly #reads: AddressBuckets;

  /**
   * `allowedHosts`: the `Host` names answered besides loopback ones (see {@link hostAllowed});
   * null answers any.
   */
  constructor(
    limits: AdmissionLimits,
    allowedOrigins: readonly string[],
    allowedHosts: readonly string[] | null = null,
  ) {
    this.#limits = limits;
    this.#allowedOrigins = allowedOrigins;
    this.#allowedHosts = allowedHosts?.flatMap((host) => parseHost(host) ?? []) ?? null;
    this.#posts = new AddressBuckets(limits.messagesPerSecond, limits.burst);
    this.#reads = new AddressBuckets(limits.readsPerSecond, Math.ceil(2 * limits.readsPerSecond));
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

  /**
   * Whether a request with this `Host` header is for this server: any is, without a list; else a
   * loopback name or address, or a listed name (with the listed port, if it has one). A page of
   * another site whose name was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name,
   * and is refused. No header at all is not a browser's request.
   */
  hostAllowed(host: string | null): boolean {
    if (this.#allowedHosts === null || host === null) return true;
    const claimed = parseHost(host);
    if (claimed === null) return false;
    return isLoopbackName(claimed.name) ||
      this.#allowedHosts.some(({ name, port }) =>
        name === claimed.name && (port === "" || port === claimed.port)
      );
  }

  /** Takes a token from `address`'s post bucket, which has a connection's rate and burst. */
  mayPost(address: string): boolean {
    return this.#posts.take(address);
  }

  /** Takes a token from `address`'s bucket of reads (`/history`, `/rooms`, `/metrics`). */
  mayRead(address: string): boolean {
    return this.#reads.take(address);
  }
}

/** A `Host` header's name, in lower case without a final dot, and its port ("" if none). */
interface HostName {
  name: string;
  port: string;
}

/** The parts of `host` (`name[:port]` or `[v6][:port]`), or null if it is neither. */
function parseHost(host: string): HostName | null {
  const parts = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host);
  if (parts === null) return null;
  return { name: parts[1].toLowerCase().replace(/\.$/, ""), port: parts[2] ?? "" };
}

/** Whether `name` (a host name or address, IPv6 with or without brackets) is this machine's. */
export function isLoopbackName(name: string): boolean {
  const lower = name.toLowerCase().replace(/\.$/, "");
  return lower === "localhost" || lower.endsWith(".localhost") || lower === "::1" ||
    lower === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(lower);
}

/**
 * The `Host` names a server answers besides loopback ones, for {@link Admission}: behind a
 * loopback `hostName` only those listed in `allowedHosts`; on any other address, any unless
 * `allowedHosts` lists some (people reach it by names and addresses it cannot know).
 */
export function allowedHostsOf(config: Pick<Config, "hostName" | "allowedHosts">): string[] | null {
  if (isLoopbackName(config.hostName) || config.allowedHosts.length > 0) return config.allowedHosts;
  return null;
}
