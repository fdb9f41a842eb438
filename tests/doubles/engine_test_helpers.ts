/**
 * Helpers shared by the engine's tests: a fixed hash, value shorthands, and a disk
 * whose fsyncs wait for the test to release them.
 *
 * @module
 */
import type { Disk } from "../../node/storage/disk.ts";
import type { NodeEngine, PutOp } from "../../node/engine/engine.ts";
import { createFakeDisk, type FakeDisk } from "./fake_disk.ts";
import { openEngine, type OpenEngineOptions } from "../../node/engine/open_engine.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A deterministic stand-in for SHA-1: the sum of the key's char codes times a prime. */
export function testHash(key: string): Promise<number> {
  let sum = 0;
  for (let i = 0; i < key.length; i++) sum = (sum * 31 + key.charCodeAt(i)) >>> 0;
  return Promise.resolve(sum);
}

/** A put of a text value. */
export function put(key: string, value: string, extra: Partial<PutOp> = {}): PutOp {
  return { op: "put", key, value: encoder.encode(value), contentType: "text/plain", ...extra };
}

/** The text of a key's value (null: tombstone, undefined: never seen). */
export async function textOf(engine: NodeEngine, key: string): Promise<string | null | undefined> {
  const entry = await engine.get(key);
  return entry === undefined ? undefined : entry.value && decoder.decode(entry.value);
}

/** Opens an engine with the test hash, a fixed id and no read-only log lines unless given. */
export function open(disk: Disk, options: Partial<OpenEngineOptions> = {}): Promise<NodeEngine> {
  return openEngine({ disk, id: "n1", hashKey: testHash, log: () => {}, ...options });
}

/** `disk` with the methods in `overrides` in place of its own (the rest its own, bound to it). */
export function overrideDisk(disk: FakeDisk, overrides: Partial<Disk>): FakeDisk {
  return new Proxy(disk, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof Disk];
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A fake disk whose atomic writes of a file wait while that file's gate is held. */
export function atomicWritesGated(): {
  disk: FakeDisk;
  hold: (name: string) => void;
  waiting: (name: string) => number;
  release: (name: string) => void;
} {
  const inner = createFakeDisk();
  const held = new Map<string, (() => void)[]>();
  const disk = overrideDisk(inner, {
    writeAtomic: async (name, data) => {
      const waiting = held.get(name);
      if (waiting) await new Promise<void>((go) => waiting.push(go));
      return await inner.writeAtomic(name, data);
    },
  });
  return {
    disk,
    hold: (name) => void held.set(name, []),
    waiting: (name) => held.get(name)?.length ?? 0,
    release: (name) => {
      const waiting = held.get(name) ?? [];
      held.delete(name);
      for (const go of waiting) go();
    },
  };
}

/** A fake disk plus a gate that holds every fsync until `release()` (and again after `hold()`). */
export function gatedDisk(): {
  disk: FakeDisk;
  release: () => void;
  hold: () => void;
  held: () => number;
} {
  const inner = createFakeDisk();
  let waiting: (() => void)[] = [];
  let open = false;
  const sync = async (name: string) => {
    if (!open) await new Promise<void>((resolve) => waiting.push(resolve));
    return inner.sync(name);
  };
  const disk = overrideDisk(inner, { sync });
  return {
    disk,
    release: () => {
      open = true;
      for (const resolve of waiting) resolve();
      waiting = [];
    },
    hold: () => open = false,
    held: () => waiting.length,
  };
}

/** Lets pending callbacks and timers run (to show something did NOT happen meanwhile). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/** Whether the bytes durable on the fake disk's log mention `text`. */
export function durablyLogged(disk: FakeDisk, text: string): boolean {
  const bytes = disk.crash().bytes("wal.jsonl");
  return bytes !== null && decoder.decode(bytes).includes(text);
}
