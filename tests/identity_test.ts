import assert from "node:assert/strict";
import { ConfigError, defaultConfig, mergeConfig } from "../chat/config.ts";
import {
  ANYONE,
  type Identity,
  type IdentityEvent,
  type IdentityOptions,
  IdentityService,
  revokedBy,
} from "../chat/identity.ts";
import { Logger } from "../chat/log.ts";
import { HttpError } from "../chat/routes/route.ts";
import { parleyDir, ParleyProcess, tempDir } from "./support.ts";

const OWN = "http://127.0.0.1:8080";

function options(raw: Record<string, unknown>, extra: Partial<IdentityOptions> = {}) {
  return {
    config: mergeConfig(defaultConfig, { history: { path: ":memory:" }, ...raw }, "test"),
    channel: null,
    originAllowed: (origin: string | null, own: string) => origin === null || origin === own,
    secureCookies: false,
    ...extra,
  } satisfies IdentityOptions;
}

async function openService(
  raw: Record<string, unknown> = { auth: { mode: "accounts" } },
  extra: Partial<IdentityOptions> = {},
): Promise<IdentityService & Disposable> {
  const service = await IdentityService.open(options(raw, extra));
  return Object.assign(service, { [Symbol.dispose]: () => service.close() });
}

function request(method: string, headers: Record<string, string> = {}): [Request, URL] {
  const url = new URL("/history?room=lobby", OWN);
  return [new Request(url, { method, headers }), url];
}

function refusedWith(status: number, message: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof HttpError, String(error));
    assert.equal(error.status, status);
    assert.match(error.message, message);
    return true;
  };
}

const combinations: [string, unknown, RegExp[]][] = [
  ["accounts with redis", { auth: { mode: "accounts" }, redis: "redis://127.0.0.1:6379" }, [
    /"auth\.mode": "accounts"/,
    /"redis"/,
  ]],
  ["jwt without a secret or a key file", { auth: { mode: "jwt" } }, [
    /"auth\.mode": "jwt"/,
    /"auth\.jwt\.secret" or "auth\.jwt\.publicKeyFile"/,
  ]],
  ["a mode that does not exist", { auth: { mode: "ldap" } }, [/"auth\.mode" must be "open"/]],
  ["an unknown jwt key", { auth: { jwt: { secert: "x" } } }, [/unknown key "auth\.jwt\.secert"/]],
  ["a session of no days", { auth: { sessionDays: 0.5 } }, [/"auth\.sessionDays" must be a whole/]],
  ["a short secret, not echoed", { auth: { jwt: { secret: "hunter2" } } }, [
    /"auth\.jwt\.secret" must be null or a secret of at least 32 characters, not "…"/,
  ]],
];

for (const [what, raw, messages] of combinations) {
  Deno.test(`config: ${what} is a ConfigError naming the keys`, () => {
    assert.throws(() => mergeConfig(defaultConfig, raw, "config.json"), (error: Error) => {
      assert.ok(error instanceof ConfigError, String(error));
      for (const message of messages) assert.match(error.message, message);
      assert.ok(!error.message.includes("hunter2"));
      return true;
    });
  });
}

Deno.test("config: auth defaults to open, and jwt keys are accepted", () => {
  assert.deepEqual(defaultConfig.auth, {
    mode: "open",
    sessionDays: 30,
    inviteDays: 7,
    jwt: { secret: null, publicKeyFile: null, issuer: null, audience: null },
  });
  const jwt = { mode: "jwt", jwt: { secret: "s".repeat(32), issuer: "https://id.example" } };
  const config = mergeConfig(defaultConfig, { auth: jwt }, "x");
  assert.equal(config.auth.jwt.issuer, "https://id.example");
  assert.equal(config.auth.jwt.audience, null, "nested sections merge key by key");
});

Deno.test("open mode: everyone is ANYONE, who may read and post anywhere", async () => {
  using service = await openService({});
  assert.equal(service.accounts, null);
  const [get, url] = request("POST", { cookie: "parley_session=whatever", origin: "https://x.y" });
  assert.equal(await service.identify(get, url), ANYONE);
  assert.equal(service.mayRead(ANYONE, "ops"), true);
  assert.equal(service.mayPost(null, "ops"), true);
});

Deno.test("accounts mode: a cookie or a token is a person, nothing is null, a bad one is 401", async () => {
  using service = await openService();
  const accounts = service.accounts!;
  const alice = accounts.createFirstAdmin("alice", "h");
  const session = accounts.createSession(alice.id).secret;
  const token = accounts.createToken(alice.id, "ci").token;
  const expected = {
    id: String(alice.id),
    userName: "alice",
    admin: true,
    rooms: null,
    expiresAt: null,
  };

  assert.equal(await service.identify(...request("GET")), null);
  const cookie = { cookie: `theme=dark; parley_session=${session}` };
  assert.deepEqual(await service.identify(...request("GET", cookie)), {
    ...expected,
    via: "session",
  });
  const bearer = { authorization: `Bearer ${token}` };
  assert.deepEqual(await service.identify(...request("POST", bearer)), {
    ...expected,
    via: "token",
  });

  await assert.rejects(
    service.identify(...request("GET", { cookie: "parley_session=forged" })),
    (error) =>
      refusedWith(401, /sign in again/)(error) && error instanceof HttpError &&
      /Max-Age=0/.test(new Headers(error.headers).get("set-cookie")!),
  );
  await assert.rejects(
    service.identify(...request("GET", { authorization: "Bearer parley_forged" })),
    refusedWith(401, /unknown or was revoked/),
  );
  await assert.rejects(
    service.identify(...request("GET", { authorization: `Token ${token}` })),
    refusedWith(401, /Authorization: Bearer/),
  );
});

Deno.test("a cookie may change something only from an allowed origin; a token from anywhere", async () => {
  using service = await openService();
  const accounts = service.accounts!;
  const alice = accounts.createFirstAdmin("alice", "h");
  const cookie = `parley_session=${accounts.createSession(alice.id).secret}`;
  const evil = "https://evil.example";
  for (const method of ["POST", "DELETE", "PUT"]) {
    await assert.rejects(
      service.identify(...request(method, { cookie, origin: evil })),
      refusedWith(403, /origin "https:\/\/evil\.example" may not act with your session/),
    );
  }
  const safe: Record<string, string>[] = [{ cookie, origin: evil }, { cookie, origin: OWN }, {
    cookie,
  }];
  for (const headers of safe) {
    assert.equal((await service.identify(...request("GET", headers)))?.id, String(alice.id));
  }
  const posted = await service.identify(...request("POST", { cookie, origin: OWN }));
  assert.equal(posted?.id, String(alice.id));
  const authorization = `Bearer ${accounts.createToken(alice.id, "t").token}`;
  const viaToken = await service.identify(...request("POST", { authorization, origin: evil }));
  assert.equal(viaToken?.via, "token");
});

Deno.test("mayRead: nobody reads; people read open rooms, members private ones; a credential's rooms limit", async () => {
  using service = await openService();
  const accounts = service.accounts!;
  const alice = accounts.createFirstAdmin("alice", "h");
  const person = (id: number, rooms: string[] | null = null): Identity => ({
    id: String(id),
    userName: "x",
    admin: false,
    via: "session",
    rooms,
    expiresAt: null,
  });
  assert.equal(service.mayRead(null, "lobby"), false);
  assert.equal(service.mayPost(null, "lobby"), false);
  assert.equal(service.mayRead(person(alice.id), "lobby"), true);
  accounts.setRoomKind("staff", "private");
  accounts.addMember("staff", alice.id);
  assert.equal(service.mayRead(person(alice.id), "staff"), true);
  assert.equal(service.mayPost(person(alice.id + 1), "staff"), false);
  assert.equal(service.mayRead({ ...person(alice.id + 1), admin: true }, "staff"), false);
  assert.equal(service.mayRead(person(alice.id, ["staff"]), "staff"), true);
  assert.equal(service.mayRead(person(alice.id, ["staff"]), "lobby"), false);
});

Deno.test("a ban is announced to subscribers here and in other workers; they share the setup token", async () => {
  await using dir = await tempDir();
  const raw = { auth: { mode: "accounts" }, history: { path: `${dir.path}/parley.db` } };
  const channel = `parley-identity-test:${dir.path}`;
  using first = await openService(raw, { channel });
  using second = await openService(raw, { channel });
  const logPath = `${dir.path}/parley.log`;
  const log = new Logger(logPath, false);
  const base = new URL(OWN);
  assert.equal(second.announce(base, "127.0.0.1", log), null);
  const link = first.announce(base, "127.0.0.1", log);
  assert.equal(first.announce(base, "127.0.0.1", log), null, "once");
  log.close();
  const printed = [...Deno.readTextFileSync(logPath).matchAll(/setup\?token=([\w-]+)/g)];
  assert.equal(printed.length, 1, "one link, printed once, by the first");
  assert.equal(link?.searchParams.get("token"), printed[0][1]);
  assert.equal(second.setupTokenValid(printed[0][1]), true, "the second accepts the first's");
  assert.equal(second.setupTokenValid("guess"), false);

  const heard = Promise.withResolvers<IdentityEvent>();
  const here: IdentityEvent[] = [];
  second.subscribe(heard.resolve);
  const unsubscribe = first.subscribe((event) => here.push(event));
  const alice = first.accounts!.createFirstAdmin("alice", "h");
  first.accounts!.join(first.accounts!.createInvite(alice.id).secret, "bob", "h");
  const bob = first.setBanned("Bob", true);
  const event: IdentityEvent = { type: "banned", id: String(bob.id), userName: "bob" };
  assert.deepEqual(here, [event]);
  assert.deepEqual(await heard.promise, event);
  unsubscribe();
  first.setBanned("bob", false);
  first.setBanned("bob", true);
  assert.equal(here.length, 1, "an unban is no event, and an unsubscribed listener hears nothing");
});

Deno.test("a member taken out of a room is announced in every worker; revokedBy says who loses what", async () => {
  await using dir = await tempDir();
  const raw = { auth: { mode: "accounts" }, history: { path: `${dir.path}/parley.db` } };
  const channel = `parley-identity-test:${dir.path}`;
  using first = await openService(raw, { channel });
  using second = await openService(raw, { channel });
  const accounts = first.accounts!;
  const alice = accounts.createFirstAdmin("alice", "h");
  const bob = accounts.join(accounts.createInvite(alice.id).secret, "bob", "h");
  accounts.createPrivateRoom("staff", alice.id);
  accounts.addMember("staff", bob.id);
  const heard = Promise.withResolvers<IdentityEvent>();
  second.subscribe(heard.resolve);
  assert.equal(first.removeMember("staff", bob), true);
  assert.equal(first.removeMember("staff", bob), false, "no second event for no member");
  const removed = await heard.promise;
  const id = String(bob.id);
  assert.deepEqual(removed, { type: "removed", id, userName: "bob", room: "staff" });
  assert.equal(accounts.isMember("staff", bob.id), false);

  const person = (id: number | string, via: Identity["via"] = "token"): Identity => ({
    id: String(id),
    userName: "x",
    admin: false,
    via,
    rooms: null,
    expiresAt: null,
  });
  assert.equal(revokedBy(removed, person(bob.id), "staff"), "removed from the room");
  assert.equal(revokedBy(removed, person(bob.id, "session"), "staff"), "removed from the room");
  assert.equal(revokedBy(removed, person(bob.id), "lobby"), null);
  assert.equal(revokedBy(removed, person(alice.id), "staff"), null);
  const banned: IdentityEvent = { type: "banned", id, userName: "bob" };
  assert.equal(revokedBy(banned, person(bob.id), "lobby"), "banned");
  assert.equal(revokedBy(banned, person(bob.id, "jwt"), "lobby"), null, "a JWT's sub is no id");
  assert.equal(revokedBy(banned, ANYONE, "lobby"), null);
});

Deno.test("the start-up log warns when open mode listens beyond loopback", async () => {
  await using dir = await tempDir();
  const cases: [string, string, boolean][] = [
    ["open", "0.0.0.0", true],
    ["open", "192.168.1.20", true],
    ["open", "127.0.0.1", false],
    ["open", "::1", false],
    ["accounts", "0.0.0.0", false],
  ];
  for (const [mode, hostName, warns] of cases) {
    using service = await openService({ auth: { mode } });
    const path = `${dir.path}/${mode}-${hostName}.log`;
    const log = new Logger(path, false);
    const link = service.announce(new URL(OWN), hostName, log);
    assert.equal(link === null, mode === "open", "a link only where there are accounts");
    log.close();
    const text = Deno.readTextFileSync(path);
    assert.equal(
      /warning: .*anyone who reaches it can post under any name/.test(text),
      warns,
      text,
    );
  }
});

Deno.test("parley prints the setup link on stdout and in the log until the admin exists", async () => {
  await using dir = await parleyDir({
    auth: { mode: "accounts" },
    history: { path: "data/parley.db" },
  }, "parley-identity-");
  const token = await (async () => {
    await using parley = await ParleyProcess.start(dir.path);
    const stdout = parley.output().split("\nstderr:\n")[0];
    const line = /\nparley: create the admin account at \S+\/setup\?token=([\w-]+) /.exec(stdout);
    assert.ok(line, parley.output());
    assert.match(parley.banner, /chat at/, "the URL line comes first");
    const created = await fetch(new URL("/api/setup", parley.url), {
      method: "POST",
      body: JSON.stringify({ token: line[1], userName: "root", password: "root-password" }),
    });
    assert.equal(created.status, 201);
    await created.body?.cancel();
    return line[1];
  })();
  const log = await Deno.readTextFile(`${dir.path}/parley.log`);
  assert.ok(log.includes(`setup?token=${token}`));
  await using again = await ParleyProcess.start(dir.path);
  assert.doesNotMatch(again.output(), /setup/, "no link once an account exists");
  assert.match(again.banner, /chat at/);
});

Deno.test("with 2 workers one setup link is printed, and every worker accepts it", async () => {
  await using dir = await parleyDir({
    auth: { mode: "accounts" },
    history: { path: "data/parley.db" },
    workers: 2,
  }, "parley-identity-");
  await using parley = await ParleyProcess.start(dir.path, { args: [] });
  const stdout = parley.output().split("\nstderr:\n")[0];
  const links = [...stdout.matchAll(/setup\?token=([\w-]+)/g)];
  assert.equal(links.length, 1, parley.output());
  // Each request on a connection of its own, so that the kernel spreads them over the workers:
  // a worker that did not know the token would answer 403, not the 400 of the short password.
  const answers = await Promise.all(Array.from({ length: 12 }, async () => {
    using client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    const response = await fetch(new URL("/api/setup", parley.url), {
      client,
      method: "POST",
      body: JSON.stringify({ token: links[0][1], userName: "root", password: "short" }),
    });
    await response.body?.cancel();
    return response.status;
  }));
  assert.deepEqual(new Set(answers), new Set([400]));
  const log = await Deno.readTextFile(`${dir.path}/parley.log`);
  assert.equal(log.split(links[0][1]).length, 2, `the log has the link once:\n${log}`);
  assert.match(log, /worker 1: listening/);
  assert.match(log, /worker 2: listening/);
});
