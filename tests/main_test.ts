import assert from "node:assert/strict";
import { parleyDir, ParleyExited, ParleyProcess, tempDir, TestClient, within } from "./support.ts";

/**
 * Runs main.ts in a temp dir with `config` and `args`, and asserts it exits with code 1 before
 * printing a URL, saying one line on stderr that matches `message`.
 */
async function failsWith(config: Record<string, unknown>, message: RegExp, args: string[] = []) {
  await using dir = await parleyDir(config, "parley-main-");
  const exit = await ParleyProcess.start(dir.path, { args }).then(
    async (parley) => {
      await parley.stop();
      return assert.fail(`parley started at ${parley.url} instead of failing`);
    },
    (error) => error,
  );
  assert.ok(exit instanceof ParleyExited, String(exit));
  assert.equal(exit.status.code, 1, exit.stderr);
  assert.equal(exit.stdout, "");
  assert.match(exit.stderr, message);
  assert.equal(exit.stderr.trim().split("\n").length, 1, `one line: ${exit.stderr}`);
}

Deno.test("start-up errors are one sentence on stderr and exit code 1", async (t) => {
  await t.step("an unknown key", () => failsWith({ prot: 1 }, /^parley: .*unknown key "prot"/));
  await t.step(
    "a wrong type",
    () => failsWith({ limits: { burst: "x" } }, /"limits\.burst" must be/),
  );
  await t.step(
    "an unknown flag",
    () => failsWith({}, /unknown argument "--verbose"/, ["--verbose"]),
  );
  await t.step(
    "a host that does not resolve",
    () =>
      failsWith({ hostName: "no-such-host.invalid" }, /cannot listen on no-such-host\.invalid:0/),
  );
  await t.step("a port in use", async () => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      await failsWith({ port: taken.addr.port }, /the port is in use/);
    } finally {
      taken.close();
    }
  });
  await t.step("a history file that is not a database", async () => {
    await using dir = await tempDir();
    await Deno.writeTextFile(`${dir.path}/broken.db`, "this is not SQLite ".repeat(500));
    await failsWith(
      { history: { path: `${dir.path}/broken.db` } },
      /Cannot open history store ".*broken\.db": file is not a database/,
    );
  });
  await t.step("a Redis that cannot be reached", async () => {
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = closed.addr.port;
    closed.close();
    await failsWith({ redis: `redis://127.0.0.1:${port}` }, /cannot reach Redis at redis:\/\//);
  });
  await t.step(
    "an unwritable log file",
    () =>
      failsWith(
        { logfilePath: "/proc/parley.log" },
        /cannot open the log file \/proc\/parley\.log/,
      ),
  );
});

Deno.test("parley prints its URL, serves, and on SIGTERM closes sockets with 1001 and exits 0", async () => {
  await using dir = await parleyDir({ history: { path: "data/chat.db" } }, "parley-main-");
  await using parley = await ParleyProcess.start(dir.path);
  assert.match(parley.url.href, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const health = await fetch(new URL("/healthz", parley.url));
  assert.deepEqual(await health.json(), { status: "ok", store: "ok", redis: null, workers: 1 });
  await using client = new TestClient(parley.wsUrl({ userName: "ann" }));
  await client.next("welcome");
  client.send({ type: "message", body: "keep me", clientId: "k" });
  await client.next("ack");
  parley.kill("SIGTERM");
  const closed = await within(client.closed, "the close");
  assert.equal(closed.code, 1001);
  const status = await within(parley.exited, "parley to exit");
  assert.equal(status.code, 0);
  const log = await Deno.readTextFile(`${dir.path}/parley.log`);
  assert.match(log, /open 127\.0\.0\.1/);
  assert.match(log, /close 127\.0\.0\.1 .*code=1001/);
  assert.doesNotMatch(log, /keep me/);
  assert.ok((await Deno.stat(`${dir.path}/data/chat.db`)).isFile);
});
