/**
 * The page's reading of the `parley.v1` dialect (static/protocol.js): frames split into checked
 * events, the limits a welcome announces, the commands it sends, and what it refuses to send.
 */
import assert from "node:assert/strict";
import {
  changeCommand,
  DEFAULT_LIMITS,
  messageCommand,
  nameError,
  readCommand,
  readLimits,
  roomError,
  sizeError,
  splitFrame,
  summaryCommand,
  typingCommand,
} from "../static/protocol.js";

const message = {
  type: "message",
  id: 7,
  room: "lobby",
  userName: "alice",
  body: "hi",
  timestamp: "2025-01-01T10:00:00.000Z",
};

/** What a live message has of the log's state: no mentions, not edited, no reactions. */
const fresh = { mentions: [], editedAt: null, reactions: {} };

Deno.test("a frame is split on newlines; blank, broken and unknown lines are skipped", () => {
  const frame = [
    JSON.stringify(message),
    "",
    "{not json",
    "[1,2]",
    '"text"',
    JSON.stringify({ type: "typing", userName: "bob" }),
    JSON.stringify({ ...message, id: 8, body: "there" }),
  ].join("\n");
  const events = splitFrame(frame);
  assert.deepEqual(events.map((e) => e.type === "message" && [e.id, e.body]), [
    [7, "hi"],
    [8, "there"],
  ]);
  assert.deepEqual(splitFrame(new Uint8Array([123, 125])), []);
});

Deno.test("a message carries the sender's clientId when it had one, else null", () => {
  const [plain, withId] = splitFrame(
    [message, { ...message, id: 8, clientId: "c-1" }].map((e) => JSON.stringify(e)).join("\n"),
  );
  assert.deepEqual(plain, { ...message, ...fresh, clientId: null });
  assert.deepEqual(withId, { ...message, ...fresh, id: 8, clientId: "c-1" });
  const [noStamp] = splitFrame(JSON.stringify({ ...message, timestamp: 5, room: undefined }));
  assert.deepEqual(noStamp, {
    ...message,
    ...fresh,
    timestamp: "",
    room: null,
    clientId: null,
  });
});

Deno.test("events without what the page needs are dropped", () => {
  const broken = [
    { ...message, id: "7" },
    { ...message, id: 1.5 },
    { ...message, body: null },
    { ...message, userName: 3 },
    { type: "ack", id: 3 },
    { type: "ack", clientId: "c", id: "3" },
    { type: "join", userName: "bob", users: "bob" },
    { type: "leave", users: ["bob", 4] },
  ];
  for (const event of broken) {
    assert.deepEqual(splitFrame(JSON.stringify(event)), [], JSON.stringify(event));
  }
  assert.deepEqual(splitFrame(JSON.stringify({ type: "ack", clientId: "c", id: 3 })), [
    { type: "ack", clientId: "c", id: 3 },
  ]);
  assert.deepEqual(splitFrame(JSON.stringify({ type: "join", userName: "b", users: ["b"] })), [
    { type: "join", users: ["b"] },
  ]);
});

Deno.test("an error names the command's clientId when a command caused it", () => {
  const events = splitFrame(
    [
      { type: "error", code: "too_large", message: "message is 5000 bytes", clientId: "c-9" },
      { type: "error", code: "bad_room", message: "" },
      { type: "error" },
    ].map((e) => JSON.stringify(e)).join("\n"),
  );
  assert.deepEqual(events, [
    { type: "error", code: "too_large", text: "message is 5000 bytes", clientId: "c-9" },
    { type: "error", code: "bad_room", text: "bad_room", clientId: null },
    { type: "error", code: "", text: "error", clientId: null },
  ]);
});

Deno.test("a welcome's limits are read, each broken one at its default; none without", () => {
  const welcome = {
    type: "welcome",
    room: "lobby",
    userName: "alice",
    users: ["alice"],
    userCount: 1,
    lastId: 12,
    recovered: false,
    limits: { maxMessageBytes: 100, messagesPerSecond: 0.5, burst: 3 },
  };
  assert.deepEqual(splitFrame(JSON.stringify(welcome)), [{
    type: "welcome",
    userName: "alice",
    users: ["alice"],
    userCount: 1,
    lastId: 12,
    recovered: false,
    limits: { maxMessageBytes: 100, messagesPerSecond: 0.5, burst: 3 },
    lastRead: null,
  }]);
  // An older server sends no limits: the page keeps its defaults.
  const [old] = splitFrame(JSON.stringify({ type: "welcome", users: "x" }));
  assert.deepEqual(old, {
    type: "welcome",
    userName: "",
    users: null,
    userCount: null,
    lastId: 0,
    recovered: null,
    limits: null,
    lastRead: null,
  });
  assert.deepEqual(
    readLimits({ maxMessageBytes: 1.5, messagesPerSecond: -1, burst: "20" }),
    DEFAULT_LIMITS,
  );
  assert.deepEqual(readLimits({ messagesPerSecond: 2 }), {
    ...DEFAULT_LIMITS,
    messagesPerSecond: 2,
  });
  assert.equal(readLimits([1, 2]), null);
});

Deno.test("the message command is one JSON object with the body and clientId", () => {
  assert.deepEqual(JSON.parse(messageCommand("line one\nline two", "c-1")), {
    type: "message",
    body: "line one\nline two",
    clientId: "c-1",
  });
});

Deno.test("the size limit counts UTF-8 bytes, as the server does", () => {
  assert.equal(sizeError("a".repeat(4096), 4096), "");
  assert.match(sizeError("a".repeat(4097), 4096), /4097 bytes; the limit is 4096/);
  // 2049 characters, 4098 bytes.
  assert.match(sizeError("é".repeat(2049), 4096), /4098 bytes/);
  assert.equal(sizeError("é".repeat(2048), 4096), "");
  assert.match(sizeError("😀".repeat(26), 100), /104 bytes/);
});

Deno.test("names and rooms the server would refuse are caught before joining", () => {
  assert.equal(nameError("alice"), "");
  assert.equal(nameError("ö".repeat(32)), "");
  assert.match(nameError(""), /Enter a name/);
  assert.match(nameError("x".repeat(33)), /at most 32/);
  assert.match(nameError("a\u0007b"), /printable/);
  assert.match(nameError("a\u2028b"), /printable/);
  assert.equal(roomError("ops.team-1_a"), "");
  assert.match(roomError(""), /Enter a room/);
  assert.match(roomError("no spaces"), /1–64/);
  assert.match(roomError("r".repeat(65)), /1–64/);
});

Deno.test("edit, delete and reaction events are read with the message they change", () => {
  const common = { room: "lobby", userName: "bob", timestamp: "2025-01-01T10:01:00.000Z" };
  const events = splitFrame(
    [
      { type: "edit", id: 9, messageId: 7, body: "fixed", clientId: "c-2", ...common },
      { type: "delete", id: 10, messageId: 7, ...common },
      { type: "reaction", id: 11, messageId: 7, emoji: "👍", on: false, ...common },
      { type: "edit", id: 12, messageId: 7, ...common },
      { type: "delete", id: 13, messageId: "7", ...common },
      { type: "reaction", id: 14, messageId: 7, emoji: "👍", on: "yes", ...common },
      { type: "reaction", id: 15, messageId: 7, on: true, ...common },
      { type: "edit", messageId: 7, body: "no id", ...common },
    ].map((e) => JSON.stringify(e)).join("\n"),
  );
  assert.deepEqual(events, [
    { type: "edit", id: 9, messageId: 7, body: "fixed", clientId: "c-2", ...common },
    { type: "delete", id: 10, messageId: 7, clientId: null, ...common },
    { type: "reaction", id: 11, messageId: 7, emoji: "👍", on: false, clientId: null, ...common },
  ]);
});

Deno.test("typing, summary and a welcome's read marker", () => {
  const events = splitFrame(
    [
      { type: "typing", room: "lobby", userName: "bob" },
      { type: "typing", room: "lobby" },
      {
        type: "summary",
        rooms: [
          { room: "ops", lastId: 5, mentions: 2 },
          { room: "dev", lastId: 3 },
          { room: "bad", lastId: "3" },
          { lastId: 3 },
        ],
      },
      { type: "summary", rooms: "ops" },
      { type: "welcome", userName: "a", lastId: 9, lastRead: 4 },
    ].map((e) => JSON.stringify(e)).join("\n"),
  );
  assert.deepEqual(events.slice(0, 2), [
    { type: "typing", room: "lobby", userName: "bob" },
    {
      type: "summary",
      rooms: [{ room: "ops", lastId: 5, mentions: 2 }, { room: "dev", lastId: 3, mentions: 0 }],
    },
  ]);
  const welcome = events[2];
  assert.ok(welcome.type === "welcome");
  assert.equal(welcome.lastRead, 4);
});

Deno.test("the page's new commands, as the contract spells them", () => {
  assert.deepEqual(
    JSON.parse(changeCommand({ type: "edit", messageId: 42, body: "…" }, "c1")),
    { type: "edit", messageId: 42, body: "…", clientId: "c1" },
  );
  assert.deepEqual(JSON.parse(changeCommand({ type: "delete", messageId: 42 }, "c2")), {
    type: "delete",
    messageId: 42,
    clientId: "c2",
  });
  assert.deepEqual(
    JSON.parse(changeCommand({ type: "react", messageId: 42, emoji: "👍", on: true }, "c3")),
    { type: "react", messageId: 42, emoji: "👍", on: true, clientId: "c3" },
  );
  assert.deepEqual(JSON.parse(typingCommand()), { type: "typing" });
  assert.deepEqual(JSON.parse(readCommand(57)), { type: "read", id: 57 });
  assert.deepEqual(JSON.parse(summaryCommand(true)), { type: "summary", on: true });
  assert.deepEqual(JSON.parse(summaryCommand(false)), { type: "summary", on: false });
});
