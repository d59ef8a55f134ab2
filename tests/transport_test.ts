import assert from "node:assert/strict";
import { CloseCode, closeReason, EventStreamTransport } from "../chat/transport.ts";
import { Wakeup, within } from "./support.ts";

Deno.test("a close reason is cut to 123 bytes of UTF-8, never inside a character", () => {
  const bytes = (text: string) => new TextEncoder().encode(text).length;
  assert.equal(closeReason("short"), "short");
  assert.equal(closeReason("a".repeat(200)), "a".repeat(123));
  const accented = closeReason("é".repeat(100));
  assert.equal(accented, "é".repeat(61));
  assert.ok(bytes(accented) <= 123);
  const emoji = closeReason("x" + "😀".repeat(40));
  assert.equal(emoji, "x" + "😀".repeat(30));
  // WebSocket.close throws past 123 bytes: what closeReason gives it never does.
  assert.ok(bytes(closeReason("€".repeat(60))) <= 123);
});

/** An event stream with the test as its HTTP server: it reads the body when it says so. */
function eventStream(keepaliveMs = 60_000) {
  const transport = new EventStreamTransport(keepaliveMs);
  const heard: string[] = [];
  const changed = new Wakeup();
  const hear = (what: string) => {
    heard.push(what);
    changed.wake();
  };
  transport.listen({
    opened: () => hear("opened"),
    received: () => hear("received"),
    closed: (code, reason) => hear(`closed ${code} ${reason}`),
  });
  const reader = transport.body.getReader();
  const decoder = new TextDecoder();
  const read = async () => {
    const { value, done } = await within(reader.read(), "a read of the body");
    return done ? null : decoder.decode(value);
  };
  /** Waits until the transport has told the listener `what`. */
  const told = (what: string) => changed.until(() => heard.includes(what), what);
  return { transport, heard, reader, read, told };
}

Deno.test("an event stream opens when the body is first read; what it sent and was not read yet is its bufferedAmount", async () => {
  const { transport, heard, read, told } = eventStream();
  assert.equal(transport.state, "connecting");
  transport.send("dropped: not open yet");
  const first = read();
  await told("opened");
  assert.deepEqual(heard, ["opened"]);
  assert.equal(transport.state, "open");
  transport.send("a waiting read takes this at once\n");
  assert.equal(await first, "a waiting read takes this at once\n");
  assert.equal(transport.bufferedAmount, 0);
  const piece = "x".repeat(40_000);
  for (let i = 0; i < 3; i++) transport.send(piece);
  transport.send("é");
  assert.equal(transport.bufferedAmount, 120_002, "bytes of UTF-8");
  let drained = false;
  const halfway = transport.drained(50_000).then(() => drained = true);
  await Promise.resolve();
  assert.equal(drained, false);
  // A read takes up to 64 KiB: what it hands over no longer counts, and cannot grow unseen.
  assert.equal((await read())?.length, 80_000);
  assert.equal(transport.bufferedAmount, 40_002);
  await halfway;
  assert.equal(await read(), piece + "é");
  assert.equal(transport.bufferedAmount, 0);
  await transport.drained(0);
  transport.close(1001, "done");
});

Deno.test("closing an event stream drops what waits for a last error event; it ends once that is read, and says so once", async () => {
  const { transport, heard, read, told } = eventStream();
  const first = read();
  await told("opened");
  transport.send("sent: the read was waiting");
  assert.equal(await first, "sent: the read was waiting");
  transport.send("a".repeat(100_000));
  const waiting = transport.drained(10);
  transport.close(CloseCode.tryAgainLater, "too slow: the send buffer is full; reconnect");
  await waiting;
  assert.equal(transport.state, "closed");
  assert.equal(transport.bufferedAmount, 0);
  transport.send("ignored");
  transport.close(CloseCode.goingAway, "ignored");
  assert.deepEqual(heard, ["opened"], "closed once the last event is read");
  assert.equal(
    await read(),
    'event: error\ndata: {"type":"error","code":"too_slow",' +
      '"message":"too slow: the send buffer is full; reconnect"}\n\n',
  );
  assert.equal(await read(), null);
  assert.deepEqual(heard, ["opened", "closed 1013 too slow: the send buffer is full; reconnect"]);
});

Deno.test("an event stream whose peer goes away says so once, with 1001", async () => {
  const { transport, heard, reader, read, told } = eventStream();
  const pending = read();
  await told("opened");
  transport.send("hello");
  await pending;
  await reader.cancel();
  transport.close(CloseCode.goingAway, "server shutting down");
  assert.equal(transport.state, "closed");
  assert.deepEqual(heard, ["opened", "closed 1001 "]);
});

Deno.test("a quiet event stream sends a keepalive comment", async () => {
  const { transport, read } = eventStream(5);
  assert.equal(await read(), ": keepalive\n\n");
  transport.close(CloseCode.goingAway, "done");
  assert.match((await read())!, /"code":"going_away"/);
});
