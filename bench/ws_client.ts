/**
 * A minimal WebSocket client over `Deno.connect`, for the load tool. Unlike the built-in
 * `WebSocket` client (which leaves Nagle's algorithm on, so a sender's back-to-back frames wait
 * for the server's TCP ACK) it sets `TCP_NODELAY`, writes everything sent in one turn with one
 * syscall, and hands over every text frame of a read without an event per frame.
 * Plain `ws://` only; frames from the server are expected unmasked, as RFC 6455 requires.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Called with each text message; `closed` with the close code (1006 if the TCP stream ended). */
export interface ClientHandlers {
  text(data: string): void;
  closed(code: number, reason: string): void;
}

/** One client connection. */
export class WsClient {
  #conn: Deno.TcpConn;
  #handlers: ClientHandlers;
  #queue: Uint8Array[] = [];
  #writing = false;
  /** A close frame was sent or received: nothing more is sent but the close frame's answer. */
  #closing = false;
  /** The TCP connection is closed and its descriptor released. */
  #closed = false;
  /** The server's close frame arrived: what follows it is not read. */
  #closeReceived = false;
  /** `handlers.closed` was called: it is called once at most. */
  #notified = false;
  #released = Promise.withResolvers<void>();
  #fragments: Uint8Array[] = [];
  /** Set by {@link stopReading}: the read loop waits on it, and a shutdown lets it go. */
  #stalled: PromiseWithResolvers<void> | null = null;

  private constructor(conn: Deno.TcpConn, handlers: ClientHandlers) {
    this.#conn = conn;
    this.#handlers = handlers;
  }

  /** Whether the connection is still open (no close frame sent or received). */
  get open(): boolean {
    return !this.#closing;
  }

  /** Resolves once the TCP connection is closed and its descriptor released. */
  get released(): Promise<void> {
    return this.#released.promise;
  }

  /**
   * Connects, performs the upgrade with `protocol` (`""`: no `Sec-WebSocket-Protocol` header,
   * as parley's legacy clients connect) and `headers` (`Authorization`, say), and starts
   * reading. Rejects on a failed connection or a non-101 answer; `timeoutMs` bounds the handshake.
   */
  static async connect(
    url: string,
    protocol: string,
    handlers: ClientHandlers,
    timeoutMs: number,
    headers: Record<string, string> = {},
  ): Promise<WsClient> {
    const target = new URL(url);
    if (target.protocol !== "ws:" && target.protocol !== "http:") {
      throw new Error(`only ws:// URLs are supported, not ${target.protocol}`);
    }
    const port = Number(target.port || 80);
    const conn = await Deno.connect({ hostname: target.hostname, port, transport: "tcp" });
    conn.setNoDelay(true);
    const timer = setTimeout(() => conn.close(), timeoutMs);
    try {
      const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
      const request = `GET ${target.pathname}${target.search} HTTP/1.1\r\n` +
        `Host: ${target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        (protocol === "" ? "" : `Sec-WebSocket-Protocol: ${protocol}\r\n`) +
        Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("") + "\r\n";
      await writeAll(conn, encoder.encode(request));
      let head: Uint8Array = new Uint8Array(0);
      let end = -1;
      while (end < 0) {
        const chunk = new Uint8Array(4096);
        const n = await conn.read(chunk);
        if (n === null) throw new Error("connection closed during the handshake");
        head = concat([head, chunk.subarray(0, n)]);
        end = indexOfHeaderEnd(head);
        if (end < 0 && head.length > 65536) throw new Error("handshake answer too long");
      }
      const status = decoder.decode(head.subarray(0, end));
      if (!/^HTTP\/1\.1 101/.test(status)) {
        throw new Error(`upgrade refused: ${status.split("\r\n")[0]}`);
      }
      clearTimeout(timer);
      const client = new WsClient(conn, handlers);
      client.#readLoop(head.subarray(end + 4));
      return client;
    } catch (error) {
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // already closed
      }
      throw error;
    }
  }

  /**
   * Stops reading from the socket, as a client that froze would: what the server sends piles up
   * in the kernel's buffers and then in the server's, until it drops the client. For good: only
   * closing the connection ends the wait.
   */
  stopReading(): void {
    this.#stalled ??= Promise.withResolvers<void>();
  }

  /** Sends a text message; what is sent in one turn goes out in one write. */
  send(text: string): void {
    if (this.#closing) return;
    this.#enqueue(frame(1, encoder.encode(text)));
  }

  /** Sends a close frame and closes the TCP connection shortly after. */
  close(code = 1000): void {
    if (this.#closing) return;
    this.#closing = true;
    const payload = new Uint8Array([code >> 8, code & 0xff]);
    this.#enqueue(frame(8, payload));
    setTimeout(() => this.#shutdown(code, "closed by the client", false), 100);
  }

  #enqueue(bytes: Uint8Array): void {
    this.#queue.push(bytes);
    if (!this.#writing) {
      this.#writing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const chunk = this.#queue.length === 1 ? this.#queue[0] : concat(this.#queue);
        this.#queue = [];
        await writeAll(this.#conn, chunk);
      }
    } catch {
      this.#shutdown(1006, "write failed", true);
    } finally {
      this.#writing = false;
    }
  }

  /**
   * Closes the TCP connection, whatever state the close handshake is in: the one place the
   * descriptor is released (a close that only marked the client closed kept it open for good).
   */
  #shutdown(code: number, reason: string, notify: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stalled?.resolve();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    this.#closing = true;
    this.#released.resolve();
    if (notify) this.#notify(code, reason);
  }

  #notify(code: number, reason: string): void {
    if (this.#notified) return;
    this.#notified = true;
    this.#handlers.closed(code, reason);
  }

  async #readLoop(initial: Uint8Array): Promise<void> {
    let buffer = new Uint8Array(Math.max(65536, initial.length * 2));
    buffer.set(initial);
    let length = initial.length;
    try {
      while (!this.#closed) {
        // Parse every complete frame in the buffer.
        let at = 0;
        while (length - at >= 2) {
          const b0 = buffer[at];
          const b1 = buffer[at + 1];
          let size = b1 & 0x7f;
          let offset = at + 2;
          if (size === 126) {
            if (length - at < 4) break;
            size = (buffer[at + 2] << 8) | buffer[at + 3];
            offset = at + 4;
          } else if (size === 127) {
            if (length - at < 10) break;
            size = Number(new DataView(buffer.buffer, at + 2, 8).getBigUint64(0));
            offset = at + 10;
          }
          if (b1 & 0x80) offset += 4; // a masked frame from a server is not expected; skip the key
          if (length - offset < size) {
            if (offset + size > buffer.length) {
              const bigger = new Uint8Array(Math.max(buffer.length * 2, offset - at + size));
              bigger.set(buffer.subarray(at, length));
              length -= at;
              at = 0;
              buffer = bigger;
            }
            break;
          }
          const payload = buffer.subarray(offset, offset + size);
          at = offset + size;
          this.#frame(b0 & 0x80, b0 & 0x0f, payload);
          if (this.#closed || this.#closeReceived) return;
        }
        if (at > 0) {
          buffer.copyWithin(0, at, length);
          length -= at;
        }
        if (length === buffer.length) {
          const bigger = new Uint8Array(buffer.length * 2);
          bigger.set(buffer);
          buffer = bigger;
        }
        if (this.#stalled) await this.#stalled.promise;
        if (this.#closed) return;
        const n = await this.#conn.read(buffer.subarray(length));
        if (n === null) break;
        length += n;
      }
      this.#shutdown(1006, "connection ended without a close frame", true);
    } catch {
      this.#shutdown(1006, "read failed", true);
    }
  }

  #frame(fin: number, opcode: number, payload: Uint8Array): void {
    switch (opcode) {
      case 0: // continuation
      case 1: // text
        if (!fin) {
          this.#fragments.push(payload.slice());
          return;
        }
        if (this.#fragments.length > 0) {
          this.#fragments.push(payload);
          const whole = concat(this.#fragments);
          this.#fragments = [];
          this.#handlers.text(decoder.decode(whole));
        } else {
          this.#handlers.text(decoder.decode(payload));
        }
        return;
      case 8: {
        const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
        const reason = decoder.decode(payload.subarray(2));
        // The answer to a close the server started; the server's answer to ours needs none.
        if (!this.#closing) this.#enqueue(frame(8, payload.slice(0, 2)));
        this.#closing = true;
        this.#closeReceived = true;
        setTimeout(() => this.#shutdown(code, reason, false), 50);
        this.#notify(code, reason);
        return;
      }
      case 9: // ping
        this.#enqueue(frame(10, payload.slice()));
        return;
      default: // pong, binary: ignored
        return;
    }
  }
}

/** A client frame: FIN, the opcode, a zero mask key (legal, and XOR with it is a no-op). */
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? 6 : n < 65536 ? 8 : 14;
  const out = new Uint8Array(head + n);
  out[0] = 0x80 | opcode;
  if (n < 126) {
    out[1] = 0x80 | n;
  } else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  // Bytes head-4 .. head-1 are the mask key, left zero.
  out.set(payload, head);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function indexOfHeaderEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

async function writeAll(conn: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}
