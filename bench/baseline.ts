/**
 * The baseline: a minimal Deno fan-out server speaking just enough of `parley.v1` for the load
 * tool (`welcome`, `message`, `ack`). It encodes each message once and sends each socket one frame
 * per event-loop turn holding everything pending for it. No history, presence or limits: it is the
 * practical ceiling for a Deno chat server on the machine at hand.
 *
 * Run alone: `deno run --allow-net bench/baseline.ts --port 0` prints its URL.
 */

interface Room {
  name: string;
  sockets: Set<WebSocket>;
  lastId: number;
  /** Events broadcast in this turn, sent to every socket as one frame. */
  pending: string[];
}

/** A running baseline server. */
export interface BaselineServer {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  /** Stops listening and closes every socket. */
  shutdown(): Promise<void>;
}

/** Starts the baseline server on `127.0.0.1:port` (0 picks a free port). */
export function startBaseline(port = 0): Promise<BaselineServer> {
  const rooms = new Map<string, Room>();
  const acks = new Map<WebSocket, string[]>(); // per-socket events of this turn
  const dirty = new Set<Room>();
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    for (const room of dirty) {
      const frame = room.pending.join("\n");
      room.pending = [];
      for (const socket of room.sockets) {
        if (socket.readyState !== WebSocket.OPEN) continue;
        const own = acks.get(socket);
        if (own) {
          acks.delete(socket);
          socket.send(frame === "" ? own.join("\n") : frame + "\n" + own.join("\n"));
        } else if (frame !== "") {
          socket.send(frame);
        }
        if (socket.bufferedAmount > 16 * 1024 * 1024) socket.close(1013, "slow consumer");
      }
    }
    dirty.clear();
  };
  const schedule = (room: Room): void => {
    dirty.add(room);
    if (!scheduled) {
      scheduled = true;
      setTimeout(flush, 0);
    }
  };

  const handler = (request: Request): Response => {
    const url = new URL(request.url);
    if (url.pathname !== "/chat" || request.headers.get("upgrade") !== "websocket") {
      return new Response("baseline: use a WebSocket on /chat\n", { status: 426 });
    }
    const roomName = url.searchParams.get("room") ?? "lobby";
    const userName = url.searchParams.get("userName") ?? "anonymous";
    const { socket, response } = Deno.upgradeWebSocket(request, { protocol: "parley.v1" });
    let room = rooms.get(roomName);
    if (!room) {
      room = { name: roomName, sockets: new Set(), lastId: 0, pending: [] };
      rooms.set(roomName, room);
    }
    const joined = room;
    socket.onopen = () => {
      joined.sockets.add(socket);
      socket.send(JSON.stringify({
        type: "welcome",
        room: joined.name,
        userName,
        users: [],
        lastId: joined.lastId,
      }));
    };
    socket.onmessage = (event: MessageEvent) => {
      if (typeof event.data !== "string") return;
      let frame: { body?: unknown; clientId?: unknown };
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (typeof frame.body !== "string") return;
      const id = ++joined.lastId;
      joined.pending.push(JSON.stringify({
        type: "message",
        id,
        room: joined.name,
        userName,
        body: frame.body,
        timestamp: new Date().toISOString(),
      }));
      if (typeof frame.clientId === "string") {
        const ack = JSON.stringify({ type: "ack", clientId: frame.clientId, id });
        const own = acks.get(socket);
        if (own) own.push(ack);
        else acks.set(socket, [ack]);
      }
      schedule(joined);
    };
    socket.onclose = () => {
      joined.sockets.delete(socket);
      acks.delete(socket);
    };
    socket.onerror = () => {};
    return response;
  };

  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: ({ port }) => {
        resolve({
          url: `http://127.0.0.1:${port}/`,
          shutdown: async () => {
            for (const room of rooms.values()) {
              for (const socket of room.sockets) socket.close(1001, "going away");
            }
            await server.shutdown();
          },
        });
      },
    }, handler);
  });
}

if (import.meta.main) {
  const index = Deno.args.indexOf("--port");
  const port = index >= 0 ? Number(Deno.args[index + 1]) : 0;
  const server = await startBaseline(port);
  console.log(`baseline listening on ${server.url}`);
  const stop = (): void => {
    server.shutdown().finally(() => Deno.exit(0));
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
}
