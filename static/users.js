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
 * button that shows them; the actions shown stay shown when the list is drawn again.
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
  const expanded = ui.list.dataset.expanded;
  const items = unique.map((name, i) => {
    const li = document.createElement("li");
    li.className = hueOf(name);
    if (name === me) li.classList.add("me");
    li.dataset.initial = initialOf(name);
    const actions = actionsFor(name);
    if (actions.length === 0) li.textContent = name;
    else withActions(ui.list, li, name, actions, `person-actions-${i}`, name === expanded);
    return li;
  });
  ui.list.replaceChildren(...items);
  for (const el of ui.counts) el.textContent = String(count);
  ui.toggle.setAttribute("aria-label", `Who’s online (${count})`);
}

/**
 * Fills `li` with the name as a button that shows or hides the actions' row under it; the list
 * remembers whose row is shown.
 * @param {HTMLElement} list
 * @param {HTMLElement} li
 * @param {string} name
 * @param {PersonAction[]} actions
 * @param {string} id
 * @param {boolean} open
 */
function withActions(list, li, name, actions, id, open) {
  li.classList.add("has-actions");
  const person = document.createElement("button");
  person.type = "button";
  person.className = "person";
  person.textContent = name;
  person.setAttribute("aria-expanded", String(open));
  person.setAttribute("aria-controls", id);
  const row = document.createElement("div");
  row.className = "person-actions";
  row.id = id;
  row.hidden = !open;
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
    for (const other of list.querySelectorAll(".person-actions")) {
      if (other !== row) other.toggleAttribute("hidden", true);
    }
    for (const other of list.querySelectorAll(".person")) {
      if (other !== person) other.setAttribute("aria-expanded", "false");
    }
    row.hidden = !row.hidden;
    person.setAttribute("aria-expanded", String(!row.hidden));
    if (row.hidden) delete list.dataset.expanded;
    else list.dataset.expanded = name;
  });
  li.append(person, row);
}
