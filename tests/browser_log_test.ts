/**
 * The room log in Chromium against a real parley server: editing, deleting and reacting from the
 * message's actions, "… is typing", a mention that notifies, the room list marking a room with
 * unread messages, and a search result opened in its room. */
/// <reference lib="dom" />

import assert from "node:assert/strict";
import type { Locator, Page } from "npm:playwright-core@1.65.1";
import { postMessage, type TestServer } from "./support.ts";
import {
  chromiumMissing,
  createAccount,
  launchBrowser,
  notificationsOf,
  personPage,
  recordNotifications,
  send,
  setHidden,
  UI_TIMEOUT_MS,
  waitForSettled,
  waitForStatus,
  waitForUsers,
  withServer,
} from "./browser.ts";

const missing = chromiumMissing();
const inCI = Deno.env.get("CI") === "true";

/** The confirmed message showing `body` (exactly) in `page`. */
function messageWith(page: Page, body: string): Locator {
  const exactly = new RegExp(`^${body.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  return page.locator("#messages .message[data-id]").filter({
    has: page.locator(".body", { hasText: exactly }),
  });
}

/** Hovers over a message so its actions show, and returns the message. */
async function hoverOver(page: Page, body: string): Promise<Locator> {
  const item = messageWith(page, body);
  await item.locator(".bubble").hover();
  await item.locator(".message-actions").waitFor();
  return item;
}

/** The chip of `emoji` under a message, as shown: its count and who reacted (its title). */
async function chipOf(item: Locator, emoji: string) {
  const chip = item.locator(`.reaction[data-emoji="${emoji}"]`);
  if (await chip.count() === 0) return null;
  return {
    count: await chip.locator(".count").textContent(),
    who: await chip.getAttribute("title"),
    mine: await chip.getAttribute("aria-pressed"),
  };
}

/** Waits until the chip of `emoji` under the message with `body` shows `count`. */
async function waitForChip(page: Page, body: string, emoji: string, count: number) {
  await messageWith(page, body).locator(`.reaction[data-emoji="${emoji}"] .count`, {
    hasText: new RegExp(`^${count}$`),
  }).waitFor();
}

/** A room's messages as /history has them now, with the log's state. */
async function stored(server: TestServer, room: string) {
  const url = new URL(`/history?room=${room}&limit=100`, server.url);
  const page = await (await fetch(url)).json();
  return page.messages as {
    id: number;
    userName: string;
    body: string;
    editedAt?: string;
    reactions?: Record<string, string[]>;
  }[];
}

Deno.test({
  name: "browser: the room log in Chromium against a real server",
  ignore: missing !== null && !inCI,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    if (missing !== null) {
      throw new Error(`${missing}; CI=true, so the browser tests fail instead of being skipped`);
    }
    const browser = await launchBrowser();
    const step = (name: string, fn: () => Promise<void>) =>
      t.step({ name, fn, sanitizeOps: false, sanitizeResources: false });
    try {
      await step(
        "react, edit in place and delete, seen by both; others may only react",
        async () => {
          await withServer({}, async (server, contexts) => {
            const room = "log";
            const alice = await personPage(browser, contexts);
            const bob = await personPage(browser, contexts);
            // Between bob's page and the server: while `hijack` is set, a react command goes
            // out as an edit of the same message, which the server must refuse (not his).
            let hijack = false;
            await bob.routeWebSocket(/\/chat\?/, (ws) => {
              const upstream = ws.connectToServer();
              ws.onMessage((frame) => {
                const command = JSON.parse(String(frame));
                if (!hijack || command.type !== "react") return upstream.send(frame);
                const { messageId, clientId } = command;
                upstream.send(
                  JSON.stringify({ type: "edit", messageId, body: "mine!", clientId }),
                );
              });
            });
            await alice.goto(new URL(`/?room=${room}&userName=alice`, server.url).href);
            await bob.goto(new URL(`/?room=${room}&userName=bob`, server.url).href);
            await waitForStatus(alice, "online");
            await waitForStatus(bob, "online");
            const typo = "teh deploy is done";
            await send(alice, typo);
            await waitForSettled(bob, [typo]);
            await waitForSettled(alice, [typo]);

            // Bob may react to alice's message, not edit or delete it.
            const onBob = await hoverOver(bob, typo);
            const bar = onBob.locator(".message-actions");
            assert.equal(await bar.getByRole("button", { name: "Edit message" }).count(), 0);
            assert.equal(await bar.getByRole("button", { name: "Delete message" }).count(), 0);
            await bar.getByRole("button", { name: "React", exact: true }).click();
            await bar.getByRole("button", { name: "React with 👍" }).click();
            for (const page of [alice, bob]) await waitForChip(page, typo, "👍", 1);
            assert.deepEqual(await chipOf(messageWith(alice, typo), "👍"), {
              count: "1",
              who: "bob",
              mine: "false",
            });
            // Alice adds hers with the chip itself.
            await messageWith(alice, typo).locator('.reaction[data-emoji="👍"]').click();
            for (const page of [alice, bob]) await waitForChip(page, typo, "👍", 2);
            assert.deepEqual(await chipOf(messageWith(bob, typo), "👍"), {
              count: "2",
              who: "bob, alice",
              mine: "true",
            });

            // Edit in place: Escape leaves it as it was; Enter saves it for everyone.
            let onAlice = await hoverOver(alice, typo);
            await onAlice.getByRole("button", { name: "Edit message" }).click();
            const box = alice.getByRole("textbox", { name: "Edit message" });
            await box.fill("never sent");
            await box.press("Escape");
            await box.waitFor({ state: "detached" });
            assert.equal(await messageWith(alice, typo).count(), 1);
            onAlice = await hoverOver(alice, typo);
            await onAlice.getByRole("button", { name: "Edit message" }).click();
            await box.fill("the deploy is done");
            await box.press("Enter");
            for (const page of [alice, bob]) {
              const edited = messageWith(page, "the deploy is done");
              await edited.locator(".edited", { hasText: /^edited$/ }).waitFor();
              assert.equal(await messageWith(page, typo).count(), 0);
              assert.equal((await chipOf(edited, "👍"))?.count, "2", "the reactions stay");
            }
            const [afterEdit] = await stored(server, room);
            assert.equal(afterEdit.body, "the deploy is done");
            assert.ok(afterEdit.editedAt, "/history says it was edited");
            assert.deepEqual(afterEdit.reactions?.["👍"]?.toSorted(), ["alice", "bob"]);

            // A refused change is said next to the message; nothing changes.
            hijack = true;
            await messageWith(bob, "the deploy is done").locator('.reaction[data-emoji="👍"]')
              .click();
            await messageWith(bob, "the deploy is done").locator(".message-error", {
              hasText: /\S/,
            }).waitFor();
            hijack = false;
            assert.equal((await stored(server, room))[0].body, "the deploy is done");

            // Delete asks first; cancelled, nothing happens; confirmed, it is gone for both.
            onAlice = await hoverOver(alice, "the deploy is done");
            await onAlice.getByRole("button", { name: "Delete message" }).click();
            await alice.locator("#confirm-dialog[open]").waitFor();
            await alice.locator("#confirm-cancel").click();
            await alice.locator("#confirm-dialog").waitFor({ state: "hidden" });
            assert.equal((await stored(server, room)).length, 1);
            onAlice = await hoverOver(alice, "the deploy is done");
            await onAlice.getByRole("button", { name: "Delete message" }).click();
            await alice.locator("#confirm-ok").click();
            for (const page of [alice, bob]) {
              await messageWith(page, "the deploy is done").waitFor({ state: "detached" });
            }
            assert.deepEqual(await stored(server, room), []);
            // After a reload (a replay from the start) it stays deleted.
            await bob.reload();
            await waitForStatus(bob, "online");
            assert.equal(await bob.locator("#messages .message").count(), 0);
          });
        },
      );

      await step("an admin deletes anyone's message; a person only their own", async () => {
        await withServer({ auth: { mode: "accounts" } }, async (server, contexts) => {
          const admin = await personPage(browser, contexts);
          await createAccount(admin, server.setupLink!.href, "Admin", "admin-password-1");
          const bob = await personPage(browser, contexts);
          await createAccount(bob, await inviteLink(admin), "bob", "bob-password-22");
          await waitForUsers(admin, ["Admin", "bob"]);
          await send(admin, "from the admin");
          await send(bob, "from bob, regrettable");
          const both = ["from the admin", "from bob, regrettable"];
          await waitForSettled(admin, both);
          await waitForSettled(bob, both);
          const adminsOnBob = await hoverOver(bob, "from the admin");
          assert.equal(
            await adminsOnBob.getByRole("button", { name: "Delete message" }).count(),
            0,
          );
          const bobsOnAdmin = await hoverOver(admin, "from bob, regrettable");
          assert.equal(
            await bobsOnAdmin.getByRole("button", { name: "Edit message" }).count(),
            0,
          );
          await bobsOnAdmin.getByRole("button", { name: "Delete message" }).click();
          await admin.locator("#confirm-ok").click();
          for (const page of [admin, bob]) {
            await messageWith(page, "from bob, regrettable").waitFor({ state: "detached" });
          }
          const left = await admin.evaluate(async () =>
            (await (await fetch("/history?room=lobby")).json()).messages.map((
              m: { body: string },
            ) => m.body)
          );
          assert.deepEqual(left, ["from the admin"]);
        });
      });

      await step(
        "“alice is typing…” shows for five seconds, and goes when her message comes",
        async () => {
          await withServer({}, async (server, contexts) => {
            const alice = await personPage(browser, contexts);
            const bob = await personPage(browser, contexts);
            await alice.goto(new URL("/?room=typing&userName=alice", server.url).href);
            await bob.goto(new URL("/?room=typing&userName=bob", server.url).href);
            await waitForUsers(bob, ["alice", "bob"]);
            const line = bob.locator("#typing");

            await alice.locator("#message").fill("thinking");
            await bob.locator("#typing", { hasText: /^alice is typing…$/ }).waitFor();
            const shownAt = Date.now();
            assert.equal(await alice.locator("#typing").textContent(), "", "not to herself");
            await bob.waitForFunction(
              () => document.querySelector("#typing")?.textContent === "",
              null,
              {
                timeout: 9000,
              },
            );
            const shownFor = Date.now() - shownAt;
            assert.ok(shownFor > 4000 && shownFor < 8000, `shown for ${shownFor} ms`);

            // Typing again (well past the server's 2 s pace), then sending: gone at once.
            await alice.locator("#message").fill("here it is");
            await bob.locator("#typing", { hasText: /^alice is typing…$/ }).waitFor();
            await alice.locator("#message").press("Enter");
            await waitForSettled(bob, ["here it is"]);
            assert.equal(await line.textContent(), "", "cleared when her message arrived");
          });
        },
      );

      await step("a mention is highlighted, and notifies while the tab is hidden", async () => {
        await withServer({}, async (server, contexts) => {
          const alice = await personPage(browser, contexts);
          await recordNotifications(alice.context());
          const bob = await personPage(browser, contexts);
          await alice.goto(new URL("/?room=mentions&userName=alice", server.url).href);
          await bob.goto(new URL("/?room=mentions&userName=bob", server.url).href);
          await waitForUsers(alice, ["alice", "bob"]);
          await alice.locator("#notify").click();
          await alice.locator("#notify[aria-pressed=true]").waitFor();

          // `@` offers the people present; Enter picks.
          await bob.locator("#message").fill("@al");
          await bob.locator("#mention-suggestions li", { hasText: /^@alice$/ }).waitFor();
          await bob.locator("#message").press("Enter");
          assert.equal(await bob.locator("#message").inputValue(), "@alice ");
          await bob.locator("#message").fill("");

          await setHidden(alice, true);
          await send(bob, "just chatting");
          await send(bob, "@alice can you look at the deploy?");
          const bodies = ["just chatting", "@alice can you look at the deploy?"];
          await waitForSettled(alice, bodies);
          await alice.waitForFunction(
            () =>
              (globalThis as unknown as { parleyNotifications: unknown[] }).parleyNotifications
                .length > 0,
            null,
            { timeout: UI_TIMEOUT_MS },
          );
          assert.deepEqual(await notificationsOf(alice), {
            shown: [{ title: "bob mentioned you in #mentions", body: bodies[1] }],
            asks: 0,
          });
          assert.equal(await alice.title(), "(2) #mentions — parley");
          const marked = await alice.locator("#messages .message").evaluateAll((items) =>
            items.map((item) => item.classList.contains("mentions-me"))
          );
          assert.deepEqual(marked, [false, true]);
        });
      });

      await step(
        "the room list marks a room with unread messages and counts mentions",
        async () => {
          await withServer({ auth: { mode: "accounts" } }, async (server, contexts) => {
            const admin = await personPage(browser, contexts);
            await createAccount(admin, server.setupLink!.href, "Admin", "admin-password-1");
            const bob = await personPage(browser, contexts);
            await createAccount(bob, await inviteLink(admin), "bob", "bob-password-22");
            const say = (body: string) =>
              admin.evaluate(async (body) => {
                const post = (path: string, data: unknown) =>
                  fetch(path, {
                    method: "POST",
                    headers: { "content-type": "application/json" },
                    body: JSON.stringify(data),
                  });
                await post("/api/rooms", { room: "plans", kind: "private" });
                await post("/api/rooms/plans/members", { userName: "bob" });
                return (await post("/rooms/plans/messages", { body })).status;
              }, body);
            const plans = bob.locator("#rooms button", { hasText: /^plans$/ });
            // `has` is queried inside each item, so its locator must not start from #rooms.
            const badge = bob.locator("#rooms li", {
              has: bob.locator("button", { hasText: /^plans$/ }),
            }).locator(".mention-badge");

            // Bob is in the lobby; a message in plans that mentions him marks it, live.
            assert.equal(await say("@bob the plan is ready"), 201);
            await bob.locator("#rooms button.unread", { hasText: /^plans$/ }).waitFor();
            assert.equal(await badge.textContent(), "1");
            assert.ok(
              !await bob.locator("#rooms button", { hasText: /^lobby$/ }).evaluate((b) =>
                b.classList.contains("unread")
              ),
            );

            // Read there, it is no longer unread, here and after a reload (the server's marker).
            await plans.click();
            await waitForStatus(bob, "online");
            await waitForSettled(bob, ["@bob the plan is ready"]);
            await bob.locator("#rooms button", { hasText: /^lobby$/ }).click();
            await waitForStatus(bob, "online");
            await bob.locator("#rooms button:not(.unread)", { hasText: /^plans$/ }).waitFor();
            assert.equal(await badge.count(), 0);
            await bob.reload();
            await waitForStatus(bob, "online");
            await plans.waitFor();
            await bob.locator("#rooms button:not(.unread)", { hasText: /^plans$/ }).waitFor();

            // Something new without a mention: bold again, no badge.
            assert.equal(await say("and a second thought"), 201);
            await bob.locator("#rooms button.unread", { hasText: /^plans$/ }).waitFor();
            assert.equal(await badge.count(), 0);
          });
        },
      );

      await step("search: a result opens its room with the message in view", async () => {
        const overrides = {
          history: { onJoin: 20 },
          limits: { messagesPerSecond: 1000, burst: 1000 },
        };
        await withServer(overrides, async (server, contexts) => {
          const target = "the zebra crossing on Elm Street is closed today";
          let targetId = 0;
          for (let i = 1; i <= 60; i++) {
            const body = i === 3 ? target : `status update ${i}`;
            const message = await postMessage(server, "archive", "dana", body);
            if (i === 3) targetId = message.id;
          }
          const page = await personPage(browser, contexts);
          const asked: string[] = [];
          page.on("request", (request) => asked.push(request.url()));
          await page.goto(new URL("/?room=lobby&userName=erin", server.url).href);
          await waitForStatus(page, "online");

          await page.getByRole("textbox", { name: "Search messages" }).fill("zebra");
          await page.getByRole("textbox", { name: "Search messages" }).press("Enter");
          const result = page.locator("#search-results .result");
          await result.first().waitFor();
          assert.equal(await result.count(), 1);
          assert.deepEqual(
            await result.evaluate((el) => ({
              room: el.querySelector(".result-room")?.textContent,
              author: el.querySelector(".result-author")?.textContent,
              time: el.querySelector(".result-time")?.getAttribute("datetime") !== null,
              marked: Array.from(
                el.querySelectorAll(".result-snippet mark"),
                (m) => m.textContent?.toLowerCase(),
              ),
            })),
            {
              room: "#archive",
              author: "dana",
              time: true,
              marked: ["zebra"],
            },
          );
          assert.match(
            await result.locator(".result-snippet").textContent() ?? "",
            /zebra crossing/,
          );

          await result.click();
          await page.locator("#room-name", { hasText: /^archive$/ }).waitFor();
          await waitForStatus(page, "online");
          const found = page.locator(`#messages .message[data-id="${targetId}"]`);
          await found.locator(".body", { hasText: target }).waitFor();
          await page.locator(`#messages .message.found[data-id="${targetId}"]`).waitFor();
          // In view: inside the visible part of the list, not just loaded.
          const inView = await found.evaluate((item) => {
            const list = document.querySelector("#messages")!.getBoundingClientRect();
            const box = item.getBoundingClientRect();
            return box.top >= list.top && box.bottom <= list.bottom;
          });
          assert.ok(inView, "the result is scrolled into view");
          assert.ok(
            asked.some((url) => {
              const u = new URL(url);
              return u.pathname === "/history" && u.searchParams.get("room") === "archive" &&
                u.searchParams.get("around") === String(targetId);
            }),
            `no /history?around=${targetId} among ${asked.filter((u) => u.includes("/history"))}`,
          );
          // The newest messages came with the room as ever.
          await waitForSettled(page, [target, "status update 60"]);
          assert.equal(new URL(page.url()).searchParams.get("room"), "archive");
        });
      });
    } finally {
      await browser.close();
    }
  },
});

/** An invite link the admin signed in on `admin` makes with the API. */
function inviteLink(admin: Page): Promise<string> {
  return admin.evaluate(async () => {
    const response = await fetch("/api/invites", { method: "POST" });
    return (await response.json()).url;
  });
}
