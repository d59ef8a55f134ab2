import assert from "node:assert/strict";
import { parleyCommand, TestClient, within } from "./support.ts";

Deno.test("workers share one port and their rooms: everyone sees every message and everyone online", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-workers-" });
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      port: 0,
      workers: 2,
      logfilePath: `${dir}/parley.log`,
      history: { path: `${dir}/parley.db` },
      limits: { messagesPerSecond: 1000, burst: 1000 },
    }),
  );
  const process = parleyCommand(`${dir}/config.json`, dir).spawn();
  const lines = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const clients: TestClient[] = [];
  try {
    const line = (await within(lines.read(), "the URL line", 20_000)).value ?? "";
    assert.match(line, /in 2 workers/);
    const url = line.match(/http:\/\/\S+/)![0].replace("http", "ws");
    const count = 24;
    for (let i = 0; i < count; i++) {
      const client = new TestClient(`${url}chat?room=shared&userName=u${i}`);
      await client.next("welcome");
      clients.push(client);
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
    const log = await Deno.readTextFile(`${dir}/parley.log`);
    assert.match(log, /worker 1: open/);
    assert.match(log, /worker 2: open/);
    process.kill("SIGTERM");
    for (const client of clients) {
      assert.equal((await within(client.closed, "the close")).code, 1001);
    }
    assert.equal((await within(process.status, "parley to exit")).code, 0);
  } finally {
    for (const client of clients) {
      if (client.socket.readyState === WebSocket.OPEN) await client.close();
    }
    try {
      process.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await lines.cancel();
    await process.stderr.cancel();
    await process.status;
    await Deno.remove(dir, { recursive: true });
  }
});
