/**
 * The rooms people make outside open mode, under `/api/`: private rooms and their members, and
 * direct rooms of two people. Who may read or post in a room is `IdentityService.mayRead`; these
 * routes only change who that is. A private room the requester may not see answers exactly as a
 * room that is not private (404), so a non-member learns nothing of its members.
 */

import type { Account, AccountStore } from "../accounts.ts";
import { accountId, type Identity } from "../identity.ts";
import { clientText } from "../log.ts";
import { validateRoom, validateUserName } from "../message.ts";
import type { Services } from "../services.ts";
import { accountsOf, readJson, signedInAs, userNameOf } from "./accounts.ts";
import { checkOrigin, HttpError, type Route, route, type RouteParams } from "./route.ts";

/** Every route of private and direct rooms. */
export function accessRoutes(): Route[] {
  return [
    route(["POST"], "/api/rooms", createRoom),
    route(["GET"], "/api/rooms/:room/members", listMembers),
    route(["POST"], "/api/rooms/:room/members", addMember),
    route(["DELETE"], "/api/rooms/:room/members/:userName", removeMember),
    route(["POST"], "/api/direct", openDirect),
    route(["GET"], "/api/direct", listDirect),
  ];
}

/** What the member routes answer: a private room and who is in it. */
interface PrivateRoom {
  room: string;
  kind: "private";
  members: string[];
}

/** `POST /api/rooms {room, kind: "private"}`: a new private room, its maker its first member. */
async function createRoom(context: Services, request: Request, { url }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const who = await signedInAs(context, request, url);
  const body = await readJson(request);
  if (body.kind !== "private") {
    throw new HttpError(
      400,
      'send {"room": "…", "kind": "private"}: open rooms are made by joining them, direct ' +
        "rooms with POST /api/direct",
    );
  }
  const room = validateRoom(typeof body.room === "string" ? body.room : "");
  const taken = () =>
    new HttpError(409, `the room ${JSON.stringify(room)} exists already; choose another name`);
  if (context.history.lastId(room) > 0 || context.rooms.presence().has(room)) throw taken();
  if (!accounts.createPrivateRoom(room, accountId(who))) throw taken();
  context.log.info(`${clientText(who.userName)} made the private room ${clientText(room)}`);
  return Response.json(privateRoom(accounts, room), { status: 201 });
}

/** `GET /api/rooms/:room/members`: a private room's members, for its members and admins. */
async function listMembers(context: Services, request: Request, { url, path }: RouteParams) {
  const accounts = accountsOf(context);
  const who = await signedInAs(context, request, url);
  const room = visiblePrivateRoom(context, accounts, who, path.room!);
  return Response.json(privateRoom(accounts, room));
}

/** `POST /api/rooms/:room/members {userName}` (the room's maker or an admin): adds a member. */
async function addMember(context: Services, request: Request, { url, path }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const who = await signedInAs(context, request, url);
  const room = visiblePrivateRoom(context, accounts, who, path.room!);
  mayManage(accounts, who, room);
  const { userName } = await readJson(request);
  const account = existing(accounts, validateUserName(userName));
  accounts.addMember(room, account.id);
  context.log.info(
    `${clientText(who.userName)} added ${clientText(account.userName)} to ${clientText(room)}`,
  );
  return Response.json(privateRoom(accounts, room));
}

/**
 * `DELETE /api/rooms/:room/members/:userName` (the room's maker or an admin, or the member
 * leaving): takes a member out, whose connections to the room close at once.
 */
async function removeMember(context: Services, request: Request, { url, path }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const who = await signedInAs(context, request, url);
  const room = visiblePrivateRoom(context, accounts, who, path.room!);
  const account = existing(accounts, userNameOf(path.userName!));
  if (account.id !== accountId(who)) mayManage(accounts, who, room);
  if (!context.identity.removeMember(room, account)) {
    throw new HttpError(
      404,
      `${clientText(account.userName)} is not a member of ${JSON.stringify(room)}`,
    );
  }
  context.log.info(
    `${clientText(who.userName)} removed ${clientText(account.userName)} from ${clientText(room)}`,
  );
  return new Response(null, { status: 204 });
}

/**
 * `POST /api/direct {userName}`: the direct room of the requester and that person, `{room, kind,
 * with}`: 201 when it is made, 200 when it was there; the same room for the pair either way.
 */
async function openDirect(context: Services, request: Request, { url }: RouteParams) {
  const accounts = accountsOf(context);
  checkOrigin(context, request, url);
  const who = await signedInAs(context, request, url);
  const { userName } = await readJson(request);
  const other = existing(accounts, validateUserName(userName));
  if (other.id === accountId(who)) {
    throw new HttpError(400, "a direct room is between two people: name someone else");
  }
  const { room, created } = accounts.directRoom(accountId(who), other.id);
  return Response.json({ room, kind: "direct", with: other.userName }, {
    status: created ? 201 : 200,
  });
}

/** `GET /api/direct`: the requester's direct rooms, `[{room, with}]`, by the other's name. */
async function listDirect(context: Services, request: Request, { url }: RouteParams) {
  const accounts = accountsOf(context);
  const who = await signedInAs(context, request, url);
  return Response.json(accounts.directRooms(accountId(who)));
}

/**
 * The private room named by `raw` (a path segment), if `who` may see it: a member, or an admin.
 * Any other name is the same 404, whether no room, an open, a direct or someone else's room.
 */
function visiblePrivateRoom(
  context: Services,
  accounts: AccountStore,
  who: Identity,
  raw: string,
): string {
  let room: string | null = null;
  try {
    room = validateRoom(decodeURIComponent(raw));
  } catch {
    // Not a room's name: no such room.
  }
  const kind = room === null ? null : accounts.restriction(room)?.kind;
  if (room !== null && kind === "private" && (who.admin || context.identity.mayRead(who, room))) {
    return room;
  }
  throw new HttpError(404, `there is no private room ${clientText(raw)} that you may see`);
}

/** Refuses (403) a change of `room`'s members by anyone but its maker or an admin. */
function mayManage(accounts: AccountStore, who: Identity, room: string): void {
  if (who.admin || accounts.restriction(room)?.createdBy === accountId(who)) return;
  throw new HttpError(403, "only the room's maker or an admin may add or remove its members");
}

/** The account named `userName`, or 404. */
function existing(accounts: AccountStore, userName: string): Account {
  const account = accounts.find(userName);
  if (account === null) {
    throw new HttpError(404, `there is no account named ${JSON.stringify(userName)}`);
  }
  return account;
}

function privateRoom(accounts: AccountStore, room: string): PrivateRoom {
  return { room, kind: "private", members: accounts.members(room) };
}
