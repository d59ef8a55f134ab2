/** The rooms: which there are, and posting to one over plain HTTP (curl, bots). */

import { maxFrameBytes, validateBody, validateRoom, validateUserName } from "../message.ts";
import type { Services } from "../services.ts";
import { checkOrigin, HttpError, intParam, type RouteParams } from "./route.ts";

/** One entry of `GET /rooms`. */
interface RoomSummary {
  room: string;
  users: number;
  lastId: number;
}

/** The most rooms `/rooms` lists at once, and how many when not asked. */
const MAX_ROOMS_LIMIT = 1000;
const DEFAULT_ROOMS_LIMIT = 100;

/**
 * `GET /rooms?limit&after`: rooms with history or with people (here or in another worker), in
 * name order (byte order: names are ASCII), `limit` of them after the room `after`. When there
 * are more, `Link: </rooms?…>; rel="next"` names the next page.
 */
export function listRooms(
  { history, rooms }: Services,
  _request: Request,
  { url }: RouteParams,
): Response {
  const limit = intParam(url, "limit", 1, MAX_ROOMS_LIMIT) ?? DEFAULT_ROOMS_LIMIT;
  const rawAfter = url.searchParams.get("after");
  const after = rawAfter === null || rawAfter === "" ? "" : validateRoom(rawAfter);
  // One more than the page tells whether there is a next one.
  const stored = history.rooms(after, limit + 1);
  // Rooms with people beyond the last stored one of a full page cannot be on this page.
  const bound = stored.length > limit ? stored[limit].room : null;
  const list = new Map<string, RoomSummary>();
  for (const { room, lastId } of stored) list.set(room, { room, users: 0, lastId });
  for (const [room, users] of rooms.presence()) {
    if (room <= after || (bound !== null && room > bound)) continue;
    list.set(room, { room, users, lastId: list.get(room)?.lastId ?? 0 });
  }
  const sorted = [...list.values()].sort((a, b) => a.room < b.room ? -1 : a.room > b.room ? 1 : 0);
  const page = sorted.slice(0, limit);
  const headers: HeadersInit = sorted.length > limit
    ? { link: `</rooms?limit=${limit}&after=${page.at(-1)!.room}>; rel="next"` }
    : {};
  return Response.json(page, { headers });
}

/**
 * `POST /rooms/:room/messages`: stores and broadcasts the body (text, or JSON with `userName` and
 * `body`), and answers 201 with the stored message. Rate limited per address like a connection.
 */
export async function postMessage(
  context: Services,
  request: Request,
  { url, address, path }: RouteParams,
): Promise<Response> {
  const { config, admission, rooms } = context;
  checkOrigin(context, request, url, address);
  if (!admission.mayPost(address)) {
    throw new HttpError(
      429,
      `slow down: at most ${config.limits.messagesPerSecond} messages per second from one address`,
      { "retry-after": "1" },
    );
  }
  const room = validateRoom(decodeRoom(path.room!, url));
  const text = await readBody(request, maxFrameBytes(config.limits.maxMessageBytes));
  let userName: unknown = url.searchParams.get("userName") ?? "anonymous";
  let body: unknown = text;
  if (request.headers.get("content-type")?.startsWith("application/json")) {
    ({ userName, body } = parseJson(text));
  }
  const { message } = await rooms.get(room).publish({
    userName: validateUserName(userName),
    body: validateBody(body, config.limits.maxMessageBytes),
  });
  return Response.json(message, { status: 201 });
}

function decodeRoom(raw: string, url: URL): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `the room in ${url.pathname} is not valid percent-encoding`);
  }
}

function parseJson(text: string): Record<string, unknown> {
  try {
    return (JSON.parse(text) ?? {}) as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'the body is not valid JSON; send {"userName":"…","body":"…"}');
  }
}

/** Reads a request body as text, refusing one larger than `limit` bytes. */
async function readBody(request: Request, limit: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > limit) throw new HttpError(413, `the body is larger than ${limit} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.byteLength;
    if (size > limit) throw new HttpError(413, `the body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}
