// @ts-check
/// <reference lib="dom" />
/**
 * Private rooms (with accounts): the dialog that makes one, and the dialog that lists the members
 * of the room on screen, adds people to it and removes them. The server decides who may change
 * the members (the room's maker and admins); its refusal is shown as it says.
 */

import { closesWith, showFormError, whileBusy } from "./forms.js";
import { nameError, roomError } from "./protocol.js";

/**
 * The two dialogs' elements.
 * @typedef {{
 *   roomDialog: HTMLDialogElement, roomForm: HTMLFormElement, roomName: HTMLInputElement,
 *   roomError: HTMLElement, roomCancel: HTMLButtonElement, roomCreate: HTMLButtonElement,
 *   membersDialog: HTMLDialogElement, membersForm: HTMLFormElement, membersTitle: HTMLElement,
 *   members: HTMLElement, memberName: HTMLInputElement, membersStatus: HTMLElement,
 *   membersError: HTMLElement, membersClose: HTMLButtonElement, memberAdd: HTMLButtonElement,
 * }} RoomDialogElements
 */

/**
 * What the dialogs need: their elements, the API, the room on screen and the person, and what
 * to do when a room was made (open it) or its members changed (list the rooms again).
 * @typedef {{
 *   ui: RoomDialogElements,
 *   api: import("./api.js").Api,
 *   room: () => string,
 *   me: () => string,
 *   onCreated: (room: string) => void,
 *   onChanged: () => void,
 * }} RoomDialogOptions
 */

/** "New private room" and "Members". */
export class RoomDialogs {
  /** @type {RoomDialogOptions} */ #o;

  /** @param {RoomDialogOptions} options */
  constructor(options) {
    this.#o = options;
    const { ui } = options;
    closesWith(ui.roomDialog, ui.roomCancel);
    closesWith(ui.membersDialog, ui.membersClose);
    ui.roomForm.addEventListener("submit", (event) => this.#create(event));
    ui.membersForm.addEventListener("submit", (event) => this.#add(event));
  }

  /** Opens "New private room". */
  openNewRoom() {
    const { ui } = this.#o;
    ui.roomName.value = "";
    showFormError(ui.roomError, "", [ui.roomName]);
    ui.roomDialog.showModal();
    ui.roomName.focus();
  }

  /**
   * Opens "Members" for the room on screen, shown as `label`.
   * @param {string} label
   */
  async openMembers(label) {
    const { ui } = this.#o;
    ui.membersTitle.textContent = `People in #${label}`;
    ui.memberName.value = "";
    ui.members.replaceChildren();
    ui.membersStatus.textContent = "";
    showFormError(ui.membersError, "", [ui.memberName]);
    ui.membersDialog.showModal();
    ui.memberName.focus();
    await this.#list();
  }

  /** Shows the room's members, each but the person with "Remove". */
  async #list() {
    const { ui, api } = this.#o;
    const room = this.#o.room();
    let members;
    try {
      members = await api.members(room);
    } catch (error) {
      showFormError(ui.membersError, /** @type {Error} */ (error).message, [ui.memberName]);
      return;
    }
    if (room !== this.#o.room()) return;
    ui.members.replaceChildren(...members.map((name) => this.#member(room, name)));
  }

  /**
   * @param {string} room
   * @param {string} name
   * @returns {HTMLElement}
   */
  #member(room, name) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = name;
    li.append(label);
    if (name === this.#o.me()) return li;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary danger";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${name}`);
    remove.addEventListener("click", () => this.#remove(room, name, remove));
    li.append(remove);
    return li;
  }

  /** @param {SubmitEvent} event */
  async #create(event) {
    event.preventDefault();
    const { ui, api } = this.#o;
    const room = ui.roomName.value.trim();
    const problem = roomError(room);
    if (problem) {
      showFormError(ui.roomError, problem, [ui.roomName], ui.roomName);
      return;
    }
    try {
      await whileBusy(ui.roomCreate, "Creating…", () => api.createPrivateRoom(room));
      ui.roomDialog.close();
      this.#o.onCreated(room);
    } catch (error) {
      showFormError(ui.roomError, /** @type {Error} */ (error).message, [ui.roomName], ui.roomName);
    }
  }

  /** @param {SubmitEvent} event */
  async #add(event) {
    event.preventDefault();
    const { ui, api } = this.#o;
    const name = ui.memberName.value.trim();
    const problem = nameError(name);
    if (problem) {
      showFormError(ui.membersError, problem, [ui.memberName], ui.memberName);
      return;
    }
    await this.#change(
      `${name} was added to the room.`,
      ui.memberAdd,
      "Adding…",
      () => api.addMember(this.#o.room(), name),
    );
    if (!ui.membersError.textContent) ui.memberName.value = "";
  }

  /**
   * @param {string} room
   * @param {string} name
   * @param {HTMLButtonElement} button
   */
  async #remove(room, name, button) {
    await this.#change(
      `${name} was removed from the room.`,
      button,
      "Removing…",
      () => this.#o.api.removeMember(room, name),
    );
  }

  /**
   * Makes a change of members and says how it went; on success the list is read again.
   * @param {string} done what to say when it worked
   * @param {HTMLButtonElement} button
   * @param {string} busy
   * @param {() => Promise<void>} work
   */
  async #change(done, button, busy, work) {
    const { ui } = this.#o;
    ui.membersStatus.textContent = "";
    try {
      await whileBusy(button, busy, work);
    } catch (error) {
      showFormError(ui.membersError, /** @type {Error} */ (error).message, [ui.memberName]);
      return;
    }
    showFormError(ui.membersError, "", [ui.memberName]);
    ui.membersStatus.textContent = done;
    this.#o.onChanged();
    await this.#list();
  }
}
