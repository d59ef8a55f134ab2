/**
 * `deno task bench:history`: how fast parley's durable history is.
 *
 * 1. **Acked messages/s.** parley runs as a subprocess with its limits lifted; P WebSocket
 *    publishers each keep K messages with a `clientId` unacked, sending the next as each `ack`
 *    arrives (an ack means the message is committed with `synchronous = FULL`). After a warm-up,
 *    acks are counted for a duration; ack latency is ack time minus send time.
 * 2. **A room of 1,000,000 messages.** The file is built in-process with `HistoryStore` (the real
 *    schema and code path, many appends per transaction); parley is started on it several times:
 *    start-up is the time from spawn to the URL line and from spawn to `/healthz` answering 200.
 *    Then `/history?room=R&limit=50` latency over sequential keep-alive requests: no cursor,
 *    random `before`, random `after`.
 *
 * ```sh
 * deno task bench:history [--publishers 100] [--in-flight 8] [--rooms 100] [--warmup 2]
 *   [--duration 10] [--messages 1000000] [--requests 2000] [--startups 5]
 *   [--only throughput|room] [--no-pin] [--quiet] [--json]
 * ```
 *
 * See `bench/README.md`, "History", for the figures.
 *
 * @module
 */

import { HistoryStore } from "../chat/history.ts";
import { SearchIndex } from "../chat/search.ts";
import {
  pinning,
  repoTempDir,
  type ServerProcess,
  startCommand,
  type StartOptions,
  startServer,
} from "./server_process.ts";
import {
  cpuPercent,
  formatBytes,
  formatCount,
  formatMs,
  Histogram,
  initClockTicks,
  otherCpuPercent,
  sampleMachine,
  sampleProc,
} from "./stats.ts";
import { WsClient } from "./ws_client.ts";

/** What to run, from the command line. */
export interface HistoryBenchOptions {
  publishers: number;
  inFlight: number;
  /** Publishers are spread over this many rooms (`publishers` = one room each). */
  rooms: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Messages in the large room. */
  messages: number;
  /** Requests per `/history` latency series. */
  requests: number;
  /** How many times parley is started on the large file. */
  startups: number;
  only: "throughput" | "room" | null;
  pin: boolean;
  quiet: boolean;
  json: boolean;
}

/** Latency figures in milliseconds. */
export interface LatencyFigures {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

/** Part 1: publishers against a fresh store. */
export interface ThroughputResult {
  publishers: number;
  rooms: number;
  inFlight: number;
  measuredSeconds: number;
  acked: number;
  ackedPerSecond: number;
  ackLatency: LatencyFigures;
  errors: number;
  serverCpuPercent: number | null;
  serverRssBytes: number | null;
  /** This tool's CPU, in percent of one core. */
  toolCpuPercent: number | null;
  /** CPU used by everything but the server and this tool, in percent of one core. */
  otherCpuPercent: number | null;
}

/** Start-up times over several runs, in milliseconds from spawn. */
export interface StartupFigures {
  runs: number;
  /** Until the `http://…` line on stdout. */
  urlMedianMs: number;
  urlMaxMs: number;
  /** Until `GET /healthz` (for the floor `GET /`) answered 200. */
  healthMedianMs: number;
  healthMaxMs: number;
}

/** Part 2: the large room. */
export interface LargeRoomResult {
  messages: number;
  buildSeconds: number;
  fileBytes: number;
  /** `deno run` of a bare `Deno.serve` that prints its URL: the floor under any start-up. */
  denoFloor: StartupFigures;
  startupEmpty: StartupFigures;
  startupLarge: StartupFigures;
  newest: LatencyFigures;
  before: LatencyFigures;
  after: LatencyFigures;
  otherCpuPercent: number | null;
}

/** Everything measured, as printed with `--json`. */
export interface HistoryBenchReport {
  options: HistoryBenchOptions;
  pinned: string;
  loadAverage: string;
  throughput: ThroughputResult | null;
  largeRoom: LargeRoomResult | null;
}

const BODY_BYTES = 100;
const ROOM = "big";

function log(options: HistoryBenchOptions, text: string): void {
  if (!options.quiet) console.error(text);
}

function figures(histogram: Histogram): LatencyFigures {
  return {
    count: histogram.count,
    p50Ms: histogram.quantile(0.5) / 1000,
    p99Ms: histogram.quantile(0.99) / 1000,
    maxMs: histogram.max / 1000,
    meanMs: histogram.count === 0 ? 0 : histogram.sum / histogram.count / 1000,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

/** A free TCP port on 127.0.0.1 (closed again at once; the server binds it next). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A started server subprocess and when it answered. */
interface Launched extends ServerProcess {
  /** Milliseconds from spawn to the polled path answering 200 (`/healthz`; `/` for the floor). */
  healthMs: number;
}

/**
 * Starts a server with `start` on `port` (the URL line is `start`'s to wait for) and, from its
 * spawn on, polls `healthPath` on that port until it answers 200, within `timeoutMs` of the spawn.
 */
async function launch(
  start: (options: StartOptions) => Promise<ServerProcess>,
  port: number,
  healthPath: string,
  timeoutMs = 30_000,
): Promise<Launched> {
  const target = `http://127.0.0.1:${port}${healthPath}`;
  const watch: { health?: Promise<number> } = {};
  let server: ServerProcess;
  try {
    server = await start({
      port,
      env: { NO_COLOR: "1" },
      timeoutMs,
      onSpawn: (spawnedAt, exited) => {
        watch.health = pollHealth(target, spawnedAt, exited, timeoutMs);
        watch.health.catch(() => {}); // awaited below; not unhandled if start fails first
      },
    });
  } catch (error) {
    await watch.health?.catch(() => {});
    throw error;
  }
  try {
    if (new URL(server.url).port !== String(port)) {
      throw new Error(`the server is not on port ${port}`);
    }
    if (!watch.health) throw new Error("`start` did not report the spawn");
    return { ...server, healthMs: await watch.health };
  } catch (error) {
    await server.stop();
    await watch.health?.catch(() => {});
    throw new Error(`${(error as Error).message}\n--- server output ---\n${server.output()}`);
  }
}

/**
 * Polls `target` until it answers 200 and returns the milliseconds since `spawnedAt`; throws when
 * `exited` aborts or after `timeoutMs` from `spawnedAt`.
 */
async function pollHealth(
  target: string,
  spawnedAt: number,
  exited: AbortSignal,
  timeoutMs: number,
): Promise<number> {
  const deadline = spawnedAt + timeoutMs;
  // Poll: the port is refused until the server listens. Each refusal costs well under 1 ms.
  for (let attempt = 0;; attempt++) {
    if (exited.aborted) throw new Error("the server exited during start-up");
    if (performance.now() > deadline || attempt > 100_000) {
      throw new Error(`${target} did not answer within ${timeoutMs} ms`);
    }
    try {
      // A fetch to a port someone else took meanwhile could wait forever: abort it when ours exits.
      const signal = AbortSignal.any([exited, AbortSignal.timeout(2000)]);
      const response = await fetch(target, { signal });
      await response.body?.cancel();
      if (response.status === 200) return performance.now() - spawnedAt;
    } catch {
      // Refused: not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Starts parley (pinned to `cpus`) on a free port with its history at `historyPath`, rate limits
 * lifted to 1,000,000 messages/s, and waits until `/healthz` answers.
 */
function launchParley(
  historyPath: string,
  maxMessagesPerRoom: number,
  cpus: string | null,
): Promise<Launched> {
  const config = {
    historyPath,
    maxMessagesPerRoom,
    messagesPerSecond: 1_000_000,
    burst: 1_000_000,
  };
  return launch(
    (start) => startServer("parley", { ...start, cpus, config }),
    freePort(),
    "/healthz",
  );
}

/** One WebSocket publisher keeping `inFlight` messages unacked. */
class Publisher {
  client: WsClient | null = null;
  sending = false;
  outstanding = 0;
  errors = 0;
  #seq = 0;
  readonly #sentAt = new Map<number, number>();
  readonly #padding: string;

  constructor(
    readonly index: number,
    readonly room: string,
    private readonly onAck: (sentAt: number, now: number) => void,
    private readonly onIdle: () => void,
  ) {
    this.#padding = "x".repeat(BODY_BYTES);
  }

  async connect(base: string): Promise<void> {
    const url = `${base}chat?room=${this.room}&userName=p${this.index}`.replace(/^http/, "ws");
    let welcomed: () => void = () => {};
    const welcome = new Promise<void>((resolve) => welcomed = resolve);
    this.client = await WsClient.connect(url, "parley.v1", {
      text: (data) => {
        for (const line of data.split("\n")) {
          if (line.startsWith('{"type":"ack"')) this.#ack(line);
          else if (line.startsWith('{"type":"welcome"')) welcomed();
          else if (line.startsWith('{"type":"error"')) this.errors++;
        }
      },
      closed: () => {
        this.sending = false;
        welcomed();
      },
    }, 10_000);
    await welcome;
  }

  start(inFlight: number): void {
    this.sending = true;
    for (let i = 0; i < inFlight; i++) this.#send();
  }

  #send(): void {
    const seq = ++this.#seq;
    const clientId = `p${this.index}-${seq}`;
    const body = `${clientId} ${this.#padding}`.slice(0, BODY_BYTES);
    this.#sentAt.set(seq, performance.now());
    this.outstanding++;
    this.client?.send(`{"type":"message","body":"${body}","clientId":"${clientId}"}`);
  }

  #ack(line: string): void {
    const now = performance.now();
    const { clientId } = JSON.parse(line) as { clientId: string };
    const seq = Number(clientId.slice(clientId.indexOf("-") + 1));
    const sentAt = this.#sentAt.get(seq);
    if (sentAt === undefined) return;
    this.#sentAt.delete(seq);
    this.outstanding--;
    this.onAck(sentAt, now);
    if (this.sending) this.#send();
    else if (this.outstanding === 0) this.onIdle();
  }
}

/** Part 1: publishers sending as fast as acks come back into a fresh store. */
async function measureThroughput(
  options: HistoryBenchOptions,
  serverCpus: string | null,
): Promise<ThroughputResult> {
  const dir = await repoTempDir("parley-history-bench-");
  let server: Launched | null = null;
  const publishers: Publisher[] = [];
  try {
    server = await launchParley(`${dir}/history.db`, 10_000, serverCpus);
    let measuring = false;
    let measureStart = Infinity;
    let acked = 0;
    let ackedTotal = 0;
    const latency = new Histogram();
    let idle = 0;
    let onAllIdle: () => void = () => {};
    const allIdle = new Promise<void>((resolve) => onAllIdle = resolve);
    for (let i = 0; i < options.publishers; i++) {
      publishers.push(
        new Publisher(i, `bench-${i % options.rooms}`, (sentAt, now) => {
          ackedTotal++;
          if (measuring) {
            acked++;
            if (sentAt >= measureStart) latency.record((now - sentAt) * 1000);
          }
        }, () => {
          if (++idle === options.publishers) onAllIdle();
        }),
      );
    }
    for (let i = 0; i < publishers.length; i += 20) {
      await Promise.all(publishers.slice(i, i + 20).map((p) => p.connect(server!.url)));
    }
    log(options, `throughput: ${publishers.length} publishers connected; warming up`);
    for (const publisher of publishers) publisher.start(options.inFlight);

    const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await tick(options.warmupSeconds * 1000);
    const machineFrom = await sampleMachine();
    const serverFrom = await sampleProc(server.pid);
    const selfFrom = await sampleProc("self");
    measuring = true;
    measureStart = performance.now();
    for (let s = 0; s < options.durationSeconds; s++) {
      const before = acked;
      await tick(1000);
      log(options, `  ${s + 1} s: ${formatCount(acked - before)} acks/s`);
    }
    measuring = false;
    const measuredSeconds = (performance.now() - measureStart) / 1000;
    const [machineTo, serverTo, selfTo] = await Promise.all([
      sampleMachine(),
      sampleProc(server.pid),
      sampleProc("self"),
    ]);
    for (const publisher of publishers) publisher.sending = false;
    // Publishers with nothing outstanding never call onIdle: count them now.
    for (const publisher of publishers) if (publisher.outstanding === 0) idle++;
    if (idle >= publishers.length) onAllIdle();
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      allIdle,
      new Promise((resolve) => drainTimer = setTimeout(resolve, 10_000)),
    ]);
    clearTimeout(drainTimer);
    return {
      publishers: options.publishers,
      rooms: options.rooms,
      inFlight: options.inFlight,
      measuredSeconds,
      acked,
      ackedPerSecond: acked / measuredSeconds,
      ackLatency: figures(latency),
      errors: publishers.reduce((n, p) => n + p.errors, 0),
      serverCpuPercent: cpuPercent(serverFrom, serverTo),
      serverRssBytes: serverTo?.rssBytes ?? null,
      toolCpuPercent: cpuPercent(selfFrom, selfTo),
      otherCpuPercent: otherCpuPercent([machineFrom, machineTo], [
        [serverFrom, serverTo],
        [selfFrom, selfTo],
      ]),
    };
  } finally {
    for (const publisher of publishers) publisher.client?.close();
    await server?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Builds a room of `count` messages with `HistoryStore`, `batch` appends per transaction, and
 * their search index, as a running parley leaves it (one started on a file without the index
 * would spend its first minute indexing, and the latencies measured would be of that).
 */
async function buildLargeRoom(path: string, count: number, batch = 20_000): Promise<void> {
  const store = HistoryStore.open({ path, maxMessagesPerRoom: count });
  const search = SearchIndex.open(store, (message) => console.error(message));
  try {
    const padding = "x".repeat(BODY_BYTES);
    for (let done = 0; done < count;) {
      const appends = [];
      for (let i = 0; i < batch && done < count; i++, done++) {
        const body = `message ${done + 1} ${padding}`.slice(0, BODY_BYTES);
        appends.push(store.append({ room: ROOM, userName: `user${done % 100}`, body }));
      }
      await Promise.all(appends);
    }
    search.catchUp();
  } finally {
    search.close();
    await store.close();
  }
}

/** Starts a server `runs` times and reports the spread of its start-up times. */
async function startups(
  runs: number,
  start: () => Promise<Launched>,
): Promise<StartupFigures> {
  const url: number[] = [];
  const health: number[] = [];
  for (let i = 0; i < runs; i++) {
    const server = await start();
    url.push(server.urlMs);
    health.push(server.healthMs);
    await server.stop();
  }
  return {
    runs,
    urlMedianMs: median(url),
    urlMaxMs: Math.max(...url),
    healthMedianMs: median(health),
    healthMaxMs: Math.max(...health),
  };
}

/** `requests` sequential keep-alive GETs of a path from `pathOf()` each, after a warm-up. */
async function latencySeries(
  base: string,
  requests: number,
  pathOf: () => string,
): Promise<LatencyFigures> {
  const histogram = new Histogram();
  const warmup = Math.min(200, requests);
  for (let i = 0; i < warmup + requests; i++) {
    const path = pathOf();
    const started = performance.now();
    const response = await fetch(new URL(path, base), { signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    const elapsed = performance.now() - started;
    if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${text}`);
    if (i >= warmup) histogram.record(elapsed * 1000);
  }
  return figures(histogram);
}

/** Part 2: start-up on, and `/history` latency from, a room of `options.messages` messages. */
async function measureLargeRoom(
  options: HistoryBenchOptions,
  serverCpus: string | null,
): Promise<LargeRoomResult> {
  const dir = await repoTempDir("parley-history-bench-");
  try {
    const floorScript = `${dir}/floor.ts`;
    await Deno.writeTextFile(
      floorScript,
      "Deno.serve({ hostname: '127.0.0.1', port: Number(Deno.args[0]), onListen: " +
        "({ port }) => console.log(`http://127.0.0.1:${port}/`) }, () => new Response('ok'));\n",
    );
    log(options, "large room: deno floor start-up");
    const denoFloor = await startups(options.startups, () => {
      const port = freePort();
      const args = ["run", "--allow-net", floorScript, String(port)];
      return launch(
        (start) => startCommand("the floor", args, { ...start, cpus: serverCpus }),
        port,
        "/",
      );
    });
    log(options, "large room: start-up on an empty file");
    const emptyPath = `${dir}/empty.db`;
    const startupEmpty = await startups(
      options.startups,
      () => launchParley(emptyPath, 10_000, serverCpus),
    );

    const path = `${dir}/large.db`;
    log(options, `large room: building ${formatCount(options.messages)} messages`);
    const buildStart = performance.now();
    await buildLargeRoom(path, options.messages);
    const buildSeconds = (performance.now() - buildStart) / 1000;
    const fileBytes = (await Deno.stat(path)).size;
    log(options, `  built in ${buildSeconds.toFixed(1)} s, ${formatBytes(fileBytes)}`);

    const startLarge = () => launchParley(path, options.messages, serverCpus);
    log(options, "large room: start-up on the large file");
    const startupLarge = await startups(options.startups, startLarge);

    log(options, `large room: ${formatCount(options.requests)} requests per series`);
    const server = await startLarge();
    try {
      const first = await (await fetch(new URL(`/history?room=${ROOM}&limit=50`, server.url), {
        signal: AbortSignal.timeout(10_000),
      })).json() as { messages: { id: number }[]; hasMore: boolean };
      const lastId = first.messages.at(-1)?.id ?? 0;
      if (first.messages.length !== 50 || !first.hasMore || lastId !== options.messages) {
        throw new Error(
          `/history answered ${first.messages.length} messages up to id ${lastId}, hasMore ` +
            `${first.hasMore}; expected 50 up to ${options.messages}`,
        );
      }
      const random = (n: number) => 1 + Math.floor(Math.random() * n);
      const machineFrom = await sampleMachine();
      const serverFrom = await sampleProc(server.pid);
      const selfFrom = await sampleProc("self");
      const newest = await latencySeries(
        server.url,
        options.requests,
        () => `/history?room=${ROOM}&limit=50`,
      );
      const before = await latencySeries(
        server.url,
        options.requests,
        () => `/history?room=${ROOM}&limit=50&before=${1 + random(lastId)}`,
      );
      const after = await latencySeries(
        server.url,
        options.requests,
        () => `/history?room=${ROOM}&limit=50&after=${random(lastId) - 1}`,
      );
      const [machineTo, serverTo, selfTo] = await Promise.all([
        sampleMachine(),
        sampleProc(server.pid),
        sampleProc("self"),
      ]);
      return {
        messages: options.messages,
        buildSeconds,
        fileBytes,
        denoFloor,
        startupEmpty,
        startupLarge,
        newest,
        before,
        after,
        otherCpuPercent: otherCpuPercent([machineFrom, machineTo], [
          [serverFrom, serverTo],
          [selfFrom, selfTo],
        ]),
      };
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs the benchmark: the parts `options.only` selects, with the server pinned if possible. */
export async function runHistoryBench(options: HistoryBenchOptions): Promise<HistoryBenchReport> {
  await initClockTicks();
  const cores = navigator.hardwareConcurrency;
  let serverCpus: string | null = null;
  let pinned = `not pinned (--no-pin; ${cores} CPUs shared)`;
  if (options.pin) {
    const pin = await pinning();
    if ("reason" in pin) {
      pinned = `not pinned (${pin.reason}; ${cores} CPUs shared)`;
    } else {
      serverCpus = pin.serverCpus;
      pinned = `server on CPU ${pin.serverCpus}, this tool on CPU ${pin.loadCpus}`;
    }
  }
  const loadAverage = Deno.loadavg().map((n) => n.toFixed(2)).join(" ");
  const throughput = options.only === "room" ? null : await measureThroughput(options, serverCpus);
  const largeRoom = options.only === "throughput"
    ? null
    : await measureLargeRoom(options, serverCpus);
  return { options, pinned, loadAverage, throughput, largeRoom };
}

function row(cells: string[]): string {
  const widths = [34, 26, 12, 5];
  return cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(" ").trimEnd();
}

function met(ok: boolean): string {
  return ok ? "yes" : "NO";
}

/** The report as a table: figure, value, target, met. */
export function formatHistoryReport(report: HistoryBenchReport): string {
  const lines = [
    `parley history benchmark — ${report.pinned}; load average at start ${report.loadAverage}`,
    row(["figure", "value", "target", "met"]),
    row(["-".repeat(34), "-".repeat(26), "-".repeat(12), "---"]),
  ];
  const { throughput: t, largeRoom: r } = report;
  const warn = (other: number | null) =>
    other !== null && other > 15
      ? [
        `warning: other processes used ${other.toFixed(0)}% of a CPU meanwhile; figures unreliable`,
      ]
      : [];
  if (t) {
    lines.push(
      row([
        "acked msgs/s into the store",
        formatCount(t.ackedPerSecond),
        ">= 20,000",
        met(t.ackedPerSecond >= 20_000),
      ]),
      row(["  publishers / rooms / in flight", `${t.publishers} / ${t.rooms} / ${t.inFlight}`]),
      row(["  ack latency p50 / p99 / max", latencyText(t.ackLatency)]),
      row(["  acked in window / errors", `${formatCount(t.acked)} / ${t.errors}`]),
      row([
        "  server CPU / RSS",
        `${pct(t.serverCpuPercent)} / ${formatBytes(t.serverRssBytes)}`,
      ]),
      row(["  this tool's CPU", pct(t.toolCpuPercent)]),
      row(["  other processes' CPU", pct(t.otherCpuPercent)]),
      ...warn(t.otherCpuPercent),
    );
  }
  if (r) {
    lines.push(
      row([
        `room of ${formatCount(r.messages)}: file, build`,
        `${formatBytes(r.fileBytes)}, ${r.buildSeconds.toFixed(1)} s`,
      ]),
      row([
        "start-up to /healthz (median/max)",
        `${startupText(r.startupLarge, "health")}`,
        "< 1 s",
        met(r.startupLarge.healthMaxMs < 1000),
      ]),
      row(["start-up to URL line (median/max)", startupText(r.startupLarge, "url")]),
      row(["  same, empty file: /healthz", startupText(r.startupEmpty, "health")]),
      row(["  bare Deno.serve: URL line", startupText(r.denoFloor, "url")]),
      row([
        "/history limit=50 p50 / p99 / max",
        latencyText(r.newest),
        "p99 < 5 ms",
        met(r.newest.p99Ms < 5),
      ]),
      row([
        "  random before= p50 / p99 / max",
        latencyText(r.before),
        "p99 < 5 ms",
        met(r.before.p99Ms < 5),
      ]),
      row([
        "  random after= p50 / p99 / max",
        latencyText(r.after),
        "p99 < 5 ms",
        met(r.after.p99Ms < 5),
      ]),
      row(["  requests per series", formatCount(r.newest.count)]),
      row(["  other processes' CPU", pct(r.otherCpuPercent)]),
      ...warn(r.otherCpuPercent),
    );
  }
  return lines.join("\n");
}

function pct(n: number | null): string {
  return n === null ? "-" : `${n.toFixed(0)}%`;
}

function latencyText(l: LatencyFigures): string {
  return `${formatMs(l.p50Ms)} / ${formatMs(l.p99Ms)} / ${formatMs(l.maxMs)}`;
}

function startupText(s: StartupFigures, which: "url" | "health"): string {
  return which === "url"
    ? `${formatMs(s.urlMedianMs)} / ${formatMs(s.urlMaxMs)}`
    : `${formatMs(s.healthMedianMs)} / ${formatMs(s.healthMaxMs)}`;
}

const USAGE = `usage: deno task bench:history [options]
  --publishers N   WebSocket publishers (default 100)
  --in-flight K    unacked messages per publisher (default 8)
  --rooms R        rooms the publishers are spread over (default: one room each)
  --warmup S       seconds before measuring (default 2)
  --duration S     seconds measured (default 10)
  --messages M     messages in the large room (default 1000000)
  --requests N     requests per /history series (default 2000)
  --startups N     start-ups measured per file (default 5)
  --only throughput|room   run one part
  --no-pin         do not pin the server and the tool to separate CPUs
  --quiet          no progress on stderr
  --json           print the report as one JSON object on the last line`;

/** Parses the command line; throws with the usage on a bad flag. */
export function parseHistoryArgs(args: string[]): HistoryBenchOptions {
  const options: HistoryBenchOptions = {
    publishers: 100,
    inFlight: 8,
    rooms: 0,
    warmupSeconds: 2,
    durationSeconds: 10,
    messages: 1_000_000,
    requests: 2000,
    startups: 5,
    only: null,
    pin: true,
    quiet: false,
    json: false,
  };
  const numbers: Record<string, keyof HistoryBenchOptions> = {
    "--publishers": "publishers",
    "--in-flight": "inFlight",
    "--rooms": "rooms",
    "--warmup": "warmupSeconds",
    "--duration": "durationSeconds",
    "--messages": "messages",
    "--requests": "requests",
    "--startups": "startups",
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const key = numbers[flag];
    if (key !== undefined) {
      const value = Number(args[++i]);
      if (!Number.isSafeInteger(value) || value < (key === "warmupSeconds" ? 0 : 1)) {
        throw new Error(`${flag} needs a whole number, not "${args[i]}"\n${USAGE}`);
      }
      (options[key] as number) = value;
    } else if (flag === "--only") {
      const value = args[++i];
      if (value !== "throughput" && value !== "room") {
        throw new Error(`--only takes throughput or room, not "${value}"\n${USAGE}`);
      }
      options.only = value;
    } else if (flag === "--no-pin") options.pin = false;
    else if (flag === "--quiet") options.quiet = true;
    else if (flag === "--json") options.json = true;
    else throw new Error(`unknown argument "${flag}"\n${USAGE}`);
  }
  if (options.rooms === 0) options.rooms = options.publishers;
  return options;
}

if (import.meta.main) {
  let options: HistoryBenchOptions;
  try {
    options = parseHistoryArgs(Deno.args);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  try {
    const report = await runHistoryBench(options);
    console.log(formatHistoryReport(report));
    if (options.json) console.log(JSON.stringify(report));
  } catch (error) {
    console.error(`bench:history failed: ${(error as Error).stack ?? error}`);
    Deno.exit(1);
  }
}
