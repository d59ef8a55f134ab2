/**
 * `auth.mode: "jwt"`: tokens another service signs say who people are. Tokens here are signed
 * with jose, as an identity service would; every server's log is searched for them at the end.
 */

import assert from "node:assert/strict";
import * as jose from "npm:jose@6.2.18";
import { ConfigError, defaultConfig, mergeConfig } from "../chat/config.ts";
import { IdentityService } from "../chat/identity.ts";
import { CLOCK_SKEW_MS } from "../chat/jwt.ts";
import { StartupError } from "../chat/services.ts";
import { REPO_ROOT } from "../bench/server_process.ts";
import { EventStreamReader } from "./event_stream.ts";
import {
  type Event,
  parleyDir,
  startTestServer,
  TestClient,
  type TestServer,
  within,
} from "./support.ts";

const SECRET = "a-shared-secret-of-at-least-32-characters";
const ISSUER = "https://id.example";
const AUDIENCE = "parley";
const HS256 = { mode: "jwt", jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } };

/** How a test token is signed; by default as the {@link HS256} server expects. */
interface Signing {
  key?: jose.CryptoKey | Uint8Array;
  alg?: string;
  /** Seconds from now to `exp`; null for no `exp`. */
  expiresIn?: number | null;
  /** The `exp` itself, in seconds since the epoch, instead. */
  exp?: number;
  issuer?: string;
  audience?: string;
}

/** Every token a test signed, to look for in the logs. */
const issued: string[] = [];

async function sign(claims: Record<string, unknown>, signing: Signing = {}): Promise<string> {
  const { alg = "HS256", expiresIn = 600, issuer = ISSUER, audience = AUDIENCE } = signing;
  const jwt = new jose.SignJWT(claims).setProtectedHeader({ alg }).setIssuedAt()
    .setIssuer(issuer).setAudience(audience);
  if (expiresIn !== null) {
    jwt.setExpirationTime(signing.exp ?? Math.floor(Date.now() / 1000) + expiresIn);
  }
  const token = await jwt.sign(signing.key ?? new TextEncoder().encode(SECRET));
  issued.push(token);
  return token;
}

/** A jwt-mode server; disposing it stops it and checks that its log has no token in it. */
async function jwtServer(
  auth: Record<string, unknown> = HS256,
  now?: () => number,
): Promise<TestServer> {
  const server = await startTestServer({ auth }, { now });
  const close = async () => {
    await server.shutdown();
    const log = await Deno.readTextFile(server.config.logfilePath);
    await server.close();
    for (const token of issued) {
      for (const part of [token, ...token.split(".").filter((part) => part.length >= 16)]) {
        assert.ok(!log.includes(part), `a token is in the log:\n${log}`);
      }
    }
    assert.doesNotMatch(log, /eyJ\w{4}/, "nothing that looks like a token either");
  };
  return { ...server, close, [Symbol.asyncDispose]: close };
}

/** `/api/me` with `Authorization: Bearer token`. */
// deno-lint-ignore no-explicit-any
async function me(server: TestServer, token?: string): Promise<{ status: number; body: any }> {
  const headers: HeadersInit = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const response = await fetch(new URL("/api/me", server.url), { headers });
  return { status: response.status, body: await response.json() };
}

/** A WebSocket upgrade of `/chat` by fetch, whose refusal (a 401) can be read. */
async function upgrade(
  server: TestServer,
  query: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; error?: string }> {
  const response = await fetch(server.wsUrl(query).replace("ws:", "http:"), {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      ...headers,
    },
  });
  if (response.status === 101) {
    await response.body?.cancel();
    return { status: 101 };
  }
  return { status: response.status, error: (await response.json()).error };
}

async function join(server: TestServer, query: Record<string, string>) {
  const client = new TestClient(server.wsUrl(query));
  return { client, welcome: await client.next("welcome") };
}

Deno.test("a token names the person: the query, hello and a legacy frame cannot", async () => {
  await using server = await jwtServer();
  const alice = await sign({ sub: "u-1", name: "Alice" });
  const { client, welcome } = await join(server, { token: alice, userName: "mallory" });
  assert.equal(welcome.userName, "Alice");
  assert.deepEqual(welcome.users, ["Alice"]);
  client.send({ type: "hello", userName: "mallory" });
  client.send({ type: "message", body: "hi", clientId: "c1" });
  assert.equal((await client.next("message")).userName, "Alice");
  assert.deepEqual(client.events.filter((e) => e.type === "error"), [], "hello is ignored");

  const bob = await sign({ sub: "bob" });
  const legacy = new TestClient(server.wsUrl({ token: bob, userName: "mallory" }), null);
  await legacy.opened;
  legacy.send({ userName: "mallory", body: "from the Go client" });
  const seen = await client.next("message");
  assert.equal(seen.userName, "bob", "no name claim: the sub");
  assert.equal(seen.body, "from the Go client");
  assert.deepEqual((await historyNames(server, alice)).sort(), ["Alice", "bob"]);
  await legacy.close();
  await client.close();
});

/** The names in the lobby's history, read with `token` (reading needs a person in jwt mode). */
async function historyNames(server: TestServer, token: string): Promise<string[]> {
  const page = await (await fetch(new URL("/history?room=lobby", server.url), {
    headers: { authorization: `Bearer ${token}` },
  })).json();
  return page.messages.map((m: Event) => m.userName);
}

Deno.test("Bearer tokens sign in on HTTP: /api/me says who, and that there are no accounts", async () => {
  await using server = await jwtServer();
  assert.deepEqual(await me(server, await sign({ sub: "a", name: "Ann", admin: true })), {
    status: 200,
    body: { userName: "Ann", admin: true, mode: "jwt" },
  });
  assert.deepEqual((await me(server, await sign({ sub: "b" }))).body.admin, false);
  const nobody = await me(server);
  assert.equal(nobody.status, 401);
  assert.equal(nobody.body.mode, "jwt");
  const tokens = await fetch(new URL("/api/tokens", server.url));
  assert.equal(tokens.status, 404);
  assert.match((await tokens.json()).error, /"auth\.mode" is "jwt"/);
  const withQuery = await fetch(new URL(`/api/me?token=${await sign({ sub: "a" })}`, server.url));
  assert.equal(withQuery.status, 401, "?token= is for the WebSocket upgrade only");
  await withQuery.body?.cancel();
  const ok = await upgrade(server, {}, { authorization: `Bearer ${await sign({ sub: "a" })}` });
  assert.equal(ok.status, 101, "a client that can send headers upgrades with Bearer");
});

Deno.test("a bad token is a 401 with a sentence, on HTTP and on the upgrade", async () => {
  await using server = await jwtServer();
  const other = new TextEncoder().encode("another-secret-of-at-least-32-characters");
  const unsigned = new jose.UnsecuredJWT({ sub: "a" }).setIssuer(ISSUER).setAudience(AUDIENCE)
    .setExpirationTime("10m").encode();
  issued.push(unsigned);
  const cases: [string, string, RegExp][] = [
    ["expired", await sign({ sub: "a" }, { expiresIn: -120 }), /has expired; get a new one/],
    ["of another key", await sign({ sub: "a" }, { key: other }), /signature does not match/],
    ["for another audience", await sign({ sub: "a" }, { audience: "wiki" }), /"aud" must/],
    ["of another issuer", await sign({ sub: "a" }, { issuer: "https://x" }), /issuer \("iss"\)/],
    ["without exp", await sign({ sub: "a" }, { expiresIn: null }), /no "exp" claim/],
    ["without sub", await sign({ name: "A" }), /no "sub" claim/],
    ["unsigned (alg none)", unsigned, /not a well-formed signed JWT|algorithm/],
    ["with a name no person has", await sign({ sub: "a", name: "\u202e" }), /"name" is not/],
    ["with rooms that are not rooms", await sign({ sub: "a", rooms: "ops" }), /"rooms" must/],
    ["that is no JWT", "not.a.token", /not a well-formed signed JWT/],
  ];
  for (const [what, token, message] of cases) {
    const http = await me(server, token);
    assert.equal(http.status, 401, what);
    assert.match(http.body.error, message, what);
    const ws = await upgrade(server, { token });
    assert.deepEqual(ws.status, 401, what);
    assert.match(ws.error!, message, what);
  }
  const expired = await fetch(new URL("/api/me", server.url), {
    headers: { authorization: `Bearer ${cases[0][1]}` },
  });
  await expired.body?.cancel();
  assert.equal(expired.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
  const none = await upgrade(server, { userName: "mallory" });
  assert.equal(none.status, 401);
  assert.match(none.error!, /send your token as Authorization: Bearer <token>, or as \?token=/);
});

Deno.test("rooms: the claim's patterns limit them; any other room answers like one that never was", async () => {
  await using server = await jwtServer();
  const everywhere = await join(server, { token: await sign({ sub: "root" }), room: "secret" });
  everywhere.client.send({ type: "message", body: "the plans" });
  await everywhere.client.next("message");
  await everywhere.client.close();

  const team = await sign({ sub: "t", rooms: ["ops", "team-*"] });
  for (const room of ["ops", "team-a", "team-b.c"]) {
    const { client, welcome } = await join(server, { token: team, room });
    assert.equal(welcome.room, room);
    await client.close();
  }
  const refusal = async (room: string) => {
    const client = new TestClient(server.wsUrl({ token: team, room }));
    const error = await client.next("error");
    const closed = await client.closed;
    return JSON.stringify([error.code, error.message, closed.code, closed.reason])
      .replaceAll(room, "ROOM");
  };
  const secret = await refusal("secret");
  assert.match(secret, /bad_room.*there is no room \\"ROOM\\".*1008/);
  assert.equal(await refusal("nowhere"), secret, "a room with history answers like none");
  assert.equal(await refusal("team"), secret, '"team-*" does not match "team"');
  assert.equal(await refusal("opsx"), secret, "a name without * matches itself only");
});

for (const alg of ["ES256", "RS256", "EdDSA"]) {
  Deno.test(`an asymmetric key (${alg}, PEM): its tokens are accepted, HS256 ones never`, async () => {
    await using dir = await parleyDir({}, "parley-jwt-");
    const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    const pem = await jose.exportSPKI(publicKey);
    const publicKeyFile = `${dir.path}/issuer.pem`;
    await Deno.writeTextFile(publicKeyFile, pem);
    const auth = { mode: "jwt", jwt: { publicKeyFile, issuer: ISSUER, audience: AUDIENCE } };
    await using server = await jwtServer(auth);

    const good = await sign({ sub: "e", name: "Eve" }, { key: privateKey, alg });
    assert.equal((await me(server, good)).body.userName, "Eve");
    const { client, welcome } = await join(server, { token: good });
    assert.equal(welcome.userName, "Eve");
    await client.close();

    const stranger = (await jose.generateKeyPair(alg)).privateKey;
    const forged = await sign({ sub: "e" }, { key: stranger, alg });
    assert.match((await me(server, forged)).body.error, /signature does not match/);
    // The old trick: the public key, which anyone has, used as an HMAC secret.
    const confused = await sign({ sub: "e" }, { key: new TextEncoder().encode(pem) });
    assert.match((await me(server, confused)).body.error, new RegExp(`accepts only ${alg}$`));
  });
}

Deno.test("a key that cannot be used stops the start, naming the key file", async () => {
  await using dir = await parleyDir({}, "parley-jwt-");
  const p384 = await jose.generateKeyPair("ES384", { extractable: true });
  const files: Record<string, string> = {
    "private.pem": await jose.exportPKCS8(p384.privateKey),
    "p384.pem": await jose.exportSPKI(p384.publicKey),
    "garbage.pem": "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
  };
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir.path}/${name}`, text);
  }
  const cases: [string, RegExp][] = [
    ["missing.pem", /cannot read "auth\.jwt\.publicKeyFile" ".*missing\.pem"/],
    ["private.pem", /private\.pem" holds a private key; give parley the public key only/],
    ["p384.pem", /p384\.pem" is a key parley cannot check tokens with; use an RSA/],
    ["garbage.pem", /garbage\.pem" is not a PEM public key/],
  ];
  for (const [name, message] of cases) {
    const auth = { mode: "jwt", jwt: { publicKeyFile: `${dir.path}/${name}` } };
    await assert.rejects(
      startTestServer({ auth }),
      (error) => error instanceof StartupError && message.test(error.message),
      name,
    );
  }
  assert.throws(
    () =>
      mergeConfig(defaultConfig, {
        auth: { mode: "jwt", jwt: { secret: SECRET, publicKeyFile: "k.pem" } },
      }, "config.json"),
    (error) => error instanceof ConfigError && /both set/.test(error.message),
  );
});

Deno.test("a connection closes with 1008 when its token expires, unless refreshed in time", async () => {
  // This server's clock is CLOCK_SKEW_MS ahead of the issuer's: a token is then cut off exactly
  // at its exp, by the test's clock, rather than half a minute later.
  await using server = await jwtServer(HS256, () => Date.now() + CLOCK_SKEW_MS);
  const exp = Math.ceil(Date.now() / 1000) + 2;
  const soon = { exp };
  const kept = await join(server, { token: await sign({ sub: "k" }, soon) });
  const left = await join(server, { token: await sign({ sub: "l" }, soon) });

  kept.client.send({ type: "refresh", token: await sign({ sub: "somebody-else" }) });
  const other = await kept.client.next("error");
  assert.equal(other.code, "forbidden");
  assert.match(other.message, /another person's/);
  kept.client.send({ type: "refresh", token: await sign({ sub: "k" }, { expiresIn: -60 }) });
  assert.match((await kept.client.next("error")).message, /has expired/);
  const later = await sign({ sub: "k" }, { expiresIn: 600 });
  // A token where the server quotes what it was sent, cut, in the error and the log line.
  kept.client.send({ type: later });
  assert.equal((await kept.client.next("error")).code, "bad_frame");
  kept.client.send({ type: "refresh", token: later });
  const refreshed = await kept.client.next("refreshed") as Event & { expiresAt: string };
  assert.equal(refreshed.expiresAt, new Date(jose.decodeJwt(later).exp! * 1000).toISOString());

  const closed = await within(left.client.closed, "the unrefreshed connection to close", 5000);
  assert.equal(closed.code, 1008);
  assert.equal(closed.reason, "token expired");
  assert.ok(Date.now() >= exp * 1000 - 50, "not before its exp");
  // Both were due at the same moment: the refreshed one is still there.
  kept.client.send({ type: "message", body: "still here", clientId: "late" });
  assert.equal((await kept.client.next("ack")).clientId, "late");
  await kept.client.close();
});

Deno.test("an event stream opened with a token ends when the token expires", async () => {
  await using server = await jwtServer(HS256, () => Date.now() + CLOCK_SKEW_MS);
  const exp = Math.ceil(Date.now() / 1000) + 2;
  const token = await sign({ sub: "s" }, { exp });
  await using stream = await EventStreamReader.fetch(new URL("/rooms/ops/events", server.url), {
    authorization: `Bearer ${token}`,
  });
  await within(stream.ended, "the stream to end at the token's expiry", 5000);
  assert.ok(Date.now() >= exp * 1000 - 50, "not before its exp");
  const last = stream.parser.events.at(-1)!;
  assert.equal(last.event, "error");
  assert.deepEqual(JSON.parse(last.data), {
    type: "error",
    code: "policy",
    message: "token expired",
  });
});

Deno.test("open mode has no token to refresh; a refresh frame without a token is bad_frame", async () => {
  await using server = await startTestServer();
  const client = new TestClient(server.wsUrl({ userName: "o" }));
  await client.next("welcome");
  client.send({ type: "refresh" });
  assert.match((await client.next("error")).message, /"token" must be the new token/);
  client.send({ type: "refresh", token: "x" });
  const error = await client.next("error");
  assert.equal(error.code, "bad_frame");
  assert.match(error.message, /not opened with a token/);
  await client.close();
});

Deno.test("room patterns: a name matches itself; * matches any run, dots are dots", async () => {
  const config = mergeConfig(defaultConfig, { auth: HS256 }, "test");
  const service = await IdentityService.open({
    config,
    channel: null,
    originAllowed: () => true,
    secureCookies: false,
  });
  const may = (rooms: string[] | null, room: string) =>
    service.mayRead(
      { id: "x", userName: "x", admin: false, via: "jwt", rooms, expiresAt: null },
      room,
    );
  assert.equal(may(null, "anything"), true, "no claim: every room");
  assert.equal(may([], "lobby"), false, "an empty claim: none");
  assert.equal(may(["*"], "lobby"), true);
  assert.equal(may(["team-*"], "team-"), true);
  assert.equal(may(["a.b"], "aXb"), false);
  assert.equal(may(["*-ops"], "eu-ops"), true);
  assert.equal(may(["*-ops"], "eu-ops2"), false);
  assert.equal(service.mayRead(null, "lobby"), false, "nobody reads anything");
  service.close();
});

Deno.test("deno task jwt-token makes a token the server accepts", async () => {
  await using dir = await parleyDir({ auth: HS256 }, "parley-jwt-");
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "--quiet",
      "jwt-token",
      "--config",
      `${dir.path}/config.json`,
      "ci-bot",
      "--name",
      "CI",
      "--rooms",
      "ops, team-*",
      "--minutes",
      "5",
    ],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const token = new TextDecoder().decode(stdout).trim();
  issued.push(token);
  const claims = jose.decodeJwt(token);
  assert.deepEqual(claims.rooms, ["ops", "team-*"]);
  assert.ok(claims.exp! - Date.now() / 1000 <= 300);
  await using server = await jwtServer();
  assert.deepEqual((await me(server, token)).body, { userName: "CI", admin: false, mode: "jwt" });
});

Deno.test("a connection that closes before its token expires leaves no timer behind", async () => {
  // A timer left running would keep the process alive, here for an hour.
  await using dir = await parleyDir({}, "parley-jwt-");
  const script = `
    import { defaultConfig, mergeConfig } from "./chat/config.ts";
    import { startServer } from "./chat/server.ts";
    import { SignJWT } from "npm:jose@6.2.18";
    const auth = ${JSON.stringify(HS256)};
    const raw = { port: 0, logfilePath: "${dir.path}/parley.log", history: { path: ":memory:" }, auth };
    const server = await startServer(mergeConfig(defaultConfig, raw, "test"), { quiet: true });
    const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("s")
      .setIssuer(auth.jwt.issuer).setAudience(auth.jwt.audience).setExpirationTime("1h")
      .sign(new TextEncoder().encode(auth.jwt.secret));
    const socket = new WebSocket(new URL("/chat?token=" + token, server.url.href.replace("http", "ws")), "parley.v1");
    const welcome = await new Promise((resolve) => socket.onmessage = (event) => resolve(event.data));
    socket.close();
    await new Promise((resolve) => socket.onclose = resolve);
    await server.shutdown();
    console.log(JSON.parse(welcome).type);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  try {
    const { code, stdout, stderr } = await within(output, "the process to exit by itself", 15_000);
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.equal(new TextDecoder().decode(stdout).trim(), "welcome");
  } catch (error) {
    child.kill("SIGKILL");
    await output;
    throw error;
  }
});

Deno.test("jwt mode: the rooms routes need a token, and a room outside its claim is a missing room", async () => {
  await using server = await jwtServer();
  const writer = await sign({ sub: "w", name: "Writer" });
  const team = await sign({ sub: "t", name: "Teammate", rooms: ["team-*"] });
  const get = async (path: string, token?: string) => {
    const headers: HeadersInit = token === undefined ? {} : { authorization: `Bearer ${token}` };
    const response = await fetch(new URL(path, server.url), { headers });
    return { status: response.status, text: await response.text() };
  };
  const nobody = await get("/history?room=ops");
  assert.equal(nobody.status, 401);
  assert.match(JSON.parse(nobody.text).error, /send your token as Authorization: Bearer/);
  assert.equal((await get("/rooms")).status, 401);
  assert.equal((await get("/getAllMessages")).status, 401);
  const missing = await get("/history?room=ops", team);
  const posted = await fetch(new URL("/rooms/ops/messages?userName=mallory", server.url), {
    method: "POST",
    headers: { authorization: `Bearer ${writer}` },
    body: "for the writer's eyes",
  });
  assert.equal((await posted.json()).userName, "Writer", "the token's name, not the query's");
  assert.deepEqual(await get("/history?room=ops", team), missing, "as before the room existed");
  assert.equal(JSON.parse((await get("/history?room=ops", writer)).text).messages.length, 1);
  assert.deepEqual(JSON.parse((await get("/rooms", team)).text), []);
  const refused = await fetch(new URL("/rooms/ops/messages", server.url), {
    method: "POST",
    headers: { authorization: `Bearer ${team}` },
    body: "x",
  });
  assert.equal(refused.status, 404);
  await refused.body?.cancel();
});
