/**
 * The event-loop lag gauge: a loop really blocked (a busy loop, not a sleep) shows as lag, in the
 * monitor and in `/metrics`, for the window and no longer; the monitor never keeps a process
 * alive and stops with the services.
 */

import assert from "node:assert/strict";
import { defaultConfig, mergeConfig } from "../chat/config.ts";
import { LagMonitor } from "../chat/lag.ts";
import { openServices } from "../chat/services.ts";
import { metric, startTestServer, tempDir } from "./support.ts";

/** Keeps the event loop busy for `ms` milliseconds: nothing else in this thread runs meanwhile. */
function blockLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy on purpose.
  }
}

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("a loop blocked for 200 ms shows as lag at once, for the window, then not", async () => {
  using monitor = new LagMonitor({ windowMs: 1000 });
  assert.equal(monitor.maxSeconds(), 0);
  blockLoop(200);
  // Read before its timer could fire: the overdue tick counts.
  assert.ok(monitor.maxSeconds() >= 0.17, `lag ${monitor.maxSeconds()} s right after the block`);
  const blockEnded = performance.now();
  await tick(100);
  assert.ok(monitor.maxSeconds() >= 0.17, `lag ${monitor.maxSeconds()} s 100 ms after the block`);
  // The late tick leaves the ring after 50 more ticks of at least 20 ms each.
  while (monitor.maxSeconds() >= 0.17 && performance.now() - blockEnded < 10_000) await tick(20);
  const heldMs = performance.now() - blockEnded;
  assert.ok(monitor.maxSeconds() < 0.17, `lag still ${monitor.maxSeconds()} s after 10 s`);
  assert.ok(heldMs >= 900, `the lag left the 1 s window after ${heldMs.toFixed(0)} ms`);
});

Deno.test("/metrics reports the lag of the server's event loop as a gauge", async () => {
  await using server = await startTestServer();
  const text = await (await fetch(new URL("/metrics", server.url))).text();
  assert.match(text, /^# TYPE parley_event_loop_lag_seconds gauge$/m);
  assert.match(text, /^# HELP parley_event_loop_lag_seconds .*over the last 10 s/m);
  // The server runs in this thread: blocking the test blocks it.
  blockLoop(250);
  const lag = await metric(server, "parley_event_loop_lag_seconds");
  assert.ok(lag >= 0.2 && lag < 10, `parley_event_loop_lag_seconds ${lag} after a 250 ms block`);
});

Deno.test("disposing the services stops their lag monitor", async () => {
  await using dir = await tempDir();
  const config = mergeConfig(defaultConfig, {
    logfilePath: `${dir.path}/parley.log`,
    history: { path: ":memory:" },
  }, "test config");
  const services = await openServices(config, { quiet: true });
  const lag = services.metrics.lag;
  assert.ok(lag !== null, "the services' metrics have no lag monitor");
  await services[Symbol.asyncDispose]();
  blockLoop(200);
  await tick(100);
  assert.ok(lag.maxSeconds() < 0.15, `a stopped monitor still measures: ${lag.maxSeconds()} s`);
});

Deno.test("the monitor's timer does not keep a process alive", async () => {
  const lagModule = new URL("../chat/lag.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { LagMonitor } from "${lagModule}"; new LagMonitor();`],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    child.output().then((out) => out),
    new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 15_000)),
  ]);
  clearTimeout(timer);
  if (exited === null) child.kill("SIGKILL");
  assert.ok(exited !== null, "the process was still running 15 s after its last statement");
  assert.equal(exited.code, 0, new TextDecoder().decode(exited.stderr));
});
