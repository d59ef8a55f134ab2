/**
 * The load tool's own test: a short run against a server on port 0 whose counts must add up.
 * It asserts no speed, only that every message sent reached every subscriber exactly once.
 */

import { type BenchOptions, runBench, SCENARIOS } from "../bench/bench.ts";

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

const SHORT: BenchOptions = {
  ...SCENARIOS.fanout,
  subscribers: 20,
  senders: 2,
  mode: "window",
  inFlight: 4,
  durationS: 1,
  warmupS: 0,
  target: "baseline",
  bodyBytes: 100,
  connectConcurrency: 10,
  workers: 1,
  drainTimeoutS: 5,
  pin: false,
  progress: false,
};

async function countsAddUp(options: BenchOptions): Promise<void> {
  const report = await runBench(options);
  const run = report.target === "parley" ? report.parley : report.baseline;
  assert(run !== null, `no ${options.target} result`);
  assert(run.connected === 20, `connected ${run.connected} of 20`);
  assert(run.sent > 0, "nothing was sent");
  assert(run.acked === run.sent, `acked ${run.acked} of ${run.sent}`);
  assert(run.expected === run.sent * run.connected, "expected is not sent x subscribers");
  assert(run.delivered === run.expected, `delivered ${run.delivered} of ${run.expected}`);
  assert(run.lost === 0, `lost ${run.lost}`);
  assert(report.delivered === run.delivered, "the top-level figures are not the run's");
  assert(run.held === 20, `${run.held} connections held at the end`);
  assert(run.p50Ms > 0 && run.p50Ms <= run.p99Ms && run.p99Ms <= run.maxMs, "latency out of order");
  assert(run.deliveredPerSec > 0, "no deliveries in the measured window");
  assert(run.serverRssBytes === null || run.serverRssBytes > 0, "server RSS is 0");
}

Deno.test("bench: counts add up against the baseline server", async () => {
  await countsAddUp(SHORT);
});

Deno.test("bench: counts add up in rate mode", async () => {
  await countsAddUp({ ...SHORT, mode: "rate", rate: 50 });
});

let hasParley = false;
try {
  hasParley = (await Deno.stat(new URL("../main.ts", import.meta.url))).isFile;
} catch {
  hasParley = false;
}

Deno.test({
  name: "bench: counts add up against parley",
  ignore: !hasParley,
  fn: async () => {
    await countsAddUp({ ...SHORT, target: "parley" });
  },
});
