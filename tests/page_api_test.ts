/**
 * How the page calls the account API (static/api.js) and decides what to show first
 * (static/entry.js): against a real server in each mode, through a fetch that keeps the session
 * cookie as a browser does. Every failure is a sentence a person can act on.
 */
import assert from "node:assert/strict";
import {
  Api,
  ApiError,
  MIN_PASSWORD_LENGTH,
  passwordError,
  readMe,
  sentence,
} from "../static/api.js";
import { entryOf, firstView } from "../static/entry.js";
import { browserFetch } from "./page_fakes.ts";
import { startTestServer } from "./support.ts";

const ADMIN_PASSWORD = "admin-password-1";
const BOB_PASSWORD = "bob-password-22";

/** Rejects unless `promise` fails with an ApiError of `status` whose message matches `message`. */
async function refused(promise: Promise<unknown>, status: number, message: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ApiError, `not an ApiError: ${error}`);
    assert.equal(error.status, status, error.message);
    assert.match(error.message, message);
    return true;
  });
}

/** A server with accounts, its admin signed in on `admin`, and bob on `bob` with an invite. */
async function withPeople() {
  const server = await startTestServer({ auth: { mode: "accounts" } });
  const admin = new Api(browserFetch(server));
  const token = server.setupLink!.searchParams.get("token")!;
  await admin.setup(token, "Admin", ADMIN_PASSWORD);
  const invite = await admin.invite();
  const bob = new Api(browserFetch(server));
  const code = new URL(invite.url).pathname.split("/").at(-1)!;
  await bob.join(code, "bob", BOB_PASSWORD);
  return { server, admin, bob };
}

Deno.test("open mode: /api/me says so, and the page shows the open form wherever it opened", async () => {
  await using server = await startTestServer();
  const me = await new Api(browserFetch(server)).me();
  assert.deepEqual(me, { mode: "open", userName: null, admin: false });
  for (const path of ["/", "/setup?token=x", "/join/abc"]) {
    const url = new URL(path, server.url);
    assert.equal(firstView(entryOf(url), me), "open", path);
  }
});

Deno.test("a server that cannot be asked, or an older one without /api/me, is taken as open", async () => {
  const unreachable = new Api(() => Promise.reject(new TypeError("connection refused")));
  assert.deepEqual(await unreachable.me(), { mode: "open", userName: null, admin: false });
  const older = new Api(() => Promise.resolve(new Response("no such page", { status: 404 })));
  assert.equal((await older.me()).mode, "open");
  await refused(
    unreachable.signIn("bob", "x"),
    0,
    /^The server could not be reached; check the connection and try again\.$/,
  );
});

Deno.test("setup: the first account is an admin, signed in; the link works once", async () => {
  await using server = await startTestServer({ auth: { mode: "accounts" } });
  const api = new Api(browserFetch(server));
  const before = await api.me();
  assert.deepEqual(before, { mode: "accounts", userName: null, admin: false });
  const setupUrl = server.setupLink!;
  const entry = entryOf(setupUrl);
  assert.equal(entry.kind, "setup");
  assert.equal(firstView(entry, before), "setup");
  assert.equal(firstView(entryOf(new URL("/?room=ops", server.url)), before), "signin");

  const token = setupUrl.searchParams.get("token")!;
  await refused(api.setup("guess", "mallory", "mallory-password"), 403, /setup link is not valid/);
  await refused(api.setup(token, "Admin", "short"), 400, /^A password must be 10 to 1024/);
  const me = await api.setup(token, "Admin", ADMIN_PASSWORD);
  assert.deepEqual(me, { mode: "accounts", userName: "Admin", admin: true });
  assert.deepEqual(await api.me(), me);
  assert.equal(firstView({ kind: "chat" }, me), "chat");
  const other = new Api(browserFetch(server));
  await refused(other.setup(token, "mallory", "mallory-password"), 409, /has its admin already/);
});

Deno.test("signing in: a wrong password, then too many, are said plainly; signing out ends it", async () => {
  const { server, bob } = await withPeople();
  await using _ = server;
  const browser = new Api(browserFetch(server));
  await refused(browser.signIn("bob", "wrong password"), 401, /^Wrong name or password\.$/);
  const me = await browser.signIn("BOB", BOB_PASSWORD);
  assert.deepEqual(me, { mode: "accounts", userName: "bob", admin: false });
  await browser.signOut();
  assert.equal((await browser.me()).userName, null);
  assert.equal((await bob.me()).userName, "bob", "bob's other session lives on");

  for (let i = 0; i < 9; i++) await refused(browser.signIn("bob", `wrong-${i}`), 401, /Wrong/);
  await refused(
    browser.signIn("bob", BOB_PASSWORD),
    429,
    /^Too many failed sign-ins; try again in \d+ s\.$/,
  );
});

Deno.test("admins invite and ban; others are told they may not", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const invite = await admin.invite();
  assert.match(invite.url, new RegExp(`^${server.url.origin}/join/[\\w-]+$`));
  assert.ok(Date.parse(invite.expiresAt) > Date.now());
  const entry = entryOf(new URL(invite.url));
  assert.deepEqual(entry, { kind: "invite", code: invite.url.split("/").at(-1) });
  await refused(bob.invite(), 403, /^Only an admin may do this\.$/);
  await refused(bob.ban("Admin"), 403, /admin/);
  await refused(admin.ban("nobody"), 404, /no account named "nobody"/);

  const carol = new Api(browserFetch(server));
  if (entry.kind !== "invite") throw new Error("not an invite");
  await refused(carol.join(entry.code, "BOB", "carol-password"), 409, /is taken/);
  assert.equal((await carol.join(entry.code, "carol", "carol-password")).userName, "carol");
  await refused(
    new Api(browserFetch(server)).join(entry.code, "dave", "dave-password"),
    404,
    /unknown, expired, used or revoked/,
  );

  await admin.ban("bob");
  assert.equal((await bob.me()).userName, null, "a ban ends bob's session");
  await refused(bob.signIn("bob", BOB_PASSWORD), 403, /^This account is banned; ask an admin\.$/);
});

Deno.test("private rooms and their members, and a direct room", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  await admin.createPrivateRoom("secret");
  await refused(bob.createPrivateRoom("secret"), 409, /exists already/);
  assert.deepEqual(await admin.members("secret"), ["Admin"]);
  await refused(bob.members("secret"), 404, /no private room/);
  await admin.addMember("secret", "bob");
  assert.deepEqual((await bob.members("secret")).sort(), ["Admin", "bob"]);
  await refused(bob.removeMember("secret", "Admin"), 403, /maker or an admin/);
  await admin.removeMember("secret", "bob");
  assert.deepEqual(await admin.members("secret"), ["Admin"]);

  const room = await bob.direct("Admin");
  assert.equal(await admin.direct("bob"), room, "the same room for the pair");
  assert.notEqual(room, "Admin");
  await refused(bob.direct("bob"), 400, /two people/);
});

Deno.test("a server's reason becomes a sentence; a new password's rule is said up front", () => {
  assert.equal(sentence("wrong name or password"), "Wrong name or password.");
  assert.equal(sentence("  slow down!  "), "Slow down!");
  assert.equal(sentence(""), "");
  assert.equal(MIN_PASSWORD_LENGTH, 10);
  assert.equal(passwordError("123456789"), "A password needs at least 10 characters.");
  assert.equal(passwordError("1234567890"), "");
  // Characters, not UTF-16 units: nine emoji are nine characters.
  assert.match(passwordError("🙂".repeat(9)), /at least 10/);
  assert.deepEqual(readMe(200, { userName: "x", admin: true, mode: "open" }), {
    mode: "open",
    userName: null,
    admin: false,
  });
  assert.deepEqual(readMe(401, { userName: "x", mode: "accounts" }).userName, null);
});

Deno.test("which view a URL opens: the path decides the form, /api/me the rest", () => {
  const signedOut = { mode: "accounts", userName: null, admin: false } as const;
  const bob = { mode: "accounts", userName: "bob", admin: false } as const;
  const at = (path: string) => entryOf(new URL(path, "http://chat.example"));
  assert.deepEqual(at("/setup?token=abc"), { kind: "setup", token: "abc" });
  assert.deepEqual(at("/setup"), { kind: "setup", token: "" });
  assert.deepEqual(at("/join/a%20b"), { kind: "invite", code: "a b" });
  assert.deepEqual(at("/join/%E0"), { kind: "invite", code: "%E0" });
  for (const path of ["/", "/messages", "/?room=ops", "/join/a/b", "/join/"]) {
    assert.deepEqual(at(path), { kind: "chat" }, path);
  }
  assert.equal(firstView(at("/"), signedOut), "signin");
  assert.equal(firstView(at("/"), bob), "chat");
  assert.equal(firstView(at("/join/x"), bob), "invite", "a signed-in person may make an account");
  assert.equal(firstView(at("/setup?token=x"), signedOut), "setup");
});
