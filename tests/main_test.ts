import assert from "node:assert/strict";
import { parleyCommand, TestClient, within } from "./support.ts";

/** Runs main.ts as `deno task start` would, in a temp dir, with a config file of our own. */
async function spawnParley(config: Record<string, unknown>, args: string[] = []) {
  const dir = await Deno.makeTempDir({ prefix: "parley-main-" });
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({ port: 0, logfilePath: `${dir}/parley.log`, ...config }),
  );
  const process = parleyCommand(path, dir, args).spawn();
  return { dir, process };
}

async function failsWith(config: Record<string, unknown>, message: RegExp, args: string[] = []) {
  const { dir, process } = await spawnParley(config, args);
  const { code, stdout, stderr } = await within(process.output(), "parley to exit", 20_000);
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 1, text);
  assert.equal(new TextDecoder().decode(stdout), "");
  assert.match(text, message);
  assert.equal(text.trim().split("\n").length, 1, `one line: ${text}`);
  await Deno.remove(dir, { recursive: true });
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
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/broken.db`, "this is not SQLite ".repeat(500));
    try {
      await failsWith(
        { history: { path: `${dir}/broken.db` } },
        /Cannot open history store ".*broken\.db": file is not a database/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
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
  const { dir, process } = await spawnParley({ history: { path: "data/chat.db" } });
  const lines = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await within(lines.read(), "the URL line", 20_000);
  const url = first.value?.match(/http:\/\/\S+/)?.[0];
  assert.ok(url, `no URL in ${first.value}`);
  const health = await fetch(new URL("/healthz", url));
  assert.deepEqual(await health.json(), { status: "ok" });
  const client = new TestClient(`${url.replace("http", "ws")}chat?userName=ann`);
  await client.next("welcome");
  client.send({ type: "message", body: "keep me", clientId: "k" });
  await client.next("ack");
  process.kill("SIGTERM");
  const closed = await within(client.closed, "the close");
  assert.equal(closed.code, 1001);
  const status = await within(process.status, "parley to exit");
  assert.equal(status.code, 0);
  await lines.cancel();
  await process.stderr.cancel();
  const log = await Deno.readTextFile(`${dir}/parley.log`);
  assert.match(log, /open 127\.0\.0\.1/);
  assert.match(log, /close 127\.0\.0\.1 .*code=1001/);
  assert.doesNotMatch(log, /keep me/);
  assert.ok((await Deno.stat(`${dir}/data/chat.db`)).isFile);
  await Deno.remove(dir, { recursive: true });
});
