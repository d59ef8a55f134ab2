/**
 * The wire protocol of `GET /chat`: the stored message, the events the server sends, and the
 * commands a client may send. See `docs/protocol.md`.
 */

/** A chat message as stored and as delivered: `id` increases by one per room. */
export interface ChatMessage {
  id: number;
  room: string;
  userName: string;
  body: string;
  /** The server's clock when the message was stored, ISO 8601. */
  timestamp: string;
  /** The sender's id for the message, when it gave one: it lets the sender match its own. */
  clientId?: string;
  /** The names the body's `@name` tokens refer to, canonically spelt; absent when none. */
  mentions?: string[];
  /** When the body was last edited (ISO 8601): only in a message sent in its current state. */
  editedAt?: string;
  /** Who reacted with what, `{"👍": ["alice"]}`: only in its current state, and when any. */
  reactions?: Record<string, string[]>;
}

/** What every change to a stored message says: which message, who changed it, and when. */
interface ChangeBase {
  /** The room's next id: changes share one sequence with the messages. */
  id: number;
  room: string;
  messageId: number;
  userName: string;
  /** The server's clock when the change was stored, ISO 8601. */
  timestamp: string;
  clientId?: string;
}

/** A message's new body, by its author. */
export interface EditEvent extends ChangeBase {
  type: "edit";
  body: string;
}

/** A message taken back, by its author or an admin. */
export interface DeleteEvent extends ChangeBase {
  type: "delete";
}

/** A person's reaction with one emoji put on (`on: true`) or taken off a message. */
export interface ReactionEvent extends ChangeBase {
  type: "reaction";
  emoji: string;
  on: boolean;
}

/** A change to a message: what the log holds beside the messages. */
export type ChangeEvent = EditEvent | DeleteEvent | ReactionEvent;

/** A message as an event of the log. */
export type MessageLogEvent = { type: "message" } & ChatMessage;

/** One entry of a room's log, as sent: every kind has an id of the room's one sequence. */
export type LogEvent = MessageLogEvent | ChangeEvent;

/** How a client speaks: chosen by the `Sec-WebSocket-Protocol` header at upgrade. */
export type Dialect = "parley.v1" | "legacy";

/** The subprotocol name of the current dialect. */
export const PROTOCOL_V1 = "parley.v1";

/** The codes of the `error` event. */
export type ErrorCode =
  | "bad_frame"
  | "too_large"
  | "rate_limited"
  | "bad_name"
  | "bad_room"
  | "unavailable"
  /**
   * A `refresh` whose token is not valid, is another person's, or does not allow the room; an
   * edit of someone else's message, a delete of one by someone neither its author nor an admin.
   */
  | "forbidden"
  /** An edit, delete or reaction of a message that does not exist (any more). */
  | "not_found";

/** The limits a `parley.v1` client is told in its welcome, so it can keep within them. */
export interface ProtocolLimits {
  /** The largest message body, in bytes of UTF-8. */
  maxMessageBytes: number;
  /** Messages a connection may send per second, on average. */
  messagesPerSecond: number;
  /** Messages a connection may send at once, after a pause. */
  burst: number;
}

/** Events the server sends to `parley.v1` clients. */
export type ServerEvent =
  | {
    type: "welcome";
    room: string;
    userName: string;
    /** The first names present (at most 100): `userCount` says how many there are. */
    users: string[];
    userCount: number;
    lastId: number;
    recovered?: boolean;
    limits: ProtocolLimits;
    /** The person's read marker in the room (`accounts` and `jwt` modes): 0 when none. */
    lastRead?: number;
  }
  | LogEvent
  | { type: "ack"; clientId?: string; id: number }
  | { type: "join" | "leave"; userName: string; users: string[] }
  /** A `refresh` was accepted: the connection lasts until the new token's expiry (ISO 8601). */
  | { type: "refreshed"; expiresAt: string }
  /** `clientId` is the one of the command that caused the error, when it had one. */
  | { type: "error"; code: ErrorCode; message: string; clientId?: string }
  /** Someone else in the room is typing: live only, never stored, no id (see `typing.ts`). */
  | { type: "typing"; room: string; userName: string }
  /** The rooms whose lastId moved since the last summary, for a client that asked (`summaries.ts`). */
  | { type: "summary"; rooms: SummaryRoom[] };

/** One room of a `summary`: its newest id and how many new messages mention the client. */
export interface SummaryRoom {
  room: string;
  lastId: number;
  mentions: number;
}

/** The first event a joined `parley.v1` client gets. */
export type WelcomeEvent = Extract<ServerEvent, { type: "welcome" }>;

/** What a client asks for, once its frame has been validated. */
export type ClientCommand =
  | { type: "message"; body: string; clientId?: string; userName?: string }
  | ChangeCommand
  | { type: "hello"; userName: string }
  /** A newer token for a connection opened with one that expires (`auth.mode: "jwt"`). */
  | { type: "refresh"; token: string }
  | LiveCommand;

/** What a joined client says that is neither stored nor acked (see `live.ts`). */
export type LiveCommand =
  | { type: "typing" }
  /** The client has read the room up to `id`. */
  | { type: "read"; id: number }
  /** Start (`on`) or stop sending this connection `summary` events. */
  | { type: "summary"; on: boolean };

/** A command that changes a stored message: its event once stored is a {@link ChangeEvent}. */
export type ChangeCommand =
  | { type: "edit"; messageId: number; body: string; clientId?: string }
  | { type: "delete"; messageId: number; clientId?: string }
  | { type: "react"; messageId: number; emoji: string; on: boolean; clientId?: string };

/** The most distinct emoji one message may carry. */
export const MAX_REACTIONS = 20;

/** The largest emoji, in bytes of UTF-8. */
export const MAX_EMOJI_BYTES = 32;

/**
 * A frame or parameter the protocol refuses; `code` is the `error` event's code, `clientId` the one
 * of the refused command when it had a valid one.
 */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  constructor(readonly code: ErrorCode, message: string, readonly clientId?: string) {
    super(message);
  }
}

/** The room used when a client names none. */
export const DEFAULT_ROOM = "lobby";

const ROOM = /^[A-Za-z0-9_.-]{1,64}$/;
const NAME_LENGTH = /^.{1,32}$/su;
// Controls (C0, DEL, C1), format characters (bidi overrides, zero-width joiners and spaces, BOM)
// and line separators: a name with one can look like another's, or reorder the text around it.
const NAME_HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
// Nothing a reader can see: spaces, characters meant to be ignored (Hangul fillers) and the blank
// Braille cell.
const NAME_BLANK = /^[\p{White_Space}\p{Default_Ignorable_Code_Point}\u2800]*$/u;
// What SQLite would not store as sent (it cuts at NUL) and what no client needs in a message:
// the C0 controls but tab and newline. DEL is stored as sent, and allowed.
// deno-lint-ignore no-control-regex
const BODY_CONTROL = /[\0-\x08\x0b-\x1f]/;
const CLIENT_ID = /^[\x21-\x7e]{1,128}$/;

/** Returns the room name if it is 1–64 characters of `[A-Za-z0-9_.-]`, else throws `bad_room`. */
export function validateRoom(room: string): string {
  if (!ROOM.test(room)) {
    throw new ProtocolError(
      "bad_room",
      `room ${
        JSON.stringify(room.slice(0, 80))
      } is not allowed; use 1-64 letters, digits, "_", "." or "-"`,
    );
  }
  return room;
}

/**
 * Returns the name, NFC-normalised and trimmed, if it is 1–32 printable characters with something
 * visible among them; else throws `bad_name`. Controls and format characters are refused: a
 * right-to-left override or a zero-width space makes a name look like another one.
 */
export function validateUserName(name: unknown): string {
  const trimmed = typeof name === "string" ? name.normalize("NFC").trim() : "";
  if (!NAME_LENGTH.test(trimmed)) {
    throw new ProtocolError("bad_name", "userName must be 1-32 printable characters");
  }
  if (!trimmed.isWellFormed()) {
    throw new ProtocolError(
      "bad_name",
      "userName is not valid Unicode: it has half a surrogate pair",
    );
  }
  const hidden = NAME_HIDDEN.exec(trimmed)?.[0];
  if (hidden !== undefined) {
    throw new ProtocolError(
      "bad_name",
      `userName must be 1-32 printable characters; ${unicodeName(hidden)} is a control or ` +
        "invisible formatting character",
    );
  }
  if (NAME_BLANK.test(trimmed)) {
    throw new ProtocolError("bad_name", "userName must have a visible character in it");
  }
  return trimmed;
}

/** `U+202E` for a character, for a message that names one a person cannot see. */
function unicodeName(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

const encoder = new TextEncoder();

/** The UTF-8 size of a string, which is what `limits.maxMessageBytes` counts. */
function byteLength(text: string): number {
  return encoder.encode(text).length;
}

/**
 * The largest frame or request body read at all: room for a `maxMessageBytes` body escaped in JSON
 * and its envelope. Anything larger is refused unread; a smaller one with too long a body gets
 * `too_large`.
 */
export function maxFrameBytes(maxMessageBytes: number): number {
  return 8 * maxMessageBytes + 1024;
}

/**
 * Validates a message body: not blank, at most `maxBytes` of UTF-8, no control characters but tab
 * and newline, well-formed UTF-16. What is stored is then exactly what was sent.
 */
export function validateBody(body: unknown, maxBytes: number): string {
  if (typeof body !== "string") {
    throw new ProtocolError("bad_frame", '"body" must be a string');
  }
  if (body.trim() === "") throw new ProtocolError("bad_frame", "the message body is empty");
  // A UTF-16 unit is at most 3 bytes of UTF-8, so short bodies need no encoding.
  if (body.length * 3 > maxBytes) {
    const size = byteLength(body);
    if (size > maxBytes) {
      throw new ProtocolError("too_large", `message is ${size} bytes; the limit is ${maxBytes}`);
    }
  }
  // Both would reach the history altered: a NUL cuts the text, a lone surrogate becomes U+FFFD.
  const control = BODY_CONTROL.exec(body)?.[0];
  if (control !== undefined) {
    throw new ProtocolError(
      "bad_frame",
      `the message body contains ${unicodeName(control)}, a control character; only tab and ` +
        "newline are allowed",
    );
  }
  if (!body.isWellFormed()) {
    throw new ProtocolError(
      "bad_frame",
      "the message body is not valid Unicode: it has half a surrogate pair",
    );
  }
  return body;
}

function parseObject(data: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new ProtocolError("bad_frame", "the frame is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("bad_frame", "the frame must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/**
 * Parses one client frame of the given dialect into a command, or throws a {@link ProtocolError}
 * saying what is wrong with it. Binary frames are refused: the protocol is JSON text. With
 * `fixedName` (the connection's account name) the name a `hello` or a legacy frame gives is not
 * read: the command carries `fixedName` instead.
 */
export function parseClientFrame(
  data: unknown,
  dialect: Dialect,
  maxBytes: number,
  fixedName: string | null = null,
): ClientCommand {
  if (typeof data !== "string") {
    throw new ProtocolError("bad_frame", "binary frames are not supported; send JSON text");
  }
  const frame = parseObject(data);
  if (dialect === "legacy") {
    // The Go server's clients send {userName, body, timestamp}; their timestamp is ignored.
    return {
      type: "message",
      body: validateBody(frame.body, maxBytes),
      userName: fixedName ?? validateUserName(frame.userName),
    };
  }
  switch (frame.type) {
    case "message":
      return parseMessage(frame, maxBytes);
    case "edit":
    case "delete":
    case "react":
      return parseChange(frame, maxBytes);
    case "hello":
      return { type: "hello", userName: fixedName ?? validateUserName(frame.userName) };
    case "refresh":
      if (typeof frame.token !== "string" || frame.token === "") {
        throw new ProtocolError("bad_frame", '"token" must be the new token, a string');
      }
      return { type: "refresh", token: frame.token };
    case "typing":
    case "read":
    case "summary":
      return parseLiveCommand(frame);
    default:
      throw new ProtocolError(
        "bad_frame",
        `unknown frame type ${shortJson(frame.type)}; use "message", "edit", "delete", "react", ` +
          '"typing", "read", "summary", "hello" or "refresh"',
      );
  }
}

/** A `message` command; a refused body is reported with the command's clientId. */
function parseMessage(
  frame: Record<string, unknown>,
  maxBytes: number,
): Extract<ClientCommand, { type: "message" }> {
  const clientId = parseClientId(frame);
  const body = withClientId(clientId, () => validateBody(frame.body, maxBytes));
  return clientId === undefined ? { type: "message", body } : { type: "message", body, clientId };
}

/** An `edit`, `delete` or `react` command; what is refused is reported with its clientId. */
function parseChange(frame: Record<string, unknown>, maxBytes: number): ChangeCommand {
  const clientId = parseClientId(frame);
  const command = withClientId(clientId, (): ChangeCommand => {
    const messageId = validateMessageId(frame.messageId);
    if (frame.type === "edit") {
      return { type: "edit", messageId, body: validateBody(frame.body, maxBytes) };
    }
    if (frame.type === "delete") return { type: "delete", messageId };
    if (typeof frame.on !== "boolean") {
      throw new ProtocolError("bad_frame", '"on" must be true (react) or false (take it back)');
    }
    return { type: "react", messageId, emoji: validateEmoji(frame.emoji), on: frame.on };
  });
  if (clientId !== undefined) command.clientId = clientId;
  return command;
}

/** The frame's clientId: absent, or 1-128 printable ASCII characters; else `bad_frame`. */
function parseClientId(frame: Record<string, unknown>): string | undefined {
  return validateClientId(frame.clientId);
}

/** A command's clientId: absent (undefined or null), or 1-128 printable ASCII; else `bad_frame`. */
export function validateClientId(value: unknown): string | undefined {
  const clientId = value ?? undefined;
  if (clientId === undefined || (typeof clientId === "string" && CLIENT_ID.test(clientId))) {
    return clientId;
  }
  throw new ProtocolError(
    "bad_frame",
    '"clientId" must be 1-128 printable ASCII characters without spaces',
  );
}

/** Runs `parse`; a {@link ProtocolError} it throws is given the command's clientId. */
function withClientId<T>(clientId: string | undefined, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (clientId === undefined || !(error instanceof ProtocolError)) throw error;
    throw new ProtocolError(error.code, error.message, clientId);
  }
}

/** A message id: a whole number of at least 1; else `bad_frame`. */
export function validateMessageId(value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 1) return value;
  throw new ProtocolError(
    "bad_frame",
    `"messageId" must be the id of a message, a whole number, not ${shortJson(value)}`,
  );
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * An emoji of a reaction: one grapheme (as `Intl.Segmenter` counts), at most
 * {@link MAX_EMOJI_BYTES} of UTF-8, nothing invisible or blank; else `bad_frame`. Any one
 * grapheme is taken: which are emoji changes with every Unicode version.
 */
export function validateEmoji(value: unknown): string {
  if (typeof value !== "string" || value === "") {
    throw new ProtocolError("bad_frame", '"emoji" must be one emoji, a string');
  }
  const emoji = value.normalize("NFC");
  const size = byteLength(emoji);
  if (size > MAX_EMOJI_BYTES) {
    throw new ProtocolError(
      "bad_frame",
      `"emoji" is ${size} bytes; one emoji is at most ${MAX_EMOJI_BYTES}`,
    );
  }
  let count = 0;
  for (const _ of graphemes.segment(emoji)) count++;
  if (count !== 1 || !emoji.isWellFormed() || NAME_BLANK.test(emoji) || /^\p{Cc}/u.test(emoji)) {
    throw new ProtocolError(
      "bad_frame",
      `"emoji" must be exactly one emoji, not ${shortJson(value)}`,
    );
  }
  return emoji;
}

/** The most `@name` tokens of one body that are looked up: a body full of them costs no more. */
const MAX_MENTION_TOKENS = 50;
// A name runs to the next space or "@"; what ends a sentence after it is not part of it.
const MENTION = /(?<![\p{L}\p{N}_])@([^\s@]{1,32})/gu;
const TRAILING = /[.,;:!?)\]}'"»”’]+$/u;

/**
 * The names a body's `@name` tokens may refer to, as written: each token, and the token without
 * punctuation after it (`@bob,` may name "bob," or "bob"). Names with spaces cannot be mentioned.
 */
export function mentionCandidates(body: string): string[] {
  if (!body.includes("@")) return [];
  const candidates: string[] = [];
  for (const match of body.matchAll(MENTION)) {
    const token = match[1];
    candidates.push(token);
    const bare = token.replace(TRAILING, "");
    if (bare !== token && bare !== "") candidates.push(bare);
    if (candidates.length >= MAX_MENTION_TOKENS) break;
  }
  return candidates;
}

/** Whether a command is one of the live extras', which `live.ts` carries out. */
export function isLiveCommand(command: ClientCommand): command is LiveCommand {
  return command.type === "typing" || command.type === "read" || command.type === "summary";
}

/** A `typing`, `read {id}` or `summary {on}` command. */
function parseLiveCommand(frame: Record<string, unknown>): LiveCommand {
  if (frame.type === "typing") return { type: "typing" };
  if (frame.type === "summary") {
    if (typeof frame.on !== "boolean") {
      throw new ProtocolError("bad_frame", '"on" must be true or false');
    }
    return { type: "summary", on: frame.on };
  }
  const id = frame.id;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
    throw new ProtocolError("bad_frame", '"id" must be a message id, a whole number');
  }
  return { type: "read", id };
}

/** The JSON text of one `parley.v1` event. */
export function encodeEvent(event: ServerEvent): string {
  return JSON.stringify(event);
}

/** A `message` event for a stored message: with the sender's `clientId`, when it gave one. */
export function messageEvent(message: ChatMessage): MessageLogEvent {
  const event: MessageLogEvent = {
    type: "message",
    id: message.id,
    room: message.room,
    userName: message.userName,
    body: message.body,
    timestamp: message.timestamp,
  };
  if (message.clientId !== undefined) event.clientId = message.clientId;
  if (message.mentions !== undefined) event.mentions = message.mentions;
  if (message.editedAt !== undefined) event.editedAt = message.editedAt;
  if (message.reactions !== undefined) event.reactions = message.reactions;
  return event;
}

// Go's encoding/json escapes these so the output is safe inside HTML; the legacy clients and the
// byte-for-byte /getAllMessages answer keep that.
const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

/** JSON as Go's `encoding/json` writes it (HTML-safe escapes), without the trailing newline. */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]);
}

/**
 * One legacy frame: the Go server's message object `{"userName","body","timestamp"}`, then `id`, as
 * gorilla's `WriteJSON` sends it, newline included.
 */
export function encodeLegacy(message: ChatMessage): string {
  const { userName, body, timestamp, id } = message;
  return goJson({ userName, body, timestamp, id }) + "\n";
}

/** A client's value quoted in an error message, cut: a client may send 60 KB of it. */
function shortJson(value: unknown): string {
  if (value === undefined) return "(none)";
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= 40 ? text : `${text.slice(0, 40)}… (${text.length} characters)`;
}
