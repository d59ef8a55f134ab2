/**
 * Mentions (static/mentions.js): whether a message names the person, and `@` completion of the
 * names present while typing.
 */
import assert from "node:assert/strict";
import { completeMention, mentionAt, mentionsMe, suggestNames } from "../static/mentions.js";

Deno.test("a message mentions me when my name is among its mentions, exactly", () => {
  assert.equal(mentionsMe(["bob", "alice"], "alice"), true);
  assert.equal(mentionsMe(["bob"], "alice"), false);
  assert.equal(mentionsMe([], "alice"), false);
  assert.equal(mentionsMe([""], ""), false, "no name, no mention");
});

Deno.test("the mention being typed is the @word just before the caret", () => {
  assert.deepEqual(mentionAt("hi @al", 6), { start: 3, query: "al" });
  assert.deepEqual(mentionAt("@", 1), { start: 0, query: "" });
  assert.deepEqual(mentionAt("hi @al there", 6), { start: 3, query: "al" });
  assert.equal(mentionAt("mail me at a@b", 14), null, "an @ inside a word is not a mention");
  assert.equal(mentionAt("hi @al there", 12), null, "the caret is past it");
  assert.equal(mentionAt("hi @al", 2), null);
});

Deno.test("suggestions: present people but me, prefix matches first, then the rest", () => {
  const present = ["alice", "Albert", "bob", "malcolm", "bob", "me"];
  assert.deepEqual(suggestNames("al", present, "me"), ["Albert", "alice", "malcolm"]);
  assert.deepEqual(suggestNames("", present, "me"), ["Albert", "alice", "bob", "malcolm"]);
  assert.deepEqual(suggestNames("zed", present, "me"), []);
  assert.deepEqual(suggestNames("", present, "me", 2), ["Albert", "alice"]);
  assert.deepEqual(suggestNames("m", present, "me"), ["malcolm"], "not myself");
});

Deno.test("completing puts @name and a space in place of what was typed", () => {
  assert.deepEqual(completeMention("hi @al", 3, 6, "alice"), { text: "hi @alice ", caret: 10 });
  // The rest of a word the caret was in is replaced too; what follows stays.
  assert.deepEqual(completeMention("hi @al there", 3, 5, "alice"), {
    text: "hi @alice there",
    caret: 10,
  });
});
