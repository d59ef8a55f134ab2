// @ts-check
/// <reference lib="dom" />
/** The online list: who is in the room, the person first, and how many are here. */

import { hueOf, initialOf } from "./avatar.js";

/**
 * The elements the list is drawn into.
 * @typedef {{
 *   list: HTMLElement, counts: HTMLElement[], toggle: HTMLElement
 * }} UserListElements
 */

/**
 * Shows the names present, `me` first and the rest alphabetically. A large room lists only its
 * first names; `total`, when larger, is how many are here.
 * @param {UserListElements} ui
 * @param {string[]} users
 * @param {string} me
 * @param {number | null} [total]
 */
export function showUsers(ui, users, me, total = null) {
  const unique = [...new Set(users)];
  const count = total !== null && total > unique.length ? total : unique.length;
  unique.sort((a, b) => {
    if (a === me) return -1;
    if (b === me) return 1;
    return a.localeCompare(b, undefined, { sensitivity: "base" });
  });
  const items = unique.map((name) => {
    const li = document.createElement("li");
    li.className = hueOf(name);
    if (name === me) li.classList.add("me");
    li.dataset.initial = initialOf(name);
    li.textContent = name;
    return li;
  });
  ui.list.replaceChildren(...items);
  for (const el of ui.counts) el.textContent = String(count);
  ui.toggle.setAttribute("aria-label", `Who’s online (${count})`);
}
