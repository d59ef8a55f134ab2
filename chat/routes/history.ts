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

/**
 * `GET /history?room&limit&before|after`: a page of a room's messages, oldest first; a room the
 * requester may not read answers as one without messages.
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
  if (before !== undefined && after !== undefined) {
    throw new HttpError(400, "give either before or after, not both");
  }
  const read = context.identity.mayRead(who, room) ? room : NO_ROOM;
  const page: { room: string; messages: ChatMessage[]; hasMore: boolean } = {
    room,
    ...context.history.page(read, { limit, before, after }),
  };
  return Response.json(page);
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
