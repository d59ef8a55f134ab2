/**
 * The load tool's own test: a short run against a server on port 0 whose counts must add up.
 * It asserts no speed, only that every message sent reached every subscriber exactly once.
 */

import assert from "node:assert/strict";
import { type BenchOptions, parseArgs, runBench, SCENARIOS } from "../bench/bench.ts";
import { classifyLegacyFrame } from "../bench/legacy_frame.ts";

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
