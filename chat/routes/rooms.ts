/** The rooms: which there are, and posting to one over plain HTTP (curl, bots). */

import type { AccountStore, RoomKind } from "../accounts.ts";
import {
  authorOf,
  ChangeRefusedError,
  type ChangeRequest,
  ClientIdReusedError,
} from "../history.ts";
import { accountId, type Identity } from "../identity.ts";
import {
  maxFrameBytes,
  validateBody,
  validateClientId,
  validateMessageId,
  validateRoom,
  validateUserName,
} from "../message.ts";
import type { Services } from "../services.ts";
import { readerOf } from "../read_markers.ts";
import { checkOrigin, HttpError, intParam, personOf, type RouteParams } from "./route.ts";

/** One entry of `GET /rooms`; `kind` (and `with`, the other person of a direct room) outside open mode. */
interface RoomSummary {
  room: string;
  users: number;
  lastId: number;
  kind?: RoomKind;
  with?: string;
  /** The requester's read marker (`accounts` and `jwt` modes), 0 when none. */
  lastRead?: number;
  /** Messages after `lastRead` that mention the requester (among the newest {@link MENTION_WINDOW}). */
  mentions?: number;
}

/**
 * How far back from a room's last id `/rooms` counts mentions: the count reads every message
 * after the marker, and a page lists up to 1000 rooms.
 */
export const MENTION_WINDOW = 1000;

/** The most rooms `/rooms` lists at once, and how many when not asked. */
const MAX_ROOMS_LIMIT = 1000;
const DEFAULT_ROOMS_LIMIT = 100;

/**
 * `GET /rooms?limit&after`: the rooms the requester may read that have history, people (here or
 * in another worker) or, for private and direct rooms, the requester as a member; in name order
 * (byte order: names are ASCII), `limit` of them after the room `after`. When there are more,
 * `Link: </rooms?…>; rel="next"` names the next page.
 */
export async function listRooms(
  context: Services,
  request: Request,
  { url }: RouteParams,
): Promise<Response> {
  const { identity, rooms } = context;
  const who = await personOf(context, request, url);
  const limit = intParam(url, "limit", 1, MAX_ROOMS_LIMIT) ?? DEFAULT_ROOMS_LIMIT;
  const rawAfter = url.searchParams.get("after");
  const after = rawAfter === null || rawAfter === "" ? "" : validateRoom(rawAfter);
  const visible = (room: string) => identity.mayRead(who, room);
  // One more than the page tells whether there is a next one.
  const stored = storedRooms(context, after, limit + 1, visible);
  // Rooms beyond the last stored one of a full page cannot be on this page.
  const bound = stored.length > limit ? stored[limit].room : null;
  const within = (room: string) => room > after && (bound === null || room <= bound);
  const list = new Map<string, RoomSummary>();
  for (const { room, lastId } of stored) list.set(room, { room, users: 0, lastId });
  for (const [room, users] of rooms.presence()) {
    if (!within(room) || !visible(room)) continue;
    list.set(room, { room, users, lastId: list.get(room)?.lastId ?? 0 });
  }
  if (identity.accounts !== null) {
    const id = accountId(who);
    for (const { room } of identity.accounts.memberRooms(id, after, bound, limit + 1)) {
      if (!list.has(room)) list.set(room, { room, users: 0, lastId: 0 });
    }
  }
  const sorted = [...list.values()].sort((a, b) => a.room < b.room ? -1 : a.room > b.room ? 1 : 0);
  const page = sorted.slice(0, limit);
  if (identity.accounts !== null) {
    for (const entry of page) describe(entry, identity.accounts, who);
  }
  addUnread(context, page, who);
  const headers: HeadersInit = sorted.length > limit
    ? { link: `</rooms?limit=${limit}&after=${page.at(-1)!.room}>; rel="next"` }
    : {};
  return Response.json(page, { headers });
}

/** Up to `count` rooms with history after `after` that pass `visible`, in name order. */
function storedRooms(
  { history }: Services,
  after: string,
  count: number,
  visible: (room: string) => boolean,
): { room: string; lastId: number }[] {
  const found: { room: string; lastId: number }[] = [];
  for (let cursor = after;;) {
    const batch = history.rooms(cursor, count);
    for (const entry of batch) {
      if (visible(entry.room)) found.push(entry);
      if (found.length === count) return found;
    }
    if (batch.length < count) return found;
    cursor = batch[batch.length - 1].room;
  }
}

/** Adds a room's kind to its entry, and for a direct room the other person's name. */
function describe(entry: RoomSummary, accounts: AccountStore, who: Identity): void {
  const kind = accounts.roomKind(entry.room);
  entry.kind = kind;
  if (kind !== "direct") return;
  const peer = accounts.directPeer(entry.room, accountId(who));
  if (peer !== null) entry.with = peer;
}

/** Adds the requester's read marker to each entry, and how many messages since mention them. */
function addUnread({ live, history }: Services, page: RoomSummary[], who: Identity): void {
  const reader = readerOf(who);
  if (live.markers === null || reader === null || who.userName === null) return;
  const markers = live.markers.all(reader);
  for (const entry of page) {
    const lastRead = markers.get(entry.room) ?? 0;
    entry.lastRead = lastRead;
    const after = Math.max(lastRead, entry.lastId - MENTION_WINDOW);
    entry.mentions = entry.lastId > after
      ? history.mentionCount(entry.room, after, who.userName)
      : 0;
  }
}

/**
 * `POST /rooms/:room/messages`: stores and broadcasts the body (text, or JSON with `body` and, in
 * open mode, `userName`), and answers 201 with the stored message. A person with an account posts
 * under its name, whatever the request says. Rate limited per address like a connection.
 */
export async function postMessage(
  context: Services,
  request: Request,
  params: RouteParams,
): Promise<Response> {
  const { url } = params;
  const { config, rooms } = context;
  const { who, room } = await poster(context, request, params, "messages");
  const text = await readBody(request, maxFrameBytes(config.limits.maxMessageBytes));
  let userName: unknown = url.searchParams.get("userName") ?? "anonymous";
  let body: unknown = text;
  if (request.headers.get("content-type")?.startsWith("application/json")) {
    ({ userName, body } = parseJson(text));
  }
  const { message } = await rooms.get(room).publish({
    userName: who.userName ?? validateUserName(userName),
    body: validateBody(body, config.limits.maxMessageBytes),
    author: authorOf(who),
  });
  return Response.json(message, { status: 201 });
}

/**
 * `PATCH /rooms/:room/messages/:id` with JSON `{body}` (and, in open mode, `userName`): its
 * author edits a message; 200 with the `edit` event. `DELETE` of the same path: its author or
 * an admin deletes it; 200 with the `delete` event. Either may carry `clientId` (`?clientId=`
 * for a DELETE) to be resent safely. A room the requester may not post in is a 404, as is a
 * message that is not there (any more); someone else's message is a 403.
 */
export async function changeMessage(
  context: Services,
  request: Request,
  params: RouteParams,
): Promise<Response> {
  const { url, path } = params;
  const { rooms } = context;
  const { who, room } = await poster(context, request, params, "changes");
  const messageId = /^\d{1,16}$/.test(path.id!) ? Number(path.id) : NaN;
  validateMessageId(messageId);
  const change = request.method === "PATCH"
    ? await editRequest(context, request, url, who, messageId)
    : deleteRequest(url, who, messageId);
  try {
    const { event, id } = await rooms.get(room).change(change);
    return Response.json(event ?? { id });
  } catch (error) {
    if (error instanceof ChangeRefusedError) {
      throw new HttpError(error.code === "not_found" ? 404 : 403, error.message);
    }
    if (error instanceof ClientIdReusedError) throw new HttpError(409, error.message);
    throw error;
  }
}

/** The edit a PATCH asks for: `{body, clientId?}`, and `userName` in open mode. */
async function editRequest(
  { config }: Services,
  request: Request,
  url: URL,
  who: Identity,
  messageId: number,
): Promise<ChangeRequest> {
  const max = config.limits.maxMessageBytes;
  const fields = parseJson(await readBody(request, maxFrameBytes(max)));
  const change: ChangeRequest = {
    type: "edit",
    messageId,
    body: validateBody(fields.body, max),
    userName: who.userName ?? validateUserName(fields.userName ?? url.searchParams.get("userName")),
    author: authorOf(who),
  };
  const clientId = validateClientId(fields.clientId ?? url.searchParams.get("clientId"));
  if (clientId !== undefined) change.clientId = clientId;
  return change;
}

/** The delete a DELETE asks for: `?userName=` in open mode, `?clientId=` if it has one. */
function deleteRequest(url: URL, who: Identity, messageId: number): ChangeRequest {
  const change: ChangeRequest = {
    type: "delete",
    messageId,
    userName: who.userName ?? validateUserName(url.searchParams.get("userName")),
    author: authorOf(who),
    admin: who.admin,
  };
  const clientId = validateClientId(url.searchParams.get("clientId"));
  if (clientId !== undefined) change.clientId = clientId;
  return change;
}

/**
 * Who writes to which room, for a request that posts or changes a message: the origin rule, the
 * person, the per-address rate (`what` names it in the 429) and the access rule, in that order.
 */
async function poster(
  context: Services,
  request: Request,
  { url, address, path }: RouteParams,
  what: string,
): Promise<{ who: Identity; room: string }> {
  const { config, admission, identity } = context;
  checkOrigin(context, request, url, address);
  const who = await personOf(context, request, url);
  if (!admission.mayPost(address)) {
    throw new HttpError(
      429,
      `slow down: at most ${config.limits.messagesPerSecond} ${what} per second from one address`,
      { "retry-after": "1" },
    );
  }
  const room = validateRoom(decodeRoom(path.room!, url));
  if (!identity.mayPost(who, room)) {
    throw new HttpError(404, `there is no room ${JSON.stringify(room)} that you may post in`);
  }
  return { who, room };
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
