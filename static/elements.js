// @ts-check
/// <reference lib="dom" />
/**
 * The page's elements, found once by id and grouped by the part of the page that uses them. A
 * missing or different element is an error at once: chat.html and the scripts go together.
 */

/**
 * The element with this id, which must be of this kind: the page and this script go together.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{ new (): T, prototype: T }} kind
 * @returns {T}
 */
function find(id, kind) {
  const found = document.getElementById(id);
  if (!(found instanceof kind)) throw new Error(`chat.html has no ${kind.name} #${id}`);
  return found;
}

/** The elements of chat.html, by the part that uses them. */
export const elements = {
  ui: {
    joinView: find("join-view", HTMLElement),
    joinForm: find("join-form", HTMLFormElement),
    join: find("join", HTMLButtonElement),
    name: find("name", HTMLInputElement),
    room: find("room", HTMLInputElement),
    joinError: find("join-error", HTMLElement),
    chatView: find("chat-view", HTMLElement),
    roomName: find("room-name", HTMLElement),
    switchForm: find("switch-form", HTMLFormElement),
    switchRoom: find("switch-room", HTMLInputElement),
    usersToggle: find("users-toggle", HTMLButtonElement),
    sidebar: find("sidebar", HTMLElement),
    me: find("me", HTMLElement),
    leave: find("leave", HTMLButtonElement),
    composer: find("composer", HTMLFormElement),
    message: find("message", HTMLTextAreaElement),
    messages: find("messages", HTMLElement),
    signOut: find("sign-out", HTMLButtonElement),
    invite: find("invite", HTMLButtonElement),
    roomsSection: find("rooms-section", HTMLElement),
    newRoom: find("new-room", HTMLButtonElement),
    manageMembers: find("manage-members", HTMLButtonElement),
    typing: find("typing", HTMLElement),
  },
  rooms: {
    rooms: find("rooms", HTMLElement),
    direct: find("direct-rooms", HTMLElement),
    directHeading: find("direct-heading", HTMLElement),
  },
  users: {
    list: find("users", HTMLElement),
    counts: [find("user-count", HTMLElement), find("users-count", HTMLElement)],
    toggle: find("users-toggle", HTMLButtonElement),
  },
  accountForms: {
    signInForm: find("signin-form", HTMLFormElement),
    signInName: find("signin-name", HTMLInputElement),
    signInPassword: find("signin-password", HTMLInputElement),
    signInError: find("signin-error", HTMLElement),
    signIn: find("signin", HTMLButtonElement),
    accountForm: find("account-form", HTMLFormElement),
    accountIntro: find("account-intro", HTMLElement),
    accountName: find("account-name", HTMLInputElement),
    accountPassword: find("account-password", HTMLInputElement),
    accountError: find("account-error", HTMLElement),
    accountSubmit: find("account-submit", HTMLButtonElement),
  },
  invite: {
    dialog: find("invite-dialog", HTMLDialogElement),
    form: find("invite-form", HTMLFormElement),
    help: find("invite-help", HTMLElement),
    link: find("invite-link", HTMLInputElement),
    status: find("invite-status", HTMLElement),
    copy: find("invite-copy", HTMLButtonElement),
  },
  roomDialogs: {
    roomDialog: find("room-dialog", HTMLDialogElement),
    roomForm: find("room-form", HTMLFormElement),
    roomName: find("new-room-name", HTMLInputElement),
    roomError: find("room-form-error", HTMLElement),
    roomCancel: find("room-cancel", HTMLButtonElement),
    roomCreate: find("room-create", HTMLButtonElement),
    membersDialog: find("members-dialog", HTMLDialogElement),
    membersForm: find("members-form", HTMLFormElement),
    membersTitle: find("members-title", HTMLElement),
    members: find("members", HTMLElement),
    memberName: find("member-name", HTMLInputElement),
    membersStatus: find("members-status", HTMLElement),
    membersError: find("members-error", HTMLElement),
    membersClose: find("members-close", HTMLButtonElement),
    memberAdd: find("member-add", HTMLButtonElement),
  },
  confirm: {
    dialog: find("confirm-dialog", HTMLDialogElement),
    form: find("confirm-form", HTMLFormElement),
    title: find("confirm-title", HTMLElement),
    text: find("confirm-text", HTMLElement),
    ok: find("confirm-ok", HTMLButtonElement),
    cancel: find("confirm-cancel", HTMLButtonElement),
  },
  search: {
    form: find("search-form", HTMLFormElement),
    input: find("search", HTMLInputElement),
    panel: find("search-panel", HTMLElement),
    results: find("search-results", HTMLElement),
    status: find("search-status", HTMLElement),
    close: find("search-close", HTMLButtonElement),
  },
  status: find("status", HTMLElement),
  notice: find("notice", HTMLElement),
  older: find("older", HTMLElement),
  jump: find("jump", HTMLButtonElement),
  loadOlder: find("load-older", HTMLButtonElement),
  notify: find("notify", HTMLButtonElement),
  suggestions: find("mention-suggestions", HTMLElement),
};
