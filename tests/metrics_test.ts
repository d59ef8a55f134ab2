/**
 * `/metrics` as an operator reads it: counters that move with traffic, connections by dialect and
 * transport, acks, the commit histogram (cumulative buckets ending in `+Inf`), the build; and with
 * workers, one scrape for the whole process, whichever worker answers it, even with a dead one.
 */

import assert from "node:assert/strict";
import { defaultConfig, mergeConfig } from "../chat/config.ts";
import { COMMIT_BUCKETS, exposition, Histogram, Metrics, wholeProcess } from "../chat/metrics.ts";
import { VERSION } from "../chat/version.ts";
import { startWorkers } from "../chat/workers.ts";
import {
  joinRoom,
  parleyDir,
  ParleyProcess,
  startTestServer,
  tempDir,
  TestClient,
  within,
} from "./support.ts";

/** One scrape's samples, by name with labels, and how long it took. */
interface Scrape {
  samples: Map<string, number>;
  ms: number;
}

/**
 * Scrapes `/metrics` over a connection of its own: with workers, each scrape may land on either
 * (`reusePort` spreads connections, not requests).
 */
async function scrape(base: URL): Promise<Scrape> {
  using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const started = performance.now();
  const response = await fetch(new URL("/metrics", base), { client });
  const text = await response.text();
  const ms = performance.now() - started;
  assert.equal(response.status, 200, text);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return { samples, ms };
}

/** The sum of every series of `family` (any labels); 0 if it has none. */
function total(samples: Map<string, number>, family: string): number {
  let sum = 0;
  for (const [name, value] of samples) {
    if (name === family || name.startsWith(`${family}{`)) sum += value;
  }
  return sum;
}

/** The value of one series; fails if it is absent. */
function value(samples: Map<string, number>, series: string): number {
  const found = samples.get(series);
  assert.ok(found !== undefined, `no ${series} in ${[...samples.keys()].join(", ")}`);
  return found;
}

/** The commit histogram's buckets in order: cumulative, the last `+Inf`, equal to `_count`. */
function assertHistogram(samples: Map<string, number>, name: string): void {
  const buckets = [...samples].filter(([series]) => series.startsWith(`${name}_bucket{`));
  const bounds = buckets.map(([series]) => /le="([^"]+)"/.exec(series)![1]);
  assert.deepEqual(bounds, [...COMMIT_BUCKETS.map(String), "+Inf"]);
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i][1] >= buckets[i - 1][1], `buckets not cumulative: ${buckets}`);
  }
  assert.equal(buckets.at(-1)![1], value(samples, `${name}_count`));
}

const V1 = 'parley_connections{dialect="parley.v1",transport="websocket"}';
const LEGACY = 'parley_connections{dialect="legacy",transport="websocket"}';

Deno.test("one process: counters, acks, connections by dialect, commits and the build move with traffic", async () => {
  await using server = await startTestServer();
  const legacy = new TestClient(server.wsUrl({ room: "m" }), null);
  await legacy.opened;
  legacy.send({ userName: "gopher", body: "first" });
  // Its own message coming back live says it is in the room.
  assert.equal(JSON.parse(await legacy.nextFrame()).body, "first");
  const { client: ann } = await joinRoom(server, { room: "m", userName: "ann" });
  for (let i = 0; i < 3; i++) ann.send({ type: "message", body: `m${i}`, clientId: `c${i}` });
  await ann.waitFor("ack", 3);
  await ann.waitFor("message", 4);
  for (let i = 0; i < 3; i++) await legacy.nextFrame();

  let { samples } = await scrape(server.url);
  assert.equal(value(samples, V1), 1);
  assert.equal(value(samples, LEGACY), 1);
  assert.equal(value(samples, "parley_messages_in_total"), 4);
  // The legacy dialect has no ack event.
  assert.equal(value(samples, "parley_acks_total"), 3);
  // Live only: gopher's own message once, ann's three to both (ann had gopher's as history).
  assert.equal(value(samples, "parley_messages_out_total"), 7);
  assert.equal(value(samples, "parley_history_messages"), 4);
  assert.equal(
    value(samples, `parley_build_info{version="${VERSION}",deno="${Deno.version.deno}"}`),
    1,
  );
  // One process has no worker label, and no other worker to be stale.
  assert.ok(samples.has("parley_event_loop_lag_seconds"));
  assert.ok(samples.has("parley_rooms"));
  assert.ok(!samples.has("parley_metrics_stale_workers"));
  const commits = value(samples, "parley_history_commit_seconds_count");
  assert.ok(commits >= 2 && commits <= 4, `${commits} commits for 4 messages in 2 turns or more`);
  assert.ok(value(samples, "parley_history_commit_seconds_sum") > 0);
  assertHistogram(samples, "parley_history_commit_seconds");

  await Promise.all([ann.close(), legacy.close()]);
  ({ samples } = await scrape(server.url));
  assert.equal(value(samples, V1), 0);
  assert.equal(value(samples, LEGACY), 0);
  assert.equal(total(samples, "parley_disconnects_total"), 2);
});

Deno.test("docs/metrics.md lists every metric /metrics gives, with its type", async () => {
  await using server = await startTestServer();
  // A connection that came and went gives the labelled families their first series.
  await (await joinRoom(server, { room: "m", userName: "ann" })).client.close();
  const text = await (await fetch(new URL("/metrics", server.url))).text();
  const doc = await Deno.readTextFile(new URL("../docs/metrics.md", import.meta.url));
  const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => ({
    name,
    type,
  }));
  assert.equal(families.length, 13, text);
  // The one family only workers give.
  families.push({ name: "parley_metrics_stale_workers", type: "gauge" });
  for (const { name, type } of families) {
    assert.match(doc, new RegExp(`^\\| \`${name}\` +\\| ${type} `, "m"), `${name} (${type})`);
  }
});

Deno.test("a histogram counts each observation in the first bucket whose bound it does not pass, cumulatively, up to +Inf", () => {
  const histogram = new Histogram([0.001, 0.01, 0.1]);
  for (const seconds of [0.0002, 0.001, 0.004, 0.05, 7]) histogram.observe(seconds);
  assert.deepEqual(histogram.series(), {
    '_bucket{le="0.001"}': 2,
    '_bucket{le="0.01"}': 3,
    '_bucket{le="0.1"}': 4,
    '_bucket{le="+Inf"}': 5,
    _sum: 0.0002 + 0.001 + 0.004 + 0.05 + 7,
    _count: 5,
  });
});

Deno.test("the whole process adds counters, connections and commits; shared gauges are counted once, per-worker ones kept apart", () => {
  const one = new Metrics({ worker: 1 });
  const two = new Metrics({ worker: 2 });
  one.messagesIn = 3;
  two.messagesIn = 4;
  one.opened("parley.v1", "websocket");
  two.opened("parley.v1", "websocket");
  two.opened("legacy", "websocket");
  two.closed(1001, "legacy", "websocket");
  // Codes a peer makes up share one series, whatever it picks.
  for (let code = 3000; code < 3100; code++) {
    one.opened("parley.v1", "websocket");
    one.closed(code, "parley.v1", "websocket");
  }
  one.commits.observe(0.002);
  two.commits.observe(0.3);
  const whole = wholeProcess(
    one.samples({ rooms: 2, historyMessages: 10 }),
    [two.samples({ rooms: 5, historyMessages: 10 })],
  );
  assert.deepEqual(whole.parley_messages_in_total, { "": 7 });
  assert.deepEqual(whole.parley_connections, {
    '{dialect="parley.v1",transport="websocket"}': 2,
    '{dialect="legacy",transport="websocket"}': 0,
  });
  assert.deepEqual(whole.parley_disconnects_total, { '{code="other"}': 100, '{code="1001"}': 1 });
  assert.deepEqual(whole.parley_rooms, { '{worker="1"}': 2, '{worker="2"}': 5 });
  // Both workers count the one history file, and run the one build.
  assert.deepEqual(whole.parley_history_messages, { "": 10 });
  assert.deepEqual(Object.values(whole.parley_build_info), [1]);
  assert.equal(whole.parley_history_commit_seconds._count, 2);
  assert.equal(whole.parley_history_commit_seconds['_bucket{le="0.0025"}'], 1);
  assert.equal(whole.parley_history_commit_seconds['_bucket{le="0.5"}'], 2);
  const text = exposition(whole);
  // Each family's HELP and TYPE once, before its series.
  assert.equal(text.match(/^# TYPE parley_rooms gauge$/gm)?.length, 1);
  assert.match(text, /^# TYPE parley_history_commit_seconds histogram$/m);
  assert.match(text, /^parley_rooms\{worker="2"\} 5$/m);
});

Deno.test("workers: 2: every scrape, whichever worker answers it, is the sum of both workers", async () => {
  await using dir = await parleyDir({
    workers: 2,
    history: { path: "parley.db" },
    limits: { messagesPerSecond: 1000, burst: 1000, readsPerSecond: 1e6 },
  }, "parley-metrics-");
  await using parley = await ParleyProcess.start(dir.path);
  const count = 16;
  const clients: TestClient[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const client = new TestClient(parley.wsUrl({ room: "shared", userName: `u${i}` }));
      clients.push(client);
      await client.next("welcome");
    }
    for (let i = 0; i < count; i++) {
      clients[i].send({ type: "message", body: `from u${i}`, clientId: `c${i}` });
    }
    for (const client of clients) {
      await client.next("ack");
      await client.waitFor("message", count, 10_000);
    }
    for (let round = 0; round < 8; round++) {
      const { samples } = await scrape(parley.url);
      const at = `scrape ${round}`;
      // reusePort spread the clients: both workers have the room open.
      assert.equal(value(samples, 'parley_rooms{worker="1"}'), 1, at);
      assert.equal(value(samples, 'parley_rooms{worker="2"}'), 1, at);
      assert.equal(value(samples, V1), count, at);
      assert.equal(value(samples, "parley_messages_in_total"), count, at);
      assert.equal(value(samples, "parley_acks_total"), count, at);
      assert.equal(value(samples, "parley_messages_out_total"), count * count, at);
      assert.equal(value(samples, "parley_history_messages"), count, at);
      assert.equal(total(samples, "parley_build_info"), 1, at);
      assert.equal(value(samples, "parley_metrics_stale_workers"), 0, at);
      assert.ok(samples.has('parley_event_loop_lag_seconds{worker="1"}'), at);
      assert.ok(samples.has('parley_event_loop_lag_seconds{worker="2"}'), at);
      assert.ok(value(samples, "parley_history_commit_seconds_count") >= 2, at);
      assertHistogram(samples, "parley_history_commit_seconds");
    }
    await Promise.all(clients.splice(0, count / 2).map((client) => client.close()));
    // The server hears a close a moment after the client: scrape until both workers have.
    await within(
      (async () => {
        while (value((await scrape(parley.url)).samples, V1) !== count / 2) {
          // Another scrape, on a connection of its own.
        }
      })(),
      "the closes to show in one scrape",
    );
  } finally {
    for (const client of clients) await client.close().catch(() => {});
  }
});

Deno.test("a dead worker does not hold a scrape up: it counts with its last samples, as stale", async () => {
  await using dir = await tempDir("parley-metrics-pool-");
  const config = mergeConfig(defaultConfig, {
    port: 0,
    logfilePath: `${dir.path}/parley.log`,
    history: { path: `${dir.path}/parley.db` },
    limits: { readsPerSecond: 1e6 },
  }, "test config");
  const pool = await startWorkers(config, 2, { stopMs: 1000 });
  const wsUrl = (userName: string) =>
    new URL(`/chat?room=r&userName=${userName}`, pool.url).href.replace(/^http/, "ws");
  const clients: TestClient[] = [];
  try {
    const count = 12;
    for (let i = 0; i < count; i++) {
      const client = new TestClient(wsUrl(`u${i}`));
      clients.push(client);
      await client.next("welcome");
      client.send({ type: "message", body: "hi", clientId: "1" });
      await client.next("ack");
    }
    const before = (await scrape(pool.url)).samples;
    assert.equal(value(before, "parley_metrics_stale_workers"), 0);
    assert.equal(value(before, 'parley_rooms{worker="2"}'), 1, "worker 2 got no client");
    assert.equal(value(before, "parley_acks_total"), count);
    // Like a worker whose loop never comes back: it answers nothing, and says nothing.
    pool.workers[1].terminate();
    let after: Scrape | null = null;
    // Connections the kernel had already given to the dead worker's socket are reset.
    for (let attempt = 0; after === null && attempt < 20; attempt++) {
      after = await scrape(pool.url).catch(() => null);
    }
    assert.ok(after !== null, "no scrape was answered after the worker died");
    assert.equal(value(after.samples, "parley_metrics_stale_workers"), 1);
    assert.ok(after.ms < 3000, `the scrape took ${after.ms} ms`);
    // Its last samples are still in the sum: no counter goes back.
    assert.equal(value(after.samples, "parley_acks_total"), count);
    assert.ok(after.samples.has('parley_event_loop_lag_seconds{worker="2"}'));
  } finally {
    for (const client of clients) await client.close().catch(() => {});
    await within(pool.shutdown(), "the shutdown", 3000);
  }
});
