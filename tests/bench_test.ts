/**
 * The load tool's own test: a short run against a server on port 0 whose counts must add up.
 * It asserts no speed, only that every message sent reached every subscriber exactly once.
 */

import assert from "node:assert/strict";
import {
  type BenchOptions,
  type BenchReport,
  parseArgs,
  runBench,
  SCENARIOS,
} from "../bench/bench.ts";
import { classifyLegacyFrame } from "../bench/legacy_frame.ts";
import { parseHistoryArgs, runHistoryBench } from "../bench/history_bench.ts";
import { sayIfSkipped, skipRedis } from "./redis_server.ts";

sayIfSkipped("bench_test.ts");

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
  loadThreads: 1,
  drainTimeoutS: 5,
  pin: false,
  progress: false,
};

/** Runs `options` and checks that the counts add up. */
async function countsAddUp(options: BenchOptions): Promise<BenchReport> {
  const report = await runBench(options);
  assertCountsAddUp(report);
  return report;
}

/** Every message sent reached every subscriber once, and the report's figures agree. */
function assertCountsAddUp(report: BenchReport): void {
  const options = report.settings;
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

Deno.test({
  name: "bench: legacy subscribers get one message per frame from parley, counted apart",
  ignore: !hasParley,
  fn: async () => {
    const report = await runBench({ ...SHORT, target: "parley", legacy: 3 });
    const run = report.parley;
    assert(run !== null, "no parley result");
    assert(run.connected === 20 && run.held === 20, `connected ${run.connected}, held ${run.held}`);
    assert(run.sent > 0 && run.acked === run.sent, `acked ${run.acked} of ${run.sent}`);
    assert(run.delivered === run.sent * 20 && run.lost === 0, `lost ${run.lost}`);
    const { v1, legacy } = run;
    assert(v1 !== null && legacy !== null, "no v1/legacy split");
    assert(legacy.subscribers === 3 && legacy.connected === 3, `legacy ${legacy.connected} of 3`);
    assert(v1.subscribers === 17 && v1.connected === 17, `v1 ${v1.connected} of 17`);
    assert(legacy.expected === run.sent * 3, "legacy expected is not sent x 3");
    assert(legacy.delivered === legacy.expected, `legacy ${legacy.delivered}/${legacy.expected}`);
    assert(v1.delivered === run.sent * 17 && v1.lost === 0, `v1 lost ${v1.lost}`);
    assert(legacy.lost === 0, `legacy lost ${legacy.lost}`);
    assert(v1.delivered + legacy.delivered === run.delivered, "v1 + legacy is not the total");
    assert(legacy.multiMessageFrames === 0, `${legacy.multiMessageFrames} multi-message frames`);
    assert(legacy.badFrames === 0, `${legacy.badFrames} legacy frames not a message object`);
    assert(legacy.messagesPerFrame === 1, `legacy ${legacy.messagesPerFrame} messages per frame`);
    assert(JSON.stringify(run.errorEvents) === "{}", JSON.stringify(run.errorEvents));
    assert(legacy.p50Ms > 0 && legacy.p50Ms <= legacy.p99Ms, "legacy latency out of order");
    assert(report.warnings.every((w) => !w.includes("legacy")), report.warnings.join("; "));
  },
});

Deno.test({
  name: "bench: counts add up against parley in accounts mode, every connection with the token",
  ignore: !hasParley,
  fn: async () => {
    // Without the API token on their upgrades the connections would be refused with 401.
    await countsAddUp({ ...SHORT, target: "parley", auth: "accounts" });
  },
});

Deno.test({
  name: "bench: counts add up against parley with 2 workers, and the CPU cost is given",
  ignore: !hasParley,
  fn: async () => {
    const report = await countsAddUp({ ...SHORT, target: "parley", serverWorkers: 2 });
    assert(report.serverWorkers === 2 && report.instances === 1, "not one parley of 2 workers");
    assertCost(report);
    assert(report.redisCpuPercent === null && report.redisCpuSecondsPerMillion === null);
    assert(report.notes.some((n) => n.includes("cannot show scaling")), report.notes.join("; "));
  },
});

Deno.test({
  name: "bench: --redis splits the subscribers over two instances, and every delivery arrives",
  ignore: !hasParley || skipRedis,
  fn: async () => {
    const report = await countsAddUp({ ...SHORT, target: "parley", redis: true });
    assert(report.instances === 2, `${report.instances} instances`);
    // The 2 senders and the 9 even-numbered others on the first, the 9 odd-numbered on the second.
    assert.deepEqual(report.connectedPerInstance, [11, 9]);
    assertCost(report);
    assert(report.redisCpuPercent !== null, "no redis-server CPU");
    assert(report.redisCpuSecondsPerMillion !== null && report.redisCpuSecondsPerMillion >= 0);
  },
});

/** The CPU cost per million deliveries is there, and is the CPU over the deliveries. */
function assertCost(report: BenchReport): void {
  const cost = report.serverCpuSecondsPerMillion;
  assert(cost !== null && cost > 0, `server CPU-s per million deliveries: ${cost}`);
  const seconds = (report.serverCpuPercent! / 100) * SHORT.durationS;
  const perMillion = seconds / (report.deliveredPerSec * SHORT.durationS / 1e6);
  // The CPU percentage is over the window between two /proc reads, which a busy machine can make
  // longer than the measured second: the same figure within a factor of 2, not a unit apart.
  assert(cost > perMillion / 2 && cost < perMillion * 2, `${cost} is not about ${perMillion}`);
}

Deno.test("bench: the legacy frame check", () => {
  const one =
    '{"userName":"u1","body":"~b1|0|0|5|xx","timestamp":"2026-11-27T13:00:00.000Z","id":1}';
  const cases: Array<[string, string]> = [
    [one + "\n", "ok"],
    [one.replace("xx", "\\u003c\\u0026") + "\n", "ok"],
    [one + "\n" + one + "\n", "multi"],
    [one + one + "\n", "multi"],
    [one, "bad"],
    ['{"type":"message","id":1,"room":"r","userName":"u1","body":"x","timestamp":"t"}\n', "bad"],
    ['{"type":"join","userName":"u2","users":[]}', "bad"],
  ];
  for (const [frame, kind] of cases) {
    assert(classifyLegacyFrame(frame) === kind, `${JSON.stringify(frame)} is not ${kind}`);
  }
});

Deno.test("bench: --legacy is refused for the baseline and for senders", () => {
  const refused = (args: string[], words: string): void => {
    try {
      parseArgs(args);
    } catch (error) {
      assert((error as Error).message.includes(words), (error as Error).message);
      return;
    }
    throw new Error(`${args.join(" ")} was accepted`);
  };
  refused(["--scenario", "fanout", "--baseline", "--legacy", "5"], "parley only");
  refused(["--scenario", "chat", "--subscribers", "20", "--legacy", "11"], "not senders");
  assert(parseArgs(["--scenario", "chat", "--legacy", "100"]).legacy === 100, "--legacy 100");
});

Deno.test("bench: --auth accounts is for the parley the tool starts, without legacy subscribers", () => {
  const refused = (args: string[], words: string): void => {
    assert.throws(() => parseArgs(args), (error: Error) => error.message.includes(words));
  };
  refused(["--auth", "ldap"], "open or accounts");
  refused(["--auth", "accounts", "--url", "ws://127.0.0.1:1/chat"], "without --url");
  refused(["--auth", "accounts", "--baseline"], "without --url and --baseline");
  refused(["--auth", "accounts", "--legacy", "5"], "do not go together");
  assert(parseArgs(["--scenario", "crowd", "--auth", "accounts"]).auth === "accounts");
  assert(parseArgs(["--scenario", "crowd"]).auth === undefined, "open unless asked");
});

Deno.test("bench: --workers and --redis shape the parley the tool starts, and imply --parley", () => {
  const refused = (args: string[], words: string): void => {
    assert.throws(() => parseArgs(args), (error: Error) => error.message.includes(words));
  };
  refused(["--workers", "2", "--baseline"], "use them with --parley");
  refused(["--redis", "--url", "ws://127.0.0.1:1/chat"], "use them with --parley");
  refused(["--scenario", "idle", "--redis"], "idle sends nothing");
  refused(["--redis", "--auth", "accounts"], "do not go together");
  refused(["--redis", "--legacy", "5"], "do not go together");
  const workers = parseArgs(["--scenario", "crowd", "--workers", "2"]);
  assert.deepEqual([workers.target, workers.serverWorkers, workers.loadThreads], ["parley", 2, 0]);
  const redis = parseArgs(["--redis", "--load-threads", "3"]);
  assert.deepEqual([redis.target, redis.redis, redis.loadThreads], ["parley", true, 3]);
  assert.equal(parseArgs([]).target, "compare", "both servers unless shaped");
});

Deno.test("bench:history: a short throughput run through the parley it starts acks what it sends", async () => {
  // The tool's files must be where the start task's flags let parley write (it once used /tmp).
  const report = await runHistoryBench({
    ...parseHistoryArgs([]),
    publishers: 4,
    inFlight: 2,
    rooms: 2,
    warmupSeconds: 0.2,
    durationSeconds: 0.5,
    only: "throughput",
    pin: false,
    quiet: true,
  });
  assert.ok(report.throughput !== null);
  assert.ok(report.throughput.acked > 0, JSON.stringify(report.throughput));
  assert.equal(report.throughput.errors, 0);
});
