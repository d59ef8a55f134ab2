/**
 * What the fuzz test is made of: a seeded random source (the same inputs on every run), generators
 * of hostile WebSocket frames, upgrade queries and HTTP requests, and raw TCP clients that send
 * what `fetch` and `WebSocket` would refuse to and read the answers.
 */

/** A small seeded generator (xorshift32, its output multiplied to mix the low bits). */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = (seed >>> 0) || 1;
  }

  uint32(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return Math.imul(this.#state, 0x9e3779b1) >>> 0;
  }

  /** A whole number from 0 to `n` - 1. */
  int(n: number): number {
    return Math.floor((this.uint32() / 2 ** 32) * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.uint32() < p * 2 ** 32;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A size from 0 to `max`, small ones as likely as large ones by order of magnitude. */
  size(max: number): number {
    return Math.floor(Math.exp((this.uint32() / 2 ** 32) * Math.log(max + 1))) - 1;
  }

  bytes(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uint32() & 0xff;
    return out;
  }

  /** One of `choices` by weight: `[[weight, value], …]`. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [weight] of choices) total += weight;
    let at = this.int(total);
    for (const [weight, value] of choices) {
      if (at < weight) return value;
      at -= weight;
    }
    return choices[0][1];
  }
}

// Characters that have broken chat servers: controls, separators, bidi and zero-width characters,
// fillers, a combining mark, noncharacters, halves of surrogate pairs, astral characters.
const SPECIALS = [
  "\0",
  "\x07",
  "\t",
  "\n",
  "\r",
  "\x1b",
  "\x7f",
  "\x85",
  "\xa0",
  "\xad",
  "\u200b",
  "\u200d",
  "\u202e",
  "\u2066",
  "\u2028",
  "\u2029",
  "\u2060",
  "\ufeff",
  "\u3164",
  "\u2800",
  "\u115f",
  "\u0301",
  "\ufffd",
  "\uffff",
  "\ud800",
  "\udfff",
  "🦊",
  "\u{e0001}",
  '"',
  "\\",
  "<script>",
  "%00",
  "${",
];

/** Random text of about `length` UTF-16 units: ASCII, the specials, any BMP unit, astral. */
export function text(rng: Random, length: number): string {
  let out = "";
  while (out.length < length) {
    const roll = rng.int(100);
    if (roll < 60) out += String.fromCharCode(0x20 + rng.int(95));
    else if (roll < 82) out += rng.pick(SPECIALS);
    else if (roll < 95) out += String.fromCharCode(rng.int(0x10000));
    else out += String.fromCodePoint(0x10000 + rng.int(0x100000));
  }
  return out;
}

/** Text every check accepts as a message body: printable, not blank, no controls. */
export function validBody(rng: Random, length: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,!?'\"\\/<>&é山🦊\t\n";
  const chars = [...alphabet];
  let out = "m";
  while (out.length < length) out += rng.pick(chars);
  return out;
}

/** A `clientId` the protocol accepts: 1-128 printable ASCII characters without spaces. */
export function validClientId(rng: Random): string {
  let out = "";
  for (let n = 1 + rng.int(rng.chance(0.1) ? 128 : 16); n > 0; n--) {
    out += String.fromCharCode(0x21 + rng.int(94));
  }
  return out;
}

/** Kinds of WebSocket input the fuzz sends, each counted separately. */
export type FrameKind =
  | "valid message"
  | "hello"
  | "mutated frame"
  | "junk JSON"
  | "deep JSON"
  | "huge numbers"
  | "invalid UTF-16"
  | "random text"
  | "binary frame"
  | "near the size limit";

/** One WebSocket frame to send. */
export interface FuzzFrame {
  kind: FrameKind;
  data: string | Uint8Array<ArrayBuffer>;
  /** Sure to be accepted: an ack is owed. */
  valid: boolean;
}

/**
 * A frame of a random kind for a connection named `name`, at most `maxFrameBytes` long (a longer
 * one closes the connection: {@link oversizeFrame} makes those).
 */
export function fuzzFrame(
  rng: Random,
  name: string,
  maxMessageBytes: number,
  maxFrameBytes: number,
): FuzzFrame {
  const frame = anyFrame(rng, name, maxMessageBytes);
  if (frame.data.length > maxFrameBytes) frame.data = frame.data.slice(0, maxFrameBytes);
  return frame;
}

function anyFrame(rng: Random, name: string, maxMessageBytes: number): FuzzFrame {
  const kind = rng.weighted<FrameKind>([
    [16, "valid message"],
    [3, "hello"],
    [25, "mutated frame"],
    [18, "junk JSON"],
    [4, "deep JSON"],
    [5, "huge numbers"],
    [6, "invalid UTF-16"],
    [10, "random text"],
    [9, "binary frame"],
    [4, "near the size limit"],
  ]);
  switch (kind) {
    case "valid message":
      return { kind, data: JSON.stringify(validMessage(rng)), valid: true };
    case "hello":
      return { kind, data: JSON.stringify(helloFrame(rng, name)), valid: false };
    case "mutated frame":
      return { kind, data: mutate(rng, JSON.stringify(validFrame(rng, name))), valid: false };
    case "junk JSON":
      return { kind, data: junkJson(rng), valid: false };
    case "deep JSON":
      return { kind, data: deepJson(rng), valid: false };
    case "huge numbers":
      return { kind, data: hugeNumbers(rng), valid: false };
    case "invalid UTF-16":
      return { kind, data: invalidUtf16(rng), valid: false };
    case "random text":
      return { kind, data: text(rng, rng.size(2000)), valid: false };
    case "binary frame":
      return { kind, data: binaryFrame(rng), valid: false };
    case "near the size limit":
      return nearTheLimit(rng, maxMessageBytes);
  }
}

function validMessage(rng: Random): Record<string, string> {
  const frame: Record<string, string> = {
    type: "message",
    body: validBody(rng, 1 + rng.size(300)),
  };
  if (rng.chance(0.5)) frame.clientId = validClientId(rng);
  return frame;
}

function helloFrame(rng: Random, name: string): Record<string, unknown> {
  const userName = rng.weighted<unknown>([
    [3, name],
    [1, `other${rng.int(100)}`],
    [2, text(rng, 1 + rng.size(40))],
    [1, rng.pick([null, 7, [], {}, "", " ", "\u2800", "\u202e" + name])],
  ]);
  return { type: "hello", userName };
}

function validFrame(rng: Random, name: string): Record<string, unknown> {
  return rng.chance(0.8) ? validMessage(rng) : { type: "hello", userName: name };
}

const SNIPPETS = [
  '"',
  "\\",
  "\\u0000",
  "\\ud800",
  "\\udc00",
  "\\u202e",
  "{",
  "}",
  "[",
  "]",
  ",",
  ":",
  "null",
  "true",
  "1e999",
  "-",
  " ",
  '"type"',
  '"body"',
  '"__proto__":{}',
];

/** `frame` with one to four edits: a unit replaced, a snippet inserted, a range cut or doubled. */
export function mutate(rng: Random, frame: string): string {
  let out = frame;
  for (let edits = 1 + rng.int(4); edits > 0; edits--) {
    const at = rng.int(out.length + 1);
    const end = Math.min(out.length, at + rng.size(20));
    switch (rng.int(6)) {
      case 0:
        out = out.slice(0, at) + text(rng, 1) + out.slice(at + 1);
        break;
      case 1:
        out = out.slice(0, at) + rng.pick(SNIPPETS) + out.slice(at);
        break;
      case 2:
        out = out.slice(0, at) + out.slice(end);
        break;
      case 3:
        out = out.slice(0, end) + out.slice(at, end) + out.slice(end);
        break;
      case 4:
        out = out.slice(0, at);
        break;
      default:
        out = out.slice(at) + out.slice(0, at);
    }
  }
  return out;
}

/** A JSON value of any type, `depth` levels at most. */
function junkValue(rng: Random, depth: number): unknown {
  switch (rng.int(depth > 0 ? 8 : 6)) {
    case 0:
      return text(rng, rng.size(60));
    case 1:
      return rng.pick([0, -1, 1.5, 2 ** 53 + 1, -0, 1e308, Number.MIN_VALUE]);
    case 2:
      return rng.pick([true, false, null]);
    case 3:
      return rng.pick(["message", "hello", "MESSAGE", "message\0", "", "ack", "welcome"]);
    case 4:
      return rng.pick(["\u2800", " \n ", "ok\0rest", "\ud800", "a".repeat(rng.size(5000))]);
    case 5:
      return validBody(rng, 1 + rng.size(40));
    case 6:
      return Array.from({ length: rng.int(4) }, () => junkValue(rng, depth - 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let n = rng.int(4); n > 0; n--) object[text(rng, 1 + rng.int(6))] = junkValue(rng, 0);
      return object;
    }
  }
}

const FIELDS = ["type", "body", "clientId", "userName", "timestamp", "id", "room"];

/** A JSON object whose fields have random names and values of random types. */
function junkJson(rng: Random): string {
  const frame: Record<string, unknown> = {};
  if (rng.chance(0.7)) frame.type = rng.chance(0.6) ? rng.pick(["message", "hello"]) : null;
  for (let n = rng.int(5); n > 0; n--) frame[rng.pick(FIELDS)] = junkValue(rng, 2);
  if (rng.chance(0.1)) return JSON.stringify(junkValue(rng, 3)) ?? "null";
  const json = JSON.stringify(frame);
  // JSON.parse makes "__proto__" an own property; assigning it here would not.
  return rng.chance(0.1) ? json.replace("{", '{"__proto__":{"type":"hello","body":"x"},') : json;
}

/** Arrays or objects nested thousands deep, as the frame or as one of its fields. */
function deepJson(rng: Random): string {
  const depth = 1 + rng.size(6000);
  const nested = rng.chance(0.5)
    ? "[".repeat(depth) + "]".repeat(depth)
    : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
  const field = rng.pick(["type", "body", "clientId", "userName"]);
  if (rng.chance(0.3)) return nested;
  return `{"type":"message","body":"x",${JSON.stringify(field)}:${nested}}`;
}

const NUMBERS = [
  "1e309",
  "-1e309",
  "1e-400",
  "123456789012345678901234567890123456789",
  "-0",
  "0.0000000000000000000000001",
  "9007199254740993",
  "1E+2",
  "0x10",
  "NaN",
  "Infinity",
  "01",
  ".5",
];

/** Numbers JSON.parse turns into Infinity, -0 or lost precision, and some it refuses. */
function hugeNumbers(rng: Random): string {
  const number = rng.chance(0.1) ? "9".repeat(rng.size(20_000)) || "9" : rng.pick(NUMBERS);
  return rng.pick([
    `{"type":"message","body":"x","clientId":${number}}`,
    `{"type":${number}}`,
    `{"type":"message","body":${number}}`,
    `{"type":"hello","userName":${number}}`,
    number,
  ]);
}

/** Halves of surrogate pairs, escaped in JSON, in every string field. */
function invalidUtf16(rng: Random): string {
  const lone = rng.pick(["\\ud800", "\\udfff", "\\udc00\\ud800", "\\ud83d", "x\\ud83dy"]);
  const [field, other] = rng.pick([
    ["body", '"clientId":"c"'],
    ["userName", '"body":"x"'],
    ["clientId", '"body":"x"'],
    ["type", '"body":"x"'],
  ]);
  const type = field === "userName" ? "hello" : "message";
  if (field === "type") return `{"type":"message${lone}",${other}}`;
  return `{"type":"${type}",${other},"${field}":"ok${lone}"}`;
}

/** Random bytes, or a valid frame sent as binary (which the protocol does not take). */
function binaryFrame(rng: Random): Uint8Array<ArrayBuffer> {
  if (rng.chance(0.3)) return new TextEncoder().encode(JSON.stringify(validMessage(rng)));
  return rng.bytes(rng.size(3000));
}

/** A body just under or just over `maxMessageBytes`, in 1-, 2- and 4-byte characters. */
function nearTheLimit(rng: Random, maxMessageBytes: number): FuzzFrame {
  const [unit, bytes] = rng.pick([["m", 1], ["é", 2], ["🦊", 4], ["\\u00e9", 2]] as const);
  const count = Math.max(1, Math.floor(maxMessageBytes / bytes) - 3 + rng.int(7));
  const body = unit.repeat(count);
  const data = `{"type":"message","body":"${body}"}`;
  return { kind: "near the size limit", data, valid: count * bytes <= maxMessageBytes };
}

/** A frame longer than the server reads at all: it closes the connection with 1009. */
export function oversizeFrame(
  rng: Random,
  maxFrameBytes: number,
): string | Uint8Array<ArrayBuffer> {
  const size = maxFrameBytes + 1 + rng.size(60_000);
  if (rng.chance(0.3)) return rng.bytes(size);
  return `{"type":"message","body":"${"x".repeat(size)}"}`;
}

/** Percent-encoded bytes that decode to controls, bidi overrides, invalid UTF-8 and more. */
const ODD_QUERY_VALUES = [
  "1%0A2026-01-01T00:00:00.000Z%20info%20forged",
  "%00",
  "%E2%80%AE",
  "%ED%A0%80",
  "%FF%FE",
  "%C0%80",
  "%E2%A0%80",
  "%E3%85%A4",
  "-1",
  "1e3",
  "1.5",
  "99999999999999999999",
  "9007199254740993",
  "0x10",
  "%20",
  "..",
  "%2F",
  "lobby%00",
  "%",
  "%%",
  "%ZZ",
  "+",
  "",
];

function percentEncoded(rng: Random, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) {
    out += rng.chance(0.5)
      ? String.fromCharCode(0x61 + rng.int(26))
      : `%${rng.int(256).toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** A query for `GET /chat`: since, room and userName with odd values, repeated, or missing. */
export function chatQuery(rng: Random): string {
  const parts: string[] = [];
  for (const key of ["room", "userName", "since", rng.pick(["x", "room", "since", "userName"])]) {
    if (rng.chance(0.3)) continue;
    const value = rng.weighted([
      [4, () => rng.pick(ODD_QUERY_VALUES)],
      [3, () => percentEncoded(rng, rng.size(80))],
      [1, () => "a".repeat(rng.size(5000))],
      [2, () => key === "since" ? String(rng.int(100)) : `fuzz${rng.int(20)}`],
    ])();
    parts.push(`${key}=${value}`);
  }
  return parts.join("&");
}

// ---- HTTP ----

/** Kinds of HTTP input the fuzz sends, each counted separately. */
export type HttpKind =
  | "valid request"
  | "odd query"
  | "random path"
  | "odd method"
  | "message post"
  | "odd headers"
  | "upgrade headers"
  | "odd host";

/** One HTTP/1.1 request, which {@link encodeRequest} frames correctly. */
export interface HttpInput {
  kind: HttpKind;
  method: string;
  target: string;
  /** Written as Latin-1: one byte per UTF-16 unit. */
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer>;
  /** Sure to be answered with a 2xx. */
  valid: boolean;
}

const ROUTES = [
  "/",
  "/messages",
  "/app.js",
  "/chat.css",
  "/history",
  "/getAllMessages",
  "/rooms",
  "/healthz",
  "/metrics",
  "/chat",
  "/rooms/fuzz1/messages",
];

/** A request of a random kind for a server that rooms `fuzz0`… belong to. */
export function httpRequest(rng: Random, host: string): HttpInput {
  const kind = rng.weighted<HttpKind>([
    [20, "valid request"],
    [20, "odd query"],
    [12, "random path"],
    [8, "odd method"],
    [20, "message post"],
    [12, "odd headers"],
    [4, "upgrade headers"],
    [4, "odd host"],
  ]);
  const input: HttpInput = {
    kind,
    method: "GET",
    target: rng.pick(ROUTES),
    headers: [["host", host]],
    body: new Uint8Array(0),
    valid: false,
  };
  HTTP_KINDS[kind](rng, input);
  return input;
}

const QUERY_KEYS = ["room", "limit", "before", "after", "userName", "since", "x"];

const HTTP_KINDS: Record<HttpKind, (rng: Random, input: HttpInput) => void> = {
  "valid request": (rng, input) => {
    input.valid = true;
    input.method = "GET";
    input.target = rng.pick([
      "/healthz",
      "/rooms",
      "/metrics",
      "/",
      "/app.js",
      "/getAllMessages",
      `/history?room=fuzz${rng.int(20)}&limit=${1 + rng.int(1000)}`,
      `/history?room=fuzz${rng.int(20)}&after=${rng.int(100)}`,
    ]);
    if (rng.chance(0.2)) input.method = "HEAD", input.target = rng.pick(["/", "/healthz"]);
  },
  "odd query": (rng, input) => {
    const parts = [];
    for (let n = 1 + rng.int(4); n > 0; n--) {
      const value = rng.chance(0.5)
        ? rng.pick(ODD_QUERY_VALUES)
        : percentEncoded(rng, rng.size(60));
      parts.push(`${rng.pick(QUERY_KEYS)}=${value}`);
    }
    input.target = `${rng.pick(["/history", "/rooms", "/", "/getAllMessages"])}?${parts.join("&")}`;
  },
  "random path": (rng, input) => {
    input.target = rng.pick([
      () => `/${percentEncoded(rng, rng.size(200))}`,
      () => `/rooms/${percentEncoded(rng, rng.size(80))}/messages`,
      () => `/${rng.pick(["..", ".", "%2e%2e", "//", "rooms", "history/"]).repeat(1 + rng.int(5))}`,
      () => `/${"a".repeat(rng.size(6000))}`,
      () => rng.pick(["*", "http://evil.example/healthz", "/healthz#x", "/%", "/?"]),
    ])();
    input.method = rng.pick(["GET", "POST", "HEAD"]);
  },
  "odd method": (rng, input) => {
    input.method = rng.pick([
      "PUT",
      "DELETE",
      "OPTIONS",
      "PATCH",
      "TRACE",
      "get",
      "FOO",
      "M-SEARCH",
    ]);
  },
  "message post": (rng, input) => postRequest(rng, input),
  "odd headers": (rng, input) => {
    for (let n = 1 + rng.int(6); n > 0; n--) input.headers.push(oddHeader(rng));
  },
  "upgrade headers": (rng, input) => {
    // Some of a WebSocket handshake's headers, never all of them (that would switch protocols).
    input.target = `/chat?${chatQuery(rng)}`;
    const all: [string, string][] = [
      ["upgrade", rng.pick(["websocket", "WebSocket", "h2c", ""])],
      ["connection", rng.pick(["Upgrade", "keep-alive, Upgrade", "close"])],
      ["sec-websocket-key", rng.pick(["dGhlIHNhbXBsZSBub25jZQ==", "short", ""])],
      ["sec-websocket-version", rng.pick(["13", "8", "x"])],
      ["sec-websocket-protocol", rng.pick(["parley.v1", "x, parley.v1", ""])],
    ];
    const drop = rng.int(4);
    input.headers.push(...all.filter((_, i) => i !== drop && rng.chance(0.8)));
  },
  "odd host": (rng, input) => {
    input.headers = rng.chance(0.2) ? [] : [[
      "host",
      rng.pick(["a b", "[::1", "%00", "ex ample.com:80", "x:99999", ":", "[", "h/p", "a@b"]),
    ]];
  },
};

/** `POST /rooms/:room/messages` with a body that may be valid JSON, text, or neither. */
function postRequest(rng: Random, input: HttpInput): void {
  input.method = "POST";
  const room = rng.chance(0.8) ? `fuzz${rng.int(20)}` : percentEncoded(rng, rng.size(70));
  input.target = `/rooms/${room}/messages`;
  const json = rng.chance(0.7);
  if (json) {
    input.headers.push(["content-type", rng.pick(["application/json", "application/json; x=1"])]);
  } else if (rng.chance(0.5)) {
    input.headers.push(["content-type", rng.pick(["text/plain", "application/x-www-form", "x"])]);
  }
  const valid = rng.chance(0.4);
  if (valid) {
    const message = { userName: `poster${rng.int(10)}`, body: validBody(rng, 1 + rng.size(200)) };
    input.body = new TextEncoder().encode(json ? JSON.stringify(message) : message.body);
    input.valid = room.startsWith("fuzz");
    return;
  }
  input.body = rng.weighted([
    [3, () => new TextEncoder().encode(mutate(rng, JSON.stringify({ userName: "p", body: "b" })))],
    [
      2,
      () =>
        new TextEncoder().encode(
          JSON.stringify({ userName: junkValue(rng, 1), body: junkValue(rng, 1) }),
        ),
    ],
    [2, () => rng.bytes(rng.size(2000))],
    [1, () => new TextEncoder().encode(invalidUtf16(rng))],
    [1, () => new Uint8Array(40_000 + rng.size(20_000))],
  ])();
  if (rng.chance(0.2)) input.target += `?userName=${rng.pick(ODD_QUERY_VALUES)}`;
}

const HEADER_NAMES = [
  "accept",
  "accept-encoding",
  "accept-language",
  "content-type",
  "cookie",
  "origin",
  "referer",
  "user-agent",
  "x-forwarded-for",
  "if-none-match",
  "range",
  "authorization",
  "sec-websocket-protocol",
];

/** A header with a known or random name and a value that is odd but legal on the wire. */
function oddHeader(rng: Random): [string, string] {
  const name = rng.chance(0.8)
    ? rng.pick(HEADER_NAMES)
    : `x-${percentEncoded(rng, 1 + rng.size(30))}`;
  const value = rng.weighted([
    [4, () => latin1Value(rng, rng.size(200))],
    [1, () => "v".repeat(rng.size(8000))],
    [
      2,
      () => rng.pick(["gzip, br", "*", "", "null", "https://evil.example", '"etag"', "bytes=0-"]),
    ],
  ])();
  return [name, value];
}

/** Visible ASCII, spaces and bytes 0x80-0xff (obs-text), never starting or ending with a space. */
function latin1Value(rng: Random, length: number): string {
  let out = "v";
  for (let i = 0; i < length; i++) {
    out += String.fromCharCode(rng.chance(0.8) ? 0x20 + rng.int(95) : 0x80 + rng.int(128));
  }
  return out + "v";
}

/** The request's bytes, with a content-length or (sometimes) a chunked body. */
export function encodeRequest(rng: Random, input: HttpInput): Uint8Array<ArrayBuffer> {
  const headers = [...input.headers];
  let body = input.body;
  if (body.length > 0 && rng.chance(0.15)) {
    headers.push(["transfer-encoding", "chunked"]);
    body = chunked(rng, body);
  } else if (body.length > 0 || input.method === "POST") {
    headers.push(["content-length", String(body.length)]);
  }
  const head = `${input.method} ${input.target} HTTP/1.1\r\n` +
    headers.map(([name, value]) => `${name}: ${value}\r\n`).join("") + "\r\n";
  const bytes = new Uint8Array(head.length + body.length);
  for (let i = 0; i < head.length; i++) bytes[i] = head.charCodeAt(i) & 0xff;
  bytes.set(body, head.length);
  return bytes;
}

function chunked(rng: Random, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  const ascii = (text: string) => new TextEncoder().encode(text);
  for (let at = 0; at < body.length;) {
    const size = Math.min(body.length - at, 1 + rng.size(4000));
    parts.push(ascii(`${size.toString(16)}\r\n`), body.subarray(at, at + size), ascii("\r\n"));
    at += size;
  }
  parts.push(ascii("0\r\n\r\n"));
  return concat(parts);
}

/** The byte arrays one after the other. */
export function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Bytes that are not a valid request: the server answers 4xx or hangs up. */
export function garbageRequest(rng: Random): Uint8Array<ArrayBuffer> {
  const ascii = (text: string) => new TextEncoder().encode(text);
  return rng.pick([
    () => rng.bytes(1 + rng.size(4000)),
    () => concat([ascii("GET / HTTP/1.1\r\n"), rng.bytes(1 + rng.size(500)), ascii("\r\n\r\n")]),
    () => ascii("GET / HTTP/9.9\r\nhost: x\r\n\r\n"),
    () => ascii("GET /\r\n\r\n"),
    () => ascii("GET / HTTP/1.1\r\nno colon here\r\n\r\n"),
    () => ascii(`GET / HTTP/1.1\r\nx: ${"a".repeat(200_000)}\r\n\r\n`),
    () => ascii(`GET /${"a".repeat(100_000)} HTTP/1.1\r\nhost: x\r\n\r\n`),
    () =>
      ascii(
        "POST /rooms/a/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n" +
          "content-length: 5\r\n\r\nhello",
      ),
    () =>
      ascii(
        "POST /rooms/a/messages HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n" +
          "zz\r\nhello\r\n0\r\n\r\n",
      ),
    () => ascii("POST /rooms/a/messages HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n"),
    () => ascii(`GET / HTTP/1.1\r\nhost: x\r\nx: a\0b\r\n\r\n`),
    () => ascii("\r\n\r\n\r\n"),
  ])();
}

// ---- Raw WebSocket ----

/** A client frame: FIN, opcode and RSV bits as given, masked unless `masked` is false. */
export function wsFrame(
  opcode: number,
  payload: Uint8Array,
  { fin = true, rsv = 0, masked = true } = {},
): Uint8Array<ArrayBuffer> {
  const length = payload.length;
  const header = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const mask = masked ? 0x80 : 0;
  if (length < 126) header.push(mask | length);
  else if (length < 65536) header.push(mask | 126, length >> 8, length & 0xff);
  else {header.push(
      mask | 127,
      0,
      0,
      0,
      0,
      length >>> 24,
      (length >> 16) & 0xff,
      (length >> 8) & 0xff,
      length & 0xff,
    );}
  const key = [0x12, 0x34, 0x56, 0x78];
  const body = Uint8Array.from(payload, (byte, i) => masked ? byte ^ key[i % 4] : byte);
  return concat([Uint8Array.from(header), masked ? Uint8Array.from(key) : new Uint8Array(0), body]);
}

/** Bytes after a WebSocket handshake that break the protocol: the server must close. */
export function brokenWsFrames(rng: Random): Uint8Array<ArrayBuffer> {
  const utf8 = (text: string) => new TextEncoder().encode(text);
  const invalidUtf8 = rng.pick([[0xc3, 0x28], [0xed, 0xa0, 0x80], [0xff], [0xc0, 0x80], [
    0xe2,
    0x82,
  ]]);
  const closeCode = (code: number) => Uint8Array.from([code >> 8, code & 0xff]);
  return rng.pick([
    () =>
      wsFrame(
        1,
        concat([utf8('{"type":"message","body":"'), Uint8Array.from(invalidUtf8), utf8('"}')]),
      ),
    () => wsFrame(rng.pick([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), rng.bytes(rng.size(100))),
    () => wsFrame(1, utf8('{"type":"hello"}'), { rsv: 1 + rng.int(7) }),
    () => wsFrame(1, utf8('{"type":"hello"}'), { masked: false }),
    () => wsFrame(9, rng.bytes(126 + rng.size(1000))),
    () => wsFrame(9, utf8("ping"), { fin: false }),
    () => wsFrame(0, utf8("continued")),
    () => wsFrame(8, closeCode(rng.pick([0, 999, 1004, 1005, 1006, 1015, 2999, 5000]))),
    () => wsFrame(8, Uint8Array.from([3])),
    () => wsFrame(8, concat([closeCode(1000), Uint8Array.from(invalidUtf8)])),
    () => concat([wsFrame(1, utf8('{"type":'), { fin: false }), wsFrame(1, utf8('"hello"}'))]),
    () => rng.bytes(1 + rng.size(2000)),
    () => Uint8Array.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]),
  ])();
}

/** The handshake of `GET /chat` as a browser sends it, with `query`. */
export function upgradeRequest(
  host: string,
  query: string,
  protocol = true,
): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(
    `GET /chat?${query} HTTP/1.1\r\nhost: ${host}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n` +
      "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n" +
      (protocol ? "sec-websocket-protocol: parley.v1\r\n" : "") + "\r\n",
  );
}

// ---- Reading raw answers ----

/** Buffered reads from a TCP connection, with an end-of-stream that is not an error. */
export class ByteReader {
  #buffer = new Uint8Array(0);
  #done = false;

  constructor(readonly conn: Deno.Conn) {}

  /** Whether the peer has hung up (or the read failed) and nothing is left in the buffer. */
  get ended(): boolean {
    return this.#done && this.#buffer.length === 0;
  }

  /** Reads more; false once the stream has ended. */
  async fill(): Promise<boolean> {
    if (this.#done) return false;
    const chunk = new Uint8Array(65536);
    let n: number | null = null;
    try {
      n = await this.conn.read(chunk);
    } catch {
      // A reset is the same as a close here.
    }
    if (n === null) {
      this.#done = true;
      return false;
    }
    this.#buffer = concat([this.#buffer, chunk.subarray(0, n)]);
    return true;
  }

  /** The next `n` bytes, or null if the stream ends first. */
  async take(n: number): Promise<Uint8Array | null> {
    while (this.#buffer.length < n) if (!await this.fill()) return null;
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return out;
  }

  /** Reads to the end of the stream and returns all that is left. */
  async rest(): Promise<Uint8Array> {
    while (await this.fill()) {
      // Until the peer hangs up.
    }
    const out = this.#buffer;
    this.#buffer = new Uint8Array(0);
    return out;
  }

  /** The bytes up to a CRLF (not included), or null if the stream ends first. */
  async line(): Promise<string | null> {
    for (;;) {
      const at = indexOfCrlf(this.#buffer);
      if (at >= 0) {
        const line = String.fromCharCode(...this.#buffer.subarray(0, at));
        this.#buffer = this.#buffer.slice(at + 2);
        return line;
      }
      if (!await this.fill()) return null;
    }
  }
}

function indexOfCrlf(bytes: Uint8Array): number {
  for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  return -1;
}

/** A response as read from the wire; `body` is what framing said it was. */
export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Uint8Array;
}

/**
 * Reads one response (skipping 1xx ones), or returns null if the connection ends first. A `HEAD`
 * response, a 204 or a 304 has no body; a 101 ends the HTTP conversation, so its body is empty.
 */
export async function readResponse(
  reader: ByteReader,
  method: string,
): Promise<RawResponse | null> {
  for (;;) {
    const statusLine = await reader.line();
    if (statusLine === null) return null;
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    if (Number.isNaN(status)) {
      throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
    }
    const headers = new Map<string, string>();
    for (;;) {
      const line = await reader.line();
      if (line === null) return null;
      if (line === "") break;
      const colon = line.indexOf(":");
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    if (status >= 100 && status < 200 && status !== 101) continue;
    const body = await readBody(reader, method, status, headers);
    return body === null ? null : { status, headers, body };
  }
}

async function readBody(
  reader: ByteReader,
  method: string,
  status: number,
  headers: Map<string, string>,
): Promise<Uint8Array | null> {
  if (method === "HEAD" || status === 101 || status === 204 || status === 304) {
    return new Uint8Array(0);
  }
  if (headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
    const parts: Uint8Array[] = [];
    for (;;) {
      const sizeLine = await reader.line();
      if (sizeLine === null) return null;
      const size = parseInt(sizeLine, 16);
      if (size === 0) {
        while ((await reader.line()) !== "") if (reader.ended) return null;
        return concat(parts);
      }
      const part = await reader.take(size + 2);
      if (part === null) return null;
      parts.push(part.subarray(0, size));
    }
  }
  const length = headers.get("content-length");
  if (length !== undefined) return await reader.take(Number(length));
  // A response without a length ends with the connection.
  return await reader.rest();
}

/** What a server sent after the handshake, read frame by frame until a close frame or the end. */
export async function readWsAnswer(reader: ByteReader): Promise<"close frame" | "data" | "end"> {
  const header = await reader.take(2);
  if (header === null) return "end";
  const opcode = header[0] & 0x0f;
  let length = header[1] & 0x7f;
  if (length === 126) {
    const more = await reader.take(2);
    if (more === null) return "end";
    length = (more[0] << 8) | more[1];
  } else if (length === 127) {
    const more = await reader.take(8);
    if (more === null) return "end";
    length = more.slice(4).reduce((sum, byte) => sum * 256 + byte, 0);
  }
  if (await reader.take(length) === null) return "end";
  return opcode === 8 ? "close frame" : "data";
}

/** A parsed `parley.v1` event: only what the fuzz looks at. */
export interface FuzzEvent {
  type: string;
  code?: string;
  message?: string;
  clientId?: string;
}

/**
 * A WebSocket client that counts what the server sends instead of keeping it: events by type,
 * error codes, the clientIds acked, and for the legacy dialect the raw frames' text.
 */
export class CountingSocket {
  readonly socket: WebSocket;
  readonly counts = { error: 0, ack: 0, welcome: 0, message: 0, other: 0, frames: 0 };
  readonly errorCodes = new Map<string, number>();
  readonly acked = new Set<string>();
  /** The message of the last error event. */
  lastError: string | undefined;
  /** Text of legacy frames, kept until {@link takeText} empties it. */
  #text = "";
  /** Events that are not what the protocol allows, described. */
  readonly oddities: string[] = [];
  closeCode: number | null = null;
  readonly opened: Promise<boolean>;
  readonly closed: Promise<void>;
  #wake = () => {};

  constructor(url: string, protocol: string | null) {
    this.socket = protocol === null ? new WebSocket(url) : new WebSocket(url, protocol);
    this.opened = new Promise((resolve) => {
      this.socket.addEventListener("open", () => resolve(true), { once: true });
      this.socket.addEventListener("error", () => resolve(false), { once: true });
    });
    this.closed = new Promise((resolve) => {
      this.socket.addEventListener("close", (event) => {
        this.closeCode = event.code;
        resolve();
        this.#wake();
      });
    });
    this.socket.addEventListener("message", (event) => {
      this.counts.frames++;
      if (typeof event.data !== "string") this.oddities.push("a binary frame from the server");
      else if (protocol === null) this.#text += event.data;
      else for (const line of event.data.split("\n")) this.#count(JSON.parse(line));
      this.#wake();
    });
  }

  #count(event: FuzzEvent): void {
    switch (event.type) {
      case "error":
        this.counts.error++;
        this.errorCodes.set(event.code!, (this.errorCodes.get(event.code!) ?? 0) + 1);
        this.lastError = event.message;
        if (typeof event.message !== "string" || event.message.length < 10) {
          this.oddities.push(`an error without a message: ${JSON.stringify(event)}`);
        }
        break;
      case "ack":
        this.counts.ack++;
        if (event.clientId !== undefined) this.acked.add(event.clientId);
        break;
      case "welcome":
      case "message":
        this.counts[event.type]++;
        break;
      default:
        this.counts.other++;
    }
  }

  /** The legacy frames' text received since the last call. */
  takeText(): string {
    const text = this.#text;
    this.#text = "";
    return text;
  }

  /** Resolves once `found()` holds or the socket has closed; fails after `ms`. */
  async until(found: () => boolean, what: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!found() && this.closeCode === null) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  send(data: string | Uint8Array<ArrayBuffer>): void {
    try {
      this.socket.send(data);
    } catch {
      // Closed under us; the caller sees closeCode.
    }
  }

  async close(): Promise<void> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close();
    await this.closed;
  }
}
