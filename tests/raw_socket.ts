/**
 * A `parley.v1` WebSocket client on a bare TCP connection, for peers a WebSocket client cannot
 * play: one that stops reading, or reads only when the test says so.
 */

import { within } from "./support.ts";

/** One frame from the server: its opcode (1 text, 8 close, ...) and payload. */
export interface RawFrame {
  opcode: number;
  payload: Uint8Array;
}

/** A connection that has completed the WebSocket handshake and reads nothing until asked. */
export class RawSocket {
  #received = new Uint8Array(0);
  #closed = false;

  private constructor(readonly conn: Deno.TcpConn) {}

  /** Connects to `/chat` with `query`, and reads the handshake's answer (and nothing more). */
  static async connect(port: number, query: Record<string, string>): Promise<RawSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const socket = new RawSocket(conn);
    const search = new URLSearchParams(query);
    await conn.write(new TextEncoder().encode(
      `GET /chat?${search} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: parley.v1\r\n\r\n",
    ));
    const head = await within(socket.#readHead(), "the handshake's answer");
    if (!head.startsWith("HTTP/1.1 101")) throw new Error(`the upgrade was refused: ${head}`);
    return socket;
  }

  async #readHead(): Promise<string> {
    for (;;) {
      const text = new TextDecoder("latin1").decode(this.#received);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) {
        this.#received = this.#received.subarray(end + 4);
        return text.slice(0, end);
      }
      if (!(await this.#readMore())) throw new Error("the connection ended during the handshake");
    }
  }

  async #readMore(): Promise<boolean> {
    const buffer = new Uint8Array(65536);
    const n = await this.conn.read(buffer);
    if (n === null) return false;
    const joined = new Uint8Array(this.#received.length + n);
    joined.set(this.#received);
    joined.set(buffer.subarray(0, n), this.#received.length);
    this.#received = joined;
    return true;
  }

  /** The next whole frame, reading as much as it takes; null once the connection has ended. */
  async frame(): Promise<RawFrame | null> {
    for (;;) {
      const frame = this.#parse();
      if (frame !== null) return frame;
      if (!(await this.#readMore())) return null;
    }
  }

  /** A frame at the start of what was received, taken off it, if all of it is there. */
  #parse(): RawFrame | null {
    const bytes = this.#received;
    if (bytes.length < 2) return null;
    let length = bytes[1] & 0x7f;
    let at = 2;
    if (length === 126) {
      if (bytes.length < 4) return null;
      length = (bytes[2] << 8) | bytes[3];
      at = 4;
    } else if (length === 127) {
      if (bytes.length < 10) return null;
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + 2, 8).getBigUint64(0));
      at = 10;
    }
    if (bytes.length < at + length) return null;
    this.#received = bytes.subarray(at + length);
    return { opcode: bytes[0] & 0x0f, payload: bytes.subarray(at, at + length) };
  }

  /**
   * Reads text frames, split into `parley.v1` events, until `done` says it has them all; fails
   * after `ms`, or if the server closes first.
   */
  async events(
    done: (events: Record<string, unknown>[]) => boolean,
    ms = 30_000,
  ): Promise<Record<string, unknown>[]> {
    const events: Record<string, unknown>[] = [];
    const decoder = new TextDecoder();
    const read = async () => {
      while (!done(events)) {
        const frame = await this.frame();
        if (frame === null || frame.opcode === 0x8) {
          throw new Error(`the server closed after ${events.length} events`);
        }
        if (frame.opcode !== 0x1) continue;
        for (const line of decoder.decode(frame.payload).split("\n")) events.push(JSON.parse(line));
      }
      return events;
    };
    return await within(read(), "the events", ms);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
