import assert from "node:assert/strict";
import { ConfigError, defaultConfig, loadConfig, mergeConfig, parseFlags } from "../chat/config.ts";

const noEnv = () => undefined;

async function withConfigFile(json: unknown, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(path, typeof json === "string" ? json : JSON.stringify(json));
  try {
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("config.json in the repository holds exactly the defaults", async () => {
  const file = JSON.parse(await Deno.readTextFile(new URL("../config.json", import.meta.url)));
  assert.deepEqual(mergeConfig(defaultConfig, file, "config.json"), defaultConfig);
  assert.deepEqual(file, defaultConfig);
});

Deno.test("a key left out takes its default, and sections merge key by key", () => {
  const config = mergeConfig(defaultConfig, { port: 9000, limits: { burst: 5 } }, "x");
  assert.equal(config.port, 9000);
  assert.equal(config.limits.burst, 5);
  assert.equal(config.limits.messagesPerSecond, defaultConfig.limits.messagesPerSecond);
  assert.equal(config.history.path, "data/parley.db");
});

Deno.test("the Go server's config.json still works", () => {
  const go = { hostName: "0.0.0.0", port: 8000, logfilePath: "chat.log" };
  assert.equal(mergeConfig(defaultConfig, go, "x").hostName, "0.0.0.0");
});

Deno.test("redis may name a cluster: a list of node URLs, or a redis+cluster:// URL", () => {
  const list = ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"];
  assert.deepEqual(mergeConfig(defaultConfig, { redis: list }, "x").redis, list);
  const url = "redis+cluster://10.0.0.1:6379,10.0.0.2:6379";
  assert.equal(mergeConfig(defaultConfig, { redis: url }, "x").redis, url);
});

const badConfigs: [string, unknown, RegExp][] = [
  ["an unknown key", { prot: 1 }, /unknown key "prot"/],
  ["an unknown nested key", { limits: { burts: 1 } }, /unknown key "limits\.burts"/],
  ["a port of the wrong type", { port: "80" }, /"port" must be a whole number from 0 to 65535/],
  ["a port out of range", { port: 70000 }, /"port"/],
  ["a section that is not an object", { history: 5 }, /"history" must be an object/],
  ["a negative limit", { limits: { maxMessageBytes: -1 } }, /"limits\.maxMessageBytes"/],
  ["workers that are not a number", { workers: "many" }, /"workers"/],
  ["a bad origin", { allowedOrigins: ["example.com"] }, /"allowedOrigins"/],
  ["a host with a scheme", { allowedHosts: ["https://chat.example"] }, /"allowedHosts"/],
  ["a replay limit too large", { history: { maxReplay: 1e9 } }, /"history\.maxReplay"/],
  ["a redis URL without scheme", { redis: "localhost:6379" }, /"redis"/],
  ["an empty list of cluster nodes", { redis: [] }, /"redis" must be .*names no cluster node/],
  ["a cluster node that is no URL", { redis: ["redis://a:1", 5] }, /"redis" must be .*5/],
  ["a cluster URL without ports", { redis: "redis+cluster://a,b" }, /"redis".*"a" is not/],
  ["a redis setting of another type", { redis: 6379 }, /"redis" must be/],
  ["a JSON array", [], /must hold a JSON object/],
];

for (const [what, raw, message] of badConfigs) {
  Deno.test(`a config with ${what} is refused with a message naming the key`, () => {
    assert.throws(() => mergeConfig(defaultConfig, raw, "config.json"), (error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, message);
      return true;
    });
  });
}

Deno.test("PORT overrides the file and --port overrides PORT", async () => {
  await withConfigFile({ port: 1111 }, async (path) => {
    assert.equal((await loadConfig(["--config", path], noEnv)).port, 1111);
    const env = (name: string) => name === "PORT" ? "2222" : undefined;
    assert.equal((await loadConfig(["--config", path], env)).port, 2222);
    assert.equal((await loadConfig(["--config", path, "--port=3333"], env)).port, 3333);
  });
});

Deno.test("a file that is not JSON names the file", async () => {
  await withConfigFile("{ port: 1 }", async (path) => {
    await assert.rejects(loadConfig(["--config", path], noEnv), (error: Error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /is not valid JSON/);
      assert.ok(error.message.includes(path));
      return true;
    });
  });
});

Deno.test("a missing --config file is an error, and a bad PORT names PORT", async () => {
  await assert.rejects(loadConfig(["--config", "/nonexistent/parley.json"], noEnv), ConfigError);
  await assert.rejects(
    loadConfig(["--config", "/nonexistent/parley.json", "--port", "x"], noEnv),
    /--port must be a port number/,
  );
  await withConfigFile({}, async (path) => {
    await assert.rejects(
      loadConfig(["--config", path], (n) => n === "PORT" ? "eighty" : undefined),
      /PORT must be a port number/,
    );
  });
});

Deno.test("unknown flags are refused with the usage line", () => {
  assert.throws(() => parseFlags(["--prot", "1"]), /unknown argument "--prot".*usage/);
  assert.throws(() => parseFlags(["--port"]), /--port needs a value/);
  assert.throws(() => parseFlags(["--host="]), /"--host" must be a non-empty string, not ""/);
  assert.deepEqual(parseFlags(["--host", "::1", "--port", "0"]), { hostName: "::1", port: 0 });
});
