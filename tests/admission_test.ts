import assert from "node:assert/strict";
import {
  Admission,
  type AdmissionLimits,
  allowedHostsOf,
  isLoopbackName,
  TokenBucket,
} from "../chat/admission.ts";
import { joinRoom, startTestServer, TestClient, type TestServer, within } from "./support.ts";

const limits: AdmissionLimits = {
  maxConnections: 3,
  maxConnectionsPerIp: 2,
  messagesPerSecond: 1,
  burst: 2,
  readsPerSecond: 1,
};

Deno.test("an address gets leases up to maxConnectionsPerIp; others are counted apart", () => {
  const admission = new Admission(limits, []);
  const first = admission.lease("10.0.0.1");
  const second = admission.lease("10.0.0.1");
  assert.ok(first !== null && second !== null);
  assert.equal(admission.lease("10.0.0.1"), null);
  assert.equal(admission.heldBy("10.0.0.1"), 2);
  assert.ok(admission.lease("10.0.0.2") !== null);
  assert.equal(admission.heldBy("10.0.0.2"), 1);
  first.release();
  assert.equal(admission.heldBy("10.0.0.1"), 1);
  assert.ok(admission.lease("10.0.0.1") !== null);
});

Deno.test("releasing a lease twice gives back one place, not two", () => {
  const admission = new Admission(limits, []);
  const first = admission.lease("10.0.0.1")!;
  admission.lease("10.0.0.1")!;
  first.release();
  first.release();
  assert.equal(admission.heldBy("10.0.0.1"), 1);
  assert.equal(admission.open, 1);
  assert.ok(admission.lease("10.0.0.1") !== null);
  assert.equal(admission.lease("10.0.0.1"), null);
});

Deno.test("the server is full at maxConnections leases, from any addresses", () => {
  const admission = new Admission(limits, []);
  const leases = ["a", "b", "c"].map((address) => admission.lease(address)!);
  assert.equal(admission.open, 3);
  assert.ok(admission.full);
  leases[1].release();
  leases[1].release();
  assert.equal(admission.open, 2);
  assert.ok(!admission.full);
});

Deno.test("an origin is allowed if absent, the server's own, or listed", () => {
  const admission = new Admission(limits, ["https://chat.example"]);
  assert.ok(admission.originAllowed(null, "http://127.0.0.1:8080"));
  assert.ok(admission.originAllowed("http://127.0.0.1:8080", "http://127.0.0.1:8080"));
  assert.ok(admission.originAllowed("https://chat.example", "http://127.0.0.1:8080"));
  assert.ok(!admission.originAllowed("https://evil.example", "http://127.0.0.1:8080"));
  assert.ok(!admission.originAllowed("null", "http://127.0.0.1:8080"));
});

Deno.test("with a host list, a Host is allowed if loopback, listed, or absent; any port unless listed with one", () => {
  const admission = new Admission(limits, [], ["chat.example", "proxy.example:8443"]);
  const allowed = [
    null,
    "127.0.0.1",
    "127.0.0.1:8080",
    "127.1.2.3:80",
    "localhost",
    "LOCALHOST:8080",
    "localhost.",
    "app.localhost:3000",
    "[::1]",
    "[::1]:8080",
    "chat.example",
    "Chat.Example:443",
    "proxy.example:8443",
  ];
  for (const host of allowed) assert.ok(admission.hostAllowed(host), String(host));
  const refused = [
    "evil.example",
    "evil.example:8080",
    "127.0.0.1.evil.example",
    "localhost.evil.example",
    "proxy.example",
    "proxy.example:80",
    "chat.example.evil",
    "[::2]:8080",
    "0.0.0.0:8080",
    "",
    "a b",
    "host:port",
  ];
  for (const host of refused) assert.ok(!admission.hostAllowed(host), host);
  assert.ok(new Admission(limits, []).hostAllowed("evil.example"), "no list: any host");
});

Deno.test("a loopback hostName checks Host always; another only with allowedHosts", () => {
  for (const hostName of ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"]) {
    assert.ok(isLoopbackName(hostName), hostName);
    assert.deepEqual(allowedHostsOf({ hostName, allowedHosts: [] }), [], hostName);
  }
  assert.equal(allowedHostsOf({ hostName: "0.0.0.0", allowedHosts: [] }), null);
  assert.equal(allowedHostsOf({ hostName: "192.168.1.5", allowedHosts: [] }), null);
  assert.deepEqual(allowedHostsOf({ hostName: "0.0.0.0", allowedHosts: ["chat.example"] }), [
    "chat.example",
  ]);
});

Deno.test("reads from an address are let in up to twice readsPerSecond at once", () => {
  const admission = new Admission({ ...limits, readsPerSecond: 2 }, []);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => admission.mayRead("a")), [
    true,
    true,
    true,
    true,
    false,
  ]);
  assert.equal(admission.mayRead("b"), true);
  assert.equal(admission.mayPost("a"), true, "posts have their own bucket");
});

Deno.test("posts from an address are let in up to the burst, and each address has its own", () => {
  const admission = new Admission({ ...limits, messagesPerSecond: 0.001 }, []);
  assert.deepEqual([1, 2, 3].map(() => admission.mayPost("a")), [true, true, false]);
  assert.equal(admission.mayPost("b"), true);
});

Deno.test("a token bucket allows the burst at once, and no more", () => {
  const bucket = new TokenBucket(0.001, 2);
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [true, true, false]);
});

/**
 * A raw WebSocket handshake from a client that then answers nothing, not even a ping; resolves
 * when the server has ended the connection.
 */
async function muteClient(server: TestServer, userName: string): Promise<{ ended: Promise<void> }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await conn.write(new TextEncoder().encode(
    `GET /chat?room=r&userName=${userName} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: parley.v1\r\n\r\n",
  ));
  const ended = (async () => {
    const buffer = new Uint8Array(4096);
    try {
      while (await conn.read(buffer) !== null) { /* ignore everything */ }
    } finally {
      conn.close();
    }
  })();
  return { ended };
}

Deno.test("a connection closed for idleness gives back its place once: the per-address limit holds", async () => {
  await using server = await startTestServer({
    limits: { idleTimeoutSeconds: 1, maxConnectionsPerIp: 2 },
  });
  const { client: first } = await joinRoom(server, { room: "r", userName: "a" });
  // The idle close makes the socket report its close twice.
  await within((await muteClient(server, "mute")).ended, "the idle close", 10_000);
  const { client: second } = await joinRoom(server, { room: "r", userName: "b" });
  const third = new TestClient(server.wsUrl({ room: "r", userName: "c" }));
  const closed = await within(third.closed, "the refusal");
  assert.equal(closed.code, 1008);
  assert.match(closed.reason, /too many connections/);
  await Promise.all([first.close(), second.close()]);
});
