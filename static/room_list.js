// @ts-check
/// <reference lib="dom" />
/**
 * The rooms in the sidebar (with accounts): the rooms the person may open, then their direct
 * rooms, each a button that opens it; the room on screen is marked, a room with unread messages
 * is bold, and one with unread mentions has a badge with their number.
 */

import { groupRooms, roomLabel } from "./rooms.js";

/**
 * The elements the lists are drawn into.
 * @typedef {{ rooms: HTMLElement, direct: HTMLElement, directHeading: HTMLElement }}
 *   RoomListElements
 */

/**
 * What is unread, by room.
 * @typedef {{ isUnread(room: string): boolean, mentions(room: string): number }} UnreadRooms
 */

/** Nothing is unread. @type {UnreadRooms} */
const ALL_READ = { isUnread: () => false, mentions: () => 0 };

/**
 * Draws `entries`, marking `current` and what is unread; a click calls `open` with the room's
 * name.
 * @param {RoomListElements} ui
 * @param {readonly import("./rooms.js").RoomEntry[]} entries
 * @param {string} current
 * @param {(room: string) => void} open
 * @param {UnreadRooms} [unread]
 */
export function showRooms(ui, entries, current, open, unread = ALL_READ) {
  const { rooms, direct } = groupRooms(entries);
  const item = (/** @type {import("./rooms.js").RoomEntry} */ entry) =>
    roomItem(entry, current, open, unread);
  ui.rooms.replaceChildren(...rooms.map(item));
  ui.direct.replaceChildren(...direct.map(item));
  ui.directHeading.hidden = direct.length === 0;
}

/**
 * @param {import("./rooms.js").RoomEntry} entry
 * @param {string} current
 * @param {(room: string) => void} open
 * @param {UnreadRooms} unread
 * @returns {HTMLElement}
 */
function roomItem(entry, current, open, unread) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = entry.kind;
  button.textContent = roomLabel(entry);
  button.dataset.room = entry.room;
  if (entry.kind === "private") button.title = "Private room";
  if (entry.room === current) button.setAttribute("aria-current", "true");
  button.addEventListener("click", () => open(entry.room));
  li.append(button);
  if (entry.room === current) return li;
  const mentions = unread.mentions(entry.room);
  if (unread.isUnread(entry.room) || mentions > 0) {
    button.classList.add("unread");
    button.title = `${button.title ? `${button.title}, ` : ""}unread messages`;
  }
  if (mentions > 0) {
    const badge = document.createElement("span");
    badge.className = "mention-badge";
    badge.textContent = String(mentions);
    badge.title = mentions === 1 ? "1 mention" : `${mentions} mentions`;
    li.append(badge);
  }
  return li;
}
