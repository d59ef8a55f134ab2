/**
 * Measurement helpers of the load tool: a mergeable latency histogram, and the RSS and CPU time of a
 * process read from `/proc`.
 */

/** Sub-buckets per power of two: the relative error of a recorded value is at most 1/64. */
const SUB_BUCKETS = 64;
/** Values below this are counted exactly, one bucket per microsecond. */
const LINEAR = 2 * SUB_BUCKETS;
/** Powers of two above the linear range, up to 2^31 microseconds (about 36 minutes). */
const MAGNITUDES = 24;

/** The number of buckets of a {@link Histogram}. */
export const HISTOGRAM_SIZE: number = LINEAR + SUB_BUCKETS * MAGNITUDES;

/**
 * A log-linear histogram of latencies in microseconds. Its `counts` can be sent between threads
 * and added together; percentiles come out with a relative error under 2%.
 */
export class Histogram {
  /** Bucket counts; see {@link Histogram.bucketOf}. */
  readonly counts: Float64Array = new Float64Array(HISTOGRAM_SIZE);
  /** The number of recorded values. */
  count = 0;
  /** The largest recorded value, exact. */
  max = 0;
  /** The sum of the recorded values, for the mean. */
  sum = 0;

  /** The bucket of a value: linear below 128 µs, then 64 buckets per power of two. */
  static bucketOf(micros: number): number {
    const v = micros < 0 ? 0 : Math.floor(micros);
    if (v < LINEAR) return v;
    if (v >= 2 ** 31) return HISTOGRAM_SIZE - 1;
    const magnitude = 31 - Math.clz32(v) - 6; // v >= 128 -> magnitude >= 1
    const sub = (v >>> magnitude) - SUB_BUCKETS; // in [0, 64)
    return LINEAR + (magnitude - 1) * SUB_BUCKETS + sub;
  }

  /** The upper bound of a bucket, in microseconds. */
  static upperOf(bucket: number): number {
    if (bucket < LINEAR) return bucket + 1;
    const magnitude = Math.floor((bucket - LINEAR) / SUB_BUCKETS) + 1;
    const sub = (bucket - LINEAR) % SUB_BUCKETS;
    return (sub + SUB_BUCKETS + 1) * 2 ** magnitude;
  }

  /** Records one latency in microseconds. */
  record(micros: number): void {
    const v = micros < 0 ? 0 : micros;
    this.counts[Histogram.bucketOf(v)]++;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** Adds another histogram's counts to this one. */
  merge(other: HistogramSnapshot): void {
    for (let i = 0; i < HISTOGRAM_SIZE; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** The value below which `q` (0..1) of the recorded values fall, in microseconds; 0 if empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_SIZE; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(Histogram.upperOf(i), this.max);
    }
    return this.max;
  }

  /** A plain copy that can cross a `postMessage`. */
  snapshot(): HistogramSnapshot {
    return { counts: this.counts.slice(), count: this.count, max: this.max, sum: this.sum };
  }
}

/** The transferable form of a {@link Histogram}. */
export interface HistogramSnapshot {
  counts: Float64Array;
  count: number;
  max: number;
  sum: number;
}

/** Resident memory and CPU time of a process, from `/proc/<pid>`. */
export interface ProcSample {
  /** `VmRSS` in bytes. */
  rssBytes: number;
  /** User plus system CPU time of all its threads, in seconds. */
  cpuSeconds: number;
  /** When the sample was taken, `performance.now()` milliseconds. */
  at: number;
}

let clockTicks = 100;

/** Reads `getconf CLK_TCK` once (the unit of `/proc/<pid>/stat` times); 100 if unavailable. */
export async function initClockTicks(): Promise<void> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
    const ticks = Number(new TextDecoder().decode(out.stdout).trim());
    if (Number.isFinite(ticks) && ticks > 0) clockTicks = ticks;
  } catch {
    // No getconf: Linux uses 100 almost everywhere.
  }
}

/**
 * Samples `/proc/<pid>` (`"self"` for this process); null where `/proc` is not there. Deno 2.9 lets
 * only `--allow-all` read `/proc` directly, so this reads it through `cat` (`--allow-run`).
 */
export async function sampleProc(pid: number | "self"): Promise<ProcSample | null> {
  const id = pid === "self" ? Deno.pid : pid;
  try {
    const out = await new Deno.Command("cat", {
      args: [`/proc/${id}/stat`, `/proc/${id}/status`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    const at = performance.now();
    const text = new TextDecoder().decode(out.stdout);
    const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
    const stat = text.slice(0, text.indexOf("\n"));
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (!Number.isFinite(ticks)) return null;
    return { rssBytes: rss ? Number(rss[1]) * 1024 : 0, cpuSeconds: ticks / clockTicks, at };
  } catch {
    return null;
  }
}

/** CPU time used by every process on the machine, from the first line of `/proc/stat`. */
export interface MachineSample {
  /** Non-idle CPU seconds over all cores (user, nice, system, irq, softirq). */
  busySeconds: number;
  /** Seconds the hypervisor ran something else while a CPU wanted to run (steal). */
  stealSeconds: number;
  at: number;
}

/** Samples `/proc/stat`; null where it cannot be read. */
export async function sampleMachine(): Promise<MachineSample | null> {
  try {
    const out = await new Deno.Command("cat", { args: ["/proc/stat"], stdout: "piped" }).output();
    if (!out.success) return null;
    const at = performance.now();
    const line = new TextDecoder().decode(out.stdout).split("\n")[0];
    // cpu user nice system idle iowait irq softirq steal ...
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0] + f[1] + f[2] + f[5] + f[6];
    return { busySeconds: busy / clockTicks, stealSeconds: (f[7] ?? 0) / clockTicks, at };
  } catch {
    return null;
  }
}

/** CPU use between two samples in percent of one core; null if either sample is missing. */
export function cpuPercent(from: ProcSample | null, to: ProcSample | null): number | null {
  if (!from || !to || to.at <= from.at) return null;
  return (100 * (to.cpuSeconds - from.cpuSeconds)) / ((to.at - from.at) / 1000);
}

/**
 * CPU used by every process but `procs` between two machine samples (the same window as the
 * processes' samples), in percent of one core, at least 0. Null if a machine sample or any of the
 * processes' samples is missing: their CPU is not known, so neither is the rest.
 */
export function otherCpuPercent(
  machine: [MachineSample | null, MachineSample | null],
  procs: Array<[ProcSample | null, ProcSample | null]>,
): number | null {
  const [from, to] = machine;
  if (!from || !to || to.at <= from.at) return null;
  let own = 0;
  for (const [a, b] of procs) {
    if (!a || !b) return null;
    own += b.cpuSeconds - a.cpuSeconds;
  }
  return Math.max(
    0,
    (100 * (to.busySeconds - from.busySeconds - own)) / ((to.at - from.at) / 1000),
  );
}

/** Formats a count with thousands separators. */
export function formatCount(n: number | null): string {
  return n === null ? "-" : Math.round(n).toLocaleString("en-US");
}

/** Formats bytes as MiB or KiB. */
export function formatBytes(n: number | null): string {
  if (n === null) return "-";
  if (Math.abs(n) >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024).toFixed(1)} KiB`;
}

/** Formats milliseconds with a precision that suits their size. */
export function formatMs(n: number | null): string {
  if (n === null) return "-";
  return n >= 100 ? `${n.toFixed(0)} ms` : `${n.toFixed(2)} ms`;
}

/**
 * Open file descriptors of a process: the entries of `/proc/<pid>/fd`, listed by `ls` (Deno 2.9
 * lets only `--allow-all` read `/proc` itself). Null where that fails.
 */
export async function openFds(pid: number): Promise<number | null> {
  try {
    const out = await new Deno.Command("ls", {
      args: [`/proc/${pid}/fd`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).split("\n").filter((name) => name !== "").length;
  } catch {
    return null;
  }
}

/**
 * Samples several processes as one (the instances of a server): RSS and CPU time added up; null
 * if any cannot be read, or for no process.
 */
export async function sampleProcs(pids: number[]): Promise<ProcSample | null> {
  if (pids.length === 0) return null;
  const samples = await Promise.all(pids.map((pid) => sampleProc(pid)));
  if (samples.some((s) => s === null)) return null;
  const known = samples as ProcSample[];
  return {
    rssBytes: known.reduce((n, s) => n + s.rssBytes, 0),
    cpuSeconds: known.reduce((n, s) => n + s.cpuSeconds, 0),
    at: Math.max(...known.map((s) => s.at)),
  };
}

/**
 * CPU-seconds used between two samples per million `deliveries` in that window: the cost of a
 * delivery, which predicts how far a bigger machine scales. Null without both samples or with
 * no delivery.
 */
export function cpuSecondsPerMillion(
  from: ProcSample | null,
  to: ProcSample | null,
  deliveries: number,
): number | null {
  if (!from || !to || !(deliveries > 0)) return null;
  return Math.round(((to.cpuSeconds - from.cpuSeconds) / (deliveries / 1e6)) * 1000) / 1000;
}
