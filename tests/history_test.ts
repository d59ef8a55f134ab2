import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import {
  type AppendResult,
  ChangeRefusedError,
  ClientIdReusedError,
  HistoryError,
  type HistoryOptions,
  type HistoryQuery,
  HistoryStore,
  type NewMessage,
} from "../chat/history.ts";
import { eventually, joinRoom, startTestServer, TestClient, within } from "./support.ts";

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
async function withTempDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "parley-history-" });
  try {
    await fn(dir);
  } finally {
    await Deno.chmod(dir, 0o755);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Opens a store, runs `fn`, and closes the store even if `fn` fails. */
async function withStore(
  options: HistoryOptions,
  fn: (store: HistoryStore) => void | Promise<void>,
): Promise<void> {
  const store = HistoryStore.open(options);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

function msg(room: string, body: string, extra: Partial<NewMessage> = {}): NewMessage {
  return { room, userName: "alice", body, ...extra };
}

function ids(results: { id: number }[]): number[] {
  return results.map((m) => m.id);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Appends `count` messages to `room` one after another, bodies "m1", "m2", .... */
async function fill(store: HistoryStore, room: string, count: number): Promise<void> {
  await Promise.all(range(1, count).map((i) => store.append(msg(room, `m${i}`))));
}

function assertHistoryError(error: unknown, ...fragments: string[]): true {
  assert.ok(error instanceof HistoryError, `expected a HistoryError, got ${error}`);
  for (const fragment of fragments) {
    assert.ok(error.message.includes(fragment), `"${error.message}" should mention ${fragment}`);
  }
  return true;
}

/** Asserts that opening a store with `options` throws a HistoryError mentioning `fragments`. */
function assertRefused(options: HistoryOptions, ...fragments: string[]): void {
  assert.throws(
    () => HistoryStore.open(options),
    (error) => assertHistoryError(error, ...fragments),
  );
}

/** A root user writes through directory permissions, so a read-only directory proves nothing. */
function permissionsAreEnforced(): boolean {
  const dir = Deno.makeTempDirSync({ prefix: "parley-perm-" });
  try {
    Deno.chmodSync(dir, 0o555);
    Deno.writeTextFileSync(join(dir, "probe"), "");
    return false;
  } catch {
    return true;
  } finally {
    Deno.chmodSync(dir, 0o755);
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("ids start at 1 in each room and increase by one with no gap", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    const lobby = await Promise.all([1, 2, 3].map((i) => store.append(msg("lobby", `l${i}`))));
    const ops = await store.append(msg("ops", "o1"));
    const more = await store.append(msg("lobby", "l4"));

    assert.deepEqual(ids(lobby.map((r) => r.message)), [1, 2, 3]);
    assert.equal(ops.message.id, 1);
    assert.equal(more.message.id, 4);
    assert.equal(more.duplicate, false);
    assert.equal(more.message.room, "lobby");
    assert.equal(more.message.userName, "alice");
    assert.equal(more.message.body, "l4");
    assert.equal(new Date(more.message.timestamp).toISOString(), more.message.timestamp);
    assert.equal(store.lastId("lobby"), 4);
    assert.equal(store.firstId("lobby"), 1);
    assert.equal(store.lastId("nowhere"), 0);
    assert.equal(store.firstId("nowhere"), 0);
    assert.deepEqual(store.rooms(), [{ room: "lobby", lastId: 4 }, { room: "ops", lastId: 1 }]);
    assert.equal(store.count(), 5);
  });
});

Deno.test("messages and ids survive a reopen; missing directories are created", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "nested", "deeper", "parley.db");
    await withStore({ path, maxMessagesPerRoom: 100 }, (store) => fill(store, "lobby", 3));

    await withStore({ path, maxMessagesPerRoom: 100 }, async (store) => {
      assert.deepEqual(store.recent("lobby", 10).map((m) => m.body), ["m1", "m2", "m3"]);
      assert.equal((await store.append(msg("lobby", "m4"))).message.id, 4);
    });
  });
});

Deno.test("the file is in WAL mode", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await withStore({ path, maxMessagesPerRoom: 10 }, () => {});
    const db = new DatabaseSync(path);
    try {
      assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
    } finally {
      db.close();
    }
  });
});

Deno.test("retention keeps the newest N per room and ids continue after it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await withStore({ path, maxMessagesPerRoom: 3 }, async (store) => {
      await fill(store, "lobby", 5);
      await store.append(msg("ops", "o1"));

      assert.deepEqual(ids(store.recent("lobby", 10)), [3, 4, 5]);
      assert.equal(store.firstId("lobby"), 3);
      assert.equal(store.lastId("lobby"), 5);
      assert.equal(store.count(), 4);
    });

    // A smaller limit applies at the next write; the last id still comes from the store.
    await withStore({ path, maxMessagesPerRoom: 1 }, async (store) => {
      assert.equal((await store.append(msg("lobby", "m6"))).message.id, 6);
      assert.deepEqual(ids(store.recent("lobby", 10)), [6]);
      assert.equal((await store.append(msg("lobby", "m7"))).message.id, 7);
      assert.deepEqual(ids(store.recent("lobby", 10)), [7]);
      assert.deepEqual(store.rooms(), [{ room: "lobby", lastId: 7 }, { room: "ops", lastId: 1 }]);
    });
  });
});

/** Fills "lobby" with ids 1..10, then asks for each page and checks its ids and `hasMore`. */
async function assertPages(
  cases: [query: HistoryQuery, ids: number[], hasMore: boolean][],
): Promise<void> {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    await fill(store, "lobby", 10);
    for (const [query, expected, hasMore] of cases) {
      const page = store.page("lobby", query);
      assert.deepEqual(
        { ids: ids(page.messages), hasMore: page.hasMore },
        { ids: expected, hasMore },
        JSON.stringify(query),
      );
    }
    assert.deepEqual(store.page("empty", { limit: 5 }), { messages: [], hasMore: false });
  });
}

Deno.test("page() without a cursor gives the newest `limit`, oldest first", async () => {
  await assertPages([
    [{ limit: 4 }, [7, 8, 9, 10], true],
    [{ limit: 10 }, range(1, 10), false],
  ]);
});

Deno.test("page() with `before` walks back to the oldest message", async () => {
  await assertPages([
    [{ limit: 4, before: 7 }, [3, 4, 5, 6], true],
    [{ limit: 4, before: 3 }, [1, 2], false],
    [{ limit: 2, before: 3 }, [1, 2], false],
  ]);
});

Deno.test("page() with `after` walks forward to the newest message", async () => {
  await assertPages([
    [{ limit: 4, after: 0 }, [1, 2, 3, 4], true],
    [{ limit: 4, after: 6 }, [7, 8, 9, 10], false],
    [{ limit: 4, after: 10 }, [], false],
  ]);
});

Deno.test("page() never reads a negative or zero limit as 'everything'", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    await fill(store, "lobby", 3);
    assert.deepEqual(store.page("lobby", { limit: 0 }), { messages: [], hasMore: true });
    assert.deepEqual(store.page("lobby", { limit: -1 }).messages, []);
    assert.deepEqual(store.recent("lobby", -1), []);
  });
});

Deno.test("after() gives messages above an id, oldest first, at most `limit`", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    await fill(store, "lobby", 6);
    await store.append(msg("ops", "elsewhere"));

    assert.deepEqual(ids(store.after("lobby", 2, 3)), [3, 4, 5]);
    assert.deepEqual(ids(store.after("lobby", 4, 100)), [5, 6]);
    assert.deepEqual(store.after("lobby", 6, 100), []);
    assert.deepEqual(store.after("lobby", 0, 2).map((m) => m.body), ["m1", "m2"]);
  });
});

Deno.test("recent() gives the newest `limit`, oldest first", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    await fill(store, "lobby", 6);
    assert.deepEqual(ids(store.recent("lobby", 2)), [5, 6]);
    assert.deepEqual(store.recent("nowhere", 2), []);
  });
});

Deno.test("a clientId repeated within one batch is stored once", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    const [first, other, again] = await Promise.all([
      store.append(msg("lobby", "hi", { clientId: "c-1" })),
      store.append(msg("lobby", "yo", { clientId: "c-2" })),
      store.append(msg("lobby", "hi", { clientId: "c-1" })),
    ]);

    assert.equal(first.duplicate, false);
    assert.equal(other.message.id, 2);
    assert.deepEqual(again, { message: first.message, duplicate: true });
    assert.equal(store.count(), 2);
  });
});

Deno.test("a clientId repeated in a later batch returns the original message", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    const first = await store.append(msg("lobby", "hi", { clientId: "c-1" }));
    const again = await store.append(msg("lobby", "hi", { clientId: "c-1" }));

    assert.deepEqual(again, { message: first.message, duplicate: true });
    assert.equal(store.lastId("lobby"), 1);
  });
});

Deno.test("a clientId that comes again with another body is refused, and nothing is stored", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    const [first, sameBatch] = await Promise.allSettled([
      store.append(msg("lobby", "hi", { clientId: "c-1" })),
      store.append(msg("lobby", "pre-empted?", { clientId: "c-1" })),
    ]);
    assert.equal(first.status, "fulfilled");
    assert.equal(sameBatch.status, "rejected");
    assert.ok(sameBatch.reason instanceof ClientIdReusedError);
    assert.equal(sameBatch.reason.clientId, "c-1");
    assert.equal(
      sameBatch.reason.message,
      'clientId "c-1" was already used for a different message; use a new clientId for each message',
    );
    // In a later batch too; the same body is still the same message.
    await assert.rejects(
      store.append(msg("lobby", "hi, edited", { clientId: "c-1" })),
      ClientIdReusedError,
    );
    assert.deepEqual(await store.append(msg("lobby", "hi", { clientId: "c-1" })), {
      message: first.value.message,
      duplicate: true,
    });
    assert.deepEqual(store.recent("lobby", 10).map((m) => m.body), ["hi"]);
    assert.equal(store.lastId("lobby"), 1);
  });
});

Deno.test("a clientId is scoped to its room and user", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    const results = await Promise.all([
      store.append(msg("lobby", "a", { clientId: "c-1" })),
      store.append(msg("ops", "b", { clientId: "c-1" })),
      store.append(msg("lobby", "c", { clientId: "c-1", userName: "bob" })),
      store.append(msg("lobby", "d")),
      store.append(msg("lobby", "e")),
    ]);
    assert.deepEqual(results.map((r) => r.duplicate), [false, false, false, false, false]);
    assert.equal(store.count(), 5);
  });
});

Deno.test("a clientId resent after a restart returns the original message", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    let first: AppendResult | undefined;
    await withStore({ path, maxMessagesPerRoom: 100 }, async (store) => {
      first = await store.append(msg("lobby", "hi", { clientId: "c-1" }));
    });
    await withStore({ path, maxMessagesPerRoom: 100 }, async (store) => {
      const again = await store.append(msg("lobby", "hi", { clientId: "c-1" }));
      assert.deepEqual(again, { message: first?.message, duplicate: true });
      assert.equal(store.count(), 1);
    });
  });
});

Deno.test("a message's clientId is kept: appends, reads and recorded messages carry it", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    const tagged = await store.append(msg("lobby", "tagged", { clientId: "c-1" }));
    const plain = await store.append(msg("lobby", "plain"));
    assert.equal(tagged.message.clientId, "c-1");
    assert.equal("clientId" in plain.message, false);
    const timestamp = new Date().toISOString();
    store.record([
      { id: 3, room: "lobby", userName: "bob", body: "relayed", timestamp, clientId: "b-1" },
      // The id's owner (Redis) forgot a clientId this store still has: the message is kept.
      { id: 4, room: "lobby", userName: "alice", body: "reused", timestamp, clientId: "c-1" },
    ]);
    const read = store.recent("lobby", 10);
    assert.deepEqual(read.map((m) => [m.body, m.clientId]), [
      ["tagged", "c-1"],
      ["plain", undefined],
      ["relayed", "b-1"],
      ["reused", undefined],
    ]);
    assert.deepEqual(read.slice(0, 2), [tagged.message, plain.message]);
    assert.deepEqual(store.after("lobby", 2, 1)[0].clientId, "b-1");
    assert.deepEqual(store.page("lobby", { limit: 1, before: 2 }).messages, [tagged.message]);
  });
});

Deno.test("500 appends issued in one tick resolve in issue order with ids 1..500", async () => {
  await withTempDir(async (dir) => {
    await withStore({ path: join(dir, "parley.db"), maxMessagesPerRoom: 1000 }, async (store) => {
      const resolved: number[] = [];
      const results = await Promise.all(
        range(1, 500).map((i) =>
          store.append(msg("lobby", `m${i}`)).then((r) => {
            resolved.push(r.message.id);
            return r;
          })
        ),
      );

      assert.deepEqual(results.map((r) => r.message.body), range(1, 500).map((i) => `m${i}`));
      assert.deepEqual(ids(results.map((r) => r.message)), range(1, 500));
      assert.deepEqual(resolved, range(1, 500));
      // The store stamps a whole transaction with one clock reading.
      assert.equal(new Set(results.map((r) => r.message.timestamp)).size, 1);
    });
  });
});

Deno.test("flush() resolves once every append issued so far is committed", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    const store = HistoryStore.open({ path, maxMessagesPerRoom: 100 });
    const pending = [store.append(msg("lobby", "a")), store.append(msg("lobby", "b"))];
    await store.flush();

    const reader = new DatabaseSync(path);
    try {
      assert.equal(reader.prepare("SELECT count(*) AS n FROM messages").get()?.n, 2);
    } finally {
      reader.close();
    }
    await Promise.all(pending);
    await store.close();
  });
});

Deno.test("close() writes pending appends; later appends are rejected", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    const store = HistoryStore.open({ path, maxMessagesPerRoom: 100 });
    const pending = store.append(msg("lobby", "last words"));
    await store.close();
    assert.equal((await pending).message.id, 1);
    await assert.rejects(store.append(msg("lobby", "too late")), HistoryError);

    await withStore({ path, maxMessagesPerRoom: 100 }, (reopened) => {
      assert.equal(reopened.lastId("lobby"), 1);
    });
  });
});

Deno.test("two stores on one file assign ids without gaps or reuse", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await withStore({ path, maxMessagesPerRoom: 1000 }, async (a) => {
      await withStore({ path, maxMessagesPerRoom: 1000 }, async (b) => {
        const got: number[] = [];
        for (let i = 0; i < 10; i++) {
          const store = i % 2 === 0 ? a : b;
          const batch = await Promise.all([
            store.append(msg("lobby", `${i}a`)),
            store.append(msg("lobby", `${i}b`)),
          ]);
          got.push(...ids(batch.map((r) => r.message)));
        }
        assert.deepEqual(got, range(1, 20));
        assert.equal(a.lastId("lobby"), 20);
        assert.deepEqual(ids(b.recent("lobby", 100)), range(1, 20));
      });
    });
  });
});

Deno.test("a corrupt file is refused with a HistoryError naming the path", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    const noise = new Uint8Array(8192);
    crypto.getRandomValues(noise);
    await Deno.writeFile(path, noise);

    assertRefused({ path, maxMessagesPerRoom: 100 }, path, "not a database");
  });
});

Deno.test("a SQLite file with a different schema is refused", async () => {
  await withTempDir((dir) => {
    const path = join(dir, "other.db");
    const other = new DatabaseSync(path);
    other.exec("CREATE TABLE messages (text TEXT)");
    other.close();

    assertRefused({ path, maxMessagesPerRoom: 100 }, path);
  });
});

Deno.test("a directory as the path is refused with a HistoryError", async () => {
  await withTempDir((dir) => {
    assertRefused({ path: dir, maxMessagesPerRoom: 100 }, dir, "unable to open");
  });
});

Deno.test("a path below a regular file is refused with a HistoryError", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "");
    const path = join(file, "parley.db");

    assertRefused({ path, maxMessagesPerRoom: 100 }, path);
  });
});

Deno.test({
  name: "a directory without write permission is refused with a HistoryError",
  ignore: !permissionsAreEnforced(),
  fn: async () => {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o555);
      const path = join(dir, "parley.db");

      assertRefused({ path, maxMessagesPerRoom: 100 }, path);
    });
  },
});

Deno.test("a file locked by another connection is refused within the busy timeout", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await withStore({ path, maxMessagesPerRoom: 100 }, () => {});
    const other = new DatabaseSync(path);
    other.exec("BEGIN EXCLUSIVE");
    try {
      const started = performance.now();
      assertRefused({ path, maxMessagesPerRoom: 100, busyTimeoutMs: 50 }, path, "locked");
      assert.ok(performance.now() - started < 2000);
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
  });
});

Deno.test("a failed write rejects its appends, and the store recovers", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await withStore({ path, maxMessagesPerRoom: 100, busyTimeoutMs: 50 }, async (store) => {
      await store.append(msg("lobby", "before"));
      const other = new DatabaseSync(path);
      other.exec("BEGIN EXCLUSIVE");
      try {
        const results = await Promise.allSettled([
          store.append(msg("lobby", "lost 1")),
          store.append(msg("lobby", "lost 2", { clientId: "c-1" })),
        ]);
        for (const result of results) {
          assert.equal(result.status, "rejected");
          assertHistoryError(result.reason, path, "locked");
        }
      } finally {
        other.exec("ROLLBACK");
        other.close();
      }

      const retried = await store.append(msg("lobby", "lost 2", { clientId: "c-1" }));
      assert.deepEqual([retried.message.id, retried.duplicate], [2, false]);
      assert.deepEqual(store.recent("lobby", 10).map((m) => m.body), ["before", "lost 2"]);
    });
  });
});

Deno.test("maxMessagesPerRoom below 1 is refused", () => {
  assertRefused({ path: ":memory:", maxMessagesPerRoom: 0 }, "maxMessagesPerRoom");
});

// Faults found while running: a damaged page, a busy file, a file replaced under the server.

/**
 * Writes a history file with room "aaa" (3 short messages) and room "bad" (2,000 of 600 bytes),
 * then damages the b-tree page holding "bad"'s message 1,990 (among the newest a join or a page
 * of /history reads), as a failing disk would: its page-type byte is one no page has. SQLite
 * opens the file and reads "aaa" as before, and fails only when it reaches that page.
 */
async function damagedFile(path: string): Promise<void> {
  await withStore({ path, maxMessagesPerRoom: 10_000 }, async (store) => {
    await fill(store, "aaa", 3);
    const filler = "f".repeat(600);
    await Promise.all(
      range(1, 2000).map((i) =>
        store.append(msg("bad", `${i === 1990 ? "MARKER" : i}-${filler}`, { userName: "bob" }))
      ),
    );
  });
  const db = new DatabaseSync(path);
  const pageSize = db.prepare("PRAGMA page_size").get()?.page_size as number;
  db.close();
  const bytes = await Deno.readFile(path);
  const at = new TextDecoder("latin1").decode(bytes).indexOf("MARKER-");
  const page = Math.floor(at / pageSize) * pageSize;
  assert.ok(at > 0 && bytes[page] === 0x0a, "the marker is on a leaf page of an index b-tree");
  bytes[page] = 0xff;
  await Deno.writeFile(path, bytes);
}

Deno.test("a damaged page is a HistoryError naming the file and the cause; the store is failing, other rooms read on", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await damagedFile(path);
    await withStore({ path, maxMessagesPerRoom: 10_000 }, async (store) => {
      assert.equal(store.failing, false);
      assert.deepEqual(store.recent("aaa", 10).map((m) => m.body), ["m1", "m2", "m3"]);
      for (const read of [() => store.recent("bad", 100), () => store.page("bad", { limit: 50 })]) {
        assert.throws(read, (error) => assertHistoryError(error, path, "malformed", "damaged"));
      }
      assert.equal(store.failing, true);
      assertHistoryError(store.failure, path, "malformed");
      // Damage lasts: reads and writes elsewhere still work, and the store is still failing.
      assert.equal((await store.append(msg("aaa", "m4"))).message.id, 4);
      assert.deepEqual(ids(store.after("aaa", 2, 10)), [3, 4]);
      assert.equal(store.failing, true);
    });
  });
});

Deno.test("a busy file makes the store failing until a write commits", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await withStore({ path, maxMessagesPerRoom: 100, busyTimeoutMs: 50 }, async (store) => {
      const other = new DatabaseSync(path);
      other.exec("BEGIN EXCLUSIVE");
      try {
        await assert.rejects(store.append(msg("lobby", "lost")), HistoryError);
      } finally {
        other.exec("ROLLBACK");
        other.close();
      }
      assert.equal(store.failing, true);
      assertHistoryError(store.failure, path, "locked");
      await store.append(msg("lobby", "through"));
      assert.equal(store.failing, false);
      assert.equal(store.failure, null);
    });
  });
});

Deno.test("a history file deleted or replaced under the store makes it failing, naming the file", async () => {
  await withTempDir(async (dir) => {
    for (const change of ["deleted", "replaced"] as const) {
      const path = join(dir, `${change}.db`);
      await withStore({ path, maxMessagesPerRoom: 100 }, async (store) => {
        await store.append(msg("lobby", "before"));
        assert.equal(store.failing, false);
        if (change === "deleted") {
          await Deno.remove(path);
        } else {
          await Deno.copyFile(path, `${path}.copy`);
          await Deno.rename(`${path}.copy`, path);
        }
        assert.equal(store.failing, true, change);
        assertHistoryError(store.failure, path, change === "deleted" ? "deleted" : "replaced");
        // It still works on the file it has: what it lacks is a future at that path.
        await store.append(msg("lobby", "after"));
        assert.equal(store.failing, true, change);
      });
    }
  });
});

Deno.test("a store in memory or closed is not failing for its file", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 10 }, (store) => {
    assert.equal(store.failing, false);
  });
  await withTempDir(async (dir) => {
    const store = HistoryStore.open({ path: join(dir, "parley.db"), maxMessagesPerRoom: 10 });
    await store.close();
    await Deno.remove(join(dir, "parley.db"));
    assert.throws(() => store.recent("lobby", 1), (error) => assertHistoryError(error, "closed"));
    assert.equal(store.failing, false);
  });
});

Deno.test("a damaged page found at a join: that client gets 1011, /history 503 naming the file, /healthz failing; the rest chat on", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await damagedFile(path);
    await using server = await startTestServer({ history: { path } });
    const healthz = () => fetch(new URL("/healthz", server.url));
    assert.equal((await healthz()).status, 200);
    const { client: ann } = await joinRoom(server, { room: "aaa", userName: "ann" });
    const { client: bob } = await joinRoom(server, { room: "aaa", userName: "bob" });
    const victim = new TestClient(server.wsUrl({ room: "bad", userName: "eve" }));
    const closed = await within(victim.closed, "the close of the damaged room's client");
    assert.equal(closed.code, 1011);
    assert.match(closed.reason, /history store failed/);
    assert.equal(victim.events.length, 0, "no welcome before the close");

    const page = await fetch(new URL("/history?room=bad", server.url));
    assert.equal(page.status, 503);
    const { error } = await page.json();
    assert.ok(error.includes(path) && /malformed/.test(error), error);
    const health = await healthz();
    assert.equal(health.status, 503);
    const body = await health.json();
    assert.equal(body.store, "failing");
    assert.ok(body.storeError.includes(path), body.storeError);

    ann.send({ type: "message", body: "still chatting", clientId: "1" });
    assert.equal((await bob.waitFor("message", 4))[3].body, "still chatting");
    bob.send({ type: "message", body: "so it seems", clientId: "2" });
    assert.equal((await ann.waitFor("message", 5))[4].body, "so it seems");
    const good = await fetch(new URL("/history?room=aaa", server.url));
    assert.equal(good.status, 200);
    assert.equal((await good.json()).messages.length, 5);
    const log = await Deno.readTextFile(`${server.dir}/parley.log`);
    assert.match(log, /room="bad": the history store failed, closing with 1011: .*malformed/);
    assert.match(log, /healthz: the history store is failing/);
    await Promise.all([ann.close(), bob.close()]);
  });
});

Deno.test("count follows appends, trims and recorded messages, and another store's writes to the file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "parley.db");
    await withStore({ path, maxMessagesPerRoom: 3 }, async (store) => {
      await fill(store, "lobby", 2);
      assert.equal(store.count(), 2);
      await fill(store, "lobby", 4);
      assert.equal(store.count(), 3, "trimmed to the retention");
      store.record([{ id: 1, room: "ops", userName: "bob", body: "x", timestamp: "t" }]);
      store.record([{ id: 1, room: "ops", userName: "bob", body: "x", timestamp: "t" }]);
      assert.equal(store.count(), 4, "a message recorded twice counts once");
      await withStore({ path, maxMessagesPerRoom: 3 }, async (other) => {
        assert.equal(other.count(), 4, "counted at open");
        await fill(other, "dev", 2);
        assert.equal(other.count(), 6);
        await eventually(() => store.count() === 6, "another store's writes counted", 5000, 10);
      });
    });
  });
});

Deno.test("a version 1 file is migrated in place: its messages stay, and they may be changed", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "v1.db");
    const old = new DatabaseSync(path);
    old.exec(`
      CREATE TABLE messages (room TEXT NOT NULL, id INTEGER NOT NULL, user_name TEXT NOT NULL,
        body TEXT NOT NULL, timestamp TEXT NOT NULL, client_id TEXT, PRIMARY KEY (room, id))
        WITHOUT ROWID;
      CREATE UNIQUE INDEX messages_client ON messages (room, user_name, client_id)
        WHERE client_id IS NOT NULL;
      CREATE TABLE rooms (room TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO messages VALUES ('lobby', 4, 'ann', 'four', 't4', 'c4'), ('lobby', 5, 'bob', 'five', 't5', NULL);
      INSERT INTO rooms VALUES ('lobby', 5);
      PRAGMA user_version = 1;
    `);
    old.close();
    await withStore({ path, maxMessagesPerRoom: 2 }, async (store) => {
      assert.deepEqual(store.recent("lobby", 10).map((m) => [m.id, m.body]), [[4, "four"], [
        5,
        "five",
      ]]);
      assert.equal(store.count(), 2);
      const edit = await store.change({
        type: "edit",
        room: "lobby",
        messageId: 4,
        userName: "ann",
        author: null,
        body: "four, edited",
      });
      assert.equal(edit.id, 6);
      // Retention counts the migrated messages: one more message drops the oldest.
      await store.append(msg("lobby", "seven"));
      assert.deepEqual(store.recent("lobby", 10).map((m) => m.id), [5, 7]);
      assert.deepEqual(store.byClientId("lobby", "ann", "c4"), null);
    });
    const reopened = new DatabaseSync(path);
    assert.equal(reopened.prepare("PRAGMA user_version").get()?.user_version, 2);
    reopened.close();
  });
});

Deno.test("retention counts messages; the changes to a message that goes go with it", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 2 }, async (store) => {
    const who = { room: "r", userName: "alice", author: null };
    await fill(store, "r", 2);
    await store.change({ ...who, type: "reaction", messageId: 1, emoji: "👍", on: true });
    await store.change({ ...who, type: "edit", messageId: 2, body: "m2, edited" });
    assert.equal(store.count(), 2);
    await store.append(msg("r", "m5"));
    // Message 1 went, and its reaction (id 3) with it; the edit of message 2 stays.
    assert.deepEqual(store.log("r", 0, 10, 10).map((e) => [e.type, e.id]), [
      ["message", 2],
      ["edit", 4],
      ["message", 5],
    ]);
    assert.equal(store.firstId("r"), 2);
    assert.equal(store.count(), 2);
    assert.equal(store.lastId("r"), 5);
  });
});

Deno.test("a change is judged in its write: not found, not the author's, too many reactions, no-op", async () => {
  await withStore({ path: ":memory:", maxMessagesPerRoom: 100 }, async (store) => {
    await store.append(msg("r", "hi", { author: "account:1" }));
    const base = { room: "r", messageId: 1, userName: "alice" };
    // Same name, another account: not the author.
    await assert.rejects(
      store.change({ ...base, type: "edit", body: "x", author: "account:2" }),
      (error) => error instanceof ChangeRefusedError && error.code === "forbidden",
    );
    await assert.rejects(
      store.change({ ...base, type: "delete", author: "account:2" }),
      (error) => error instanceof ChangeRefusedError && error.code === "forbidden",
    );
    const emoji = [..."😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙🥲😚🙂"];
    for (const e of emoji) {
      await store.change({ ...base, type: "reaction", emoji: e, on: true, author: "account:2" });
    }
    await assert.rejects(
      store.change({ ...base, type: "reaction", emoji: "🤗", on: true, author: "account:2" }),
      (error) => error instanceof ChangeRefusedError && error.code === "too_large",
    );
    // One already there may still be added to by someone else; the same state is no change.
    const more = { ...base, type: "reaction" as const, emoji: "😀", on: true, userName: "bob" };
    assert.equal((await store.change({ ...more, author: "account:3" })).event?.type, "reaction");
    assert.deepEqual(await store.change({ ...more, author: "account:3" }), {
      event: null,
      id: 1,
      duplicate: false,
    });
    assert.deepEqual(store.recent("r", 1)[0].reactions?.["😀"], ["alice", "bob"]);
    // An admin deletes anyone's; after that the message is not found.
    await store.change({ ...base, type: "delete", author: "account:9", admin: true });
    await assert.rejects(
      store.change({ ...base, type: "edit", body: "x", author: "account:1" }),
      (error) => error instanceof ChangeRefusedError && error.code === "not_found",
    );
    assert.deepEqual(store.recent("r", 10), []);
  });
});

Deno.test("/history?around=ID: the page around a message, half before and half after, itself included", async () => {
  await using server = await startTestServer({ limits: { messagesPerSecond: 1e6, burst: 1e6 } });
  for (let i = 1; i <= 30; i++) {
    const response = await fetch(new URL("/rooms/big/messages", server.url), {
      method: "POST",
      body: `m${i}`,
    });
    assert.equal(response.status, 201);
    await response.body?.cancel();
  }
  const cases: [query: string, ids: number[], hasMore: boolean, hasNewer: boolean][] = [
    ["around=15&limit=10", range(11, 20), true, true],
    ["around=15&limit=9", range(11, 19), true, true],
    ["around=15&limit=1", [15], true, true],
    ["around=2&limit=10", range(1, 10), false, true],
    ["around=29&limit=10", range(21, 30), true, false],
    ["around=15&limit=100", range(1, 30), false, false],
    ["around=99&limit=4", range(27, 30), true, false],
  ];
  for (const [query, ids, hasMore, hasNewer] of cases) {
    const response = await fetch(new URL(`/history?room=big&${query}`, server.url));
    assert.equal(response.status, 200, query);
    const page = await response.json();
    assert.deepEqual(
      {
        room: page.room,
        ids: page.messages.map((m: { id: number }) => m.id),
        hasMore: page.hasMore,
        hasNewer: page.hasNewer,
      },
      { room: "big", ids, hasMore, hasNewer },
      query,
    );
  }
  for (const bad of ["around=0", "around=x", "around=5&before=9", "around=5&after=1"]) {
    const response = await fetch(new URL(`/history?room=big&${bad}`, server.url));
    assert.equal(response.status, 400, bad);
    assert.ok((await response.json()).error, bad);
  }
});
