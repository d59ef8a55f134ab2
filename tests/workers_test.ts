import assert from "node:assert/strict";
import { defaultConfig, mergeConfig } from "../chat/config.ts";
import { startWorkers } from "../chat/workers.ts";
import { parleyDir, ParleyProcess, tempDir, TestClient, within } from "./support.ts";

Deno.test("workers share one port and their rooms: everyone sees every message and everyone online", async () => {
  await using dir = await parleyDir({
    workers: 2,
    history: { path: "parley.db" },
    limits: { messagesPerSecond: 1000, burst: 1000 },
  }, "parley-workers-");
  await using parley = await ParleyProcess.start(dir.path);
  const clients: TestClient[] = [];
  try {
    assert.match(parley.banner, /in 2 workers/);
    const count = 24;
    for (let i = 0; i < count; i++) {
      const client = new TestClient(parley.wsUrl({ room: "shared", userName: `u${i}` }));
      clients.push(client);
      await client.next("welcome");
    }
    // Presence crosses workers: the last one to join sees all names, and so does the first.
    const everyone = Array.from({ length: count }, (_, i) => `u${i}`);
    await clients[0].waitFor("join", count - 1);
    assert.deepEqual(
      [...clients[0].events.filter((e) => e.type === "join").at(-1)!.users].sort(),
      everyone.sort(),
    );
    for (let i = 0; i < count; i++) {
      clients[i].send({ type: "message", body: `from u${i}`, clientId: `c${i}` });
    }
    for (const client of clients) {
      const messages = await client.waitFor("message", count, 10_000);
      assert.equal(messages.length, count);
      assert.deepEqual(messages.map((m) => m.id), Array.from({ length: count }, (_, i) => i + 1));
    }
    const log = await Deno.readTextFile(`${dir.path}/parley.log`);
    assert.match(log, /worker 1: open/);
    assert.match(log, /worker 2: open/);
    parley.kill("SIGTERM");
    for (const client of clients) {
      assert.equal((await within(client.closed, "the close")).code, 1001);
    }
    assert.equal((await within(parley.exited, "parley to exit")).code, 0);
  } finally {
    for (const client of clients) await client.close().catch(() => {});
  }
});

Deno.test("a worker that dies is reported, and the pool still shuts down at once", async () => {
  await using dir = await tempDir("parley-pool-");
  const config = mergeConfig(defaultConfig, {
    port: 0,
    logfilePath: `${dir.path}/parley.log`,
    history: { path: `${dir.path}/parley.db` },
  }, "test config");
  const pool = await startWorkers(config, 1, { pingMs: 100, stopMs: 2000 });
  try {
    assert.equal((await fetch(new URL("/healthz", pool.url))).status, 200);
    // A worker understands only what the pool sends it: anything else kills it, like a bug would.
    pool.workers[0].postMessage({ type: "no such message" });
    const failure = await within(pool.failed, "the pool to see its worker die");
    assert.match(failure.message, /^worker 1 failed: .*unknown message from the main thread/);
  } finally {
    await within(pool.shutdown(), "the shutdown", 3000);
  }
});
