import assert from "node:assert/strict";
import {
  ADMIN_PASSWORD,
  BOB_PASSWORD,
  Browser,
  manualClock,
  setupToken,
  withPeople,
} from "./people.ts";
import { startTestServer } from "./support.ts";

const DAY = 86_400_000;

Deno.test("setup link -> admin -> invite -> a second person joins -> both are who they say", async () => {
  const clock = manualClock();
  await using server = await startTestServer({ auth: { mode: "accounts" } }, { now: clock.read });
  const nobody = new Browser(server);
  const before = await nobody.call("GET", "/api/me");
  assert.equal(before.status, 401);
  assert.equal(before.body.mode, "accounts");
  assert.equal((await nobody.call("POST", "/api/invites")).status, 401, "no admin yet");

  const token = await setupToken(server);
  const wrong = await nobody.call("POST", "/api/setup", {
    token: "guess",
    userName: "mallory",
    password: "mallory-password",
  });
  assert.equal(wrong.status, 403);
  const short = await nobody.call("POST", "/api/setup", {
    token,
    userName: "a",
    password: "short",
  });
  assert.equal(short.status, 400);
  assert.match(short.body.error, /10 to 1024 characters/);

  const admin = new Browser(server);
  const setup = await admin.call("POST", "/api/setup", {
    token,
    userName: "Admin",
    password: ADMIN_PASSWORD,
  });
  assert.equal(setup.status, 201);
  assert.deepEqual(setup.body, { userName: "Admin", admin: true, mode: "accounts" });
  const cookie = setup.headers.get("set-cookie")!;
  assert.match(
    cookie,
    /^parley_session=[\w-]{43}; Max-Age=2592000; Path=\/; HttpOnly; SameSite=Lax$/,
  );
  const again = await nobody.call("POST", "/api/setup", {
    token,
    userName: "mallory",
    password: "mallory-password",
  });
  assert.equal(again.status, 409, "the link works once");
  assert.match(again.body.error, /has its admin already/);

  const invite = await admin.call("POST", "/api/invites");
  assert.equal(invite.status, 201);
  assert.equal(invite.body.url, new URL(`/join/${invite.body.code}`, server.url).href);
  assert.equal(Date.parse(invite.body.expiresAt), clock.now + 7 * DAY);

  const bob = new Browser(server);
  const taken = await bob.call("POST", `/api/join/${invite.body.code}`, {
    userName: "ADMIN",
    password: BOB_PASSWORD,
  });
  assert.equal(taken.status, 409);
  assert.match(taken.body.error, /taken/);
  const joined = await bob.call("POST", `/api/join/${invite.body.code}`, {
    userName: "bob",
    password: BOB_PASSWORD,
  });
  assert.equal(joined.status, 201);
  const reused = await new Browser(server).call("POST", `/api/join/${invite.body.code}`, {
    userName: "carol",
    password: "carol-password",
  });
  assert.equal(reused.status, 404, "an invite works once");

  assert.deepEqual((await admin.call("GET", "/api/me")).body, {
    userName: "Admin",
    admin: true,
    mode: "accounts",
  });
  assert.deepEqual((await bob.call("GET", "/api/me")).body, {
    userName: "bob",
    admin: false,
    mode: "accounts",
  });
});

Deno.test("signing in: a wrong password is 401, the right one a cookie, signing out ends it", async () => {
  const { server, bob } = await withPeople();
  await using _ = server;
  const browser = new Browser(server);
  const wrong = await browser.call("POST", "/api/session", { userName: "bob", password: "nope" });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get("set-cookie"), null);
  const unknown = await browser.call("POST", "/api/session", {
    userName: "nobody",
    password: BOB_PASSWORD,
  });
  assert.equal(unknown.status, 401);
  assert.equal(unknown.body.error, wrong.body.error, "an unknown name reads as a wrong password");
  const signed = await browser.call("POST", "/api/session", {
    userName: "BOB",
    password: BOB_PASSWORD,
  });
  assert.equal(signed.status, 200);
  assert.equal(signed.body.userName, "bob");
  assert.equal((await browser.call("GET", "/api/me")).body.userName, "bob");

  const session = browser.cookie!;
  const out = await browser.call("DELETE", "/api/session");
  assert.equal(out.status, 204);
  assert.match(out.headers.get("set-cookie")!, /^parley_session=; Max-Age=0;/);
  assert.equal(browser.cookie, null);
  const stale = await browser.call("GET", "/api/me", undefined, { cookie: session });
  assert.equal(stale.status, 401);
  assert.match(stale.headers.get("set-cookie")!, /Max-Age=0/, "a stale cookie is cleared");
  assert.equal((await bob.call("GET", "/api/me")).status, 200, "bob's other session lives on");
});

Deno.test("10 failed sign-ins in 3 minutes are followed by 429 with Retry-After, until they age out", async () => {
  const { server, clock } = await withPeople();
  await using _ = server;
  const browser = new Browser(server);
  for (let i = 0; i < 10; i++) {
    const wrong = await browser.call("POST", "/api/session", {
      userName: "bob",
      password: `wrong-${i}`,
    });
    assert.equal(wrong.status, 401, `attempt ${i + 1}`);
    clock.now += 1000;
  }
  const right = await browser.call("POST", "/api/session", {
    userName: "bob",
    password: BOB_PASSWORD,
  });
  assert.equal(right.status, 429, "even the right password waits");
  assert.equal(right.headers.get("retry-after"), String(180 - 10));
  assert.match(right.body.error, /try again in 170 s/);
  const other = await browser.call("POST", "/api/session", {
    userName: "Admin",
    password: ADMIN_PASSWORD,
  });
  assert.equal(other.status, 429, "the address is throttled too");
  clock.now += 170_000;
  const later = await browser.call("POST", "/api/session", {
    userName: "bob",
    password: BOB_PASSWORD,
  });
  assert.equal(later.status, 200);
});

Deno.test("a session expires after auth.sessionDays, and an invite after auth.inviteDays", async () => {
  const { server, admin, bob, clock } = await withPeople(manualClock(), {
    sessionDays: 2,
    inviteDays: 1,
  });
  await using _ = server;
  const invite = await admin.call("POST", "/api/invites");
  clock.now += DAY;
  const late = await new Browser(server).call("POST", `/api/join/${invite.body.code}`, {
    userName: "carol",
    password: "carol-password",
  });
  assert.equal(late.status, 404);
  assert.match(late.body.error, /expired/);
  assert.equal((await bob.call("GET", "/api/me")).status, 200);
  clock.now += DAY;
  const expired = await bob.call("GET", "/api/me");
  assert.equal(expired.status, 401);
  assert.match(expired.body.error, /sign in again/);
});

Deno.test("API tokens: made once, listed without the token, work as a session, revoked", async () => {
  const { server, bob, admin } = await withPeople();
  await using _ = server;
  assert.equal((await bob.call("POST", "/api/tokens", { label: "" })).status, 400);
  const made = await bob.call("POST", "/api/tokens", { label: "ci bot" });
  assert.equal(made.status, 201);
  assert.match(made.body.token, /^parley_[\w-]{43}$/);
  const list = await bob.call("GET", "/api/tokens");
  assert.deepEqual(list.body, [{
    id: made.body.id,
    label: "ci bot",
    createdAt: made.body.createdAt,
  }]);
  assert.deepEqual((await admin.call("GET", "/api/tokens")).body, []);

  const bot = new Browser(server);
  const bearer = { authorization: `Bearer ${made.body.token}` };
  assert.equal((await bot.call("GET", "/api/me", undefined, bearer)).body.userName, "bob");
  const second = await bot.call("POST", "/api/tokens", { label: "second" }, bearer);
  assert.equal(second.status, 201, "a token works wherever a session does");
  assert.equal(
    (await bot.call("GET", "/api/me", undefined, { authorization: "Basic x" })).status,
    401,
  );
  assert.equal(
    (await admin.call("DELETE", `/api/tokens/${made.body.id}`)).status,
    404,
    "not the admin's token",
  );
  assert.equal((await bob.call("DELETE", `/api/tokens/${made.body.id}`)).status, 204);
  const revoked = await bot.call("GET", "/api/me", undefined, bearer);
  assert.equal(revoked.status, 401);
  assert.match(revoked.body.error, /revoked/);
});

Deno.test("a ban ends the person's sessions and tokens and stops them signing in; an unban lets them", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  const token = (await bob.call("POST", "/api/tokens", { label: "t" })).body.token;
  assert.equal((await bob.call("POST", "/api/users/Admin/ban")).status, 403, "bob is no admin");
  assert.equal((await admin.call("POST", "/api/users/admin/ban")).status, 409, "not yourself");
  assert.equal((await admin.call("POST", "/api/users/nobody/ban")).status, 404);
  const banned = await admin.call("POST", "/api/users/BOB/ban");
  assert.deepEqual(banned.body, { userName: "bob", admin: false, banned: true });
  assert.equal((await bob.call("GET", "/api/me")).status, 401);
  const bearer = { authorization: `Bearer ${token}` };
  assert.equal((await new Browser(server).call("GET", "/api/me", undefined, bearer)).status, 401);
  const signIn = { userName: "bob", password: BOB_PASSWORD };
  const refused = await bob.call("POST", "/api/session", signIn);
  assert.equal(refused.status, 403);
  assert.match(refused.body.error, /banned/);
  assert.equal((await admin.call("DELETE", "/api/users/bob/ban")).body.banned, false);
  assert.equal((await bob.call("POST", "/api/session", signIn)).status, 200);
});

Deno.test("an admin can make another person an admin", async () => {
  const { server, admin, bob } = await withPeople();
  await using _ = server;
  assert.equal((await bob.call("POST", "/api/invites")).status, 403);
  assert.equal((await bob.call("POST", "/api/users/bob/admin")).status, 403);
  const granted = await admin.call("POST", "/api/users/bob/admin");
  assert.deepEqual(granted.body, { userName: "bob", admin: true, banned: false });
  assert.equal((await bob.call("GET", "/api/me")).body.admin, true);
  const invite = await bob.call("POST", "/api/invites");
  assert.equal(invite.status, 201);
  assert.equal((await admin.call("DELETE", `/api/invites/${invite.body.code}`)).status, 204);
  assert.equal((await admin.call("DELETE", `/api/invites/${invite.body.code}`)).status, 404);
});

Deno.test("a cookie's state-changing request from another origin is 403; the server's own is fine", async () => {
  const { server, admin } = await withPeople();
  await using _ = server;
  const evil = { origin: "https://evil.example" };
  const refused = await admin.call("POST", "/api/invites", undefined, evil);
  assert.equal(refused.status, 403);
  assert.match(refused.body.error, /origin https:\/\/evil\.example is not allowed/);
  assert.equal((await admin.call("DELETE", "/api/session", undefined, evil)).status, 403);
  assert.equal(
    (await admin.call("GET", "/api/me", undefined, evil)).status,
    200,
    "reading is fine",
  );
  const own = { origin: server.url.origin };
  assert.equal((await admin.call("POST", "/api/invites", undefined, own)).status, 201);
});

Deno.test("the log holds no password, session, token or invite code; the setup link once", async () => {
  const people = await withPeople();
  const { server, admin, bob } = people;
  const token = (await bob.call("POST", "/api/tokens", { label: "t" })).body.token;
  await bob.call("POST", "/api/session", { userName: "bob", password: "wrong password!" });
  await admin.call("POST", "/api/users/bob/ban");
  await server.shutdown();
  const final = await Deno.readTextFile(server.config.logfilePath);
  await Deno.remove(server.dir, { recursive: true });
  assert.match(final, /sign-in refused for "bob"/);
  assert.match(final, /"Admin" banned "bob"/);
  const secrets = [
    ADMIN_PASSWORD,
    BOB_PASSWORD,
    "wrong password!",
    token,
    people.inviteCode,
    ...admin.secrets,
    ...bob.secrets,
  ];
  assert.ok(secrets.length >= 7);
  for (const secret of secrets) assert.ok(!final.includes(secret), `the log holds ${secret}`);
  assert.equal(final.split(people.setupToken).length - 1, 1, "the setup token, printed once");
});

Deno.test("open mode: no accounts, the API says so, and /api/me is anyone", async () => {
  await using server = await startTestServer();
  const browser = new Browser(server);
  assert.deepEqual((await browser.call("GET", "/api/me")).body, {
    userName: null,
    admin: false,
    mode: "open",
  });
  const signIn = await browser.call("POST", "/api/session", { userName: "a", password: "x" });
  assert.equal(signIn.status, 404);
  assert.match(signIn.body.error, /"auth.mode" is "open"/);
  const log = await Deno.readTextFile(server.config.logfilePath);
  assert.doesNotMatch(log, /setup|warning/);
});
