/**
 * The messages of the room on screen as the log makes them (static/message_log.js): edits change
 * the body and mark it edited, a delete removes it for good, reactions count who reacted; every
 * event applies once, so a replay that brings events again changes nothing.
 */
import assert from "node:assert/strict";
import {
  allowedActions,
  MessageLog,
  QUICK_REACTIONS,
  reactionChips,
  reactionChoices,
} from "../static/message_log.js";
import type { ChangeEvent, ChatMessage } from "../static/protocol.js";
import { readEvent } from "../static/protocol.js";

function message(id: number, userName = "alice", extra: Partial<ChatMessage> = {}): ChatMessage {
  return {
    id,
    userName,
    body: `message ${id}`,
    timestamp: "2025-01-01T10:00:00.000Z",
    room: "lobby",
    clientId: null,
    mentions: [],
    editedAt: null,
    reactions: {},
    ...extra,
  };
}

const at = "2025-01-01T10:05:00.000Z";
const change = { room: "lobby", timestamp: at, clientId: null };
const edit = (id: number, messageId: number, body: string): ChangeEvent => ({
  type: "edit",
  id,
  messageId,
  body,
  userName: "alice",
  ...change,
});
const remove = (id: number, messageId: number): ChangeEvent => ({
  type: "delete",
  id,
  messageId,
  userName: "alice",
  ...change,
});
const react = (id: number, messageId: number, userName: string, emoji: string, on = true) =>
  ({ type: "reaction", id, messageId, userName, emoji, on, ...change }) as ChangeEvent;

Deno.test("an edit changes the body and marks the message edited", () => {
  const log = new MessageLog();
  assert.ok(log.add(message(1)));
  const result = log.apply(edit(2, 1, "fixed the typo"));
  assert.equal(result?.kind, "edit");
  assert.equal(log.get(1)?.body, "fixed the typo");
  assert.equal(log.get(1)?.editedAt, at);
});

Deno.test("a delete removes the message, and a late copy of it does not bring it back", () => {
  const log = new MessageLog();
  log.add(message(1));
  assert.equal(log.apply(remove(2, 1))?.kind, "delete");
  assert.equal(log.get(1), undefined);
  assert.ok(log.isDeleted(1));
  assert.equal(log.add(message(1)), null, "a replayed copy stays deleted");
  assert.equal(log.apply(edit(3, 1, "too late")), null);
});

Deno.test("reactions count who reacted with what, in the order first used", () => {
  const log = new MessageLog();
  log.add(message(1));
  log.apply(react(2, 1, "bob", "👍"));
  log.apply(react(3, 1, "carol", "🎉"));
  log.apply(react(4, 1, "carol", "👍"));
  const state = log.get(1)!;
  assert.deepEqual(reactionChips(state, "carol"), [
    { emoji: "👍", count: 2, names: ["bob", "carol"], mine: true },
    { emoji: "🎉", count: 1, names: ["carol"], mine: true },
  ]);
  assert.equal(log.apply(react(5, 1, "carol", "🎉", false))?.kind, "reaction");
  assert.equal(log.apply(react(6, 1, "dana", "🎉", false)), null, "taking back what was not there");
  assert.deepEqual(reactionChips(log.get(1)!, "bob").map((c) => [c.emoji, c.count, c.mine]), [
    ["👍", 2, true],
  ]);
});

Deno.test("a replay seeing every event twice changes nothing the second time", () => {
  const events = [
    edit(2, 1, "first edit"),
    react(3, 1, "bob", "👍"),
    edit(4, 1, "second edit"),
    react(5, 1, "bob", "👍", false),
    react(6, 1, "carol", "❤️"),
    remove(9, 8),
  ];
  const log = new MessageLog();
  log.add(message(1));
  log.add(message(8));
  for (const event of events) assert.ok(log.apply(event), `event ${event.id} applies`);
  const once = structuredClone(log.get(1));
  for (const event of events) assert.equal(log.apply(event), null, `event ${event.id} again`);
  // An older event after a newer one (a resend overlapping a replay) changes nothing either.
  assert.equal(log.apply(edit(2, 1, "first edit")), null);
  assert.deepEqual(log.get(1), once);
  assert.equal(log.get(1)?.body, "second edit");
  assert.deepEqual([...log.get(1)!.reactions], [["❤️", ["carol"]]]);
  assert.equal(log.get(8), undefined);
});

Deno.test("a message in its current state (a replay, /history) keeps its edit and reactions", () => {
  const [event] = [readEvent({
    type: "message",
    id: 5,
    room: "lobby",
    userName: "bob",
    body: "edited body",
    timestamp: "2025-01-01T10:00:00.000Z",
    editedAt: at,
    mentions: ["alice"],
    reactions: { "👍": ["alice", "carol"], "x": "broken", "🎉": [] },
  })];
  assert.ok(event && event.type === "message");
  const log = new MessageLog();
  const state = log.add(event)!;
  assert.equal(state.editedAt, at);
  assert.deepEqual(state.mentions, ["alice"]);
  assert.deepEqual([...state.reactions], [["👍", ["alice", "carol"]]]);
  assert.equal(log.add(event), null, "known already");
  // Events older than the message itself cannot apply to it.
  assert.equal(log.apply(react(4, 5, "dana", "👍")), null);
  assert.equal(log.apply(edit(1, 99, "not shown")), null, "a message not shown");
});

Deno.test("forgotten messages (trimmed from the list) come back with a copy; clear empties", () => {
  const log = new MessageLog();
  log.add(message(1));
  log.forget(1);
  assert.equal(log.get(1), undefined);
  assert.ok(log.add(message(1)));
  log.apply(remove(2, 1));
  log.clear();
  assert.ok(log.add(message(1)), "another room: the deleted ids are forgotten too");
});

Deno.test("choices: quick emoji, then those on the message; who may edit and delete", () => {
  const log = new MessageLog();
  const state = log.add(message(1, "alice", { reactions: { "🦀": ["bob"], "👍": ["bob"] } }))!;
  assert.deepEqual(reactionChoices(state), [...QUICK_REACTIONS, "🦀"]);
  assert.deepEqual(allowedActions(state, { userName: "alice", admin: false }), {
    edit: true,
    delete: true,
  });
  assert.deepEqual(allowedActions(state, { userName: "bob", admin: false }), {
    edit: false,
    delete: false,
  });
  assert.deepEqual(allowedActions(state, { userName: "root", admin: true }), {
    edit: false,
    delete: true,
  });
});
