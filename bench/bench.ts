/**
 * `deno task bench`: the load tool. Opens N subscribers to one room, has S of them send for a
 * duration after a warm-up, and reports delivered messages/s, loss, latency, connect time and the
 * server's RSS and CPU — for parley and for the minimal baseline server in the same run, with the
 * ratio between them.
 *
 * ```sh
 * deno task bench --scenario fanout|chat|crowd|idle [--url ws://…] [--baseline] [--duration S] [--json]
 * deno task bench --scenario fanout --parley --legacy 100   # 100 subscribers in the legacy dialect
 * deno task bench --scenario fanout --workers 2             # parley with workers: 2
 * deno task bench --scenario fanout --redis                 # two parley instances on Redis
 * ```
 *
 * See `bench/README.md` for the scenarios, the setup and the measured figures.
 */

import {
  cpuPercent,
  cpuSecondsPerMillion,
  formatBytes,
  formatCount,
  formatMs,
  Histogram,
  initClockTicks,
  type MachineSample,
  otherCpuPercent,
  type ProcSample,
  sampleMachine,
  sampleProc,
  sampleProcs,
} from "./stats.ts";
import { benchToken } from "./bench_account.ts";
import { type Deployment, startDeployment } from "./deployment.ts";
import { pinning, type ServerKind } from "./server_process.ts";
import type {
  ConnectedReport,
  FinalReport,
  ProgressReport,
  WorkerCommand,
  WorkerReport,
} from "./worker_messages.ts";

/** The named presets. */
export type ScenarioName = "fanout" | "chat" | "crowd" | "idle";

/** What a run does: N subscribers, S of them sending, for a duration after a warm-up. */
export interface Scenario {
  name: ScenarioName;
  subscribers: number;
  senders: number;
  /** `window`: keep `inFlight` unacked; `rate`: `rate` msg/s per sender; `none`: connect only. */
  mode: "window" | "rate" | "none";
  inFlight: number;
  rate: number;
  /** Seconds of measurement (for `idle`: how long the connections are held). */
  durationS: number;
  /** Seconds of sending before the measurement starts. */
  warmupS: number;
}

/** The scenarios of the issue. */
export const SCENARIOS: Record<ScenarioName, Scenario> = {
  fanout: {
    name: "fanout",
    subscribers: 1000,
    senders: 1,
    mode: "window",
    inFlight: 16,
    rate: 0,
    durationS: 10,
    warmupS: 2,
  },
  chat: {
    name: "chat",
    subscribers: 1000,
    senders: 10,
    mode: "rate",
    inFlight: 0,
    rate: 20,
    durationS: 10,
    warmupS: 2,
  },
  crowd: {
    name: "crowd",
    subscribers: 10000,
    senders: 1,
    mode: "rate",
    inFlight: 0,
    rate: 10,
    durationS: 10,
    warmupS: 2,
  },
  idle: {
    name: "idle",
    subscribers: 19000,
    senders: 0,
    mode: "none",
    inFlight: 0,
    rate: 0,
    durationS: 5,
    warmupS: 0,
  },
};

/** Which servers a run measures. */
export type Target = "compare" | "parley" | "baseline" | "url";

/** Everything a run needs: a scenario plus how to run it. */
export interface BenchOptions extends Scenario {
  /** `compare` runs the baseline, then parley; `url` targets `url` only. */
  target: Target;
  /** For `url`: a `ws://` or `http://` URL; `/chat` is the default path. */
  url?: string;
  /** Size of each message body in bytes. */
  bodyBytes: number;
  /** Connections opened at a time. */
  connectConcurrency: number;
  /** The tool's worker threads holding the connections; 0 picks one per 1,000 subscribers. */
  loadThreads: number;
  /** Longest wait for the last deliveries once sending stops. */
  drainTimeoutS: number;
  /**
   * Pin the server to CPU 0 and this process to the others (`taskset`), if there are two and this
   * process can be pinned; otherwise neither is pinned.
   */
  pin: boolean;
  /** Print a progress line a second to stderr. */
  progress: boolean;
  /**
   * Subscribers (never senders: the last `legacy` of them) that connect without a subprotocol, in
   * parley's legacy dialect. parley only: the baseline speaks `parley.v1` alone. Default 0.
   */
  legacy?: number;
  /**
   * parley's `auth.mode`. With `accounts` the tool creates an admin with the setup link parley
   * prints, and every connection sends that account's API token on its upgrade. Default `open`.
   */
  auth?: "open" | "accounts";
  /** parley's `workers` (threads serving one port); parley's default, 1, when absent. */
  serverWorkers?: number;
  /**
   * Two parley instances on one redis-server the tool starts: the senders on the first, the other
   * subscribers split between both, so that every delivery to the second crosses Redis.
   */
  redis?: boolean;
}

/** Delivery figures of a set of subscribers: all of a run's, or one kind of them. */
export interface SubscriberGroup {
  subscribers: number;
  connected: number;
  /** Messages sent x subscribers connected. */
  expected: number;
  delivered: number;
  lost: number;
  /** Deliveries per second over the measured window (after the warm-up, until sending stops). */
  deliveredPerSec: number;
  /** Deliveries per WebSocket message received: how much the server coalesces. */
  messagesPerFrame: number | null;
  /** Latency of the messages sent after the warm-up, from send to receive, per recipient. */
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** The legacy subscribers' figures, with the checks of their dialect. */
export interface LegacyGroup extends SubscriberGroup {
  /** Frames holding more than one message object: the dialect allows exactly one per frame. */
  multiMessageFrames: number;
  /** Frames that are not one message object followed by `\n` (e.g. a `parley.v1` event). */
  badFrames: number;
}

/** The figures of one server in one run. */
export interface RunResult extends SubscriberGroup {
  target: ServerKind | "url";
  url: string;
  connectFailures: number;
  /** From the first connection attempt to the last `welcome`. */
  connectMs: number;
  sent: number;
  acked: number;
  /** Connections still open at the end. */
  held: number;
  /** Closes the tool did not ask for, by code; `error` events from the server, by code. */
  closes: Record<string, number>;
  errorEvents: Record<string, number>;
  /** Server RSS at the end (before the connections close); null without `/proc` or a pid. */
  serverRssBytes: number | null;
  /** Server RSS before the connections opened. */
  serverRssStartBytes: number | null;
  /** (RSS at the end - RSS before connecting) / connections. */
  rssPerConnectionBytes: number | null;
  /** Server CPU over the measured window (every parley instance), in percent of one core. */
  serverCpuPercent: number | null;
  /** redis-server's CPU over the measured window, in percent of one core; null without Redis. */
  redisCpuPercent: number | null;
  /**
   * Server CPU-seconds (utime + stime of every instance, all threads) per million deliveries in
   * the measured window: the cost of a delivery, which predicts scaling on a bigger machine.
   */
  serverCpuSecondsPerMillion: number | null;
  /** The same of redis-server, apart; null without Redis. */
  redisCpuSecondsPerMillion: number | null;
  /** This process's CPU over the measured window, in percent of one core. */
  loadCpuPercent: number | null;
  /**
   * CPU used by everything else on the machine over the measured window, in percent of one core:
   * other processes competing with the run make its figures unreliable. Null without `/proc` or
   * without the server's process (`--url`), whose CPU would otherwise count as other.
   */
  otherCpuPercent: number | null;
  /** CPU stolen by the hypervisor over the measured window, in percent of one core. */
  stealCpuPercent: number | null;
  /** Time from the end of sending until the counts stopped changing. */
  drainMs: number;
  serverCpus: string | null;
  loadCpus: string | null;
  /** The tool's worker threads. */
  loadThreads: number;
  /** parley's `workers`, and its instances (2 on Redis); null for the baseline and `--url`. */
  serverWorkers: number | null;
  instances: number | null;
  /** Subscribers connected to each instance (one figure but on Redis); the senders on the first. */
  connectedPerInstance: number[];
  /**
   * With legacy subscribers: the `parley.v1` subscribers' figures (the senders among them) and
   * the legacy ones'; the fields above are for all of them together. Null without legacy ones.
   */
  v1: SubscriberGroup | null;
  legacy: LegacyGroup | null;
}

/** The answer of {@link runBench}: the primary result's fields at the top, then both runs. */
export interface BenchReport extends RunResult {
  scenario: ScenarioName;
  settings: Omit<BenchOptions, "progress">;
  parley: RunResult | null;
  baseline: RunResult | null;
  /** parley / baseline where both ran. */
  ratio: {
    deliveredPerSec: number | null;
    p99Ms: number | null;
    connectMs: number | null;
    serverRssBytes: number | null;
    rssPerConnectionBytes: number | null;
  } | null;
  /** Why the server and the load were not pinned to CPUs of their own; null if they were. */
  notPinned: string | null;
  /** What to keep in mind reading the figures, e.g. that workers pinned to one CPU cannot scale. */
  notes: string[];
  /** Things that make the figures doubtful, e.g. the load generator saturating its CPU. */
  warnings: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** A worker thread and a way to wait for its answers by type. */
export class LoadWorker {
  readonly worker: Worker;
  #waiting = new Map<string, Array<(report: WorkerReport) => void>>();
  #failure: Error | null = null;

  constructor() {
    this.worker = new Worker(new URL("./load_worker.ts", import.meta.url), { type: "module" });
    this.worker.onmessage = (event: MessageEvent<WorkerReport>) => {
      const queue = this.#waiting.get(event.data.type);
      queue?.shift()?.(event.data);
    };
    this.worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#failure = new Error(`load worker failed: ${event.message}`);
    };
  }

  /** Sends a command and waits (at most `timeoutMs`) for the answer of type `type`. */
  ask<T extends WorkerReport>(
    command: WorkerCommand,
    type: T["type"],
    timeoutMs: number,
  ): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<T>((resolve, reject) => {
      const queue = this.#waiting.get(type) ?? [];
      this.#waiting.set(type, queue);
      const timer = setTimeout(() => {
        const at = queue.indexOf(done);
        if (at >= 0) queue.splice(at, 1);
        reject(this.#failure ?? new Error(`load worker gave no "${type}" in ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (report: WorkerReport): void => {
        clearTimeout(timer);
        resolve(report as T);
      };
      queue.push(done);
      this.worker.postMessage(command);
    });
  }

  tell(command: WorkerCommand): void {
    this.worker.postMessage(command);
  }
}

/** The WebSocket URL of `room` on the server at `base` (`/chat` unless `base` names a path). */
export function chatUrl(base: string, room: string): string {
  const url = new URL(base);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/chat";
  url.searchParams.set("room", room);
  url.searchParams.delete("userName");
  return url.href;
}

function log(options: BenchOptions, line: string): void {
  if (options.progress) console.error(line);
}

/** The running counts of all the workers, added up. */
export async function progressOf(
  workers: LoadWorker[],
): Promise<
  Pick<ProgressReport, "delivered" | "deliveredInWindow" | "frames" | "sent" | "acked" | "open">
> {
  const reports = await Promise.all(
    workers.map((w) => w.ask<ProgressReport>({ type: "progress" }, "progress", 10_000)),
  );
  const sum = { delivered: 0, deliveredInWindow: 0, frames: 0, sent: 0, acked: 0, open: 0 };
  for (const r of reports) {
    sum.delivered += r.delivered;
    sum.deliveredInWindow += r.deliveredInWindow;
    sum.frames += r.frames;
    sum.sent += r.sent;
    sum.acked += r.acked;
    sum.open += r.open;
  }
  return sum;
}

/** Adds counts by key (close codes, error codes) into `into`. */
export function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n;
}

/**
 * Runs the scenario once against one server: `kind` starts it as a subprocess (pinned to
 * `serverCpus` if given; parley as the options deploy it); `url` targets a running one.
 */
async function runOnce(
  options: BenchOptions,
  server: { kind: ServerKind; serverCpus: string | null } | { url: string },
  loadCpus: string | null = null,
): Promise<RunResult> {
  let deployment: Deployment | null = null;
  const label = "kind" in server ? server.kind : "url";
  const accounts = label === "parley" && authOf(options) === "accounts";
  if ("kind" in server) {
    log(
      options,
      `[${label}] starting ${deploymentOf(options, server.kind)}` +
        (server.serverCpus ? ` on CPU ${server.serverCpus}` : ""),
    );
    deployment = await startDeployment(server.kind, {
      cpus: server.serverCpus,
      ...(server.kind === "parley"
        ? { authMode: accounts ? "accounts" : undefined, ...parleyShape(options) }
        : {}),
    });
  }
  const bases = deployment ? deployment.urls : [(server as { url: string }).url];
  const room = `bench-${crypto.randomUUID().slice(0, 8)}`;
  const urls = bases.map((base) => chatUrl(base, room));
  const shares = assignConnections(options);
  const workers = shares.map(() => new LoadWorker());
  try {
    // In accounts mode every connection signs in with the token of an admin made for the run.
    const token = accounts ? await benchToken(bases[0], deployment!.banner) : null;
    return await measure(options, label, urls, token, deployment, workers, shares, loadCpus);
  } finally {
    await Promise.all(
      workers.map((w) => w.ask({ type: "close" }, "closed", 10_000).catch(() => {})),
    );
    for (const w of workers) w.worker.terminate();
    await deployment?.stop();
  }
}

/** parley's `workers` and Redis as the options ask for them. */
function parleyShape(options: BenchOptions): { workers?: number; redis?: boolean } {
  return { workers: options.serverWorkers, redis: options.redis };
}

/** What a run starts, in words: "parley with 2 workers", "two parley instances on Redis". */
function deploymentOf(options: BenchOptions, kind: ServerKind): string {
  if (kind === "baseline") return "the baseline";
  const workers = options.serverWorkers ?? 1;
  const each = workers > 1 ? ` with ${workers} workers` : "";
  return options.redis
    ? `two parley instances${each ? ` (each${each})` : ""} on Redis`
    : `parley${each}`;
}

/**
 * Splits the subscribers over worker threads. The senders (subscribers 0..S-1) get a thread of
 * their own, so an ack never waits behind the frames of hundreds of other connections; the rest
 * are dealt round-robin over one thread per 1,000 (or `options.loadThreads` threads): with 10,000 on
 * four threads the tool itself fell seconds behind in `crowd`, even sharing one CPU.
 */
export function assignConnections(options: BenchOptions): number[][] {
  const senders = options.mode === "none" ? 0 : Math.min(options.senders, options.subscribers);
  const rest = options.subscribers - senders;
  const count = Math.max(1, Math.min(options.loadThreads || Math.ceil(rest / 1000), rest));
  const shares: number[][] = Array.from({ length: rest > 0 ? count : 0 }, () => []);
  for (let i = 0; i < rest; i++) shares[i % count].push(senders + i);
  if (senders > 0) shares.unshift(Array.from({ length: senders }, (_, i) => i));
  return shares;
}

async function measure(
  options: BenchOptions,
  label: ServerKind | "url",
  urls: string[],
  token: string | null,
  deployment: Deployment | null,
  workers: LoadWorker[],
  shares: number[][],
  loadCpus: string | null,
): Promise<RunResult> {
  const url = urls[0];
  const server = (): Promise<ProcSample | null> => sampleProcs(deployment?.pids ?? []);
  const redisPid = deployment?.redisPid ?? null;
  const redis = (): Promise<ProcSample | null> =>
    redisPid === null ? Promise.resolve(null) : sampleProc(redisPid);
  const rssStart = (await server())?.rssBytes ?? null;

  // Connect: worker k opens shares[k] (see assignConnections: the senders, subscribers 0..S-1, in
  // a worker of their own, the rest dealt round-robin over the others); the legacy ones are the
  // last L.
  const legacyCount = legacyOf(options);
  const firstLegacy = options.subscribers - legacyCount;
  const perWorker = Math.max(1, Math.ceil(options.connectConcurrency / workers.length));
  const connectTimeoutMs = 30_000 + options.subscribers * 10;
  log(options, `[${label}] connecting ${formatCount(options.subscribers)} subscribers to ${url}`);
  const connectStarted = performance.now();
  const ticker = setInterval(() => {
    log(
      options,
      `[${label}] connecting… ${((performance.now() - connectStarted) / 1000).toFixed(0)} s`,
    );
  }, 1000);
  let connectedReports: ConnectedReport[];
  try {
    connectedReports = await Promise.all(workers.map((w, k) => {
      const indices = shares[k];
      return w.ask<ConnectedReport>(
        {
          type: "connect",
          url,
          indices,
          senders: indices.filter((i) => i < options.senders),
          legacy: indices.filter((i) => i >= firstLegacy),
          alternateUrl: urls[1] ?? null,
          concurrency: perWorker,
          token,
          timeoutMs: 20_000,
        },
        "connected",
        connectTimeoutMs + 20_000,
      );
    }));
  } finally {
    clearInterval(ticker);
  }
  const connected = connectedReports.reduce((n, r) => n + r.connected, 0);
  const legacyConnected = connectedReports.reduce((n, r) => n + r.legacyConnected, 0);
  const alternateConnected = connectedReports.reduce((n, r) => n + r.alternateConnected, 0);
  const connectFailures = connectedReports.reduce((n, r) => n + r.failed, 0);
  const firstStart = Math.min(...connectedReports.map((r) => r.firstStartMs));
  const lastWelcome = Math.max(...connectedReports.map((r) => r.lastWelcomeMs));
  const connectMs = connected > 0 ? lastWelcome - firstStart : 0;
  log(
    options,
    `[${label}] ${formatCount(connected)} connected in ${formatMs(connectMs)}` +
      (connectFailures
        ? `, ${connectFailures} failed: ${connectedReports.flatMap((r) => r.failures).join("; ")}`
        : ""),
  );

  // A legacy client counts as connected at the upgrade, before parley has subscribed it: wait
  // until the room lists every subscriber (a named legacy client joins once subscribed).
  if (legacyConnected > 0) await waitForPresence(options, label, url, connected);

  // Only `~`, hex digits, `|` and `x`: nothing JSON or Go's HTML-safe escaping would rewrite, so a
  // legacy frame holds the body byte for byte.
  const marker = `~b${crypto.randomUUID().slice(0, 6)}|`;
  const startUs = nowUs() + 100_000;
  const warmupEndUs = startUs + options.warmupS * 1e6;
  const sendEndUs = warmupEndUs + options.durationS * 1e6;
  const sending = options.mode !== "none" && options.senders > 0;
  if (sending) {
    for (const w of workers) {
      w.tell({
        type: "start",
        marker,
        bodyBytes: options.bodyBytes,
        mode: options.mode === "rate" ? "rate" : "window",
        inFlight: options.inFlight,
        rate: options.rate,
        startUs,
        warmupEndUs,
        sendEndUs,
      });
    }
  }

  // Until the warm-up ends, then the measured window, a progress line a second.
  let serverFrom: ProcSample | null = null;
  let loadFrom: ProcSample | null = null;
  let last = { delivered: 0, at: performance.now() };
  let lastServer = await server();
  let lastLoad = await sampleProc("self");
  const untilUs = async (target: number, phase: string): Promise<void> => {
    while (nowUs() < target) {
      await sleep(Math.min(1000, Math.max(1, (target - nowUs()) / 1000)));
      const [p, s, l] = await Promise.all([progressOf(workers), server(), sampleProc("self")]);
      const at = performance.now();
      const rate = ((p.delivered - last.delivered) * 1000) / Math.max(1, at - last.at);
      const serverCpu = cpuPercent(lastServer, s);
      const loadCpu = cpuPercent(lastLoad, l);
      last = { delivered: p.delivered, at };
      lastServer = s;
      lastLoad = l;
      const parts = [
        `[${label}] ${phase}`,
        `sent ${formatCount(p.sent)} acked ${formatCount(p.acked)}`,
        `delivered ${formatCount(p.delivered)} (${formatCount(rate)}/s)`,
        `open ${formatCount(p.open)}`,
        serverCpu === null ? "" : `server cpu ${serverCpu.toFixed(0)}%`,
        s ? `rss ${formatBytes(s.rssBytes)}` : "",
        loadCpu === null ? "" : `load cpu ${loadCpu.toFixed(0)}%`,
      ];
      log(options, parts.filter((x) => x !== "").join(" | "));
    }
  };
  await untilUs(warmupEndUs, "warm-up");
  let machineFrom: MachineSample | null;
  let redisFrom: ProcSample | null;
  [serverFrom, loadFrom, machineFrom, redisFrom] = await Promise.all([
    server(),
    sampleProc("self"),
    sampleMachine(),
    redis(),
  ]);
  await untilUs(sendEndUs, "measure");
  const [serverTo, loadTo, machineTo, redisTo] = await Promise.all([
    server(),
    sampleProc("self"),
    sampleMachine(),
    redis(),
  ]);

  // Drain: until everything expected arrived, or the counts stop changing, or the timeout.
  const drainStart = performance.now();
  let drainMs = 0;
  if (sending) {
    let previous = -1;
    let stableSince = performance.now();
    while (performance.now() - drainStart < options.drainTimeoutS * 1000) {
      const p = await progressOf(workers);
      const expected = p.sent * connected;
      if (p.acked >= p.sent && p.delivered >= expected) break;
      const total = p.delivered + p.acked;
      if (total !== previous) {
        previous = total;
        stableSince = performance.now();
      } else if (performance.now() - stableSince > 2000) {
        break;
      }
      await sleep(100);
    }
    drainMs = performance.now() - drainStart;
  }
  const serverEnd = await server();

  const finals = await Promise.all(
    workers.map((w) => w.ask<FinalReport>({ type: "report" }, "report", 30_000)),
  );
  const latency = new Histogram();
  const v1Latency = new Histogram();
  const legacyLatency = new Histogram();
  const closes: Record<string, number> = {};
  const errorEvents: Record<string, number> = {};
  let delivered = 0,
    deliveredInWindow = 0,
    frames = 0,
    sent = 0,
    acked = 0,
    held = 0;
  const legacy = { delivered: 0, deliveredInWindow: 0, frames: 0, multi: 0, bad: 0 };
  for (const f of finals) {
    latency.merge(f.v1Latency);
    latency.merge(f.legacyLatency);
    v1Latency.merge(f.v1Latency);
    legacyLatency.merge(f.legacyLatency);
    legacy.delivered += f.legacyDelivered;
    legacy.deliveredInWindow += f.legacyDeliveredInWindow;
    legacy.frames += f.legacyFrames;
    legacy.multi += f.legacyMultiMessageFrames;
    legacy.bad += f.legacyBadFrames;
    addCounts(closes, f.closes);
    addCounts(errorEvents, f.errorEvents);
    delivered += f.delivered;
    deliveredInWindow += f.deliveredInWindow;
    frames += f.frames;
    sent += f.sent;
    acked += f.acked;
    held += f.open;
  }
  const ms = (us: number): number => Math.round(us) / 1000;
  const perSec = (n: number): number =>
    options.durationS > 0 ? Math.round(n / options.durationS) : 0;
  const perFrame = (n: number, f: number): number | null =>
    f > 0 ? Math.round((n / f) * 100) / 100 : null;
  const group = (
    subscribers: number,
    connected: number,
    delivered: number,
    inWindow: number,
    frames: number,
    latency: Histogram,
  ): SubscriberGroup => ({
    subscribers,
    connected,
    expected: sent * connected,
    delivered,
    lost: sent * connected - delivered,
    deliveredPerSec: perSec(inWindow),
    messagesPerFrame: perFrame(delivered, frames),
    p50Ms: ms(latency.quantile(0.5)),
    p90Ms: ms(latency.quantile(0.9)),
    p99Ms: ms(latency.quantile(0.99)),
    maxMs: ms(latency.max),
    meanMs: latency.count ? ms(latency.sum / latency.count) : 0,
  });
  // Frames breaking the legacy dialect are errors too, beside the server's `error` events.
  if (legacy.multi > 0) errorEvents.legacyMultiMessageFrames = legacy.multi;
  if (legacy.bad > 0) errorEvents.legacyBadFrames = legacy.bad;
  const rssEnd = serverEnd?.rssBytes ?? null;
  return {
    target: label,
    url,
    ...group(options.subscribers, connected, delivered, deliveredInWindow, frames, latency),
    connectFailures,
    connectMs,
    sent,
    acked,
    held,
    closes,
    errorEvents,
    serverRssBytes: rssEnd,
    serverRssStartBytes: rssStart,
    rssPerConnectionBytes: rssEnd !== null && rssStart !== null && connected > 0
      ? Math.round((rssEnd - rssStart) / connected)
      : null,
    serverCpuPercent: round1(cpuPercent(serverFrom, serverTo)),
    redisCpuPercent: round1(cpuPercent(redisFrom, redisTo)),
    serverCpuSecondsPerMillion: cpuSecondsPerMillion(serverFrom, serverTo, deliveredInWindow),
    redisCpuSecondsPerMillion: cpuSecondsPerMillion(redisFrom, redisTo, deliveredInWindow),
    loadCpuPercent: round1(cpuPercent(loadFrom, loadTo)),
    otherCpuPercent: round1(
      otherCpuPercent([machineFrom, machineTo], [
        [serverFrom, serverTo],
        [loadFrom, loadTo],
        ...(redisPid === null
          ? []
          : [[redisFrom, redisTo] as [ProcSample | null, ProcSample | null]]),
      ]),
    ),
    stealCpuPercent: round1(stealCpuPercent(machineFrom, machineTo)),
    drainMs: Math.round(drainMs),
    serverCpus: deployment?.cpus ?? null,
    loadCpus,
    loadThreads: workers.length,
    serverWorkers: label === "parley" ? options.serverWorkers ?? 1 : null,
    instances: deployment && label === "parley" ? deployment.pids.length : null,
    connectedPerInstance: urls.length > 1
      ? [connected - alternateConnected, alternateConnected]
      : [connected],
    v1: legacyCount > 0
      ? group(
        options.subscribers - legacyCount,
        connected - legacyConnected,
        delivered - legacy.delivered,
        deliveredInWindow - legacy.deliveredInWindow,
        frames - legacy.frames,
        v1Latency,
      )
      : null,
    legacy: legacyCount > 0
      ? {
        ...group(
          legacyCount,
          legacyConnected,
          legacy.delivered,
          legacy.deliveredInWindow,
          legacy.frames,
          legacyLatency,
        ),
        multiMessageFrames: legacy.multi,
        badFrames: legacy.bad,
      }
      : null,
  };
}

/** The number of legacy subscribers a run asks for. */
function legacyOf(options: BenchOptions): number {
  return options.legacy ?? 0;
}

/** How parley runs: open mode unless the run asks for accounts. */
function authOf(options: BenchOptions): "open" | "accounts" {
  return options.auth ?? "open";
}

/**
 * Why `options` cannot run, or null: accounts mode sets up the parley the tool starts (not one
 * at `--url`), and its connections share one account, so that `/rooms` cannot count legacy ones.
 */
function authConflict(options: BenchOptions): string | null {
  if (authOf(options) !== "accounts") return null;
  if (options.target === "url" || options.target === "baseline") {
    return "--auth accounts sets up the parley this tool starts: use it without --url and --baseline";
  }
  if (legacyOf(options) > 0) {
    return "--auth accounts and --legacy do not go together: every connection is the one bench " +
      "account, so the tool cannot tell when the legacy ones have joined";
  }
  return null;
}

/**
 * Why `options` cannot deploy parley as they ask, or null: `--workers` and `--redis` shape the
 * parley this tool starts (the baseline has neither); two instances on Redis need deliveries to
 * measure, open mode (accounts live in one instance's history file), and no legacy subscribers
 * (the tool counts them joined from one instance's `/rooms`).
 */
function shapeConflict(options: BenchOptions): string | null {
  if (options.serverWorkers === undefined && !options.redis) return null;
  if (options.target !== "parley") {
    return "--workers and --redis shape the parley this tool starts: use them with --parley " +
      "(implied without --url and --baseline)";
  }
  if (!options.redis) return null;
  if (options.mode === "none") return `--redis needs deliveries: ${options.name} sends nothing`;
  if (authOf(options) === "accounts") {
    return "--redis and --auth accounts do not go together: parley refuses accounts on Redis";
  }
  if (legacyOf(options) > 0) return "--redis and --legacy do not go together";
  return null;
}

/**
 * Polls `GET /rooms` (at most 10 s) until the run's room lists `count` users, so that every legacy
 * subscriber is subscribed before the first message; warns in the progress output otherwise.
 */
async function waitForPresence(
  options: BenchOptions,
  label: string,
  url: string,
  count: number,
): Promise<void> {
  const target = new URL(url);
  const room = target.searchParams.get("room");
  target.protocol = target.protocol === "wss:" ? "https:" : "http:";
  target.pathname = "/rooms";
  target.search = "";
  const started = performance.now();
  let users = -1;
  while (performance.now() - started < 10_000) {
    try {
      const response = await fetch(target);
      const list = response.ok ? await response.json() : await response.body?.cancel();
      if (!Array.isArray(list)) break;
      users = list.find((r: { room: string; users: number }) => r.room === room)?.users ?? 0;
      if (users >= count) return;
    } catch {
      break;
    }
    await sleep(50);
  }
  log(
    options,
    `[${label}] the room lists ${users} of ${count} users after ` +
      `${formatMs(performance.now() - started)}; starting anyway`,
  );
  await sleep(500);
}

/** CPU stolen by the hypervisor between two samples, in percent of one core. */
function stealCpuPercent(from: MachineSample | null, to: MachineSample | null): number | null {
  if (!from || !to || to.at <= from.at) return null;
  return (100 * (to.stealSeconds - from.stealSeconds)) / ((to.at - from.at) / 1000);
}

function round1(n: number | null): number | null {
  return n === null ? null : Math.round(n * 10) / 10;
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : Math.round((a / b) * 1000) / 1000;
}

/** Runs a scenario against the target(s) the options name and returns every figure. */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const conflict = authConflict(options) ?? shapeConflict(options);
  if (conflict !== null) throw new Error(conflict);
  const legacyCount = legacyOf(options);
  const senders = options.mode === "none" ? 0 : Math.min(options.senders, options.subscribers);
  if (legacyCount > options.subscribers - senders) {
    throw new Error(
      `--legacy ${legacyCount}: only ${options.subscribers - senders} subscribers are not ` +
        "senders (senders always speak parley.v1)",
    );
  }
  if (legacyCount > 0 && options.target === "baseline") {
    throw new Error(
      "--legacy is for parley only: the baseline speaks parley.v1 alone; use --parley or no flag",
    );
  }
  await initClockTicks();
  const warnings: string[] = [];
  let serverCpus: string | null = null;
  let loadCpus: string | null = null;
  let notPinned: string | null = options.target === "url"
    ? "--url: the server is not this tool's"
    : "--no-pin";
  const cores = navigator.hardwareConcurrency;
  if (options.pin && options.target !== "url") {
    const pinned = await pinning();
    if ("reason" in pinned) {
      notPinned = pinned.reason;
      warnings.push(`not pinned: ${pinned.reason}; server and load share CPUs`);
    } else {
      ({ serverCpus, loadCpus } = pinned);
      notPinned = null;
    }
  }
  let baseline: RunResult | null = null;
  let parley: RunResult | null = null;
  let primary: RunResult;
  if (options.target === "url") {
    if (!options.url) throw new Error("--url needs a URL");
    primary = await runOnce(options, { url: options.url }, loadCpus);
  } else {
    if (options.target !== "parley") {
      // The baseline has no legacy dialect: all its subscribers speak parley.v1.
      const all = { ...options, legacy: 0 };
      if (legacyCount > 0) {
        const note = `the baseline ran all ${options.subscribers} subscribers as parley.v1 (it ` +
          `has no legacy dialect); parley ran ${legacyCount} of them as legacy: the ratio ` +
          "compares those two loads";
        warnings.push(note);
        log(options, `note: ${note}`);
      }
      baseline = await runOnce(all, { kind: "baseline", serverCpus }, loadCpus);
    }
    if (options.target !== "baseline") {
      try {
        parley = await runOnce(options, { kind: "parley", serverCpus }, loadCpus);
      } catch (error) {
        // Keep the baseline's figures: report parley's failure instead of losing the run.
        if (!baseline) throw error;
        warnings.push(`parley run failed: ${(error as Error).message}`);
      }
    }
    primary = (parley ?? baseline)!;
  }
  for (const run of [baseline, parley, options.target === "url" ? primary : null]) {
    if (!run) continue;
    const limit = loadCpus === null ? 100 * cores : 100 * (cores - 1);
    if (run.loadCpuPercent !== null && run.loadCpuPercent > 0.9 * limit) {
      warnings.push(
        `${run.target}: the load generator used ${run.loadCpuPercent}% CPU of ${limit}%: ` +
          "it may be the bottleneck, so the figures are a lower bound",
      );
    }
    if (run.otherCpuPercent !== null && run.otherCpuPercent > 15) {
      warnings.push(
        `${run.target}: other processes used ${run.otherCpuPercent}% CPU during the measurement ` +
          "(the machine was not quiet): its figures are unreliable",
      );
    }
    if (run.connectFailures > 0) {
      warnings.push(`${run.target}: ${run.connectFailures} subscribers failed to connect`);
    }
    if (run.legacy && (run.legacy.multiMessageFrames > 0 || run.legacy.badFrames > 0)) {
      warnings.push(
        `${run.target}: legacy subscribers got ${run.legacy.multiMessageFrames} frames with ` +
          `more than one message and ${run.legacy.badFrames} frames that are not a message ` +
          "object: the legacy dialect is one message object per frame",
      );
    }
  }
  const { progress: _progress, ...settings } = options;
  return {
    ...primary,
    scenario: options.name,
    settings,
    parley,
    baseline,
    ratio: parley && baseline
      ? {
        deliveredPerSec: ratio(parley.deliveredPerSec, baseline.deliveredPerSec),
        p99Ms: ratio(parley.p99Ms, baseline.p99Ms),
        connectMs: ratio(parley.connectMs, baseline.connectMs),
        serverRssBytes: ratio(parley.serverRssBytes, baseline.serverRssBytes),
        rssPerConnectionBytes: ratio(parley.rssPerConnectionBytes, baseline.rssPerConnectionBytes),
      }
      : null,
    notPinned,
    notes: notesOf(options, serverCpus),
    warnings,
  };
}

/** What the figures of a run with workers or on Redis can and cannot show on this machine. */
function notesOf(options: BenchOptions, serverCpus: string | null): string[] {
  const workers = options.serverWorkers ?? 1;
  if (workers === 1 && !options.redis) return [];
  const what = options.redis
    ? "both parley instances and redis-server"
    : `parley's ${workers} workers`;
  const where = serverCpus === null
    ? `share the machine's ${navigator.hardwareConcurrency} CPUs with the load`
    : `share CPU ${serverCpus}`;
  return [
    `${what} ${where}: this machine cannot show scaling; the server CPU-seconds per million ` +
    "deliveries is what predicts it on a bigger one",
  ];
}

function describe(options: BenchOptions): string {
  const load = options.mode === "window"
    ? `${options.senders} sender(s) keeping ${options.inFlight} in flight`
    : options.mode === "rate"
    ? `${options.senders} sender(s) x ${options.rate} msg/s`
    : "connections only";
  const time = options.mode === "none"
    ? `held ${options.durationS} s`
    : `${options.warmupS} s warm-up + ${options.durationS} s`;
  const legacy = legacyOf(options) > 0 ? ` (${formatCount(legacyOf(options))} legacy)` : "";
  const auth = authOf(options) === "accounts" ? ", parley in accounts mode" : "";
  const shape = options.serverWorkers !== undefined || options.redis
    ? `, ${deploymentOf(options, "parley")}${options.redis ? " (senders on the first)" : ""}`
    : "";
  return `${options.name}: ${formatCount(options.subscribers)} subscribers${legacy}, ${load}, ` +
    `${options.bodyBytes}-byte bodies, ${time}${auth}${shape}`;
}

/** The report as a table: one column per server, plus the ratio. */
function formatReport(report: BenchReport): string {
  const runs: RunResult[] = report.parley || report.baseline
    ? [report.parley, report.baseline].filter((r): r is RunResult => r !== null)
    : [report];
  const codes = (counts: Record<string, number>): string =>
    Object.entries(counts).map(([k, v]) => `${k}:${v}`).join(" ") || "0";
  const rows: Array<[string, (r: RunResult) => string, string | null]> = [
    [
      "delivered msgs/s",
      (r) => formatCount(r.deliveredPerSec),
      fmtRatio(report.ratio?.deliveredPerSec),
    ],
    ["expected", (r) => formatCount(r.expected), null],
    ["delivered", (r) => formatCount(r.delivered), null],
    ["lost", (r) => formatCount(r.lost), null],
    ["messages per frame", (r) => String(r.messagesPerFrame ?? "-"), null],
    ["sent / acked", (r) => `${formatCount(r.sent)} / ${formatCount(r.acked)}`, null],
    ["latency p50", (r) => formatMs(r.p50Ms), null],
    ["latency p90", (r) => formatMs(r.p90Ms), null],
    ["latency p99", (r) => formatMs(r.p99Ms), fmtRatio(report.ratio?.p99Ms)],
    ["latency max", (r) => formatMs(r.maxMs), null],
    ["connected", (r) => `${formatCount(r.connected)} / ${formatCount(r.subscribers)}`, null],
    ...(runs.some((r) => r.connectedPerInstance.length > 1)
      ? [[
        "connected per instance",
        (r: RunResult) => r.connectedPerInstance.map(formatCount).join(" + "),
        null,
      ] as [string, (r: RunResult) => string, null]]
      : []),
    ["connect time (all)", (r) => formatMs(r.connectMs), fmtRatio(report.ratio?.connectMs)],
    ["held at the end", (r) => formatCount(r.held), null],
    ["closes by code", (r) => codes(r.closes), null],
    ["errors", (r) => codes(r.errorEvents), null],
    ["server RSS", (r) => formatBytes(r.serverRssBytes), fmtRatio(report.ratio?.serverRssBytes)],
    [
      "server RSS / conn",
      (r) => formatBytes(r.rssPerConnectionBytes),
      fmtRatio(report.ratio?.rssPerConnectionBytes),
    ],
    ["server CPU", (r) => (r.serverCpuPercent === null ? "-" : `${r.serverCpuPercent}%`), null],
    ["server CPU-s / M deliveries", (r) => fmtCost(r.serverCpuSecondsPerMillion), null],
    ...(runs.some((r) => r.redisCpuPercent !== null) ? redisRows() : []),
    [
      "load CPU (this tool)",
      (r) => (r.loadCpuPercent === null ? "-" : `${r.loadCpuPercent}%`),
      null,
    ],
    [
      "other processes' CPU",
      (r) => (r.otherCpuPercent === null ? "-" : `${r.otherCpuPercent}%`),
      null,
    ],
    ["drain", (r) => formatMs(r.drainMs), null],
  ];
  if (runs.some((r) => r.legacy !== null)) rows.push(...groupRows());
  const header = ["", ...runs.map((r) => r.target), report.ratio ? "ratio" : ""];
  const table = [header, ...rows.map(([name, cell, r]) => [name, ...runs.map(cell), r ?? ""])];
  const widths = header.map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const lines = table.map((row) =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ")
      .trimEnd()
  );
  const first = runs[0];
  const pinning = first.serverCpus !== null
    ? `server pinned to CPU ${first.serverCpus}, load generator (this process, ` +
      `${first.loadThreads} worker thread(s)) pinned to CPU ${first.loadCpus ?? "?"} with taskset`
    : `not pinned (${report.notPinned ?? "?"}): ${navigator.hardwareConcurrency} CPUs shared; ` +
      `${first.loadThreads} worker thread(s)`;
  return [
    `parley bench — ${describe(report.settings as BenchOptions)}`,
    `CPUs: ${pinning}`,
    "",
    ...lines,
    ...report.notes.map((n) => `note: ${n}`),
    ...report.warnings.map((w) => `warning: ${w}`),
  ].join("\n");
}

/** The rows of a run on Redis: redis-server's CPU, apart from the instances'. */
function redisRows(): Array<[string, (r: RunResult) => string, null]> {
  return [
    ["redis CPU", (r) => (r.redisCpuPercent === null ? "-" : `${r.redisCpuPercent}%`), null],
    ["redis CPU-s / M deliveries", (r) => fmtCost(r.redisCpuSecondsPerMillion), null],
  ];
}

function fmtCost(n: number | null): string {
  return n === null ? "-" : n.toFixed(2);
}

/** The rows of a run with legacy subscribers: the `parley.v1` ones', then the legacy ones'. */
function groupRows(): Array<[string, (r: RunResult) => string, null]> {
  const rows: Array<[string, (r: RunResult) => string, null]> = [];
  const dash = "-";
  for (const kind of ["v1", "legacy"] as const) {
    const cell = (f: (g: SubscriberGroup) => string) => (r: RunResult): string => {
      const g = r[kind];
      return g ? f(g) : dash;
    };
    rows.push(
      [
        `${kind}: subscribers`,
        cell((g) => `${formatCount(g.connected)} / ${formatCount(g.subscribers)}`),
        null,
      ],
      [`${kind}: delivered msgs/s`, cell((g) => formatCount(g.deliveredPerSec)), null],
      [
        `${kind}: delivered / expected`,
        cell((g) => `${formatCount(g.delivered)} / ${formatCount(g.expected)}`),
        null,
      ],
      [`${kind}: lost`, cell((g) => formatCount(g.lost)), null],
      [`${kind}: messages per frame`, cell((g) => String(g.messagesPerFrame ?? dash)), null],
      [
        `${kind}: latency p50 / p99`,
        cell((g) => `${formatMs(g.p50Ms)} / ${formatMs(g.p99Ms)}`),
        null,
      ],
    );
  }
  rows.push(
    ["legacy: multi-message frames", (r) => String(r.legacy?.multiMessageFrames ?? dash), null],
    ["legacy: bad frames", (r) => String(r.legacy?.badFrames ?? dash), null],
  );
  return rows;
}

function fmtRatio(n: number | null | undefined): string | null {
  return n === null || n === undefined ? null : `${n.toFixed(2)}x`;
}

const USAGE = `usage: deno task bench --scenario fanout|chat|crowd|idle [options]
  --url URL             target a running server (ws://HOST:PORT/chat), no baseline
  --baseline            run the baseline server only
  --parley              run parley only (no baseline, no ratio)
  --duration SECONDS    measured seconds (idle: seconds to hold the connections)
  --warmup SECONDS      seconds of sending before the measurement
  --subscribers N       --senders S   --rate MSG_PER_S   --in-flight K
  --body-bytes B        size of each body (default 100)
  --concurrency C       connections opened at a time (default 200)
  --workers N           parley with workers: N in its config (parley only: implies --parley)
  --redis               two parley instances on a redis-server the tool starts, the senders on
                        the first, the other subscribers split between both (implies --parley;
                        not for idle, --legacy or --auth accounts)
  --load-threads W      the tool's worker threads (default: one per 1,000 subscribers)
  --drain SECONDS       longest wait for the last deliveries (default 10)
  --legacy N            N subscribers (not senders) in parley's legacy dialect, no subprotocol;
                        reported apart from the parley.v1 ones (parley only: the baseline has
                        no legacy dialect and runs all subscribers as parley.v1)
  --auth open|accounts  parley's auth.mode (default open); accounts: the tool makes an admin
                        with the printed setup link, and every connection sends its API token
  --no-pin              do not pin the server and the load to separate CPUs
  --json                print the figures as one JSON object on the last line
  --quiet               no progress lines`;

/** Parses the command line into options; throws with the usage on a bad flag. */
export function parseArgs(args: string[]): BenchOptions & { json: boolean } {
  const value = (i: number): string => {
    if (i + 1 >= args.length) throw new Error(`${args[i]} needs a value\n${USAGE}`);
    return args[i + 1];
  };
  const number = (i: number): number => {
    const n = Number(value(i));
    if (!Number.isFinite(n) || n < 0) throw new Error(`${args[i]} needs a number ≥ 0\n${USAGE}`);
    return n;
  };
  const scenarioAt = args.indexOf("--scenario");
  const name = scenarioAt >= 0 ? value(scenarioAt) : "fanout";
  if (!(name in SCENARIOS)) throw new Error(`unknown scenario ${JSON.stringify(name)}\n${USAGE}`);
  const options: BenchOptions & { json: boolean } = {
    ...SCENARIOS[name as ScenarioName],
    target: "compare",
    bodyBytes: 100,
    connectConcurrency: 200,
    loadThreads: 0,
    drainTimeoutS: 10,
    pin: true,
    progress: true,
    json: false,
  };
  for (let i = 0; i < args.length; i++) {
    switch (args[i]) {
      case "--scenario":
        i++;
        break;
      case "--url":
        options.url = value(i++);
        options.target = "url";
        break;
      case "--baseline":
        options.target = "baseline";
        break;
      case "--parley":
        options.target = "parley";
        break;
      case "--duration":
        options.durationS = number(i++);
        break;
      case "--warmup":
        options.warmupS = number(i++);
        break;
      case "--subscribers":
        options.subscribers = Math.max(1, Math.floor(number(i++)));
        break;
      case "--senders":
        options.senders = Math.floor(number(i++));
        break;
      case "--rate":
        options.rate = number(i++);
        options.mode = "rate";
        break;
      case "--in-flight":
        options.inFlight = Math.max(1, Math.floor(number(i++)));
        options.mode = "window";
        break;
      case "--body-bytes":
        options.bodyBytes = Math.max(40, Math.floor(number(i++)));
        break;
      case "--concurrency":
        options.connectConcurrency = Math.max(1, Math.floor(number(i++)));
        break;
      case "--load-threads":
        options.loadThreads = Math.floor(number(i++));
        break;
      case "--workers":
        options.serverWorkers = Math.max(1, Math.floor(number(i++)));
        break;
      case "--redis":
        options.redis = true;
        break;
      case "--drain":
        options.drainTimeoutS = number(i++);
        break;
      case "--legacy":
        options.legacy = Math.floor(number(i++));
        break;
      case "--auth": {
        const mode = value(i++);
        if (mode !== "open" && mode !== "accounts") {
          throw new Error(`--auth is open or accounts, not ${JSON.stringify(mode)}\n${USAGE}`);
        }
        options.auth = mode;
        break;
      }
      case "--no-pin":
        options.pin = false;
        break;
      case "--json":
        options.json = true;
        break;
      case "--quiet":
        options.progress = false;
        break;
      case "-h":
      case "--help":
        throw new Error(USAGE);
      default:
        throw new Error(`unknown flag ${args[i]}\n${USAGE}`);
    }
  }
  if (options.senders > options.subscribers) options.senders = options.subscribers;
  const legacy = options.legacy ?? 0;
  const receivers = options.subscribers - (options.mode === "none" ? 0 : options.senders);
  if (legacy > receivers) {
    throw new Error(`--legacy ${legacy}: only ${receivers} subscribers are not senders\n${USAGE}`);
  }
  if (legacy > 0 && options.target === "baseline") {
    throw new Error(`--legacy is for parley only: the baseline has no legacy dialect\n${USAGE}`);
  }
  const shaped = options.serverWorkers !== undefined || options.redis;
  if (shaped && options.target === "compare") options.target = "parley";
  const conflict = authConflict(options) ?? shapeConflict(options);
  if (conflict !== null) throw new Error(`${conflict}\n${USAGE}`);
  return options;
}

if (import.meta.main) {
  let options: BenchOptions & { json: boolean };
  try {
    options = parseArgs(Deno.args);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  try {
    const { json, ...rest } = options;
    const report = await runBench(rest);
    console.log(formatReport(report));
    if (json) console.log(JSON.stringify(report));
  } catch (error) {
    console.error(`bench failed: ${(error as Error).stack ?? error}`);
    Deno.exit(1);
  }
}
