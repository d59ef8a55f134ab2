/**
 * Who is typing (static/typing.js): a name shows for five seconds after its last ping, or until
 * that person's message arrives; the person's own pings go at most once per two seconds.
 */
import assert from "node:assert/strict";
import {
  TYPING_EVERY_MS,
  TYPING_SHOWN_MS,
  TypingPacer,
  typingText,
  TypingTracker,
} from "../static/typing.js";
import { FakeTimers } from "./page_fakes.ts";

Deno.test("a name shows for five seconds after its last ping", () => {
  const timers = new FakeTimers();
  let changes = 0;
  const tracker = new TypingTracker(() => changes++, timers);
  tracker.typing("bob");
  assert.deepEqual(tracker.names, ["bob"]);
  assert.equal(typingText(tracker.names), "bob is typing…");
  timers.advance(TYPING_SHOWN_MS - 1000);
  tracker.typing("bob"); // still typing: the five seconds start again
  timers.advance(TYPING_SHOWN_MS - 1);
  assert.deepEqual(tracker.names, ["bob"]);
  assert.equal(changes, 1, "a ping from someone already shown changes nothing");
  timers.advance(1);
  assert.deepEqual(tracker.names, []);
  assert.equal(changes, 2);
  assert.equal(timers.nextDelay(), null, "no timer left behind");
});

Deno.test("a person's message clears their typing at once; others stay", () => {
  const timers = new FakeTimers();
  const tracker = new TypingTracker(() => {}, timers);
  tracker.typing("bob");
  tracker.typing("carol");
  assert.equal(typingText(tracker.names), "bob and carol are typing…");
  tracker.stopped("bob");
  assert.deepEqual(tracker.names, ["carol"]);
  tracker.stopped("dana"); // was not typing: nothing happens
  tracker.clear();
  assert.deepEqual(tracker.names, []);
  assert.equal(timers.nextDelay(), null);
});

Deno.test("the line names up to three people, then says several", () => {
  assert.equal(typingText([]), "");
  assert.equal(typingText(["a", "b", "c"]), "a, b and c are typing…");
  assert.equal(typingText(["a", "b", "c", "d"]), "several people are typing…");
});

Deno.test("own pings go at most once per two seconds, and at once after a send", () => {
  let now = 0;
  const pacer = new TypingPacer(() => now);
  assert.equal(pacer.typed(), true);
  now += TYPING_EVERY_MS - 1;
  assert.equal(pacer.typed(), false);
  now += 1;
  assert.equal(pacer.typed(), true);
  now += 10;
  pacer.sent();
  assert.equal(pacer.typed(), true, "a new message starts a new round of typing");
});
