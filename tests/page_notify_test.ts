/**
 * Desktop notifications (static/notify.js): never asked for until the person presses the button;
 * then a mention, or any message in a direct room, notifies while the tab is hidden.
 */
import assert from "node:assert/strict";
import { Notifications, notificationText, NOTIFY_KEY, shouldNotify } from "../static/notify.js";

type Permission = "default" | "granted" | "denied";

/** A browser's Notification API that records what the page did with it. */
function fakeApi(permission: Permission, answer: Permission = "granted") {
  const shown: { title: string; body?: string; tag?: string }[] = [];
  let asked = 0;
  class FakeNotification {
    static permission: Permission = permission;
    static requestPermission(): Promise<Permission> {
      asked += 1;
      FakeNotification.permission = answer;
      return Promise.resolve(answer);
    }
    constructor(title: string, options: { body?: string; tag?: string } = {}) {
      shown.push({ title, ...options });
    }
  }
  return { api: FakeNotification, shown, asked: () => asked };
}

class MemoryStorage {
  values = new Map<string, string>();
  getItem(key: string): string | null {
    return this.values.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.values.set(key, value);
  }
}

const base = { on: true, hidden: true, mine: false, mentioned: false, direct: false };

Deno.test("what notifies: a mention or a direct message, with the tab hidden and them on", () => {
  assert.equal(shouldNotify({ ...base, mentioned: true }), true);
  assert.equal(shouldNotify({ ...base, direct: true }), true);
  assert.equal(shouldNotify(base), false, "any other message in an open room");
  assert.equal(shouldNotify({ ...base, mentioned: true, hidden: false }), false, "tab visible");
  assert.equal(shouldNotify({ ...base, mentioned: true, on: false }), false, "turned off");
  assert.equal(shouldNotify({ ...base, direct: true, mine: true }), false, "my own");
});

Deno.test("the text names who and where; a long body is cut", () => {
  assert.deepEqual(notificationText({ userName: "bob", body: "hi @alice" }, "#ops", true), {
    title: "bob mentioned you in #ops",
    body: "hi @alice",
  });
  assert.equal(notificationText({ userName: "bob", body: "psst" }, "@bob", false).title, "bob");
  const long = notificationText({ userName: "bob", body: "x".repeat(500) }, "#ops", true).body;
  assert.equal(long.length, 200);
  assert.ok(long.endsWith("…"));
});

Deno.test("never asked unprompted: granted already, still off until the button", async () => {
  const fake = fakeApi("granted");
  const storage = new MemoryStorage();
  const notifications = new Notifications(fake.api, storage);
  assert.equal(notifications.state, "off");
  assert.equal(notifications.show({ title: "t", body: "b" }, "x"), false);
  assert.equal(await notifications.turnOn(), "on");
  assert.equal(fake.asked(), 0, "permission was granted: nothing to ask");
  assert.equal(notifications.show({ title: "t", body: "b" }, "x"), true);
  assert.deepEqual(fake.shown, [{ title: "t", body: "b", tag: "x" }]);
  assert.equal(storage.getItem(NOTIFY_KEY), "on");
  // The choice is remembered for the next visit, as long as the browser still grants it.
  assert.equal(new Notifications(fake.api, storage).state, "on");
  notifications.turnOff();
  assert.equal(new Notifications(fake.api, storage).state, "off");
});

Deno.test("the button asks the browser once; a refusal is blocked, no API is unsupported", async () => {
  const asking = fakeApi("default", "granted");
  const notifications = new Notifications(asking.api, null);
  assert.equal(asking.asked(), 0, "constructing asks nothing");
  assert.equal(await notifications.turnOn(), "on");
  assert.equal(asking.asked(), 1);

  const refusing = fakeApi("default", "denied");
  const refused = new Notifications(refusing.api, null);
  assert.equal(await refused.turnOn(), "blocked");
  assert.equal(refused.show({ title: "t", body: "b" }, "x"), false);
  assert.deepEqual(refusing.shown, []);

  const none = new Notifications(null, null);
  assert.equal(none.state, "unsupported");
  assert.equal(await none.turnOn(), "unsupported");
});
