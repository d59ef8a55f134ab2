/**
 * Who is present in each room: the names of this process's connections, with how many connections
 * each has, and the names each other worker or instance (a source) last announced, with when each
 * source was last heard. Joins and leaves are the differences between what was and what is; a
 * source silent for {@link SILENCE_FACTOR} announce intervals is taken to be gone, with its people.
 *
 * Every name has a count of its holders (this process, and each source that lists it), kept as
 * names come and go, so a join costs the same in a room of ten or of ten thousand.
 */

/**
 * Presence lists name at most this many people, and a room with more present does not announce
 * each join and leave: both would cost the size of the room for every change, for everyone.
 */
export const MAX_LISTED_USERS = 100;

/**
 * A source not heard from for this many announce intervals has stopped (crashed, or lost its
 * connection for good): sources announce again every interval while they have people anywhere.
 */
export const SILENCE_FACTOR = 3;

/** How a room's names changed: who came and who went. */
export interface PresenceChange {
  room: string;
  joined: string[];
  left: string[];
}

/**
 * What one local connection's arrival or departure changed: nothing (another connection under the
 * name is here), this process's names only (to announce; the name is present elsewhere too), or
 * the room's names (to announce, and to tell the room).
 */
export type LocalChange = "none" | "local" | "room";

/** One room's names. */
class RoomNames {
  /** Connections per name through this process, in order of arrival. */
  readonly local = new Map<string, number>();
  /** The names each source last announced. */
  readonly remote = new Map<string, ReadonlySet<string>>();
  /** Every name present, in order of arrival, with its number of holders. */
  readonly all = new Map<string, number>();

  /** Adds a holder of a name; true if the name is new to the room. */
  add(name: string): boolean {
    const holders = this.all.get(name) ?? 0;
    this.all.set(name, holders + 1);
    return holders === 0;
  }

  /** Removes a holder of a name (one it has); true if the name has left the room. */
  remove(name: string): boolean {
    const holders = this.all.get(name) ?? 1;
    if (holders > 1) {
      this.all.set(name, holders - 1);
      return false;
    }
    this.all.delete(name);
    return true;
  }
}

/** A worker or instance that announces who is present through it. */
interface Source {
  /** When it was last heard, by the clock of {@link Presence}'s callers. */
  heard: number;
  /** Rooms it has people in. */
  rooms: Set<string>;
}

const NOBODY: ReadonlySet<string> = new Set();

/** Who is present in every room, here and elsewhere. */
export class Presence {
  readonly #rooms = new Map<string, RoomNames>();
  readonly #sources = new Map<string, Source>();

  /** One more connection here under `name`. */
  join(room: string, name: string): LocalChange {
    const names = this.#names(room);
    const count = names.local.get(name) ?? 0;
    names.local.set(name, count + 1);
    if (count > 0) return "none";
    return names.add(name) ? "room" : "local";
  }

  /** One connection fewer here under `name`; "none" for a name that has none. */
  leave(room: string, name: string): LocalChange {
    const names = this.#rooms.get(room);
    const count = names?.local.get(name);
    if (names === undefined || count === undefined) return "none";
    if (count > 1) {
      names.local.set(name, count - 1);
      return "none";
    }
    names.local.delete(name);
    const change = names.remove(name) ? "room" : "local";
    this.#dropIfEmpty(room, names);
    return change;
  }

  /** Takes a source's list of who is present in a room through it (empty: nobody any more). */
  announced(
    room: string,
    source: string,
    users: readonly string[],
    now = performance.now(),
  ): PresenceChange {
    let from = this.#sources.get(source);
    if (from === undefined) this.#sources.set(source, from = { heard: now, rooms: new Set() });
    from.heard = now;
    if (users.length > 0) from.rooms.add(room);
    else from.rooms.delete(room);
    if (from.rooms.size === 0) this.#sources.delete(source);
    return this.#replace(room, source, new Set(users));
  }

  /**
   * Forgets the sources not heard from for {@link SILENCE_FACTOR} times `intervalMs`, as if each
   * had said that nobody is present through it; returns what that changed.
   */
  expire(intervalMs: number, now = performance.now()): PresenceChange[] {
    const changes: PresenceChange[] = [];
    for (const [source, from] of this.#sources) {
      if (now - from.heard < SILENCE_FACTOR * intervalMs) continue;
      this.#sources.delete(source);
      for (const room of from.rooms) changes.push(this.#replace(room, source, NOBODY));
    }
    return changes;
  }

  /** The names present in a room, in order of arrival: at most {@link MAX_LISTED_USERS}. */
  users(room: string): string[] {
    const users: string[] = [];
    const names = this.#rooms.get(room);
    if (names === undefined) return users;
    for (const name of names.all.keys()) {
      if (users.push(name) === MAX_LISTED_USERS) break;
    }
    return users;
  }

  /**
   * The name present in a room that is `name` in any case (as it is spelt there), or null: who
   * a `@name` in a message means.
   */
  named(room: string, name: string): string | null {
    const names = this.#rooms.get(room)?.all;
    if (names === undefined) return null;
    if (names.has(name)) return name;
    const wanted = name.toLowerCase();
    for (const present of names.keys()) if (present.toLowerCase() === wanted) return present;
    return null;
  }

  /** How many names are present in a room, here and elsewhere. */
  count(room: string): number {
    return this.#rooms.get(room)?.all.size ?? 0;
  }

  /** The names present in a room through this process, which it announces. */
  local(room: string): string[] {
    const names = this.#rooms.get(room);
    return names === undefined ? [] : [...names.local.keys()];
  }

  /** How many names are present in a room through this process. */
  localCount(room: string): number {
    return this.#rooms.get(room)?.local.size ?? 0;
  }

  /** Every room with names present through this process, and those names. */
  *locals(): Generator<[room: string, users: string[]]> {
    for (const [room, names] of this.#rooms) {
      if (names.local.size > 0) yield [room, [...names.local.keys()]];
    }
  }

  /** Every room with anyone present, and how many names. */
  counts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [room, names] of this.#rooms) counts.set(room, names.all.size);
    return counts;
  }

  /** Makes `users` the source's names in the room; returns the difference to the room. */
  #replace(room: string, source: string, users: ReadonlySet<string>): PresenceChange {
    const change: PresenceChange = { room, joined: [], left: [] };
    const names = users.size > 0 ? this.#names(room) : this.#rooms.get(room);
    if (names === undefined) return change;
    const before = names.remote.get(source) ?? NOBODY;
    for (const name of users) {
      if (!before.has(name) && names.add(name)) change.joined.push(name);
    }
    for (const name of before) {
      if (!users.has(name) && names.remove(name)) change.left.push(name);
    }
    if (users.size > 0) names.remote.set(source, users);
    else names.remote.delete(source);
    this.#dropIfEmpty(room, names);
    return change;
  }

  #names(room: string): RoomNames {
    let names = this.#rooms.get(room);
    if (names === undefined) this.#rooms.set(room, names = new RoomNames());
    return names;
  }

  #dropIfEmpty(room: string, names: RoomNames): void {
    if (names.all.size === 0) this.#rooms.delete(room);
  }
}
