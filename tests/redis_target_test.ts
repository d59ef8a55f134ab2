/**
 * `redis` as a Redis server or a Redis Cluster (`redis_target.ts`), and the hash slot of a key
 * (`redis_slot.ts`) as Redis computes it.
 */

import assert from "node:assert/strict";
import { redisTarget, RedisTargetError } from "../chat/redis_target.ts";
import { keySlot } from "../chat/redis_slot.ts";

Deno.test("a redis:// URL is one server", () => {
  assert.deepEqual(redisTarget("redis://10.0.0.5:6379"), {
    cluster: false,
    url: "redis://10.0.0.5:6379",
  });
});

Deno.test("a list of URLs is a cluster's nodes, even a list of one", () => {
  assert.deepEqual(redisTarget(["rediss://a:7000"]), { cluster: true, urls: ["rediss://a:7000"] });
});

Deno.test("a redis+cluster:// URL is a cluster's nodes, each with the credentials and scheme", () => {
  assert.deepEqual(redisTarget("rediss+cluster://u:p%40ss@a:7000,10.0.0.2:7001,[::1]:7002"), {
    cluster: true,
    urls: [
      "rediss://u:p%40ss@a:7000",
      "rediss://u:p%40ss@10.0.0.2:7001",
      "rediss://u:p%40ss@[::1]:7002",
    ],
  });
});

Deno.test("a setting that names no Redis says what is wrong with it", () => {
  for (
    const [value, message] of [
      ["10.0.0.5:6379", /is not a redis:\/\/ or rediss:\/\/ URL/],
      ["redis+cluster://a:7000,b", /"b" is not a host:port/],
      ["redis+cluster://a:70000", /"a:70000" is not a host:port/],
      [[], /names no cluster node/],
      [["redis://a:1", "http://b:2"], /"http:\/\/b:2" is not a redis/],
    ] as const
  ) {
    assert.throws(() => redisTarget(value), (error) => {
      assert.ok(error instanceof RedisTargetError);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("a key's slot is CRC16 of its hash tag mod 16384, as Redis computes it", () => {
  // The CRC16/XMODEM check value of "123456789" is 0x31C3.
  assert.equal(keySlot("123456789"), 0x31c3);
  // Keys with the same hash tag share a slot, whatever follows it.
  assert.equal(keySlot("parley:{lobby}:seq"), keySlot("lobby"));
  assert.equal(keySlot("parley:{lobby}:log"), keySlot("parley:{lobby}:client:ann"));
  // Redis's own examples (CLUSTER KEYSLOT foo is 12182): the first {...} is the tag, and an
  // empty one is none, so the whole key is hashed.
  assert.equal(keySlot("foo"), 12182);
  assert.equal(keySlot("foo{bar}{zap}"), keySlot("bar"));
  assert.equal(keySlot("foo{{bar}}zap"), keySlot("{bar"));
  assert.notEqual(keySlot("foo{}{bar}"), keySlot("bar"));
});
