import assert from "node:assert/strict";
import {
  type ChatMessage,
  encodeLegacy,
  goJson,
  messageEvent,
  parseClientFrame,
  ProtocolError,
  validateRoom,
  validateUserName,
} from "../chat/message.ts";

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
