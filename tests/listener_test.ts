/**
 * parley out of file descriptors: it lowers maxConnections to what its limit allows, and a
 * listener that fails to accept ("Too many open files") is served again once descriptors are free.
 */

import assert from "node:assert/strict";
import {
  eventually,
  limitedParley,
  parleyDir,
  ParleyProcess,
  TestClient,
  within,
} from "./support.ts";

/** Opens idle TCP connections to `port` until one is refused or hangs, or there are `most`. */
async function exhaust(port: number, most: number): Promise<Deno.Conn[]> {
  const sockets: Deno.Conn[] = [];
  try {
    while (sockets.length < most) {
      sockets.push(
        await within(Deno.connect({ hostname: "127.0.0.1", port }), "a connection", 2000),
      );
    }
  } catch {
    // Refused or left waiting: the listener is out of descriptors.
  }
  return sockets;
}

Deno.test("out of file descriptors, parley stays up and serves again once they are free", async () => {
  await using dir = await parleyDir();
  const logPath = `${dir.path}/parley.log`;
  const log = () => Deno.readTextFile(logPath);
  await using parley = await ParleyProcess.start(dir.path, {
    command: limitedParley(`${dir.path}/config.json`, 256),
  });
  assert.match(
    await log(),
    /maxConnections lowered from 10000 to \d+: the process may open 256 files; .*ulimit -n/,
  );
  let exited = false;
  parley.exited.then(() => exited = true);
  const port = Number(parley.url.port);
  const sockets = await exhaust(port, 400);
  try {
    await eventually(
      async () => /the listener on port \d+ failed \(.*Too many open files/.test(await log()),
      "the listener's failure in the log",
    );
  } finally {
    for (const socket of sockets) socket.close();
  }
  await eventually(async () => {
    const response = await fetch(new URL("/healthz", parley.url)).catch(() => null);
    await response?.body?.cancel();
    return response?.status === 200;
  }, "/healthz to answer again");
  await using client = new TestClient(parley.wsUrl({ room: "back", userName: "ann" }));
  await client.next("welcome");
  client.send({ type: "message", body: "still here", clientId: "c1" });
  assert.equal((await client.next("ack")).clientId, "c1");
  assert.match(await log(), /listening again on port \d+/);
  assert.ok(!exited, "the same process answers");
});
