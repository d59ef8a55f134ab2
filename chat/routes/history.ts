/** A room's stored messages: pages of them, and the Go server's `/getAllMessages`. */

import { type ChatMessage, DEFAULT_ROOM, goJson } from "../message.ts";
import type { Services } from "../services.ts";
import { HttpError, intParam, personOf, roomParam, type RouteParams } from "./route.ts";

/** The most `/history` returns at once. */
const MAX_HISTORY_LIMIT = 1000;

/**
 * What a room the requester may not see is read as: a room that cannot exist (no valid name is
 * empty), so that the answer is a missing room's, byte for byte, failures of the store included.
 */
const NO_ROOM = "";

/** A page of `/history`, as sent. */
interface HistoryAnswer {
  room: string;
  messages: ChatMessage[];
  /** More messages exist beyond the page: older ones, or newer ones for `after`. */
  hasMore: boolean;
  /** For `around` only: newer messages exist beyond the page. */
  hasNewer?: boolean;
}

/**
 * `GET /history?room&limit&before|after|around`: a page of a room's messages, oldest first; a
 * room the requester may not read answers as one without messages.
 */
export async function history(
  context: Services,
  request: Request,
  { url }: RouteParams,
): Promise<Response> {
  const who = await personOf(context, request, url);
  const room = roomParam(url);
  const limit = intParam(url, "limit", 1, MAX_HISTORY_LIMIT) ?? 50;
  const before = intParam(url, "before", 1);
  const after = intParam(url, "after", 0);
  const around = intParam(url, "around", 1);
  if ([before, after, around].filter((cursor) => cursor !== undefined).length > 1) {
    throw new HttpError(400, "give one of before, after and around, not several");
  }
  const read = context.identity.mayRead(who, room) ? room : NO_ROOM;
  const page: HistoryAnswer = around === undefined
    ? { room, ...context.history.page(read, { limit, before, after }) }
    : { room, ...pageAround(context, read, around, limit) };
  return Response.json(page);
}

/**
 * The page of `limit` messages around `id`, oldest first: up to half of it older than `id`, the
 * message itself, and the rest newer; a side with fewer leaves its share to the other.
 */
function pageAround(
  context: Services,
  room: string,
  id: number,
  limit: number,
): Omit<HistoryAnswer, "room"> {
  const older = context.history.page(room, { limit, before: id + 1 });
  const newer = context.history.page(room, { limit, after: id });
  const half = Math.ceil(limit / 2);
  const olderCount = Math.min(older.messages.length, Math.max(half, limit - newer.messages.length));
  const newerCount = Math.min(newer.messages.length, limit - olderCount);
  return {
    messages: [
      ...older.messages.slice(older.messages.length - olderCount),
      ...newer.messages.slice(0, newerCount),
    ],
    hasMore: older.hasMore || olderCount < older.messages.length,
    hasNewer: newer.hasMore || newerCount < newer.messages.length,
  };
}

/**
 * `GET /getAllMessages`: the default room's latest messages, byte for byte as the Go server; none
 * for a requester who may not read that room.
 */
export async function getAllMessages(
  context: Services,
  request: Request,
  { url }: RouteParams,
): Promise<Response> {
  const who = await personOf(context, request, url);
  const read = context.identity.mayRead(who, DEFAULT_ROOM) ? DEFAULT_ROOM : NO_ROOM;
  const messages = context.history.recent(read, context.config.history.legacyLimit)
    .map(({ userName, body, timestamp }) => ({ userName, body, timestamp }));
  return new Response(goJson({ Messages: messages }) + "\n", {
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
