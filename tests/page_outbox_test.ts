/**
 * The page's unsent messages (static/outbox.js): sent once each with a clientId, paced under the
 * server's announced limits, settled or refused by clientId alone, resent with the same clientId.
 */
import assert from "node:assert/strict";
import { Outbox, RESEND_AFTER_MS, UNAVAILABLE_RETRY_MS } from "../static/outbox.js";
import { FakeTimers } from "./page_fakes.ts";

interface Sent {
  type: string;
  body: string;
  clientId: string;
}

/** An outbox on a fake clock whose socket is `online`; what it sends lands in `sent`. */
function setup() {
  const timers = new FakeTimers();
  const sent: Sent[] = [];
  const changed: string[] = [];
  const link = { online: true };
  let ids = 0;
  const outbox = new Outbox({
    send: (text: string) => {
      if (!link.online) return false;
      sent.push(JSON.parse(text));
      return true;
    },
    onChange: (entry) => changed.push(`${entry.clientId}:${entry.state}`),
    timers,
    now: () => timers.now,
    random: () => 0.5,
    newId: () => `c${++ids}`,
  });
  outbox.setRoom("lobby");
  return { outbox, timers, sent, changed, link };
}

const states = (outbox: Outbox) => outbox.entries().map((e) => `${e.clientId}:${e.state}`);

Deno.test("a message goes out at once with its clientId, and leaves when settled", () => {
  const { outbox, sent } = setup();
  const entry = outbox.add("hello");
  assert.deepEqual(sent, [{ type: "message", body: "hello", clientId: "c1" }]);
  assert.equal(entry.state, "sent");
  assert.equal(outbox.settle("c1"), entry);
  assert.deepEqual(outbox.entries(), []);
  // A second settle (the ack after the message came back) finds nothing.
  assert.equal(outbox.settle("c1"), undefined);
});

Deno.test("sending is paced under the default limits until a welcome gives others", () => {
  const { outbox, timers, sent } = setup();
  // The server's default bucket is 20 with 10/s; the page keeps to 80 % of both.
  for (let i = 0; i < 20; i++) outbox.add(`m${i}`);
  assert.equal(sent.length, 16);
  assert.equal(timers.nextDelay(), 125);
  timers.advance(125);
  assert.equal(sent.length, 17);
  timers.advance(3 * 125);
  assert.equal(sent.length, 20);
  assert.deepEqual(sent.map((s) => s.body), Array.from({ length: 20 }, (_, i) => `m${i}`));
  assert.equal(timers.nextDelay(), null);

  const slow = setup();
  slow.outbox.setLimits({ maxMessageBytes: 4096, messagesPerSecond: 1, burst: 3 });
  for (const body of ["a", "b", "c", "d"]) slow.outbox.add(body);
  assert.deepEqual(slow.sent.map((s) => s.body), ["a", "b"]);
  slow.timers.advance(1249);
  assert.equal(slow.sent.length, 2);
  slow.timers.advance(1);
  assert.deepEqual(slow.sent.map((s) => s.body), ["a", "b", "c"]);
});

Deno.test("a body over the announced size fails at once and is never sent", () => {
  const { outbox, sent, changed } = setup();
  outbox.setLimits({ maxMessageBytes: 10, messagesPerSecond: 10, burst: 20 });
  const entry = outbox.add("ünïcödé!!"); // 9 characters, 13 bytes
  assert.equal(entry.state, "failed");
  assert.equal(entry.reason, "too long");
  assert.match(entry.detail, /13 bytes; the limit is 10/);
  assert.deepEqual(changed, ["c1:failed"]);
  outbox.add("short");
  assert.deepEqual(sent.map((s) => s.body), ["short"]);
  // Retrying cannot help while the limit stands.
  outbox.retry("c1");
  assert.equal(entry.state, "failed");
  assert.deepEqual(sent.map((s) => s.body), ["short"]);
});

Deno.test("an error marks exactly the message its clientId names", () => {
  const { outbox } = setup();
  outbox.add("first");
  outbox.add("a long one that the server refused");
  outbox.add("third");
  const refused = outbox.refuse("c2", "too_large", "message is 5000 bytes; the limit is 4096");
  assert.equal(refused?.reason, "too long");
  assert.match(refused?.detail ?? "", /5000 bytes/);
  outbox.refuse("c3", "rate_limited", "slow down");
  assert.deepEqual(states(outbox), ["c1:sent", "c2:failed", "c3:failed"]);
  assert.equal(outbox.entries()[2].reason, "sending too fast");
  assert.equal(outbox.refuse("nobody's", "too_large", "x"), undefined);
  assert.deepEqual(states(outbox), ["c1:sent", "c2:failed", "c3:failed"]);
});

Deno.test("unavailable: the message is sent again, same clientId, after a growing wait", () => {
  const { outbox, timers, sent } = setup();
  outbox.add("store me");
  outbox.refuse("c1", "unavailable", "the message was not stored");
  assert.deepEqual(states(outbox), ["c1:waiting"]);
  timers.advance(UNAVAILABLE_RETRY_MS - 1);
  assert.equal(sent.length, 1);
  timers.advance(1);
  assert.deepEqual(sent.map((s) => s.clientId), ["c1", "c1"]);
  outbox.refuse("c1", "unavailable", "still not");
  timers.advance(2 * UNAVAILABLE_RETRY_MS - 1);
  assert.equal(sent.length, 2);
  timers.advance(1);
  assert.equal(sent.length, 3);
  outbox.settle("c1");
  assert.deepEqual(outbox.entries(), []);
});

Deno.test("offline, messages wait; after a drop, what was in flight is sent again", () => {
  const { outbox, sent, link } = setup();
  link.online = false;
  outbox.add("typed offline");
  assert.deepEqual(states(outbox), ["c1:queued"]);
  link.online = true;
  outbox.pump();
  outbox.add("second");
  assert.deepEqual(states(outbox), ["c1:sent", "c2:sent"]);
  outbox.settle("c2");
  outbox.requeue(); // the socket dropped before c1's ack
  assert.deepEqual(states(outbox), ["c1:queued"]);
  outbox.pump(); // the next welcome
  assert.deepEqual(sent.map((s) => s.clientId), ["c1", "c2", "c1"]);
});

Deno.test("a message without an answer for too long is sent again", () => {
  const { outbox, timers, sent } = setup();
  outbox.add("anyone?");
  timers.advance(RESEND_AFTER_MS);
  outbox.resendStale();
  assert.equal(sent.length, 1);
  timers.advance(1);
  outbox.resendStale();
  assert.deepEqual(sent.map((s) => s.clientId), ["c1", "c1"]);
});

Deno.test("Retry sends a failed message again; Edit takes it out", () => {
  const { outbox, sent, changed } = setup();
  outbox.add("one");
  outbox.add("two");
  outbox.refuse("c1", "rate_limited", "slow down");
  outbox.refuse("c2", "rate_limited", "slow down");
  assert.equal(outbox.take("c9"), undefined);
  outbox.retry("c1");
  assert.deepEqual(changed, ["c1:failed", "c2:failed", "c1:queued"]);
  assert.deepEqual(states(outbox), ["c1:sent", "c2:failed"]);
  assert.equal(outbox.take("c1"), undefined, "only a failed message can be edited");
  assert.equal(outbox.take("c2")?.body, "two");
  assert.deepEqual(states(outbox), ["c1:sent"]);
  assert.deepEqual(sent.map((s) => s.clientId), ["c1", "c2", "c1"]);
});

Deno.test("each room keeps its own unsent messages; a new name forgets them all", () => {
  const { outbox, sent, link } = setup();
  outbox.add("in the lobby");
  outbox.setRoom("garden");
  assert.deepEqual(outbox.entries(), []);
  link.online = false;
  outbox.add("in the garden");
  outbox.setRoom("lobby");
  // Coming back, the lobby's message in flight is queued to go out on the new socket.
  assert.deepEqual(states(outbox), ["c1:queued"]);
  outbox.setRoom("garden");
  assert.deepEqual(states(outbox), ["c2:queued"]);
  outbox.clear();
  outbox.setRoom("lobby");
  assert.deepEqual(outbox.entries(), []);
  assert.equal(sent.length, 1);
});

Deno.test("edits, deletes and reactions go out with a clientId and are resent like messages", () => {
  const { outbox, timers, sent, link } = setup();
  outbox.add("hello");
  const edit = outbox.change({ type: "edit", messageId: 7, body: "hello, fixed" });
  outbox.change({ type: "react", messageId: 7, emoji: "👍", on: true });
  outbox.change({ type: "delete", messageId: 8 });
  assert.deepEqual(sent, [
    { type: "message", body: "hello", clientId: "c1" },
    { type: "edit", messageId: 7, body: "hello, fixed", clientId: "c2" },
    { type: "react", messageId: 7, emoji: "👍", on: true, clientId: "c3" },
    { type: "delete", messageId: 8, clientId: "c4" },
  ]);
  assert.equal(edit.command?.type, "edit");
  assert.deepEqual(states(outbox), ["c1:sent"], "changes are not drawn as unsent messages");

  // Acked: it leaves. Unanswered: sent again after a while, with the same clientId.
  assert.equal(outbox.settle("c3")?.command?.type, "react");
  link.online = false;
  outbox.requeue();
  link.online = true;
  outbox.pump();
  assert.deepEqual(sent.slice(4).map((s) => s.clientId), ["c1", "c2", "c4"]);
  timers.advance(RESEND_AFTER_MS + 1);
  outbox.resendStale();
  assert.deepEqual(sent.slice(7).map((s) => s.clientId), ["c1", "c2", "c4"]);
});

Deno.test("a refused change fails and leaves (no Retry); unavailable is retried", () => {
  const { outbox, timers, sent, changed } = setup();
  outbox.change({ type: "edit", messageId: 3, body: "mine now" });
  outbox.change({ type: "delete", messageId: 4 });
  outbox.change({ type: "react", messageId: 5, emoji: "🎉", on: true });
  const forbidden = outbox.refuse("c1", "forbidden", "you may only edit your own messages");
  assert.equal(forbidden?.state, "failed");
  assert.equal(forbidden?.reason, "not allowed");
  assert.equal(forbidden?.detail, "you may only edit your own messages");
  assert.equal(outbox.refuse("c2", "not_found", "no message 4")?.reason, "no such message");
  assert.deepEqual(changed, ["c1:failed", "c2:failed"]);
  assert.equal(outbox.settle("c1"), undefined, "a refused change is gone");
  outbox.refuse("c3", "unavailable", "not stored");
  timers.advance(UNAVAILABLE_RETRY_MS * 1.5);
  assert.deepEqual(sent.map((s) => s.clientId), ["c1", "c2", "c3", "c3"]);
});

Deno.test("an edit over the size limit fails at once and is never sent", () => {
  const { outbox, sent } = setup();
  outbox.setLimits({ maxMessageBytes: 10, messagesPerSecond: 10, burst: 20 });
  const entry = outbox.change({ type: "edit", messageId: 1, body: "far too long for ten" });
  assert.equal(entry.state, "failed");
  assert.equal(entry.reason, "too long");
  assert.deepEqual(sent, []);
});
