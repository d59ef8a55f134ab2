import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  AccountError,
  AccountStore,
  type AccountStoreOptions,
  digest,
  FAILURE_WINDOW_MS,
  MAX_FAILURES,
  nameKey,
} from "../chat/accounts.ts";
import { HistoryStore } from "../chat/history.ts";
import { hashPassword, validatePassword, verifyPassword } from "../chat/passwords.ts";
import { tempDir } from "./support.ts";

const DAY = 86_400_000;

/** A clock a test moves by hand. */
function manualClock(start = Date.UTC(2026, 11, 1)) {
  const clock = { now: start, read: () => clock.now };
  return clock;
}

function openStore(options: Partial<AccountStoreOptions> = {}): AccountStore {
  return AccountStore.open({ path: ":memory:", sessionDays: 30, inviteDays: 7, ...options });
}

function refusedFor(reason: AccountError["reason"]) {
  return (error: unknown) => error instanceof AccountError && error.reason === reason;
}

Deno.test("a password is at least 10 characters, salted, and checked against its own hash", async () => {
  assert.throws(() => validatePassword("123456789"), /10 to 1024 characters/);
  assert.throws(() => validatePassword(undefined), /as a string/);
  assert.equal(validatePassword("1234567890"), "1234567890");
  const one = await hashPassword("correct horse battery");
  const two = await hashPassword("correct horse battery");
  assert.notEqual(one, two, "each hash has its own salt");
  assert.match(one, /^scrypt\$16384\$8\$1\$[\w-]+\$[\w-]+$/);
  assert.ok(!one.includes("correct horse"));
  assert.equal(await verifyPassword("correct horse battery", one), true);
  assert.equal(await verifyPassword("correct horse batterY", one), false);
  assert.equal(await verifyPassword("correct horse battery", null), false);
  assert.equal(await verifyPassword("correct horse battery", "scrypt$1$2"), false);
});

Deno.test("names are unique whatever their case, and the first admin is made once", () => {
  using store = disposable(openStore());
  assert.equal(store.count(), 0);
  const alice = store.createFirstAdmin("Alice", "hash-a");
  assert.deepEqual(alice, { id: alice.id, userName: "Alice", admin: true, banned: false });
  assert.throws(() => store.createFirstAdmin("Bob", "hash-b"), refusedFor("setup_done"));
  assert.equal(store.find("ALICE")?.id, alice.id);
  assert.equal(store.credentials("alice")?.password, "hash-a");
  assert.equal(nameKey("Straße"), nameKey("STRASSE"));
  assert.equal(store.find("bob"), null);
  const invite = store.createInvite(alice.id);
  assert.throws(() => store.join(invite.secret, "aLiCe", "hash"), refusedFor("name_taken"));
  assert.equal(store.count(), 1);
  store.checkInvite(invite.secret); // a refused join leaves the invite usable
});

Deno.test("an invite works once, until it expires or is revoked", () => {
  const clock = manualClock();
  using store = disposable(openStore({ now: clock.read }));
  const admin = store.createFirstAdmin("admin", "h");
  const used = store.createInvite(admin.id);
  assert.equal(used.expiresAt, clock.now + 7 * DAY);
  const bob = store.join(used.secret, "bob", "h");
  assert.equal(bob.admin, false);
  assert.throws(() => store.join(used.secret, "carol", "h"), refusedFor("bad_invite"));

  const revoked = store.createInvite(admin.id);
  assert.equal(store.revokeInvite(revoked.secret), true);
  assert.equal(store.revokeInvite(revoked.secret), false);
  assert.throws(() => store.checkInvite(revoked.secret), refusedFor("bad_invite"));

  const expiring = store.createInvite(admin.id);
  clock.now += 7 * DAY - 1;
  store.checkInvite(expiring.secret);
  clock.now += 1;
  assert.throws(() => store.join(expiring.secret, "dave", "h"), refusedFor("bad_invite"));
  assert.throws(() => store.checkInvite("not-a-code"), refusedFor("bad_invite"));
});

Deno.test("a session lasts sessionDays, ends when ended, and is stored only hashed", async () => {
  const clock = manualClock();
  await using dir = await tempDir();
  const path = `${dir.path}/parley.db`;
  using store = disposable(openStore({ path, now: clock.read, sessionDays: 2 }));
  const alice = store.createFirstAdmin("alice", "h");
  const session = store.createSession(alice.id);
  assert.match(session.secret, /^[\w-]{43}$/);
  assert.equal(session.expiresAt, clock.now + 2 * DAY);
  assert.equal(store.sessionAccount(session.secret)?.userName, "alice");
  clock.now += 2 * DAY;
  assert.equal(store.sessionAccount(session.secret), null, "expired");

  const other = store.createSession(alice.id);
  store.endSession(other.secret);
  assert.equal(store.sessionAccount(other.secret), null, "ended");
  const kept = store.createSession(alice.id);
  const token = store.createToken(alice.id, "ci");

  using db = disposable(new DatabaseSync(path));
  const hashes = db.prepare("SELECT hash FROM sessions").all().map((row) => row.hash);
  assert.deepEqual(hashes, [digest(kept.secret)]);
  const dump = JSON.stringify([
    db.prepare("SELECT * FROM sessions").all(),
    db.prepare("SELECT * FROM api_tokens").all(),
  ]);
  assert.ok(!dump.includes(kept.secret) && !dump.includes(token.token));
});

Deno.test("API tokens are listed without the secret, and revoked only by their owner", () => {
  using store = disposable(openStore());
  const alice = store.createFirstAdmin("alice", "h");
  const bob = store.join(store.createInvite(alice.id).secret, "bob", "h");
  const ci = store.createToken(alice.id, "ci");
  assert.match(ci.token, /^parley_[\w-]{43}$/);
  assert.equal(store.tokenAccount(ci.token)?.id, alice.id);
  assert.deepEqual(store.tokens(alice.id), [{ id: ci.id, label: "ci", createdAt: ci.createdAt }]);
  assert.deepEqual(store.tokens(bob.id), []);
  assert.equal(store.revokeToken(bob.id, ci.id), false);
  assert.equal(store.tokenAccount(ci.token)?.id, alice.id);
  assert.equal(store.revokeToken(alice.id, ci.id), true);
  assert.equal(store.tokenAccount(ci.token), null);
});

Deno.test("a ban ends the account's sessions and revokes its tokens; an unban does not bring them back", () => {
  using store = disposable(openStore());
  const alice = store.createFirstAdmin("alice", "h");
  const bob = store.join(store.createInvite(alice.id).secret, "bob", "h");
  const session = store.createSession(bob.id);
  const token = store.createToken(bob.id, "bot");
  const aliceSession = store.createSession(alice.id);
  assert.equal(store.setBanned("BOB", true).banned, true);
  assert.equal(store.find("bob")?.banned, true);
  assert.equal(store.sessionAccount(session.secret), null);
  assert.equal(store.tokenAccount(token.token), null);
  assert.equal(store.sessionAccount(aliceSession.secret)?.id, alice.id, "others keep theirs");
  assert.equal(store.setBanned("bob", false).banned, false);
  assert.equal(store.sessionAccount(session.secret), null);
  assert.throws(() => store.setBanned("nobody", true), refusedFor("no_account"));
  assert.equal(store.grantAdmin("bob").admin, true);
  assert.equal(store.find("bob")?.admin, true);
});

Deno.test("failed sign-ins: 10 per key within the window, then a wait until the oldest ages out", () => {
  const clock = manualClock();
  using store = disposable(openStore({ now: clock.read }));
  const keys = ["address 10.0.0.1", "account bob"];
  for (let i = 0; i < MAX_FAILURES - 1; i++) {
    store.countFailure(keys);
    clock.now += 1000;
  }
  assert.equal(store.signInWait(keys), 0);
  store.countFailure(keys);
  const wait = store.signInWait(keys);
  assert.equal(wait, FAILURE_WINDOW_MS - (MAX_FAILURES - 1) * 1000);
  assert.equal(store.signInWait(["address 10.0.0.2", "account carol"]), 0, "other keys are free");
  assert.equal(store.signInWait(["address 10.0.0.2", "account bob"]), wait, "the account alone");
  clock.now += wait;
  assert.equal(store.signInWait(keys), 0, "the oldest failure aged out");

  const ids = store.countFailure(keys);
  store.forgive(ids, "account bob");
  assert.equal(store.signInWait(["account bob"]), 0);
});

Deno.test("rooms are open unless made private or direct, then members only", () => {
  using store = disposable(openStore());
  assert.equal(store.roomKind("lobby"), "open");
  store.setRoomKind("ops", "private");
  store.addMember("ops", 7);
  assert.equal(store.roomKind("ops"), "private");
  assert.equal(store.isMember("ops", 7), true);
  assert.equal(store.isMember("ops", 8), false);
  assert.throws(() => store.setRoomKind("x", "secret" as "open"), /CHECK constraint/);
});

Deno.test("a private room is made once, by its first member; members are listed by name", () => {
  using store = disposable(openStore());
  const alice = store.createFirstAdmin("alice", "h");
  const bob = store.join(store.createInvite(alice.id).secret, "Bob", "h");
  assert.equal(store.createPrivateRoom("ops", bob.id), true);
  assert.equal(store.createPrivateRoom("ops", alice.id), false, "taken");
  assert.deepEqual(store.restriction("ops"), { kind: "private", createdBy: bob.id });
  assert.equal(store.restriction("lobby"), null);
  store.addMember("ops", alice.id);
  assert.deepEqual(store.members("ops"), ["alice", "Bob"]);
  assert.equal(store.removeMember("ops", alice.id), true);
  assert.equal(store.removeMember("ops", alice.id), false);
  assert.deepEqual(store.members("ops"), ["Bob"]);
});

Deno.test("a direct room is one per pair, in either order, with a random name", () => {
  using store = disposable(openStore());
  const alice = store.createFirstAdmin("alice", "h");
  const bob = store.join(store.createInvite(alice.id).secret, "bob", "h");
  const carol = store.join(store.createInvite(alice.id).secret, "carol", "h");
  const made = store.directRoom(alice.id, bob.id);
  assert.equal(made.created, true);
  assert.match(made.room, /^dm\.[\w-]{16}$/);
  assert.deepEqual(store.directRoom(bob.id, alice.id), { room: made.room, created: false });
  const other = store.directRoom(carol.id, alice.id).room;
  assert.notEqual(other, made.room);
  assert.equal(store.roomKind(made.room), "direct");
  assert.equal(store.directPeer(made.room, alice.id), "bob");
  assert.deepEqual(store.directRooms(alice.id), [
    { room: made.room, with: "bob" },
    { room: other, with: "carol" },
  ]);
  assert.deepEqual(store.directRooms(bob.id), [{ room: made.room, with: "alice" }]);
});

Deno.test("an account's rooms page by name after a room and up to a bound", () => {
  using store = disposable(openStore());
  for (const room of ["d", "a", "c", "b"]) store.createPrivateRoom(room, 7);
  store.createPrivateRoom("e", 8);
  const names = (after: string, upTo: string | null, limit: number) =>
    store.memberRooms(7, after, upTo, limit).map(({ room }) => room);
  assert.deepEqual(names("", null, 10), ["a", "b", "c", "d"]);
  assert.deepEqual(names("a", null, 2), ["b", "c"]);
  assert.deepEqual(names("", "c", 10), ["a", "b", "c"]);
  assert.deepEqual(store.memberRooms(7, "c", null, 10), [{ room: "d", kind: "private" }]);
});

Deno.test("a room_access table of the first version gets its created_by column", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/parley.db`;
  using old = disposable(new DatabaseSync(path));
  old.exec(
    "CREATE TABLE room_access (room TEXT PRIMARY KEY, kind TEXT NOT NULL) WITHOUT ROWID; " +
      "INSERT INTO room_access VALUES ('ops', 'private')",
  );
  using store = disposable(openStore({ path }));
  assert.deepEqual(store.restriction("ops"), { kind: "private", createdBy: null });
  assert.equal(store.createPrivateRoom("dev", 3), true);
  assert.deepEqual(store.restriction("dev"), { kind: "private", createdBy: 3 });
});

Deno.test("accounts live in the history file: a second connection, and a second server, see them", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/parley.db`;
  const history = HistoryStore.open({ path, maxMessagesPerRoom: 10 });
  try {
    using one = disposable(openStore({ path }));
    using two = disposable(openStore({ path }));
    const alice = one.createFirstAdmin("alice", "h");
    const session = one.createSession(alice.id);
    assert.equal(two.sessionAccount(session.secret)?.userName, "alice");
    assert.throws(() => two.createFirstAdmin("bob", "h"), refusedFor("setup_done"));
    await history.append({ room: "lobby", userName: "alice", body: "hi" });
    assert.equal(history.lastId("lobby"), 1);
  } finally {
    await history.close();
  }
  using reopened = disposable(openStore({ path }));
  assert.equal(reopened.find("alice")?.admin, true);
  using db = disposable(new DatabaseSync(path));
  assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
});

/** `using` for anything with a `close()`. */
function disposable<T extends { close(): void }>(value: T): T & Disposable {
  return Object.assign(value, { [Symbol.dispose]: () => value.close() });
}
