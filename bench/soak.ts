/**
 * `deno task soak`: parley under load for minutes, to see whether it holds steady. It starts parley
 * (pinned to CPU 0 and this tool to the others, as the bench does, when it can) with the bench's
 * lifted limits but parley's own 1 MiB send buffer, and for `--minutes` runs at once:
 *
 * - the `chat` scenario's load, with the bench's load workers: 1,000 subscribers in one room, 10
 *   of them sending 20 messages/s each (the bench measured the tool at 80-98% of one CPU on that
 *   alone: the output warns when it had too little CPU to be trusted);
 * - a churn of clients (`--churn`, 20/s) that join the room, stay `--stay` seconds (3) after
 *   their welcome, and leave;
 * - `--slow` slow readers (3) that stop reading once connected. The server drops each when its
 *   send buffer is full (1013; at the default load after a minute or two, the kernel's buffers
 *   holding some megabytes first). Each drop `parley_slow_consumer_drops_total` counts closes
 *   the longest-stalled reader (they all get the same traffic, so it is the one that filled first;
 *   a dropped client that never reads keeps its server socket until it closes) and opens another.
 *
 * Every `--sample` seconds (10) it prints a row: the server's RSS, its open file descriptors
 * (`/proc/<pid>/fd`) and this tool's own, `parley_event_loop_lag_seconds` (the longest lag over
 * the 10 s before), its CPU since the last row, `parley_connections`, the steady subscribers'
 * deliveries and what they are still owed (in flight, or lost), the churn clients welcomed and
 * the slow readers dropped. Then the totals after a drain (the loss is exact there), and the
 * verdict: PASS if RSS and descriptors, the median of the last minute's samples, are both within
 * 10% of the median of the first minute after the warm-up, the first 20% of the run (4 minutes of
 * 20): one step or spike cannot decide it (a run once stepped 15% just after the warm-up and then
 * moved 1% in 11 minutes). A warning says if the tool's own descriptors grew. It writes RSS,
 * descriptors and lag over time
 * as an SVG plot (`--svg`, default `test-output/soak.svg`), and exits 0 on PASS, 1 on FAIL.
 *
 * ```sh
 * deno task soak --minutes 20
 * deno task soak --minutes 2 --subscribers 200 --svg test-output/short.svg
 * ```
 */

import { defaultConfig } from "../chat/config.ts";
import { chatUrl, progressOf, SCENARIOS } from "./bench.ts";
import {
  type Pinned,
  pinning,
  REPO_ROOT,
  type ServerProcess,
  startServer,
} from "./server_process.ts";
import {
  cpuPercent,
  formatBytes,
  formatCount,
  formatMs,
  initClockTicks,
  type MachineSample,
  openFds,
  otherCpuPercent,
  type ProcSample,
  sampleMachine,
  sampleProc,
} from "./stats.ts";
import { stackedLineChart } from "./svg.ts";
import { Churn, SlowReaders, SteadyLoad, type SteadyResult } from "./soak_load.ts";

/** What a soak runs; {@link parseSoakArgs} gives the defaults. */
export interface SoakOptions {
  /** How long the load runs. */
  minutes: number;
  /** The steady load, the `chat` scenario's by default: subscribers, senders among them. */
  subscribers: number;
  senders: number;
  /** Messages per second per sender. */
  rate: number;
  bodyBytes: number;
  /** Churn clients opened per second; each stays `churnStayS` seconds after its welcome. */
  churnPerSecond: number;
  churnStayS: number;
  /** Slow readers held at once; each stops reading as soon as it is connected. */
  slowReaders: number;
  /** Seconds between samples. */
  sampleS: number;
  /** parley's `limits.sendBufferBytes`; its default, so slow readers are dropped as in use. */
  sendBufferBytes: number;
  /** Where the SVG plot is written. */
  svgPath: string;
  /** Pin the server to CPU 0 and this process to the others, as the bench does. */
  pin: boolean;
  /** Progress lines on stderr; the table goes to stdout either way. */
  progress: boolean;
}

/** What is measured every `sampleS` seconds. */
export interface SoakSample {
  /** Seconds since the load started. */
  atS: number;
  /** The server's RSS, and its open descriptors (`/proc/<pid>/fd`); null without `/proc`. */
  rssBytes: number | null;
  fds: number | null;
  /** This tool's own open descriptors: its clients' sockets, which must not pile up either. */
  toolFds: number | null;
  /** `parley_event_loop_lag_seconds`: the longest lag over the last 10 s. */
  lagSeconds: number | null;
  /** Server CPU since the previous sample, in percent of one core. */
  cpuPercent: number | null;
  /** `parley_connections`. */
  connections: number | null;
  /** Deliveries to the steady subscribers so far. */
  delivered: number;
  /** Sent x steady subscribers - delivered: in flight, or lost (the end's figure is the loss). */
  undelivered: number;
  /** Churn clients welcomed so far. */
  churned: number;
  /** Slow readers the server has dropped so far. */
  slowDropped: number;
}

/**
 * How far a figure moved from the end of the warm-up to the end: the median of the samples in
 * the {@link windowOf} after the warm-up, and that of the samples in the window at the end.
 */
export interface Drift {
  afterWarmup: number;
  end: number;
  percent: number;
}

/** Whether RSS and descriptors held steady: both within {@link TOLERANCE} after the warm-up. */
export interface Verdict {
  pass: boolean;
  rss: Drift | null;
  fds: Drift | null;
  /** `verdict: PASS — …` or `verdict: FAIL — …`, saying why. */
  line: string;
}

/** Everything a soak measured. */
export interface SoakReport {
  settings: SoakOptions;
  /** The first 20% of the run, in seconds. */
  warmupS: number;
  samples: SoakSample[];
  verdict: Verdict;
  steady: SteadyResult;
  churn: { opened: number; joined: number; failed: number; closes: Record<string, number> };
  slow: { opened: number; dropped: number; failed: number };
  /** From `/metrics` at the end: `parley_disconnects_total` by close code. */
  disconnects: Record<string, number>;
  maxLagSeconds: number | null;
  serverCpus: string | null;
  loadCpus: string | null;
  /** Things that make the figures doubtful, e.g. the tool saturating its CPU. */
  warnings: string[];
}

/** The share of the run that is warm-up: the verdict compares the end with the minute after it. */
export const WARMUP_FRACTION = 0.2;
/** The longest window whose median the verdict takes, after the warm-up and at the end. */
export const WINDOW_S = 60;
/** How far RSS and descriptors may move after the warm-up for the verdict to pass. */
export const TOLERANCE = 0.1;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const epochUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

function log(options: SoakOptions, line: string): void {
  if (options.progress) console.error(line);
}

/** The samples of a `/metrics` text by name and labels; empty if it cannot be fetched. */
async function scrape(base: string): Promise<Map<string, number>> {
  const samples = new Map<string, number>();
  try {
    const response = await fetch(new URL("/metrics", base), { signal: AbortSignal.timeout(5000) });
    for (const line of (await response.text()).split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const space = line.lastIndexOf(" ");
      samples.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
  } catch {
    // The sample says "-" for what it could not read.
  }
  return samples;
}

/** `parley_connections` over every dialect and transport; null if the scrape failed. */
function connectionsOf(samples: Map<string, number>): number | null {
  if (samples.size === 0) return null;
  let open = 0;
  for (const [name, n] of samples) if (name.startsWith("parley_connections{")) open += n;
  return open;
}

/** What the verdict and the warnings need beside the samples: CPU readings at each sample. */
interface CpuReading {
  server: ProcSample | null;
  self: ProcSample | null;
  machine: MachineSample | null;
}

/** Takes the samples: the server's process, its `/metrics`, and the load's counts. */
class Sampler {
  readonly cpu: CpuReading[] = [];
  disconnects: Record<string, number> = {};

  constructor(
    readonly server: ServerProcess,
    readonly steady: SteadyLoad,
    readonly churn: Churn,
    readonly slow: SlowReaders,
  ) {}

  async take(atS: number): Promise<SoakSample> {
    const [server, self, machine, fds, toolFds, metrics, p] = await Promise.all([
      sampleProc(this.server.pid),
      sampleProc("self"),
      sampleMachine(),
      openFds(this.server.pid),
      openFds(Deno.pid),
      scrape(this.server.url),
      progressOf(this.steady.workers),
    ]);
    const previous = this.cpu.at(-1)?.server ?? null;
    this.cpu.push({ server, self, machine });
    this.disconnects = {};
    for (const [name, n] of metrics) {
      const code = /^parley_disconnects_total\{code="(\d+)"\}$/.exec(name)?.[1];
      if (code) this.disconnects[code] = n;
    }
    // The steady subscribers and the churn clients read everything: the server drops only the
    // slow readers, unless the tool falls behind (its closes then show at the end).
    const drops = metrics.get("parley_slow_consumer_drops_total");
    const churnDrops = this.churn.closes["1013"] ?? 0;
    return {
      atS: Math.round(atS * 10) / 10,
      rssBytes: server?.rssBytes ?? null,
      fds,
      toolFds,
      lagSeconds: metrics.get("parley_event_loop_lag_seconds") ?? null,
      cpuPercent: round1(cpuPercent(previous, server)),
      connections: connectionsOf(metrics),
      delivered: p.delivered,
      undelivered: p.sent * this.steady.connected - p.delivered,
      churned: this.churn.joined,
      slowDropped: drops === undefined ? this.slow.dropped : Math.max(0, drops - churnDrops),
    };
  }
}

function round1(n: number | null): number | null {
  return n === null ? null : Math.round(n * 10) / 10;
}

/**
 * The window the verdict takes a median over: {@link WINDOW_S}, or a third of the time after the
 * warm-up if that is shorter, so that the two windows never overlap.
 */
export function windowOf(warmupS: number, endS: number): number {
  return Math.min(WINDOW_S, (endS - warmupS) / 3);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * How far `pick` moved: the median over the window after the warm-up against the median over the
 * window at the end (one step or spike then cannot decide the verdict); null without figures.
 */
export function driftOf(
  samples: SoakSample[],
  warmupS: number,
  pick: (s: SoakSample) => number | null,
): Drift | null {
  const known = samples.filter((s) => pick(s) !== null);
  const endS = known.at(-1)?.atS ?? 0;
  const window = windowOf(warmupS, endS);
  if (!(window > 0)) return null;
  const values = (from: number, to: number): number[] =>
    known.filter((s) => s.atS >= from && s.atS <= to).map((s) => pick(s)!);
  const first = values(warmupS, warmupS + window);
  const last = values(endS - window, endS);
  if (first.length === 0 || last.length === 0) return null;
  const a = median(first);
  const e = median(last);
  if (!(a > 0)) return null;
  return { afterWarmup: a, end: e, percent: Math.round(((e - a) / a) * 1000) / 10 };
}

/** The verdict on RSS and descriptors: the end against the time after the warm-up ({@link driftOf}). */
export function verdictOf(samples: SoakSample[], warmupS: number): Verdict {
  const measured = samples.filter((s) => s.rssBytes !== null && s.fds !== null);
  const rss = driftOf(measured, warmupS, (s) => s.rssBytes);
  const fds = driftOf(measured, warmupS, (s) => s.fds);
  if (rss === null || fds === null) {
    const line = "verdict: FAIL — no RSS and descriptor figures both after the warm-up and at " +
      "the end (a run too short for its sample interval, or no /proc)";
    return { pass: false, rss, fds, line };
  }
  const within = (d: Drift): boolean => Math.abs(d.percent) <= TOLERANCE * 100;
  const pass = within(rss) && within(fds);
  const outside = [within(rss) ? "" : "RSS", within(fds) ? "" : "descriptors"].filter((x) => x);
  const endS = measured.at(-1)!.atS;
  const window = windowOf(warmupS, endS);
  const line = `verdict: ${pass ? "PASS" : "FAIL"} — medians over ${clock(warmupS)}-` +
    `${clock(warmupS + window)} -> over ${clock(endS - window)}-${clock(endS)}: RSS ` +
    `${formatBytes(rss.afterWarmup)} -> ${formatBytes(rss.end)} (${sign(rss.percent)}%), ` +
    `descriptors ${formatCount(fds.afterWarmup)} -> ${formatCount(fds.end)} ` +
    `(${sign(fds.percent)}%): ${pass ? "both" : `${outside.join(" and ")} not`} within ` +
    `${TOLERANCE * 100}% of their value after the warm-up`;
  return { pass, rss, fds, line };
}

function sign(percent: number): string {
  return percent >= 0 ? `+${percent}` : `${percent}`;
}

/** Seconds as `m:ss`. */
function clock(s: number): string {
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

const COLUMNS: Array<[string, number, (s: SoakSample) => string]> = [
  ["time", 6, (s) => clock(s.atS)],
  ["RSS", 11, (s) => formatBytes(s.rssBytes)],
  ["fds", 7, (s) => formatCount(s.fds)],
  ["tool fds", 9, (s) => formatCount(s.toolFds)],
  ["lag", 10, (s) => (s.lagSeconds === null ? "-" : formatMs(s.lagSeconds * 1000))],
  ["cpu", 7, (s) => (s.cpuPercent === null ? "-" : `${s.cpuPercent.toFixed(0)}%`)],
  ["conns", 7, (s) => formatCount(s.connections)],
  ["delivered", 14, (s) => formatCount(s.delivered)],
  ["undelivered", 12, (s) => formatCount(s.undelivered)],
  ["churned", 9, (s) => formatCount(s.churned)],
  ["slow drops", 11, (s) => formatCount(s.slowDropped)],
];

function row(cells: string[]): string {
  return cells.map((cell, i) => cell.padStart(COLUMNS[i][1])).join(" ");
}

/** Plots RSS, descriptors and lag over time as an SVG document. */
export function soakSvg(report: Pick<SoakReport, "samples" | "warmupS" | "settings">): string {
  const line = (pick: (s: SoakSample) => number | null): Array<[number, number]> =>
    report.samples.flatMap((s) => {
      const v = pick(s);
      return v === null ? [] : [[s.atS / 60, v] as [number, number]];
    });
  return stackedLineChart([
    {
      label: "server RSS (MiB)",
      points: line((s) => s.rssBytes && s.rssBytes / 2 ** 20),
      color: "#1f77b4",
    },
    { label: "open file descriptors", points: line((s) => s.fds), color: "#2ca02c" },
    {
      label: "event-loop lag, max over 10 s (ms)",
      points: line((s) => s.lagSeconds && s.lagSeconds * 1000),
      color: "#d62728",
    },
  ], {
    title: `parley soak — ${report.settings.minutes} min, ${describeLoad(report.settings)}`,
    xLabel: "minutes since the load started",
    marker: { x: report.warmupS / 60, label: "end of warm-up" },
  });
}

function describeLoad(o: SoakOptions): string {
  return `${formatCount(o.subscribers)} subscribers, ${o.senders} x ${o.rate} msg/s, churn ` +
    `${o.churnPerSecond}/s, ${o.slowReaders} slow`;
}

/** Runs the soak: starts parley, loads it for `minutes`, stops it, and returns every figure. */
export async function runSoak(
  options: SoakOptions,
  print: (line: string) => void = (line) => console.log(line),
): Promise<SoakReport> {
  await initClockTicks();
  const warnings: string[] = [];
  let cpus: Pinned | null = null;
  if (options.pin) {
    const pinned = await pinning();
    if ("reason" in pinned) {
      warnings.push(`not pinned: ${pinned.reason}; server and load share CPUs`);
    } else cpus = pinned;
  }
  log(options, `starting parley${cpus ? ` on CPU ${cpus.serverCpus}` : ""}`);
  const server = await startServer("parley", {
    cpus: cpus?.serverCpus ?? null,
    config: { sendBufferBytes: options.sendBufferBytes },
  });
  try {
    return await soak(server, options, cpus, warnings, print);
  } finally {
    await server.stop();
  }
}

async function soak(
  server: ServerProcess,
  options: SoakOptions,
  cpus: Pinned | null,
  warnings: string[],
  print: (line: string) => void,
): Promise<SoakReport> {
  const url = chatUrl(server.url, `soak-${crypto.randomUUID().slice(0, 8)}`);
  log(options, `connecting ${formatCount(options.subscribers)} subscribers to ${url}`);
  const steady = await SteadyLoad.connect(options, url);
  log(options, `${formatCount(steady.connected)} connected`);
  const churn = new Churn(url, options.churnPerSecond, options.churnStayS * 1000);
  const slow = new SlowReaders(url, options.slowReaders);
  const sampler = new Sampler(server, steady, churn, slow);
  const warmupS = options.minutes * 60 * WARMUP_FRACTION;
  try {
    print(header(options, cpus, warmupS));
    const samples = await sampleRun(options, steady, churn, slow, sampler, print);
    churn.stop();
    slow.close();
    const result = await steady.finish(10_000);
    const report: SoakReport = {
      settings: options,
      warmupS,
      samples,
      verdict: verdictOf(samples, warmupS),
      steady: result,
      churn: {
        opened: churn.opened,
        joined: churn.joined,
        failed: churn.failed,
        closes: churn.closes,
      },
      slow: { opened: slow.opened, dropped: slow.dropped, failed: slow.failed },
      disconnects: sampler.disconnects,
      maxLagSeconds: maxOf(samples.map((s) => s.lagSeconds)),
      serverCpus: cpus?.serverCpus ?? null,
      loadCpus: cpus?.loadCpus ?? null,
      warnings: [...warnings, ...warningsOf(options, result, sampler.cpu, samples, cpus)],
    };
    await writeSvg(options.svgPath, soakSvg(report));
    print(summary(report));
    return report;
  } finally {
    churn.stop();
    slow.close();
    await steady.close();
  }
}

/** Starts the load, then takes a sample every `sampleS` until `minutes` have passed. */
async function sampleRun(
  options: SoakOptions,
  steady: SteadyLoad,
  churn: Churn,
  slow: SlowReaders,
  sampler: Sampler,
  print: (line: string) => void,
): Promise<SoakSample[]> {
  const durationMs = options.minutes * 60_000;
  const sampleMs = options.sampleS * 1000;
  const startUs = epochUs() + 100_000;
  const started = performance.now() + 100;
  steady.start(
    startUs,
    startUs + durationMs * WARMUP_FRACTION * 1000,
    startUs + durationMs * 1000,
  );
  churn.start();
  await slow.fill();
  const samples: SoakSample[] = [];
  for (let atMs = 0;; atMs = Math.min(atMs + sampleMs, durationMs)) {
    await sleep(Math.max(0, started + atMs - performance.now()));
    const sample = await sampler.take(atMs / 1000);
    // /proc is read through subprocesses, which can fail now and then: parley is gone only if it
    // stopped answering /metrics too (a 16-minute run once lost one /proc read, not the server).
    const gone = sample.rssBytes === null && sample.connections === null;
    if (gone && samples.some((s) => s.rssBytes !== null)) {
      throw new Error(`parley exited during the soak; its output:\n${sampler.server.output()}`);
    }
    samples.push(sample);
    print(row(COLUMNS.map(([, , cell]) => cell(sample))));
    await slow.replace(sample.slowDropped - slow.dropped);
    if (atMs >= durationMs) return samples;
  }
}

function maxOf(values: Array<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : Math.max(...known);
}

/** The tool or the machine too busy for the figures to be trusted, lost messages, failures. */
function warningsOf(
  options: SoakOptions,
  steady: SteadyResult,
  cpu: CpuReading[],
  samples: SoakSample[],
  cpus: Pinned | null,
): string[] {
  const warnings: string[] = [];
  const from = cpu[samples.findIndex((s) => s.atS >= options.minutes * 60 * WARMUP_FRACTION)];
  const to = cpu.at(-1);
  const cores = navigator.hardwareConcurrency;
  const limit = 100 * (cpus === null ? cores : cores - 1);
  const load = from && to ? cpuPercent(from.self, to.self) : null;
  if (load !== null && load > 0.9 * limit) {
    warnings.push(
      `the load generator used ${load.toFixed(0)}% CPU of ${limit}% after the warm-up: it may ` +
        "have fallen behind (a steady subscriber it cannot keep up with is dropped as slow)",
    );
  }
  const other = from && to
    ? otherCpuPercent([from.machine, to.machine], [[from.server, to.server], [from.self, to.self]])
    : null;
  if (other !== null && other > 15) {
    warnings.push(
      `other processes used ${other.toFixed(0)}% CPU after the warm-up (the machine was not ` +
        "quiet): the figures are unreliable",
    );
  }
  if (steady.connected < steady.subscribers) {
    warnings.push(
      `${steady.subscribers - steady.connected} steady subscribers failed to connect: ` +
        steady.connectFailures.join("; "),
    );
  }
  if (steady.lost !== 0) warnings.push(`${formatCount(steady.lost)} messages lost`);
  const tool = driftOf(samples, options.minutes * 60 * WARMUP_FRACTION, (s) => s.toolFds);
  if (tool !== null && tool.percent > TOLERANCE * 100) {
    warnings.push(
      `this tool's own descriptors grew from ${formatCount(tool.afterWarmup)} to ` +
        `${formatCount(tool.end)} after the warm-up: its clients leak sockets, and a long run ` +
        "will run out of descriptors (parley's verdict does not depend on it)",
    );
  }
  if (steady.held < steady.connected) {
    warnings.push(`${steady.connected - steady.held} steady subscribers were closed`);
  }
  return warnings;
}

function header(options: SoakOptions, cpus: Pinned | null, warmupS: number): string {
  const pinned = cpus
    ? `server pinned to CPU ${cpus.serverCpus}, this tool to CPU ${cpus.loadCpus} (taskset)`
    : `not pinned (${navigator.hardwareConcurrency} CPUs shared)`;
  return [
    `parley soak — ${options.minutes} min: ${formatCount(options.subscribers)} subscribers, ` +
    `${options.senders} senders x ${options.rate} msg/s, ${options.bodyBytes}-byte bodies; churn ` +
    `${options.churnPerSecond} clients/s staying ${options.churnStayS} s; ` +
    `${options.slowReaders} slow readers; send buffer ${formatBytes(options.sendBufferBytes)}`,
    `CPUs: ${pinned}`,
    `warm-up: the first ${WARMUP_FRACTION * 100}% (${clock(warmupS)}); the verdict compares ` +
    `medians over the ${WINDOW_S} s after it and the last ${WINDOW_S} s (a third of the rest ` +
    `if shorter); a sample every ${options.sampleS} s; lag is the server's longest over the ` +
    "10 s before the sample; tool fds are this tool's own",
    "",
    row(COLUMNS.map(([name]) => name)),
  ].join("\n");
}

function summary(report: SoakReport): string {
  const { steady, churn, slow } = report;
  const codes = (counts: Record<string, number>): string =>
    Object.entries(counts).map(([k, v]) => `${k}:${formatCount(v)}`).join(" ") || "none";
  return [
    "",
    `steady: ${formatCount(steady.connected)} of ${formatCount(steady.subscribers)} connected, ` +
    `${formatCount(steady.held)} held; sent ${formatCount(steady.sent)}, acked ` +
    `${formatCount(steady.acked)}, delivered ${formatCount(steady.delivered)}, lost ` +
    `${formatCount(steady.lost)}; latency after the warm-up p50 ${formatMs(steady.p50Ms)}, p99 ` +
    `${formatMs(steady.p99Ms)}, max ${formatMs(steady.maxMs)}; closes ${codes(steady.closes)}; ` +
    `errors ${codes(steady.errorEvents)}`,
    `churn: ${formatCount(churn.opened)} opened, ${formatCount(churn.joined)} welcomed, ` +
    `${formatCount(churn.failed)} failed; closed by the server: ${codes(churn.closes)}`,
    `slow readers: ${formatCount(slow.dropped)} dropped by the server and replaced, ` +
    `${formatCount(slow.opened)} opened, ${formatCount(slow.failed)} failed to connect`,
    `server disconnects by code: ${codes(report.disconnects)}; largest lag ` +
    `${report.maxLagSeconds === null ? "-" : formatMs(report.maxLagSeconds * 1000)}`,
    report.verdict.line,
    `plot: ${report.settings.svgPath}`,
    ...report.warnings.map((w) => `warning: ${w}`),
  ].join("\n");
}

async function writeSvg(path: string, svg: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  await Deno.writeTextFile(path, svg);
}

const USAGE = `usage: deno task soak [--minutes N] [options]
  --minutes N           how long the load runs (default 20)
  --subscribers N       steady subscribers (default 1,000, as the chat scenario)
  --senders S           of them, senders (default 10)   --rate R   msg/s per sender (default 20)
  --body-bytes B        size of each body (default 100)
  --churn C             clients joining per second (default 20)
  --stay SECONDS        how long each stays after its welcome (default 3)
  --slow K              slow readers held at once (default 3)
  --sample SECONDS      seconds between samples (default 10)
  --send-buffer BYTES   parley's limits.sendBufferBytes (default its own, 1 MiB)
  --svg FILE            where the plot goes (default test-output/soak.svg)
  --no-pin              do not pin the server and the load to separate CPUs
  --json                print the report as one JSON object on the last line
  --quiet               no progress lines on stderr
Exits 0 if the verdict is PASS, 1 if it is FAIL or the soak failed, 2 on a bad flag.`;

/** Flags with a number: the option each sets, its smallest value, and whether it is whole. */
const NUMBER_FLAGS: Record<string, [keyof SoakOptions, number, boolean]> = {
  "--minutes": ["minutes", 0.01, false],
  "--subscribers": ["subscribers", 1, true],
  "--senders": ["senders", 0, true],
  "--rate": ["rate", 0.1, false],
  "--body-bytes": ["bodyBytes", 40, true],
  "--churn": ["churnPerSecond", 0, false],
  "--stay": ["churnStayS", 0, false],
  "--slow": ["slowReaders", 0, true],
  "--sample": ["sampleS", 0.5, false],
  "--send-buffer": ["sendBufferBytes", 1024, true],
};

/** Parses the command line; throws with the usage on a bad flag. */
export function parseSoakArgs(args: string[]): SoakOptions & { json: boolean } {
  const options: SoakOptions & { json: boolean } = {
    minutes: 20,
    subscribers: SCENARIOS.chat.subscribers,
    senders: SCENARIOS.chat.senders,
    rate: SCENARIOS.chat.rate,
    bodyBytes: 100,
    churnPerSecond: 20,
    churnStayS: 3,
    slowReaders: 3,
    sampleS: 10,
    sendBufferBytes: defaultConfig.limits.sendBufferBytes,
    svgPath: `${REPO_ROOT}test-output/soak.svg`,
    pin: true,
    progress: true,
    json: false,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const numeric = NUMBER_FLAGS[flag];
    if (numeric) {
      const [key, min, whole] = numeric;
      const n = Number(args[++i]);
      if (!Number.isFinite(n) || n < min) {
        throw new Error(`${flag} needs a number ≥ ${min}\n${USAGE}`);
      }
      Object.assign(options, { [key]: whole ? Math.floor(n) : n });
    } else if (flag === "--svg" && i + 1 < args.length) {
      options.svgPath = args[++i];
    } else if (flag === "--no-pin") {
      options.pin = false;
    } else if (flag === "--json") {
      options.json = true;
    } else if (flag === "--quiet") {
      options.progress = false;
    } else {
      const help = flag === "-h" || flag === "--help";
      throw new Error(help ? USAGE : `bad flag ${flag}\n${USAGE}`);
    }
  }
  options.senders = Math.min(options.senders, options.subscribers);
  return options;
}

if (import.meta.main) {
  let options: SoakOptions & { json: boolean };
  try {
    options = parseSoakArgs(Deno.args);
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
  try {
    const { json, ...rest } = options;
    const report = await runSoak(rest);
    if (json) console.log(JSON.stringify(report));
    Deno.exit(report.verdict.pass ? 0 : 1);
  } catch (error) {
    console.error(`soak failed: ${(error as Error).stack ?? error}`);
    Deno.exit(1);
  }
}
