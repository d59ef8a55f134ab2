/**
 * `deno task backup FILE [--config PATH]`: a consistent copy of the history file, made while parley
 * runs. SQLite's online backup copies one snapshot of the database (in WAL mode a reader does not
 * block the writer, nor the writer it), so the copy holds exactly what was committed when it
 * began: every message acked before then. Restoring is "stop parley, put the copy in place of
 * the history file (and delete the old file's `-wal` and `-shm`), start parley".
 */

import { backup, DatabaseSync } from "node:sqlite";
import { loadConfig } from "./config.ts";

/** The backup could not be made; the message says why and what to do. */
export class BackupError extends Error {
  override name = "BackupError";
}

/** What a backup holds. */
export interface BackupReport {
  target: string;
  bytes: number;
  /** Each room's last message id in the copy. */
  rooms: { room: string; lastId: number }[];
}

/** Copies the history database at `source` into `target`, which must not exist yet. */
export async function backupHistory(source: string, target: string): Promise<BackupReport> {
  if (source === ":memory:") {
    throw new BackupError('"history.path" is ":memory:": there is no history file to back up');
  }
  if (exists(target)) {
    throw new BackupError(`${target} already exists; name a new file for the backup`);
  }
  if (!exists(source)) {
    throw new BackupError(`there is no history file at ${source}; check "history.path"`);
  }
  const db = new DatabaseSync(source);
  try {
    // Another writer's commit holds the lock briefly: wait for it rather than fail.
    db.exec("PRAGMA busy_timeout = 10000");
    // All pages in one step, under one read lock: copied a few at a time, a database that the
    // server writes meanwhile would make the backup start over, again and again.
    await backup(db, target, { rate: -1 });
  } catch (error) {
    throw new BackupError(`cannot back up ${source} to ${target}: ${(error as Error).message}`);
  } finally {
    db.close();
  }
  return { target, bytes: Deno.statSync(target).size, rooms: roomsOf(target) };
}

function roomsOf(path: string): { room: string; lastId: number }[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare("SELECT room, last_id AS lastId FROM rooms ORDER BY room").all() as {
      room: string;
      lastId: number;
    }[];
  } finally {
    db.close();
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** The report as a person reads it: the size, then each room's last id. */
export function describeBackup(report: BackupReport): string {
  const mib = (report.bytes / 1048576).toFixed(2);
  const lines = [`backed up to ${report.target}: ${mib} MiB, ${report.rooms.length} rooms`];
  for (const { room, lastId } of report.rooms) lines.push(`  ${room}: last id ${lastId}`);
  return lines.join("\n");
}

if (import.meta.main) {
  try {
    const [target, ...flags] = Deno.args;
    if (target === undefined || target.startsWith("--")) {
      throw new BackupError("usage: deno task backup FILE [--config PATH]");
    }
    const config = await loadConfig(flags, () => undefined);
    console.log(describeBackup(await backupHistory(config.history.path, target)));
  } catch (error) {
    console.error(`parley backup: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
