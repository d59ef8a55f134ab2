/**
 * What an operator scrapes from `GET /metrics`, in Prometheus' text format: one server's counters
 * and gauges as {@link Samples}, how the samples of several workers make the whole process's, and
 * the exposition. `docs/metrics.md` lists every metric and what to alert on.
 */

import type { LagMonitor } from "./lag.ts";
import { VERSION } from "./version.ts";

/**
 * One server's samples by metric family: each series' value by what follows the family's name in
 * the exposition (its labels; for a histogram, `_bucket{le="…"}`, `_sum` or `_count`), e.g.
 * `{ parley_disconnects_total: { '{code="1001"}': 3 } }`. Plain data: a worker posts it.
 */
export type Samples = Record<string, Record<string, number>>;

/** What the other workers of the process gave for one scrape. */
export interface PeerReport {
  /** Their samples: each worker's answer, or the last it gave if it did not answer in time. */
  samples: Samples[];
  /** How many did not answer in time. */
  stale: number;
}

/**
 * Gives this worker's samples to the rest of the process and returns the other workers'. It is
 * bounded in time: a worker that does not answer is counted {@link PeerReport.stale}.
 */
export type Exchange = (own: Samples) => Promise<PeerReport>;

/**
 * The upper bounds of `parley_history_commit_seconds`' buckets, in seconds: a synced commit
 * takes about a millisecond, a contended one waits up to the 2 s busy timeout.
 */
export const COMMIT_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/** A Prometheus histogram: how many observations fell at or under each bound, their sum. */
export class Histogram {
  /** Observations in each bucket alone; the last slot is above every bound. */
  readonly #counts: Float64Array;
  #sum = 0;

  constructor(readonly bounds: readonly number[]) {
    this.#counts = new Float64Array(bounds.length + 1);
  }

  /** Counts one observation. */
  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.#counts[i]++;
    this.#sum += value;
  }

  /** Its series: the buckets, cumulative and ending in `+Inf`, then `_sum` and `_count`. */
  series(): Record<string, number> {
    const series: Record<string, number> = {};
    let total = 0;
    this.bounds.forEach((bound, i) => {
      total += this.#counts[i];
      series[`_bucket${labels({ le: String(bound) })}`] = total;
    });
    total += this.#counts[this.bounds.length];
    series[`_bucket${labels({ le: "+Inf" })}`] = total;
    series._sum = this.#sum;
    series._count = total;
    return series;
  }
}

/** How a family's series from several workers make the process's. */
type Whole =
  /** Added up: what each worker counts or holds (a series labelled by worker is one worker's). */
  | "sum"
  /** The answering worker's: what every worker sees alike (the shared history file, the build). */
  | "shared";

/** One metric of the exposition. */
interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram";
  whole: Whole;
  help: string;
}

/** Every family, in the order of the exposition. */
const FAMILIES: readonly Family[] = [
  {
    name: "parley_build_info",
    type: "gauge",
    whole: "shared",
    help: "Always 1; its labels say which parley runs, on which Deno.",
  },
  {
    name: "parley_connections",
    type: "gauge",
    whole: "sum",
    help: "Open connections, by dialect and transport.",
  },
  {
    name: "parley_rooms",
    type: "gauge",
    whole: "sum",
    help: "Rooms open in a worker (someone connected to it is in them); by worker with workers.",
  },
  {
    name: "parley_event_loop_lag_seconds",
    type: "gauge",
    whole: "sum",
    help: "The longest the event loop was blocked over the last 10 s, in seconds: how long " +
      "every socket's I/O waited at worst (a 20 ms timer's lateness, so up to 20 ms under); " +
      "by worker with workers.",
  },
  { name: "parley_messages_in_total", type: "counter", whole: "sum", help: "Frames received." },
  {
    name: "parley_messages_out_total",
    type: "counter",
    whole: "sum",
    help: "Message events sent, once per recipient.",
  },
  {
    name: "parley_acks_total",
    type: "counter",
    whole: "sum",
    help: "Messages stored and acknowledged to their parley.v1 sender.",
  },
  {
    name: "parley_slow_consumer_drops_total",
    type: "counter",
    whole: "sum",
    help: "Clients closed as too slow.",
  },
  {
    name: "parley_errors_total",
    type: "counter",
    whole: "sum",
    help: "Protocol errors in what clients sent.",
  },
  {
    name: "parley_refused_total",
    type: "counter",
    whole: "sum",
    help: "Requests refused by a limit, a bad parameter or the origin.",
  },
  {
    name: "parley_disconnects_total",
    type: "counter",
    whole: "sum",
    help: "Closed connections by WebSocket close code (other: an application code, 3000 and up).",
  },
  {
    name: "parley_history_messages",
    type: "gauge",
    whole: "shared",
    help: "Messages in the history store.",
  },
  {
    name: "parley_history_commit_seconds",
    type: "histogram",
    whole: "sum",
    help: "How long each write transaction of the history store took, from waiting for the " +
      "lock to the synced commit, in seconds.",
  },
  {
    name: "parley_metrics_stale_workers",
    type: "gauge",
    whole: "shared",
    help: "Workers that did not answer this scrape in time: their samples are their last report.",
  },
];

/** What {@link Metrics.samples} needs from the rest of the server. */
export interface ServerGauges {
  /** Rooms open in this server. */
  rooms: number;
  /** Messages in the history store; null if the store cannot say (it is failing). */
  historyMessages: number | null;
}

/** What a {@link Metrics} reports beside its counters. */
export interface MetricsOptions {
  /** The event-loop lag gauge; without one, there is none. */
  lag?: LagMonitor | null;
  /** This server's worker number, which labels its per-worker gauges; none in one process. */
  worker?: number | null;
  /** How a scrape gets the other workers' samples; none in one process. */
  exchange?: Exchange | null;
}

/** The live counters of one server. */
export class Metrics {
  /** Frames received from clients. */
  messagesIn = 0;
  /** Message events sent to clients, counted once per recipient. */
  messagesOut = 0;
  /** Messages stored and acknowledged to a `parley.v1` sender. */
  acks = 0;
  /** Clients closed for falling behind. */
  drops = 0;
  /** Protocol errors in what clients sent (a `parley.v1` client also gets an `error` event). */
  errors = 0;
  /** Requests refused by a limit, a bad parameter or the origin check. */
  refused = 0;
  /** How long the history store's commits took, in seconds. */
  readonly commits = new Histogram(COMMIT_BUCKETS);
  readonly lag: LagMonitor | null;
  readonly exchange: Exchange | null;
  /** The labels of a per-worker series: `{worker="2"}`, or none in one process. */
  readonly #worker: string;
  /** Closed connections by close code, or `other` for a code a peer chose (3000 and up). */
  readonly #closes = new Map<string, number>();
  /** Open connections by their labels. */
  readonly #connections = new Map<string, number>();

  constructor(options: MetricsOptions = {}) {
    this.lag = options.lag ?? null;
    this.exchange = options.exchange ?? null;
    const worker = options.worker ?? null;
    this.#worker = worker === null ? "" : labels({ worker: String(worker) });
  }

  /** Counts a connection that opened, by its dialect and what carries it. */
  opened(dialect: string, transport: string): void {
    const key = labels({ dialect, transport });
    this.#connections.set(key, (this.#connections.get(key) ?? 0) + 1);
  }

  /** Counts a connection that {@link opened} and has closed, by its close code. */
  closed(code: number, dialect: string, transport: string): void {
    // A peer may close with any of 2,000 application codes: one series each would be its choice.
    const label = code < 3000 ? String(code) : "other";
    this.#closes.set(label, (this.#closes.get(label) ?? 0) + 1);
    const key = labels({ dialect, transport });
    this.#connections.set(key, (this.#connections.get(key) ?? 0) - 1);
  }

  /** This server's samples: its counters and gauges, and `gauges` from the rest of it. */
  samples(gauges: ServerGauges): Samples {
    const closes = [...this.#closes].map(([code, n]) => [labels({ code }), n]);
    const samples: Samples = {
      parley_build_info: { [labels({ version: VERSION, deno: Deno.version.deno })]: 1 },
      parley_connections: Object.fromEntries(this.#connections),
      parley_rooms: { [this.#worker]: gauges.rooms },
      parley_messages_in_total: { "": this.messagesIn },
      parley_messages_out_total: { "": this.messagesOut },
      parley_acks_total: { "": this.acks },
      parley_slow_consumer_drops_total: { "": this.drops },
      parley_errors_total: { "": this.errors },
      parley_refused_total: { "": this.refused },
      parley_disconnects_total: Object.fromEntries(closes),
      parley_history_commit_seconds: this.commits.series(),
    };
    if (this.lag !== null) {
      const seconds = Math.round(this.lag.maxSeconds() * 1e6) / 1e6;
      samples.parley_event_loop_lag_seconds = { [this.#worker]: seconds };
    }
    if (gauges.historyMessages !== null) {
      samples.parley_history_messages = { "": gauges.historyMessages };
    }
    return samples;
  }
}

/**
 * The whole process's samples: this worker's `own`, with the `others`' added up family by family
 * where they add up ({@link Whole}). Costs O(families × workers × series), whatever the traffic.
 */
export function wholeProcess(own: Samples, others: readonly Samples[]): Samples {
  const whole: Samples = {};
  for (const { name, whole: how } of FAMILIES) {
    const series = { ...own[name] };
    if (how === "sum") {
      for (const other of others) {
        for (const [key, value] of Object.entries(other[name] ?? {})) {
          series[key] = (series[key] ?? 0) + value;
        }
      }
    }
    whole[name] = series;
  }
  return whole;
}

/** The Prometheus text exposition of `samples`: each family that has series, with HELP and TYPE. */
export function exposition(samples: Samples): string {
  const lines: string[] = [];
  for (const { name, type, help } of FAMILIES) {
    const series = Object.entries(samples[name] ?? {});
    if (series.length === 0) continue;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [key, value] of series) lines.push(`${name}${key} ${value}`);
  }
  return lines.join("\n") + "\n";
}

/** `{a="1",b="2"}`: label values escaped as the text format wants. */
function labels(pairs: Record<string, string>): string {
  const escaped = Object.entries(pairs).map(([name, value]) =>
    `${name}="${value.replace(/[\\"]/g, "\\$&").replace(/\n/g, "\\n")}"`
  );
  return `{${escaped.join(",")}}`;
}
