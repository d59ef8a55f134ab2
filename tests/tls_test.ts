/**
 * parley over TLS (`tls.certFile`, `tls.keyFile`): the page over HTTPS and the chat over WSS, the
 * printed `https://` URL, `Secure` session cookies, the page's own https origin accepted, TLS in
 * every worker and after the listener is served again, and start-up errors that name the key or
 * the file. The certificate is made with openssl: where it is not installed the tests are skipped
 * with the reason, except in CI, where they fail.
 */

import assert from "node:assert/strict";
import { defaultConfig, mergeConfig } from "../chat/config.ts";
import { startServer } from "../chat/server.ts";
import { chromiumMissing, joinWithForm, launchBrowser, send, waitForSettled } from "./browser.ts";
import {
  eventually,
  hasProgram,
  limitedParley,
  parleyDir,
  ParleyExited,
  ParleyProcess,
  startTestServer,
  tempDir,
  TestClient,
  type TestServer,
  within,
} from "./support.ts";

const installed = await hasProgram("openssl", ["version"]);
const skip = !installed && Deno.env.get("CI") !== "true";
if (skip) console.log("tls_test skipped: openssl is not installed (apt-get install openssl)");

/** A self-signed certificate for localhost and 127.0.0.1: its PEM files and the certificate. */
interface Certificate {
  certFile: string;
  keyFile: string;
  pem: string;
}

/** Makes a {@link Certificate} in `dir` with openssl, its files named after `name`. */
async function makeCertificate(dir: string, name = "server"): Promise<Certificate> {
  if (!installed) throw new Error("openssl is not installed; CI=true, so tls_test fails instead");
  const certFile = `${dir}/${name}.crt`;
  const keyFile = `${dir}/${name}.key`;
  // Deno's TLS client refuses a self-signed certificate that is a CA or has no subjectAltName.
  const { success, stderr } = await new Deno.Command("openssl", {
    args: [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"],
      ...["-addext", "basicConstraints=critical,CA:FALSE"],
      ...["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
      ...["-keyout", keyFile, "-out", certFile],
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`openssl failed: ${new TextDecoder().decode(stderr)}`);
  return { certFile, keyFile, pem: await Deno.readTextFile(certFile) };
}

/** The `tls` section that serves `certificate`. */
function tlsOf({ certFile, keyFile }: Certificate): Record<string, string> {
  return { certFile, keyFile };
}

/** An HTTP client that trusts `certificate`, closed when disposed. */
function trusting(certificate: Certificate): Deno.HttpClient {
  return Deno.createHttpClient({ caCerts: [certificate.pem] });
}

/**
 * A fresh certificate, a server serving it with `overrides`, and a client trusting it; disposing
 * it closes all three.
 */
async function secureServer(overrides: Record<string, unknown> = {}) {
  const dir = await tempDir("parley-tls-");
  const certificate = await makeCertificate(dir.path);
  const server = await startTestServer({ tls: tlsOf(certificate), ...overrides });
  const client = trusting(certificate);
  return {
    certificate,
    server,
    client,
    async [Symbol.asyncDispose]() {
      client.close();
      await server.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

/** `GET path` with `client`; the status and the body's text. */
async function get(client: Deno.HttpClient, base: URL, path: string) {
  const response = await fetch(new URL(path, base), { client });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A `parley.v1` client of `server` over WSS, trusting its certificate through `client`. */
async function joinSecurely(
  server: TestServer,
  client: Deno.HttpClient,
  userName: string,
): Promise<TestClient> {
  const socket = new TestClient(server.wsUrl({ room: "vault", userName }), "parley.v1", {
    client,
  });
  await socket.next("welcome");
  return socket;
}

Deno.test({
  name: "with a certificate and key, the page is served over https and people chat over wss",
  ignore: skip,
  async fn() {
    await using secure = await secureServer();
    const { server, client } = secure;
    assert.match(server.url.href, /^https:\/\/127\.0\.0\.1:\d+\/$/);

    const page = await get(client, server.url, "/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    await assert.rejects(fetch(server.url), "a client that does not trust the certificate");

    await using ann = await joinSecurely(server, client, "ann");
    await using bob = await joinSecurely(server, client, "bob");
    ann.send({ type: "message", body: "over TLS", clientId: "t1" });
    assert.equal((await ann.next("ack")).clientId, "t1");
    const heard = await bob.next("message");
    assert.deepEqual([heard.userName, heard.body], ["ann", "over TLS"]);
  },
});

Deno.test({
  name: "over TLS the origin check accepts the page's own https origin, and no plain http one",
  ignore: skip,
  async fn() {
    await using secure = await secureServer();
    const { server, client } = secure;
    const own = server.url.origin;
    const plain = `http://${server.url.host}`;

    await using fromPage = new TestClient(server.wsUrl({ userName: "ann" }), "parley.v1", {
      client,
      headers: { origin: own },
    });
    await fromPage.next("welcome");
    const refused = new TestClient(server.wsUrl({ userName: "eve" }), "parley.v1", {
      client,
      headers: { origin: plain },
    });
    await assert.rejects(refused.opened, /cannot connect/);
    await refused.closed;
  },
});

Deno.test({
  name: "over TLS a session cookie is Secure, and the page's https origin may act with it",
  ignore: skip,
  async fn() {
    await using secure = await secureServer({ auth: { mode: "accounts" } });
    const { server, client } = secure;
    assert.equal(server.setupLink?.origin, server.url.origin, "the setup link is https too");
    const call = async (path: string, headers: Record<string, string>, body?: unknown) => {
      const response = await fetch(new URL(path, server.url), {
        client,
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body ?? {}),
      });
      await response.body?.cancel();
      return response;
    };
    const account = {
      token: server.setupLink!.searchParams.get("token"),
      userName: "Admin",
      password: "admin-password-1",
    };

    const plain = await call("/api/setup", { origin: `http://${server.url.host}` }, account);
    assert.equal(plain.status, 403, "the plain http origin is another origin");
    const setup = await call("/api/setup", { origin: server.url.origin }, account);
    assert.equal(setup.status, 201);
    const cookie = setup.headers.get("set-cookie")!;
    assert.match(cookie, /^parley_session=[\w-]{43}; .*; HttpOnly; SameSite=Lax; Secure$/);

    const session = cookie.split(";")[0];
    const invite = await call("/api/invites", { origin: server.url.origin, cookie: session });
    assert.equal(invite.status, 201, "the session acts from the page's own origin");
  },
});

const noBrowser = chromiumMissing();
if (noBrowser !== null && !skip) console.log(`tls_test's browser test skipped: ${noBrowser}`);

Deno.test({
  name: "the chat page in Chromium connects over wss to a server with a certificate",
  ignore: skip || (noBrowser !== null && Deno.env.get("CI") !== "true"),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (noBrowser !== null) throw new Error(`${noBrowser}; CI=true, so this test fails instead`);
    await using dir = await tempDir("parley-tls-");
    const certificate = await makeCertificate(dir.path);
    await using server = await startTestServer({ tls: tlsOf(certificate) });
    const browser = await launchBrowser();
    try {
      // The certificate is the test's own: Chromium is told to accept it rather than to trust it.
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      await joinWithForm(page, server, "ann", "vault");
      await send(page, "typed over TLS");
      await waitForSettled(page, ["typed over TLS"]);
      const log = await Deno.readTextFile(server.config.logfilePath);
      assert.match(log, /open 127\.0\.0\.1 room="vault" dialect=parley\.v1/);
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name: "parley prints its https:// URL and serves TLS in every worker",
  ignore: skip,
  async fn() {
    await using dir = await tempDir("parley-tls-");
    const certificate = await makeCertificate(dir.path);
    await using config = await parleyDir({
      tls: tlsOf(certificate),
      workers: 2,
      history: { path: "data/chat.db" },
    });
    await using parley = await ParleyProcess.start(config.path);
    assert.match(parley.banner, /^parley: chat at https:\/\/127\.0\.0\.1:\d+\/ in 2 workers /);
    // Each client is a new connection; the kernel spreads them over the workers by their ports.
    for (let i = 0; i < 12; i++) {
      using client = trusting(certificate);
      const health = await get(client, parley.url, "/healthz");
      assert.equal(health.status, 200, health.text);
    }
    using client = trusting(certificate);
    await using ann = new TestClient(parley.wsUrl({ userName: "ann" }), "parley.v1", { client });
    await ann.next("welcome");
  },
});

Deno.test({
  name: "a TLS listener that fails is served again with the same certificate",
  ignore: skip,
  async fn() {
    await using dir = await tempDir("parley-tls-");
    const certificate = await makeCertificate(dir.path);
    await using config = await parleyDir({ tls: tlsOf(certificate) });
    const log = () => Deno.readTextFile(`${config.path}/parley.log`);
    await using parley = await ParleyProcess.start(config.path, {
      command: limitedParley(`${config.path}/config.json`, 256),
    });
    const port = Number(parley.url.port);
    const sockets: Deno.Conn[] = [];
    try {
      while (sockets.length < 400) {
        sockets.push(
          await within(Deno.connect({ hostname: "127.0.0.1", port }), "a connection", 2000),
        );
      }
    } catch {
      // Refused or left waiting: the listener is out of descriptors.
    }
    for (const socket of sockets) socket.close();
    await eventually(
      async () => /listening again on port/.test(await log()),
      "the listener to be served again",
    );
    using client = trusting(certificate);
    const health = await get(client, parley.url, "/healthz");
    assert.equal(health.status, 200, health.text);
  },
});

/** Runs main.ts with `config` and returns its exit, asserting it failed before printing a URL. */
async function startupExit(config: Record<string, unknown>): Promise<ParleyExited> {
  await using dir = await parleyDir(config, "parley-tls-");
  const exit = await ParleyProcess.start(dir.path).then(
    async (parley) => {
      await parley.stop();
      return assert.fail(`parley started at ${parley.url} instead of failing`);
    },
    (error) => error,
  );
  assert.ok(exit instanceof ParleyExited, String(exit));
  assert.equal(exit.status.code, 1, exit.stderr);
  assert.equal(exit.stdout, "");
  assert.equal(exit.stderr.trim().split("\n").length, 1, `one line: ${exit.stderr}`);
  return exit;
}

/** The start-up error of a server with `tls`, in this process. */
async function startupError(tls: Record<string, string>): Promise<string> {
  await using dir = await tempDir("parley-tls-");
  const config = mergeConfig(defaultConfig, {
    port: 0,
    logfilePath: `${dir.path}/parley.log`,
    history: { path: ":memory:" },
    tls,
  }, "test config");
  const server = await startServer(config, { quiet: true }).catch((error: Error) => error);
  if (!(server instanceof Error)) {
    await server.shutdown();
    return assert.fail(`the server started at ${server.url}`);
  }
  assert.equal(server.name, "StartupError", server.stack);
  return server.message;
}

Deno.test({
  name: "a certificate or key that cannot be used is a start-up error naming the key or the file",
  ignore: skip,
  async fn(t) {
    await using dir = await tempDir("parley-tls-");
    const { certFile, keyFile } = await makeCertificate(dir.path);
    const other = await makeCertificate(dir.path, "other");
    const garbage = `${dir.path}/garbage.pem`;
    await Deno.writeTextFile(garbage, "not a PEM file\n");

    await t.step("a certificate without a key", async () => {
      const exit = await startupExit({ tls: { certFile } });
      assert.match(exit.stderr, /^parley: "tls\.certFile" is set without "tls\.keyFile"/);
    });
    await t.step("a file outside the directory parley runs in", async () => {
      await using outside = await Deno.makeTempDir({ prefix: "parley-tls-" }).then((path) => ({
        path,
        [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
      }));
      const moved = await makeCertificate(outside.path);
      const exit = await startupExit({ tls: tlsOf(moved) });
      assert.ok(exit.stderr.includes(`cannot read "tls.certFile" ${moved.certFile}`), exit.stderr);
      assert.match(exit.stderr, /put it below the directory parley runs in/);
    });
    await t.step("a missing key file", async () => {
      const missing = `${dir.path}/missing.key`;
      const message = await startupError({ certFile, keyFile: missing });
      assert.ok(message.startsWith(`cannot read "tls.keyFile" ${missing}: `), message);
    });
    await t.step("a certificate file that is not PEM", async () => {
      const message = await startupError({ certFile: garbage, keyFile });
      assert.match(message, /^"tls\.certFile" .*garbage\.pem holds no usable PEM certificate/);
    });
    await t.step("a key file that is not PEM", async () => {
      const message = await startupError({ certFile, keyFile: garbage });
      assert.match(message, /^"tls\.keyFile" .*garbage\.pem holds no usable PEM private key/);
    });
    await t.step("the key of another certificate", async () => {
      const message = await startupError({ certFile, keyFile: other.keyFile });
      assert.ok(message.includes(`the key in "tls.keyFile" ${other.keyFile} is not the key`));
      assert.ok(message.includes(`"tls.certFile" ${certFile}`), message);
    });
  },
});
