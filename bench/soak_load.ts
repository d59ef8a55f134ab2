/**
 * The soak's clients: the steady load (the bench's load workers, in rate mode), a churn of clients
 * that join and leave, and slow readers that stop reading until the server drops them.
 */

import {
  addCounts,
  assignConnections,
  type BenchOptions,
  LoadWorker,
  progressOf,
  type RunResult,
  SCENARIOS,
} from "./bench.ts";
import { Histogram } from "./stats.ts";
import type { ConnectedReport, FinalReport } from "./worker_messages.ts";
import { WsClient } from "./ws_client.ts";

/** The steady load: subscribers in one room, `senders` of them sending `rate` messages/s. */
export interface SteadyShape {
  subscribers: number;
  senders: number;
  rate: number;
  bodyBytes: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The steady subscribers' figures at the end, after the drain: the bench's, where they are. */
export interface SteadyResult extends
  Pick<
    RunResult,
    | "subscribers"
    | "connected"
    | "expected"
    | "delivered"
    | "lost"
    | "p50Ms"
    | "p99Ms"
    | "maxMs"
    | "sent"
    | "acked"
    | "held"
    | "closes"
    | "errorEvents"
  > {
  /** The first few reasons subscribers failed to connect. */
  connectFailures: string[];
}

/** The steady load: bench's worker threads holding the subscribers and running the senders. */
export class SteadyLoad {
  connected = 0;
  connectFailures: string[] = [];

  private constructor(readonly workers: LoadWorker[], readonly shape: SteadyShape) {}

  /** Starts the workers and connects every subscriber; throws if a worker fails. */
  static async connect(options: SteadyShape, url: string): Promise<SteadyLoad> {
    const bench: BenchOptions = {
      ...SCENARIOS.chat,
      subscribers: options.subscribers,
      senders: options.senders,
      rate: options.rate,
      target: "parley",
      bodyBytes: options.bodyBytes,
      connectConcurrency: 200,
      loadThreads: 0,
      drainTimeoutS: 10,
      pin: false,
      progress: false,
    };
    const shares = assignConnections(bench);
    const load = new SteadyLoad(shares.map(() => new LoadWorker()), options);
    try {
      const reports = await Promise.all(
        load.workers.map((worker, k) =>
          worker.ask<ConnectedReport>(
            {
              type: "connect",
              url,
              indices: shares[k],
              senders: shares[k].filter((i) => i < options.senders),
              legacy: [],
              concurrency: Math.ceil(bench.connectConcurrency / shares.length),
              timeoutMs: 20_000,
            },
            "connected",
            60_000 + options.subscribers * 10,
          )
        ),
      );
      for (const report of reports) {
        load.connected += report.connected;
        load.connectFailures.push(...report.failures);
      }
      return load;
    } catch (error) {
      await load.close();
      throw error;
    }
  }

  /** Has the senders send from `startUs` to `endUs` (epoch µs); latency counts after `warmUs`. */
  start(startUs: number, warmUs: number, endUs: number): void {
    const marker = `~s${crypto.randomUUID().slice(0, 6)}|`;
    for (const worker of this.workers) {
      worker.tell({
        type: "start",
        marker,
        bodyBytes: this.shape.bodyBytes,
        mode: "rate",
        inFlight: 0,
        rate: this.shape.rate,
        startUs,
        warmupEndUs: warmUs,
        sendEndUs: endUs,
      });
    }
  }

  /** Waits (at most `drainMs`) for the last deliveries and acks, then gathers the figures. */
  async finish(drainMs: number): Promise<SteadyResult> {
    const until = performance.now() + drainMs;
    let p = await progressOf(this.workers);
    while (
      (p.acked < p.sent || p.delivered < p.sent * this.connected) && performance.now() < until
    ) {
      await sleep(200);
      p = await progressOf(this.workers);
    }
    const finals = await Promise.all(
      this.workers.map((w) => w.ask<FinalReport>({ type: "report" }, "report", 30_000)),
    );
    const latency = new Histogram();
    const closes: Record<string, number> = {};
    const errorEvents: Record<string, number> = {};
    for (const f of finals) {
      latency.merge(f.v1Latency);
      addCounts(closes, f.closes);
      addCounts(errorEvents, f.errorEvents);
    }
    const ms = (us: number): number => Math.round(us) / 1000;
    return {
      subscribers: this.shape.subscribers,
      connected: this.connected,
      connectFailures: this.connectFailures,
      sent: p.sent,
      acked: p.acked,
      delivered: p.delivered,
      expected: p.sent * this.connected,
      lost: p.sent * this.connected - p.delivered,
      held: p.open,
      p50Ms: ms(latency.quantile(0.5)),
      p99Ms: ms(latency.quantile(0.99)),
      maxMs: ms(latency.max),
      closes,
      errorEvents,
    };
  }

  /** Closes every connection and ends the threads. */
  async close(): Promise<void> {
    await Promise.all(
      this.workers.map((w) => w.ask({ type: "close" }, "closed", 10_000).catch(() => {})),
    );
    for (const w of this.workers) w.worker.terminate();
  }
}

/** Clients that join, stay a few seconds after their welcome, and leave: `perSecond` of them. */
export class Churn {
  opened = 0;
  joined = 0;
  failed = 0;
  /** Closes by the server, by code. */
  readonly closes: Record<string, number> = {};
  readonly #live = new Set<WsClient>();
  /** Each client's timer: its leaving, or giving up on its welcome. */
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** The clients whose socket is not released yet, by the promise of that. */
  readonly #unreleased = new Set<Promise<void>>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(readonly url: string, readonly perSecond: number, readonly stayMs: number) {}

  start(): void {
    if (this.perSecond > 0) this.#timer = setInterval(() => this.cycle(), 1000 / this.perSecond);
  }

  /** Stops opening clients and closes the ones there are. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const client of this.#live) client.close(1000);
    this.#live.clear();
  }

  /** Resolves once the socket of every client opened so far is closed and released. */
  async released(): Promise<void> {
    while (this.#unreleased.size > 0) await Promise.all(this.#unreleased);
  }

  /**
   * One client joins, stays `stayMs` after its welcome, and leaves (what `start` does
   * `perSecond` times a second); resolves once its socket is released, or it failed to connect.
   */
  cycle(): Promise<void> {
    const done = this.#join().finally(() => this.#unreleased.delete(done));
    this.#unreleased.add(done);
    return done;
  }

  /** Runs `then` in `ms` unless stopped first. */
  #after(ms: number, then: () => void): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      then();
    }, ms);
    this.#timers.add(timer);
    return timer;
  }

  async #join(): Promise<void> {
    const serial = this.opened++;
    let client: WsClient | null = null;
    let welcomed = false;
    let left = false;
    const leave = (): void => {
      left = true;
      if (client) this.#live.delete(client);
      client?.close(1000);
    };
    const noWelcome = this.#after(10_000, () => {
      this.failed++;
      leave();
    });
    const settle = (): void => {
      clearTimeout(noWelcome);
      this.#timers.delete(noWelcome);
    };
    try {
      client = await WsClient.connect(`${this.url}&userName=churn-${serial}`, "parley.v1", {
        text: (data) => {
          if (welcomed || !data.includes('"welcome"')) return;
          welcomed = true;
          this.joined++;
          settle();
          this.#after(this.stayMs, leave);
        },
        closed: (code) => {
          if (!this.#stopped && !left) this.closes[code] = (this.closes[code] ?? 0) + 1;
          if (client) this.#live.delete(client);
        },
      }, 10_000);
    } catch {
      settle();
      this.failed++;
      return;
    }
    if (this.#stopped || left || !client.open) client.close(1000);
    else this.#live.add(client);
    await client.released;
  }
}

/**
 * Clients that stop reading once connected, until the server drops them as too slow. They all get
 * the room's traffic, so the one stalled longest fills its buffers first: each drop the server
 * counts closes the oldest (which frees the server's socket) and opens a new one.
 */
export class SlowReaders {
  opened = 0;
  dropped = 0;
  failed = 0;
  /** Oldest first. */
  readonly #clients: WsClient[] = [];

  constructor(readonly url: string, readonly count: number) {}

  /** Opens readers until there are `count`; one that fails to connect is counted and skipped. */
  async fill(): Promise<void> {
    const missing = this.count - this.#clients.length;
    await Promise.all(Array.from({ length: missing }, async () => {
      try {
        const client = await WsClient.connect(
          `${this.url}&userName=slow-${this.opened++}`,
          "parley.v1",
          { text: () => {}, closed: () => {} },
          10_000,
        );
        client.stopReading();
        this.#clients.push(client);
      } catch {
        this.failed++;
      }
    }));
  }

  /** Replaces the `n` oldest readers: the server dropped that many. */
  async replace(n: number): Promise<void> {
    for (const client of this.#clients.splice(0, Math.max(0, n))) {
      client.close(1000);
      this.dropped++;
    }
    await this.fill();
  }

  close(): void {
    for (const client of this.#clients.splice(0)) client.close(1000);
  }
}
