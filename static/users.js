// @ts-check
/// <reference lib="dom" />
/**
 * The online list: who is in the room, the person first, and how many are here. With accounts, a
 * name opens what can be done with that person (message them, remove them from the room, ban).
 */

import { hueOf, initialOf } from "./avatar.js";

/**
 * The elements the list is drawn into.
 * @typedef {{
 *   list: HTMLElement, counts: HTMLElement[], toggle: HTMLElement
 * }} UserListElements
 */

/**
 * Something the person can do with someone in the list; `danger` for what cannot be undone.
 * @typedef {{ label: string, run: () => void, danger?: boolean }} PersonAction
 */

/**
 * Shows the names present, `me` first and the rest alphabetically. A large room lists only its
 * first names; `total`, when larger, is how many are here. A name with `actionsFor` actions is a
 * button that shows them.
 * @param {UserListElements} ui
 * @param {string[]} users
 * @param {string} me
 * @param {number | null} [total]
 * @param {(name: string) => PersonAction[]} [actionsFor]
 */
export function showUsers(ui, users, me, total = null, actionsFor = () => []) {
  const unique = [...new Set(users)];
  const count = total !== null && total > unique.length ? total : unique.length;
  unique.sort((a, b) => {
    if (a === me) return -1;
    if (b === me) return 1;
    return a.localeCompare(b, undefined, { sensitivity: "base" });
  });
  const items = unique.map((name, i) => {
    const li = document.createElement("li");
    li.className = hueOf(name);
    if (name === me) li.classList.add("me");
    li.dataset.initial = initialOf(name);
    const actions = actionsFor(name);
    if (actions.length === 0) li.textContent = name;
    else withActions(li, name, actions, `person-actions-${i}`);
    return li;
  });
  ui.list.replaceChildren(...items);
  for (const el of ui.counts) el.textContent = String(count);
  ui.toggle.setAttribute("aria-label", `Who’s online (${count})`);
}

/**
 * Fills `li` with the name as a button that shows or hides the actions' row under it.
 * @param {HTMLElement} li
 * @param {string} name
 * @param {PersonAction[]} actions
 * @param {string} id
 */
function withActions(li, name, actions, id) {
  li.classList.add("has-actions");
  const person = document.createElement("button");
  person.type = "button";
  person.className = "person";
  person.textContent = name;
  person.setAttribute("aria-expanded", "false");
  person.setAttribute("aria-controls", id);
  const row = document.createElement("div");
  row.className = "person-actions";
  row.id = id;
  row.hidden = true;
  for (const action of actions) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = action.danger ? "secondary danger" : "secondary";
    button.textContent = action.label;
    button.setAttribute("aria-label", `${action.label} ${name}`);
    button.addEventListener("click", action.run);
    row.append(button);
  }
  person.addEventListener("click", () => {
    row.hidden = !row.hidden;
    person.setAttribute("aria-expanded", String(!row.hidden));
  });
  li.append(person, row);
}
