// @ts-check
/**
 * The `parley.v1` dialect as the page speaks it: splitting a frame into events, checking each
 * event's shape, the limits the server announces, and the commands the page sends. No DOM here.
 */

/** The WebSocket subprotocol the page asks for. */
export const PROTOCOL = "parley.v1";

/** The room used when the person names none. */
export const DEFAULT_ROOM = "lobby";

/**
 * What the server allows: a body's size in UTF-8 bytes, and a token bucket of messages.
 * @typedef {{ maxMessageBytes: number, messagesPerSecond: number, burst: number }} Limits
 */

/**
 * The server's defaults, used until a `welcome` says otherwise (and with a server that does not).
 * @type {Readonly<Limits>}
 */
export const DEFAULT_LIMITS = Object.freeze({
  maxMessageBytes: 4096,
  messagesPerSecond: 10,
  burst: 20,
});

/**
 * Who reacted with each emoji, in the order the server lists them: `{"👍": ["alice", "bob"]}`.
 * @typedef {Record<string, string[]>} Reactions
 */

/**
 * A stored message, live, replayed or from /history. `clientId` is the sender's, when it gave one;
 * `mentions` the names its `@name` tokens refer to. `editedAt` and `reactions` come with a message
 * sent in its current state (a replay, /history); a live one has neither yet.
 * @typedef {{
 *   id: number, userName: string, body: string, timestamp: string,
 *   room: string | null, clientId: string | null,
 *   mentions: string[], editedAt: string | null, reactions: Reactions
 * }} ChatMessage
 */

/**
 * What every change to a stored message carries: its own id in the room's log, the message it
 * changes, and who made it.
 * @typedef {{
 *   id: number, room: string | null, messageId: number, userName: string, timestamp: string,
 *   clientId: string | null
 * }} LogChange
 */

/**
 * A room's entry in a `summary`: its newest id, and how many new messages mention the person.
 * @typedef {{ room: string, lastId: number, mentions: number }} RoomSummary
 */

/**
 * The events the page acts on, checked; anything else the server sends is dropped.
 * @typedef {{
 *   type: "welcome", userName: string, users: string[] | null, userCount: number | null,
 *   lastId: number, recovered: boolean | null, limits: Limits | null, lastRead: number | null
 * }} WelcomeEvent
 * @typedef {{ type: "message" } & ChatMessage} MessageEvent
 * @typedef {{ type: "ack", clientId: string, id: number }} AckEvent
 * @typedef {{ type: "join" | "leave", users: string[] }} PresenceEvent
 * @typedef {{ type: "error", code: string, text: string, clientId: string | null }} ErrorEvent
 * @typedef {{ type: "edit", body: string } & LogChange} EditEvent
 * @typedef {{ type: "delete" } & LogChange} DeleteEvent
 * @typedef {{ type: "reaction", emoji: string, on: boolean } & LogChange} ReactionEvent
 * @typedef {EditEvent | DeleteEvent | ReactionEvent} ChangeEvent
 * @typedef {{ type: "typing", room: string, userName: string }} TypingEvent
 * @typedef {{ type: "summary", rooms: RoomSummary[] }} SummaryEvent
 * @typedef {WelcomeEvent | MessageEvent | AckEvent | PresenceEvent | ErrorEvent | ChangeEvent
 *   | TypingEvent | SummaryEvent} ServerEvent
 */

/**
 * A change to a stored message the page asks for, sent with a clientId as a message is.
 * @typedef {{ type: "edit", messageId: number, body: string }
 *   | { type: "delete", messageId: number }
 *   | { type: "react", messageId: number, emoji: string, on: boolean }} LogCommand
 */

const ROOM_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const NAME_FORBIDDEN = /[\p{Cc}\u2028\u2029]/u;
const NAME_MAX = 32;

/**
 * Why a name would be refused, as a sentence for the join form; "" when it is fine.
 * @param {string} name
 * @returns {string}
 */
export function nameError(name) {
  if (name === "") return "Enter a name.";
  if ([...name].length > NAME_MAX) return `A name can have at most ${NAME_MAX} characters.`;
  if (NAME_FORBIDDEN.test(name)) return "A name can only contain printable characters.";
  return "";
}

/**
 * Why a room name would be refused, as a sentence; "" when it is fine.
 * @param {string} room
 * @returns {string}
 */
export function roomError(room) {
  if (room === "") return "Enter a room.";
  if (!ROOM_PATTERN.test(room)) return "A room is 1–64 letters, digits, “.”, “-” or “_”.";
  return "";
}

const encoder = new TextEncoder();

/**
 * Why the server would refuse this body for its size ("" when it would not): the limit counts
 * UTF-8 bytes, not characters.
 * @param {string} body
 * @param {number} maxBytes
 * @returns {string}
 */
export function sizeError(body, maxBytes) {
  // A UTF-16 unit is at most 3 bytes of UTF-8, so short bodies need no encoding.
  if (body.length * 3 <= maxBytes) return "";
  const size = encoder.encode(body).length;
  return size > maxBytes ? `The message is ${size} bytes; the limit is ${maxBytes}.` : "";
}

/**
 * A fresh id for a message, so a resend is never stored twice.
 * @returns {string}
 */
export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; plain http on a LAN address does not have one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The `message` command's frame.
 * @param {string} body
 * @param {string} clientId
 * @returns {string}
 */
export function messageCommand(body, clientId) {
  return JSON.stringify({ type: "message", body, clientId });
}

/**
 * The frame of a change to a stored message (edit, delete, react).
 * @param {LogCommand} command
 * @param {string} clientId
 * @returns {string}
 */
export function changeCommand(command, clientId) {
  return JSON.stringify({ ...command, clientId });
}

/** The `typing` command's frame: the person is typing in the room. */
export function typingCommand() {
  return JSON.stringify({ type: "typing" });
}

/**
 * The `read` command's frame: the person has read the room up to `id`.
 * @param {number} id
 * @returns {string}
 */
export function readCommand(id) {
  return JSON.stringify({ type: "read", id });
}

/**
 * The `summary` command's frame: asks for (or stops) the summaries of every room.
 * @param {boolean} on
 * @returns {string}
 */
export function summaryCommand(on) {
  return JSON.stringify({ type: "summary", on });
}

/**
 * The checked events of one frame, in order. A frame may carry several events, one per line;
 * a line that is not a known, well-formed event is skipped.
 * @param {unknown} data
 * @returns {ServerEvent[]}
 */
export function splitFrame(data) {
  if (typeof data !== "string") return [];
  /** @type {ServerEvent[]} */
  const events = [];
  for (const line of data.split("\n")) {
    if (!line.trim()) continue;
    let value;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    const event = readEvent(value);
    if (event) events.push(event);
  }
  return events;
}

/**
 * One parsed JSON value as an event the page knows, or null.
 * @param {unknown} value
 * @returns {ServerEvent | null}
 */
export function readEvent(value) {
  if (!isObject(value)) return null;
  switch (value.type) {
    case "welcome":
      return readWelcome(value);
    case "message": {
      const message = readMessage(value);
      return message && { type: "message", ...message };
    }
    case "ack":
      if (typeof value.clientId !== "string" || !Number.isSafeInteger(value.id)) return null;
      return { type: "ack", clientId: value.clientId, id: /** @type {number} */ (value.id) };
    case "join":
    case "leave":
      return isUserList(value.users) ? { type: value.type, users: value.users } : null;
    case "error":
      return readError(value);
    case "edit":
    case "delete":
    case "reaction":
      return readChange(value);
    case "typing":
      if (typeof value.room !== "string" || typeof value.userName !== "string") return null;
      return { type: "typing", room: value.room, userName: value.userName };
    case "summary":
      return readSummary(value);
    default:
      return null; // unknown events are ignored so the server can add new ones
  }
}

/**
 * A message from an event or a /history answer, or null when it lacks an id, name or body.
 * @param {unknown} value
 * @returns {ChatMessage | null}
 */
export function readMessage(value) {
  if (!isObject(value)) return null;
  const { id, userName, body, timestamp, room, clientId, editedAt } = value;
  if (!Number.isSafeInteger(id) || typeof userName !== "string" || typeof body !== "string") {
    return null;
  }
  return {
    id: /** @type {number} */ (id),
    userName,
    body,
    timestamp: typeof timestamp === "string" ? timestamp : "",
    room: typeof room === "string" ? room : null,
    clientId: typeof clientId === "string" ? clientId : null,
    mentions: isUserList(value.mentions) ? value.mentions : [],
    editedAt: typeof editedAt === "string" ? editedAt : null,
    reactions: readReactions(value.reactions),
  };
}

/**
 * A message's reactions as the server lists them; malformed entries are dropped.
 * @param {unknown} value
 * @returns {Reactions}
 */
function readReactions(value) {
  /** @type {Reactions} */
  const reactions = {};
  if (!isObject(value)) return reactions;
  for (const [emoji, names] of Object.entries(value)) {
    if (isUserList(names) && names.length > 0) reactions[emoji] = [...new Set(names)];
  }
  return reactions;
}

/**
 * An edit, delete or reaction event, or null when it lacks what it needs.
 * @param {Record<string, unknown>} value
 * @returns {ChangeEvent | null}
 */
function readChange(value) {
  const { id, messageId, userName } = value;
  if (!Number.isSafeInteger(id) || !Number.isSafeInteger(messageId)) return null;
  if (typeof userName !== "string") return null;
  /** @type {LogChange} */
  const change = {
    id: /** @type {number} */ (id),
    room: typeof value.room === "string" ? value.room : null,
    messageId: /** @type {number} */ (messageId),
    userName,
    timestamp: typeof value.timestamp === "string" ? value.timestamp : "",
    clientId: typeof value.clientId === "string" ? value.clientId : null,
  };
  if (value.type === "edit") {
    return typeof value.body === "string" ? { type: "edit", body: value.body, ...change } : null;
  }
  if (value.type === "delete") return { type: "delete", ...change };
  if (typeof value.emoji !== "string" || typeof value.on !== "boolean") return null;
  return { type: "reaction", emoji: value.emoji, on: value.on, ...change };
}

/**
 * A summary event; rooms without a name or lastId are dropped, a missing mention count is 0.
 * @param {Record<string, unknown>} value
 * @returns {SummaryEvent | null}
 */
function readSummary(value) {
  if (!Array.isArray(value.rooms)) return null;
  /** @type {RoomSummary[]} */
  const rooms = [];
  for (const entry of value.rooms) {
    if (!isObject(entry) || typeof entry.room !== "string") continue;
    if (!Number.isSafeInteger(entry.lastId)) continue;
    const mentions = Number.isSafeInteger(entry.mentions) ? Number(entry.mentions) : 0;
    rooms.push({ room: entry.room, lastId: Number(entry.lastId), mentions: Math.max(0, mentions) });
  }
  return { type: "summary", rooms };
}

/**
 * The limits a welcome announces, each missing or broken one at its default; null without any.
 * @param {unknown} value
 * @returns {Limits | null}
 */
export function readLimits(value) {
  if (!isObject(value)) return null;
  /** @param {unknown} n @param {number} fallback */
  const positive = (n, fallback) =>
    typeof n === "number" && Number.isFinite(n) && n > 0 ? n : fallback;
  /** @param {unknown} n @param {number} fallback */
  const count = (n, fallback) => Number.isSafeInteger(n) ? positive(n, fallback) : fallback;
  return {
    maxMessageBytes: count(value.maxMessageBytes, DEFAULT_LIMITS.maxMessageBytes),
    messagesPerSecond: positive(value.messagesPerSecond, DEFAULT_LIMITS.messagesPerSecond),
    burst: count(value.burst, DEFAULT_LIMITS.burst),
  };
}

/**
 * @param {Record<string, unknown>} value
 * @returns {WelcomeEvent}
 */
function readWelcome(value) {
  return {
    type: "welcome",
    userName: typeof value.userName === "string" ? value.userName : "",
    users: isUserList(value.users) ? value.users : null,
    userCount: Number.isSafeInteger(value.userCount)
      ? /** @type {number} */ (value.userCount)
      : null,
    lastId: Number.isSafeInteger(value.lastId) ? /** @type {number} */ (value.lastId) : 0,
    recovered: typeof value.recovered === "boolean" ? value.recovered : null,
    limits: readLimits(value.limits),
    lastRead: Number.isSafeInteger(value.lastRead) ? /** @type {number} */ (value.lastRead) : null,
  };
}

/**
 * @param {Record<string, unknown>} value
 * @returns {ErrorEvent}
 */
function readError(value) {
  const code = typeof value.code === "string" ? value.code : "";
  const message = typeof value.message === "string" ? value.message : "";
  return {
    type: "error",
    code,
    text: message || code || "error",
    clientId: typeof value.clientId === "string" ? value.clientId : null,
  };
}

/**
 * @param {unknown} users
 * @returns {users is string[]}
 */
function isUserList(users) {
  return Array.isArray(users) && users.every((u) => typeof u === "string");
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
