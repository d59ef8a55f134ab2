// @ts-check
/// <reference lib="dom" />
/**
 * The rooms in the sidebar (with accounts): the rooms the person may open, then their direct
 * rooms, each a button that opens it; the room on screen is marked.
 */

import { groupRooms, roomLabel } from "./rooms.js";

/**
 * The elements the lists are drawn into.
 * @typedef {{ rooms: HTMLElement, direct: HTMLElement, directHeading: HTMLElement }}
 *   RoomListElements
 */

/**
 * Draws `entries`, marking `current`; a click calls `open` with the room's name.
 * @param {RoomListElements} ui
 * @param {readonly import("./rooms.js").RoomEntry[]} entries
 * @param {string} current
 * @param {(room: string) => void} open
 */
export function showRooms(ui, entries, current, open) {
  const { rooms, direct } = groupRooms(entries);
  ui.rooms.replaceChildren(...rooms.map((entry) => roomItem(entry, current, open)));
  ui.direct.replaceChildren(...direct.map((entry) => roomItem(entry, current, open)));
  ui.directHeading.hidden = direct.length === 0;
}

/**
 * @param {import("./rooms.js").RoomEntry} entry
 * @param {string} current
 * @param {(room: string) => void} open
 * @returns {HTMLElement}
 */
function roomItem(entry, current, open) {
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
  return li;
}
