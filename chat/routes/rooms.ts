/** The rooms: which there are, and posting to one over plain HTTP (curl, bots). */

import { maxFrameBytes, validateBody, validateRoom, validateUserName } from "../message.ts";
import type { Services } from "../services.ts";
import { checkOrigin, HttpError, type RouteParams } from "./route.ts";

/** One entry of `GET /rooms`. */
interface RoomSummary {
  room: string;
  users: number;
  lastId: number;
}

/** `GET /rooms`: rooms with history or with people (here or in another worker), by name. */
export function listRooms({ history, rooms }: Services): Response {
  const list = new Map<string, RoomSummary>();
  for (const { room, lastId } of history.rooms()) list.set(room, { room, users: 0, lastId });
  for (const [room, users] of rooms.presence()) {
    list.set(room, { room, users, lastId: list.get(room)?.lastId ?? 0 });
  }
  return Response.json([...list.values()].sort((a, b) => a.room.localeCompare(b.room)));
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
  checkOrigin(context, request, url);
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
