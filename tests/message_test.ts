import assert from "node:assert/strict";
import {
  type ChatMessage,
  encodeLegacy,
  goJson,
  mentionCandidates,
  messageEvent,
  parseClientFrame,
  ProtocolError,
  validateRoom,
  validateUserName,
} from "../chat/message.ts";
import { historyOf, startTestServer, TestClient } from "./support.ts";

const LIMIT = 16;

Deno.test("a parley.v1 message frame becomes a message command", () => {
  assert.deepEqual(
    parseClientFrame('{"type":"message","body":"hi","clientId":"c-1"}', "parley.v1", LIMIT),
    {
      type: "message",
      body: "hi",
      clientId: "c-1",
    },
  );
  assert.deepEqual(parseClientFrame('{"type":"message","body":"hi"}', "parley.v1", LIMIT), {
    type: "message",
    body: "hi",
  });
});

Deno.test("hello sets a trimmed name", () => {
  assert.deepEqual(parseClientFrame('{"type":"hello","userName":" alice "}', "parley.v1", LIMIT), {
    type: "hello",
    userName: "alice",
  });
});

Deno.test("a legacy frame carries its own name and its timestamp is ignored", () => {
  const frame = '{"userName":"bob","body":"yo","timestamp":"1999-01-01"}';
  assert.deepEqual(parseClientFrame(frame, "legacy", LIMIT), {
    type: "message",
    body: "yo",
    userName: "bob",
  });
});

Deno.test("with a fixed name (an account's), hello and legacy frames carry it, whatever they say", () => {
  const named = (frame: string, dialect: "legacy" | "parley.v1") =>
    parseClientFrame(frame, dialect, LIMIT, "carol");
  assert.deepEqual(named('{"userName":"bob","body":"yo"}', "legacy"), {
    type: "message",
    body: "yo",
    userName: "carol",
  });
  assert.deepEqual(named('{"body":"no name"}', "legacy"), {
    type: "message",
    body: "no name",
    userName: "carol",
  });
  assert.deepEqual(named('{"type":"hello","userName":"\u202ebob"}', "parley.v1"), {
    type: "hello",
    userName: "carol",
  });
  assert.deepEqual(named('{"type":"message","body":"hi","userName":"bob"}', "parley.v1"), {
    type: "message",
    body: "hi",
  });
});

const badFrames: [string, unknown, string][] = [
  ["malformed JSON", '{"type":"message",', "bad_frame"],
  ["a JSON array", "[1,2]", "bad_frame"],
  ["JSON null", "null", "bad_frame"],
  ["an unknown type", '{"type":"shout","body":"x"}', "bad_frame"],
  ["no type", '{"body":"x"}', "bad_frame"],
  ["a number body", '{"type":"message","body":5}', "bad_frame"],
  ["an empty body", '{"type":"message","body":""}', "bad_frame"],
  ["a blank body", '{"type":"message","body":" \\n "}', "bad_frame"],
  ["an oversized body", `{"type":"message","body":"${"x".repeat(LIMIT + 1)}"}`, "too_large"],
  ["a body oversized in UTF-8", `{"type":"message","body":"${"é".repeat(9)}"}`, "too_large"],
  ["a binary frame", new ArrayBuffer(4), "bad_frame"],
  ["a clientId that is a number", '{"type":"message","body":"x","clientId":7}', "bad_frame"],
  ["a clientId with spaces", '{"type":"message","body":"x","clientId":"a b"}', "bad_frame"],
  ["hello without a name", '{"type":"hello"}', "bad_name"],
  ["hello with a control character", '{"type":"hello","userName":"a\\u0007"}', "bad_name"],
  ["hello with a 33-character name", `{"type":"hello","userName":"${"n".repeat(33)}"}`, "bad_name"],
];

for (const [what, frame, code] of badFrames) {
  Deno.test(`a frame with ${what} is refused with ${code}`, () => {
    assert.throws(
      () => parseClientFrame(frame, "parley.v1", LIMIT),
      (error) => error instanceof ProtocolError && error.code === code && error.message.length > 10,
    );
  });
}

Deno.test("a legacy frame without a name is refused with bad_name", () => {
  assert.throws(
    () => parseClientFrame('{"body":"x"}', "legacy", LIMIT),
    (error) => error instanceof ProtocolError && error.code === "bad_name",
  );
});

Deno.test("rooms are 1-64 characters of letters, digits, _ . -", () => {
  assert.equal(validateRoom("ops.team-1_a"), "ops.team-1_a");
  assert.equal(validateRoom("r".repeat(64)), "r".repeat(64));
  for (const bad of ["", "r".repeat(65), "a b", "a/b", "ü"]) {
    assert.throws(() => validateRoom(bad), /room .* is not allowed/);
  }
});

Deno.test("names are 1-32 printable characters, counted as characters not bytes", () => {
  assert.equal(validateUserName("Zoë 🦊"), "Zoë 🦊");
  assert.equal(validateUserName("🦊".repeat(32)), "🦊".repeat(32));
  assert.throws(() => validateUserName(""), ProtocolError);
  assert.throws(() => validateUserName("a\nb"), ProtocolError);
  assert.throws(() => validateUserName(42), ProtocolError);
});

Deno.test("goJson escapes like Go's encoding/json", () => {
  assert.equal(
    goJson({ body: "<b> & \u2028" }),
    '{"body":"\\u003cb\\u003e \\u0026 \\u2028"}',
  );
});

Deno.test("a legacy frame is the Go server's message object and a newline", () => {
  const message: ChatMessage = {
    id: 3,
    room: "lobby",
    userName: "al",
    body: "hi",
    timestamp: "2026-11-27T13:00:00.000Z",
  };
  assert.equal(
    encodeLegacy(message),
    '{"userName":"al","body":"hi","timestamp":"2026-11-27T13:00:00.000Z","id":3}\n',
  );
});

Deno.test("a refused body is reported with the command's clientId; a bad clientId with none", () => {
  const refusal = (frame: string) => {
    try {
      parseClientFrame(frame, "parley.v1", LIMIT);
    } catch (error) {
      if (error instanceof ProtocolError) return { code: error.code, clientId: error.clientId };
    }
    assert.fail(`${frame} was accepted`);
  };
  assert.deepEqual(refusal(`{"type":"message","body":"${"x".repeat(LIMIT + 1)}","clientId":"c"}`), {
    code: "too_large",
    clientId: "c",
  });
  assert.deepEqual(refusal('{"type":"message","body":"","clientId":"c"}'), {
    code: "bad_frame",
    clientId: "c",
  });
  assert.deepEqual(refusal('{"type":"message","body":"","clientId":"a b"}'), {
    code: "bad_frame",
    clientId: undefined,
  });
  assert.deepEqual(refusal('{"type":"message","body":"ok","clientId":7}'), {
    code: "bad_frame",
    clientId: undefined,
  });
});

Deno.test("a message event carries the sender's clientId; a legacy frame never does", () => {
  const message: ChatMessage = {
    id: 3,
    room: "lobby",
    userName: "al",
    body: "hi",
    timestamp: "2026-11-27T13:00:00.000Z",
  };
  assert.deepEqual(messageEvent({ ...message, clientId: "c-9" }), {
    type: "message",
    ...message,
    clientId: "c-9",
  });
  assert.equal("clientId" in messageEvent(message), false);
  assert.equal(encodeLegacy({ ...message, clientId: "c-9" }), encodeLegacy(message));
});

function refusedWith(code: string, pattern: RegExp) {
  return (error: unknown) =>
    error instanceof ProtocolError && error.code === code && pattern.test(error.message);
}

Deno.test("a name is NFC-normalised: a decomposed Zoë is the same name as a composed one", () => {
  assert.equal(validateUserName("Zoe\u0308"), "Zo\u00eb");
  // 32 characters once composed, though 64 as sent.
  assert.equal(validateUserName("e\u0301".repeat(32)), "\u00e9".repeat(32));
});

const deceivingNames: [string, string][] = [
  ["a right-to-left override", "\u202Egnp.exe"],
  ["a left-to-right isolate", "al\u2066ice"],
  ["a zero-width space", "ad\u200Bmin"],
  ["a zero-width non-joiner", "ad\u200Cmin"],
  ["a zero-width joiner", "ad\u200Dmin"],
  ["a word joiner", "ad\u2060min"],
  ["a byte-order mark inside", "ad\uFEFFmin"],
  ["a soft hyphen", "ad\u00ADmin"],
  ["a C1 control", "ad\u0085min"],
  ["DEL", "ad\u007Fmin"],
  ["a line separator", "ad\u2028min"],
];

for (const [what, name] of deceivingNames) {
  Deno.test(`a name with ${what} is refused with bad_name`, () => {
    assert.throws(
      () => validateUserName(name),
      refusedWith("bad_name", /^userName must be 1-32 printable characters; U\+[0-9A-F]{4} is a/),
    );
  });
}

const blankNames: [string, string][] = [
  ["only Braille blanks", "\u2800\u2800"],
  ["only a Hangul filler", "\u3164"],
  ["only Hangul choseong and jungseong fillers", "\u115F\u1160"],
  ["only a halfwidth Hangul filler", "\uFFA0"],
  ["only en to hair spaces", "\u2000\u2005\u200A"],
  ["only an ideographic space", "\u3000"],
  ["blanks and spaces mixed", " \u2800 \u3164 "],
];

for (const [what, name] of blankNames) {
  Deno.test(`a name of ${what} is refused: nothing in it is visible`, () => {
    // Spaces are trimmed away, which leaves a name too short; the other blanks are kept.
    assert.throws(
      () => validateUserName(name),
      refusedWith("bad_name", /visible character|^userName must be 1-32 printable characters$/),
    );
  });
}

Deno.test("a name with half a surrogate pair is refused: it would be stored altered", () => {
  assert.throws(() => validateUserName("al\ud800"), refusedWith("bad_name", /not valid Unicode/));
  assert.throws(
    () => parseClientFrame('{"type":"hello","userName":"\\udc00x"}', "parley.v1", LIMIT),
    refusedWith("bad_name", /not valid Unicode/),
  );
});

Deno.test("names may still have inner spaces of any script, emoji and a blank among letters", () => {
  assert.equal(validateUserName("山田\u3000太郎"), "山田\u3000太郎");
  assert.equal(validateUserName("❤\uFE0F"), "❤\uFE0F");
  assert.equal(validateUserName("⠓⠊\u2800⠁⠇"), "⠓⠊\u2800⠁⠇");
  assert.equal(validateUserName("\u3000 Zoë\u00A0"), "Zoë");
});

const alteredBodies: [string, string, RegExp][] = [
  ["a NUL", "ok\u0000rest", /contains U\+0000, a control character/],
  ["a bell", "ding\u0007", /U\+0007/],
  ["an escape sequence", "\u001b[2Jgone", /U\+001B/],
  ["a carriage return", "a\rb", /U\+000D/],
  ["a lone high surrogate", "a\ud800b", /not valid Unicode/],
  ["a lone low surrogate", "\udc00", /not valid Unicode/],
  ["surrogates in the wrong order", "\ude0a\ud83d", /not valid Unicode/],
];

for (const [what, body, pattern] of alteredBodies) {
  Deno.test(`a body with ${what} is refused with bad_frame`, () => {
    const frame = JSON.stringify({ type: "message", body });
    assert.throws(
      () => parseClientFrame(frame, "parley.v1", 64),
      refusedWith("bad_frame", pattern),
    );
  });
}

Deno.test("tab, newline, DEL, C1 controls and emoji are kept in a body as sent", () => {
  const body = "col\tcol\nline \u007f \u0085 🦊";
  assert.deepEqual(parseClientFrame(JSON.stringify({ type: "message", body }), "parley.v1", 64), {
    type: "message",
    body,
  });
});

Deno.test("a message with a NUL is refused, not stored cut short, through a real server", async () => {
  await using server = await startTestServer();
  await using client = new TestClient(server.wsUrl({ userName: "al", room: "nul" }));
  await client.next("welcome");
  client.send({ type: "message", body: "ok\u0000rest", clientId: "nul" });
  const error = await client.next("error");
  assert.equal(error.code, "bad_frame");
  assert.match(error.message, /U\+0000/);
  client.send('{"type":"message","body":"half \\ud800 a pair"}');
  assert.equal((await client.next("error")).code, "bad_frame");
  const response = await fetch(new URL("/rooms/nul/messages", server.url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ userName: "al", body: "ok\u0000rest" }),
  });
  assert.equal(response.status, 400);
  assert.match((await response.json()).error, /U\+0000/);
  // A message sent after them is the first and only one stored.
  client.send({ type: "message", body: "after", clientId: "after" });
  assert.equal((await client.next("ack")).clientId, "after");
  assert.deepEqual((await historyOf(server, "nul")).map((m) => m.body), ["after"]);
});

Deno.test("an unknown frame type is quoted short in the error, however long it was", () => {
  assert.throws(
    () => parseClientFrame(JSON.stringify({ type: "x".repeat(33_000) }), "parley.v1", LIMIT),
    (error) =>
      error instanceof ProtocolError && error.message.length < 200 &&
      /unknown frame type "x{39}… \(33002 characters\)/.test(error.message),
  );
});

Deno.test("edit, delete and react frames become change commands, with their clientId", () => {
  const parse = (frame: unknown) => parseClientFrame(JSON.stringify(frame), "parley.v1", LIMIT);
  assert.deepEqual(parse({ type: "edit", messageId: 4, body: "fixed", clientId: "e" }), {
    type: "edit",
    messageId: 4,
    body: "fixed",
    clientId: "e",
  });
  assert.deepEqual(parse({ type: "delete", messageId: 4 }), { type: "delete", messageId: 4 });
  assert.deepEqual(parse({ type: "react", messageId: 4, emoji: "👍🏽", on: false }), {
    type: "react",
    messageId: 4,
    emoji: "👍🏽",
    on: false,
  });
  // A family is one grapheme; at most 32 bytes of UTF-8.
  assert.equal(
    (parse({ type: "react", messageId: 1, emoji: "👨‍👩‍👧‍👦", on: true }) as { emoji: string }).emoji,
    "👨‍👩‍👧‍👦",
  );
});

for (
  const [what, frame, code] of [
    ["an edit's body too large", { type: "edit", messageId: 1, body: "x".repeat(17) }, "too_large"],
    ["an edit's blank body", { type: "edit", messageId: 1, body: " " }, "bad_frame"],
    ["a messageId that is no id", { type: "delete", messageId: "4" }, "bad_frame"],
    ["a messageId of 0", { type: "delete", messageId: 0 }, "bad_frame"],
    ["two emoji", { type: "react", messageId: 1, emoji: "👍👍", on: true }, "bad_frame"],
    ["an empty emoji", { type: "react", messageId: 1, emoji: "", on: true }, "bad_frame"],
    ["an emoji over 32 bytes", {
      type: "react",
      messageId: 1,
      emoji: "👍" + "\u{E0020}".repeat(8),
      on: true,
    }, "bad_frame"],
    ["a reaction without on", { type: "react", messageId: 1, emoji: "👍" }, "bad_frame"],
  ] as const
) {
  Deno.test(`a change with ${what} is refused with ${code}, and its clientId`, () => {
    assert.throws(
      () => parseClientFrame(JSON.stringify({ ...frame, clientId: "c" }), "parley.v1", LIMIT),
      (error) => error instanceof ProtocolError && error.code === code && error.clientId === "c",
    );
  });
}

Deno.test("mention candidates: each @token, and the token without the punctuation after it", () => {
  assert.deepEqual(mentionCandidates("hi @bob, and @Ann! mail a@b.c"), [
    "bob,",
    "bob",
    "Ann!",
    "Ann",
  ]);
  assert.deepEqual(mentionCandidates("no mentions"), []);
});
