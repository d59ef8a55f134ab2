/**
 * The soak tool's own test: `deno task soak` for six seconds with a small load against a real
 * parley must take its samples, give a verdict and write a well-formed SVG plot; and the verdict
 * is the 10% rule on RSS and descriptors. It asserts no figure of parley's, only that the tool
 * measures.
 */

import assert from "node:assert/strict";
import { parseSoakArgs, type SoakReport, type SoakSample, verdictOf } from "../bench/soak.ts";
import { REPO_ROOT } from "../bench/server_process.ts";
import { Churn, SlowReaders } from "../bench/soak_load.ts";
import { openFds } from "../bench/stats.ts";
import {
  joinRoom,
  metric,
  parleyDir,
  ParleyProcess,
  startTestServer,
  tempDir,
  within,
} from "./support.ts";

/** Fails unless `text` is well-formed XML (tags nested, attributes quoted, `<` and `&` escaped). */
function assertWellFormed(text: string): string[] {
  const tag = /^<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/;
  const open: string[] = [];
  const seen: string[] = [];
  let at = 0;
  for (const match of text.matchAll(/<[^<>]*>/g)) {
    const between = text.slice(at, match.index);
    assert.doesNotMatch(between, /[<>]|&(?!amp;|lt;|gt;|quot;)/, `bad text ${between}`);
    at = match.index + match[0].length;
    const parts = tag.exec(match[0]);
    assert.ok(parts, `not a well-formed tag: ${match[0]}`);
    const [, closing, name, , selfClosing] = parts;
    if (closing) assert.equal(open.pop(), name, `</${name}> closes nothing open`);
    else if (!selfClosing) open.push(name);
    if (!closing) seen.push(name);
  }
  assert.equal(text.slice(at).trim(), "", "text after the root element");
  assert.deepEqual(open, [], "elements left open");
  return seen;
}

Deno.test({
  name: "deno task soak: samples, a verdict and a valid SVG from a six-second run",
  // RSS and descriptors come from Linux's /proc.
  ignore: Deno.build.os !== "linux",
  fn: soakForSixSeconds,
});

async function soakForSixSeconds(): Promise<void> {
  await using dir = await tempDir("parley-soak-");
  const svgPath = `${dir.path}/soak.svg`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "soak",
      ...["--minutes", "0.1", "--sample", "1", "--subscribers", "20", "--senders", "2"],
      ...["--rate", "20", "--churn", "5", "--stay", "1", "--slow", "2", "--no-pin"],
      ...["--svg", svgPath, "--json", "--quiet"],
    ],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(killer);
  const out = new TextDecoder().decode(stdout);
  assert.ok(code === 0 || code === 1, `exit ${code}: ${new TextDecoder().decode(stderr)}\n${out}`);

  const lines = out.trim().split("\n");
  const report: SoakReport = JSON.parse(lines.at(-1)!);
  const samples = report.samples;
  assert.deepEqual(samples.map((s) => s.atS), [0, 1, 2, 3, 4, 5, 6]);
  for (const s of samples) {
    assert.ok(s.rssBytes !== null && s.rssBytes > 0, `no RSS at ${s.atS} s`);
    assert.ok(s.fds !== null && s.fds > 20, `${s.fds} descriptors at ${s.atS} s`);
    assert.ok(s.toolFds !== null && s.toolFds > 20, `the tool's ${s.toolFds} at ${s.atS} s`);
    assert.ok(s.lagSeconds !== null && s.lagSeconds >= 0, `no lag at ${s.atS} s`);
    assert.ok(s.connections !== null && s.connections >= 20, `${s.connections} connections`);
  }
  assert.ok(samples.at(-1)!.delivered > samples[1].delivered, "deliveries did not grow");
  assert.equal(report.steady.connected, 20);
  assert.ok(report.steady.sent > 0 && report.steady.lost === 0, `lost ${report.steady.lost}`);
  assert.ok(report.churn.joined >= 10, `${report.churn.joined} churn clients welcomed`);
  assert.ok(report.slow.opened >= 2, `${report.slow.opened} slow readers opened`);
  // The table: a header row, then one row per sample before the summary.
  const header = lines.findIndex((l) => /^\s+time\s+RSS\s+fds\s+tool fds\s+lag/.test(l));
  assert.ok(header >= 0, `no table header in:\n${out}`);
  assert.match(lines[header + samples.length], /^\s+0:06\s/);
  assert.match(out, /^verdict: (PASS|FAIL) — medians over .* RSS .* descriptors /m);
  assert.equal(code, report.verdict.pass ? 0 : 1);

  const svg = await Deno.readTextFile(svgPath);
  const elements = assertWellFormed(svg);
  assert.equal(elements[0], "svg");
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const lineCounts = [...svg.matchAll(/<polyline [^>]*points="([^"]*)"/g)].map((m) =>
    m[1].trim().split(" ").length
  );
  assert.deepEqual(lineCounts, [7, 7, 7], "three lines (RSS, descriptors, lag) of 7 points");
}

Deno.test("a slow reader reads nothing until the server drops it; its replacement joins", async () => {
  await using server = await startTestServer({
    limits: { sendBufferBytes: 65536, messagesPerSecond: 1e6, burst: 1e6, maxMessageBytes: 4096 },
  });
  const slow = new SlowReaders(server.wsUrl({ room: "r" }), 1);
  await slow.fill();
  const { client: sender } = await joinRoom(server, { room: "r", userName: "sender" });
  let dropped = false;
  const leave = sender.next("leave", 60_000).then((event) => {
    dropped = true;
    return event;
  });
  // Bounded: the kernel buffers some megabytes before the server sees backpressure.
  const body = "z".repeat(4000);
  for (let sent = 0; !dropped && sent < 20_000;) {
    for (let i = 0; i < 10; i++) sender.send({ type: "message", body, clientId: `m${sent++}` });
    await sender.waitFor("ack", sent, 30_000);
  }
  assert.equal((await leave).userName, "slow-0");
  assert.equal(await metric(server, "parley_slow_consumer_drops_total"), 1);
  await slow.replace(1);
  assert.equal((await sender.next("join")).userName, "slow-1");
  assert.equal(slow.dropped, 1);
  slow.close();
  await sender.close();
});

Deno.test({
  name: "churn clients release their sockets: the tool's descriptors come back to where they were",
  // Descriptors are counted in Linux's /proc.
  ignore: Deno.build.os !== "linux",
  fn: churnReleasesSockets,
});

/**
 * 300 churn cycles (join, welcome, leave) against parley in a subprocess, so that every descriptor
 * of this process is the tool's. A client whose close the server answered used to be marked
 * closed without its socket being closed: a soak leaked one descriptor per churned client.
 */
async function churnReleasesSockets(): Promise<void> {
  await using dir = await parleyDir({ limits: { maxConnectionsPerIp: 1000 } });
  await using parley = await ParleyProcess.start(dir.path);
  const churn = new Churn(parley.wsUrl({ room: "churn" }), 0, 0);
  // The first connection's lazily made resources are not a leak.
  await within(churn.cycle(), "a first churn client to join, leave and release its socket", 10_000);
  const before = await openFds(Deno.pid);
  assert.ok(before !== null, "no /proc/self/fd");
  for (let round = 0; round < 6; round++) {
    await within(
      Promise.all(Array.from({ length: 50 }, () => churn.cycle())),
      `50 churn clients to join, leave and release their sockets (round ${round})`,
      20_000,
    );
  }
  assert.deepEqual([churn.opened, churn.joined, churn.failed], [301, 301, 0]);
  const after = await openFds(Deno.pid);
  assert.ok(after !== null && after <= before + 5, `${before} descriptors before, ${after} after`);
}

function sample(atS: number, rssMiB: number, fds: number): SoakSample {
  return {
    atS,
    rssBytes: rssMiB * 2 ** 20,
    fds,
    toolFds: 30,
    lagSeconds: 0.001,
    cpuPercent: 10,
    connections: fds - 20,
    delivered: 0,
    undelivered: 0,
    churned: 0,
    slowDropped: 0,
  };
}

Deno.test("the verdict compares the end with the time after the warm-up, 10% each way", () => {
  const warm = [sample(0, 50, 40), sample(10, 100, 1000), sample(20, 105, 1010)];
  const pass = verdictOf([...warm, sample(30, 109, 1090)], 10);
  assert.equal(pass.pass, true, pass.line);
  assert.deepEqual(pass.rss, { afterWarmup: 100 * 2 ** 20, end: 109 * 2 ** 20, percent: 9 });
  assert.match(
    pass.line,
    /^verdict: PASS — medians over 0:10-0:17 -> over 0:23-0:30: RSS 100\.0 MiB -> 109\.0 MiB \(\+9%\)/,
  );

  const grew = verdictOf([...warm, sample(30, 115, 1000)], 10);
  assert.equal(grew.pass, false);
  assert.match(grew.line, /^verdict: FAIL — .*\(\+15%\).*: RSS not within 10%/);

  const shrank = verdictOf([...warm, sample(30, 100, 850)], 10);
  assert.equal(shrank.pass, false);
  assert.match(shrank.line, /\(-15%\): descriptors not within 10%/);

  // A sample whose /proc reads failed (its subprocess did) is skipped, not taken as the end.
  const unread = { ...sample(40, 0, 0), rssBytes: null, fds: null };
  const skipped = verdictOf([...warm, sample(30, 109, 1090), unread], 10);
  assert.equal(skipped.pass, true, skipped.line);
  assert.equal(skipped.rss?.end, 109 * 2 ** 20);

  const tooShort = verdictOf([sample(0, 50, 40)], 10);
  assert.equal(tooShort.pass, false);
  assert.match(tooShort.line, /^verdict: FAIL — no RSS and descriptor figures/);
});

Deno.test("the verdict takes medians over a minute: one step after the warm-up or one spike at the end does not decide it", () => {
  // Run 2 of the first 20-minute soak: 171 MiB at the end of the warm-up (4:00), one step to
  // 195 MiB at 4:20, then 194.6-197.5 MiB to the end: the first sample after the warm-up said +15%.
  const samples = Array.from({ length: 121 }, (_, i) => {
    const atS = i * 10;
    return sample(atS, atS < 250 ? 171 : 195 + (i % 3), 1092);
  });
  const stepped = verdictOf(samples, 240);
  assert.equal(stepped.pass, true, stepped.line);
  assert.deepEqual([stepped.rss?.afterWarmup, stepped.rss?.end], [196 * 2 ** 20, 196 * 2 ** 20]);
  assert.match(stepped.line, /medians over 4:00-5:00 -> over 19:00-20:00/);

  const spike = [...samples.slice(0, -1), sample(1200, 400, 1092)];
  assert.equal(verdictOf(spike, 240).pass, true, "one spike in the last minute");
  const grown = samples.map((s) => (s.atS >= 1140 ? { ...s, fds: 1300 } : s));
  assert.match(verdictOf(grown, 240).line, /^verdict: FAIL — .*descriptors 1,092 -> 1,300/);
});

Deno.test("the soak's defaults are the chat scenario's load for 20 minutes; bad flags are refused", () => {
  const defaults = parseSoakArgs([]);
  assert.deepEqual(
    [defaults.minutes, defaults.subscribers, defaults.senders, defaults.rate, defaults.sampleS],
    [20, 1000, 10, 20, 10],
  );
  assert.equal(defaults.sendBufferBytes, 1048576);
  assert.match(defaults.svgPath, /test-output\/soak\.svg$/);
  assert.equal(parseSoakArgs(["--minutes", "0.5", "--no-pin"]).minutes, 0.5);
  assert.throws(() => parseSoakArgs(["--minutes", "0"]), /--minutes needs a number ≥ 0.01/);
  assert.throws(() => parseSoakArgs(["--duration", "5"]), /bad flag --duration/);
});
