/**
 * The room list as the page reads it (static/rooms.js): against a real server with accounts, a
 * person lists the rooms they may open, a direct room by the other person's name; malformed
 * entries are dropped; the list is grouped and ordered by what the page shows.
 */
import assert from "node:assert/strict";
import { Api } from "../static/api.js";
import {
  fetchRooms,
  groupRooms,
  readRooms,
  RoomDirectory,
  type RoomEntry,
  roomLabel,
} from "../static/rooms.js";
import { browserFetch } from "./page_fakes.ts";
import { startTestServer } from "./support.ts";

const entry = (room: string, kind: RoomEntry["kind"], peer: string | null = null): RoomEntry => ({
  room,
  kind,
  peer,
  users: 0,
  lastId: 0,
  lastRead: null,
  mentions: null,
});

/**
 * An entry without the read marker and mention count: with accounts, whether the server already
 * keeps markers (they are 0 for a room never read) is not what these tests are about.
 */
function unmarked(entry: RoomEntry): RoomEntry {
  return { ...entry, lastRead: null, mentions: null };
}

Deno.test("with accounts: a person lists open rooms, their private ones and their direct ones", async () => {
  await using server = await startTestServer({ auth: { mode: "accounts" } });
  const adminFetch = browserFetch(server);
  const admin = new Api(adminFetch);
  await admin.setup(server.setupLink!.searchParams.get("token")!, "Admin", "admin-password-1");
  const code = new URL((await admin.invite()).url).pathname.split("/").at(-1)!;
  const bobFetch = browserFetch(server);
  const bob = new Api(bobFetch);
  await bob.join(code, "bob", "bob-password-22");
  await admin.createPrivateRoom("secret");
  await admin.createPrivateRoom("plans");
  await admin.addMember("plans", "bob");
  const direct = await bob.direct("Admin");

  const bobSees = (await fetchRooms(bobFetch)).map(unmarked);
  const byName = (a: RoomEntry, b: RoomEntry) => a.room < b.room ? -1 : 1;
  assert.deepEqual(
    bobSees,
    [entry(direct, "direct", "Admin"), entry("plans", "private")].sort(byName),
  );
  const adminSees = await fetchRooms(adminFetch);
  assert.deepEqual(groupRooms(adminSees).rooms.map(roomLabel), ["plans", "secret"]);
  assert.deepEqual(groupRooms(adminSees).direct.map(roomLabel), ["bob"]);

  await assert.rejects(fetchRooms(browserFetch(server)), /^Error: Could not list the rooms: /);
});

Deno.test("open mode: every room is open, named by its name", async () => {
  await using server = await startTestServer();
  const post = await fetch(new URL("/rooms/ops/messages?userName=ci", server.url), {
    method: "POST",
    body: "deployed",
  });
  assert.equal(post.status, 201);
  await post.body?.cancel();
  const rooms = await fetchRooms(browserFetch(server));
  assert.deepEqual(rooms, [{ ...entry("ops", "open"), lastId: 1 }]);
});

Deno.test("malformed entries are dropped; a peer counts only for a direct room", () => {
  assert.deepEqual(readRooms({ rooms: [] }), []);
  const read = readRooms([
    null,
    "lobby",
    { users: 2 },
    { room: "a", kind: "direct", with: "bob", users: 1, lastId: 4 },
    { room: "b", kind: "private", with: "bob" },
    { room: "c", kind: "weird", users: "x", lastId: -1.5 },
    { room: "d", kind: "direct" },
    { room: "e", lastId: 9, lastRead: 7, mentions: 2 },
    { room: "f", lastId: 9, lastRead: "7", mentions: -0.5 },
  ]);
  assert.deepEqual(read, [
    { ...entry("a", "direct", "bob"), users: 1, lastId: 4 },
    entry("b", "private"),
    entry("c", "open"),
    entry("d", "direct"),
    { ...entry("e", "open"), lastId: 9, lastRead: 7, mentions: 2 },
    { ...entry("f", "open"), lastId: 9 },
  ]);
  // A direct room whose other person is unknown falls back on its room name.
  assert.equal(roomLabel(read[3]), "d");
  assert.equal(roomLabel(read[0]), "bob");
});

Deno.test("grouped as the sidebar shows them: rooms, then direct rooms, each by label", () => {
  const grouped = groupRooms([
    entry("zeta", "open"),
    entry("dm-2", "direct", "carol"),
    entry("Alpha", "private"),
    entry("dm-1", "direct", "Bob"),
    entry("beta", "open"),
  ]);
  assert.deepEqual(grouped.rooms.map(roomLabel), ["Alpha", "beta", "zeta"]);
  assert.deepEqual(grouped.direct.map(roomLabel), ["Bob", "carol"]);
});

Deno.test("the directory: a room just made is known before the list has it, then as listed", async () => {
  await using server = await startTestServer({ auth: { mode: "accounts" } });
  const fetchFn = browserFetch(server);
  const api = new Api(fetchFn);
  await api.setup(server.setupLink!.searchParams.get("token")!, "Admin", "admin-password-1");
  const directory = new RoomDirectory();
  assert.deepEqual(directory.entry("lobby"), entry("lobby", "open"), "an unknown room is open");
  await api.createPrivateRoom("plans");
  directory.know("plans", "private", null);
  directory.know("plans", "direct", "bob"); // known already: the first word stands
  assert.deepEqual(directory.entries, [entry("plans", "private")]);

  await directory.refresh(fetchFn);
  assert.deepEqual(directory.entries.map(unmarked), [entry("plans", "private")]);
  const failing = () => Promise.resolve(new Response("{}", { status: 503 }));
  await assert.rejects(directory.refresh(failing as typeof fetch), /Could not list the rooms/);
  assert.equal(directory.entries.length, 1, "a failed refresh keeps the list");
  directory.clear();
  assert.deepEqual(directory.entries, []);
});

Deno.test("the directory keeps the answer to its latest request, however the answers are ordered", async () => {
  const answers: ((rooms: unknown) => void)[] = [];
  const fetchFn = () =>
    new Promise<Response>((resolve) => {
      answers.push((rooms) => resolve(Response.json(rooms)));
    });
  const directory = new RoomDirectory();
  const older = directory.refresh(fetchFn as typeof fetch);
  const newer = directory.refresh(fetchFn as typeof fetch);
  answers[1]([{ room: "plans", kind: "private", users: 0, lastId: 1, lastRead: 0, mentions: 1 }]);
  assert.equal(await newer, true);
  answers[0]([{ room: "plans", kind: "private", users: 0, lastId: 0, lastRead: 0, mentions: 0 }]);
  assert.equal(await older, false, "the older answer came last and is dropped");
  assert.deepEqual(directory.entries.map((e) => [e.room, e.lastId, e.mentions]), [["plans", 1, 1]]);
});
