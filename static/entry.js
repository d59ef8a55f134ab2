// @ts-check
/**
 * What the page shows first. The server serves the same page at `/`, `/setup?token=…` (the link
 * that makes the first admin) and `/join/<code>` (an invite); the path says which form the person
 * came for, and `/api/me` says whether the server has accounts and who is signed in. No DOM here.
 */

/**
 * Where the page was opened: the chat, the setup link, or an invite.
 * @typedef {{ kind: "chat" } | { kind: "setup", token: string } | { kind: "invite", code: string }}
 *   Entry
 */

/**
 * The first view: `open` is the name and room form of a server without accounts; `signin` the
 * sign-in form; `setup` and `invite` the forms that make an account; `chat` the signed-in chat.
 * @typedef {"open" | "signin" | "setup" | "invite" | "chat"} View
 */

/**
 * What a URL of the page came for.
 * @param {{ pathname: string, search: string }} url the page's `location`
 * @returns {Entry}
 */
export function entryOf(url) {
  if (url.pathname === "/setup") {
    return { kind: "setup", token: new URLSearchParams(url.search).get("token") ?? "" };
  }
  const invite = /^\/join\/([^/]+)$/.exec(url.pathname);
  if (invite) {
    try {
      return { kind: "invite", code: decodeURIComponent(invite[1]) };
    } catch {
      return { kind: "invite", code: invite[1] };
    }
  }
  return { kind: "chat" };
}

/**
 * The view for an entry and the person. A server without accounts has only the open form: its
 * setup and invite links mean nothing. Making an account is offered even to a signed-in person
 * (an admin trying an invite link), who becomes the new account.
 * @param {Entry} entry
 * @param {import("./api.js").Me} me
 * @returns {View}
 */
export function firstView(entry, me) {
  if (me.mode === "open") return "open";
  if (entry.kind !== "chat") return entry.kind;
  return me.userName === null ? "signin" : "chat";
}
