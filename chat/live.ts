/**
 * The live extras of a `parley.v1` connection, beside the room's log: who is typing
 * (`typing.ts`), read markers (`read_markers.ts`) and room summaries (`summaries.ts`). None of
 * them is stored in the log, has an id or is acked, and none costs anything until a client uses
 * it. {@link Live} is the process's one instance of them: it hears every bus event (typing
 * notices, and messages of every room for the summaries) and makes a {@link LiveSession} for
 * each joined `parley.v1` client, which hands it the commands `typing`, `read` and `summary`.
 *
 * @module
 */

import type { Bus, BusEvent } from "./bus.ts";
import type { Identity } from "./identity.ts";
import type { LiveCommand, LogEvent } from "./message.ts";
import { MAX_LISTED_USERS } from "./presence.ts";
import { readerOf, type ReadMarkers } from "./read_markers.ts";
import { Summaries } from "./summaries.ts";
import { Typing, TypingGate } from "./typing.ts";

/** What the extras need of the server. */
export interface LiveOptions {
  bus: Bus;
  /** The access rule (`IdentityService.mayRead`) summaries list rooms by. */
  mayRead: (identity: Identity, room: string) => boolean;
  /** The read markers; null in open mode, where the page keeps them. */
  markers: ReadMarkers | null;
  /** Where a failure of the extras is told: it never reaches the bus or a room. */
  onError: (message: string) => void;
}

/** The room of a session, as far as the extras read it. */
export interface LiveRoom {
  readonly name: string;
  readonly lastId: number;
  readonly userCount: number;
}

/** How a session reaches its connection. */
export interface LiveSink {
  /** Sends a frame that may be dropped: the connection is not told who types while it is busy. */
  typing(frame: string): void;
  /** Sends a summary. */
  summary(frame: string): void;
}

/** What a session is made of: a joined client, under its name. */
export interface SessionOptions {
  identity: Identity;
  userName: string;
  room: LiveRoom;
  sink: LiveSink;
}

/** The live extras of this process (see the module's documentation). */
export class Live {
  readonly typing = new Typing();
  readonly summaries: Summaries;

  constructor(private readonly options: LiveOptions) {
    this.summaries = new Summaries(options.mayRead);
  }

  /** The read markers, in `accounts` and `jwt` modes. */
  get markers(): ReadMarkers | null {
    return this.options.markers;
  }

  /** Hears an event of the bus, for any room; a failure here is told, and goes no further. */
  hear(event: BusEvent): void {
    try {
      if (event.kind === "typing") this.typing.heard(event.room, event.userName);
      else if (this.summaries.listening) {
        if (event.kind === "log") {
          this.summaries.saw(event.event.room, event.event.id, mentionsOf(event.event));
        }
      }
    } catch (error) {
      this.options.onError(`live extras failed: ${(error as Error)?.stack ?? error}`);
    }
  }

  /** The session of a client that joined its room under its name. */
  session(options: SessionOptions): LiveSession {
    return new LiveSession(this, this.options.bus, options);
  }

  /** Writes what read markers are pending and stops the summaries' tick. */
  close(): void {
    this.summaries.close();
    this.options.markers?.close();
  }
}

/** One joined client's use of the extras; {@link close} it when the client leaves. */
export class LiveSession {
  readonly #gate = new TypingGate();
  readonly #reader: string | null;
  #stopTyping: () => void;
  #stopSummaries: (() => void) | null = null;

  constructor(
    private readonly live: Live,
    private readonly bus: Bus,
    private readonly options: SessionOptions,
  ) {
    const { room, userName, sink } = options;
    this.#reader = live.markers === null ? null : readerOf(options.identity);
    this.#stopTyping = live.typing.listen(room.name, { userName, typing: (f) => sink.typing(f) });
  }

  /** The person's read marker in the room, for the welcome; null where markers are not kept. */
  lastRead(): number | null {
    const markers = this.live.markers;
    if (markers === null || this.#reader === null) return null;
    return markers.get(this.#reader, this.options.room.name);
  }

  /** Carries out a command of the client. */
  command(command: LiveCommand): void {
    switch (command.type) {
      case "typing":
        return this.#typing();
      case "read":
        return this.#read(command.id);
      case "summary":
        return command.on ? this.#summaries() : this.#stopSummaries?.();
    }
  }

  /**
   * Tells the others, unless this connection did less than 2 s ago. Nobody is told in a room of
   * more than {@link MAX_LISTED_USERS}: as with presence, everyone would hear everyone type.
   */
  #typing(): void {
    const { room, userName } = this.options;
    if (room.userCount > MAX_LISTED_USERS || !this.#gate.pass()) return;
    this.bus.typing(room.name, userName);
  }

  /** Moves the marker forward, to the room's last id at most; ignored where none are kept. */
  #read(id: number): void {
    const markers = this.live.markers;
    if (markers === null || this.#reader === null) return;
    const { room } = this.options;
    const upTo = Math.min(id, room.lastId);
    if (upTo > 0) markers.mark(this.#reader, room.name, upTo);
  }

  #summaries(): void {
    if (this.#stopSummaries !== null) return;
    const { identity, userName, sink } = this.options;
    const stop = this.live.summaries.subscribe({
      identity,
      userName,
      summary: (frame) => sink.summary(frame),
    });
    this.#stopSummaries = () => {
      stop();
      this.#stopSummaries = null;
    };
  }

  /** The client left: it hears no more. */
  close(): void {
    this.#stopTyping();
    this.#stopTyping = () => {};
    this.#stopSummaries?.();
  }
}

/** The names a log event's `@name` tokens refer to: a message's `mentions`; none for a change. */
function mentionsOf(event: LogEvent): readonly string[] {
  return event.type === "message" ? event.mentions ?? [] : [];
}
