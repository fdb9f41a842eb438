/**
 * Loading the bench's keys: `<prefix><6-digit number>` with values of a given size, in
 * batches of 1,000 through a node's `POST /internal/batch` (the node references need
 * every key on every node) or the proxy's public `POST /kv`, or in transactions of 128
 * through etcd's gateway (`POST /v3/kv/txn`).
 *
 * @module
 */
import { countOf, ETCD_MAX_TXN_OPS, etcdPrefixCount, etcdPutTxn } from "./etcd.ts";

const BATCH = 1000;
const PARALLEL = 4;
const TIMEOUT_MS = 120_000;

/** The key of number `i`. */
export function benchKey(prefix: string, i: number): string {
  return prefix + String(i).padStart(6, "0");
}

/** A value of `bytes` bytes, ASCII, different per key. */
export function benchValue(i: number, bytes: number): string {
  return `value-${i}-`.padEnd(bytes, "abcdefghijklmnopqrstuvwxyz").slice(0, bytes);
}

async function inBatches(
  count: number,
  send: (from: number, to: number) => Promise<void>,
  batch = BATCH,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const from = next;
      next = Math.min(count, next + batch);
      await send(from, next);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<string> {
  const res = await fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Cannot load keys: POST ${url} answered ${res.status}: ${text}`);
  return text;
}

/** Puts keys 0..count-1 into one node directly (every key, whatever the ring says). */
export async function loadNode(
  nodeUrl: string,
  secret: string,
  o: { prefix: string; count: number; valueBytes: number },
): Promise<void> {
  await inBatches(o.count, async (from, to) => {
    const ops = [];
    for (let i = from; i < to; i++) {
      const value = new TextEncoder().encode(benchValue(i, o.valueBytes)).toBase64();
      ops.push({ op: "put", key: benchKey(o.prefix, i), value, contentType: "text/plain" });
    }
    await post(`${nodeUrl}/internal/batch`, JSON.stringify({ ops }), {
      authorization: `Bearer ${secret}`,
    });
  });
}

/** Puts keys 0..count-1 through the proxy's batch route (each lands on its owner). */
export async function loadProxy(
  proxyUrl: string,
  o: { prefix: string; count: number; valueBytes: number },
): Promise<void> {
  await inBatches(o.count, async (from, to) => {
    const set: Record<string, string> = {};
    for (let i = from; i < to; i++) set[benchKey(o.prefix, i)] = benchValue(i, o.valueBytes);
    await post(`${proxyUrl}/kv`, JSON.stringify({ set }), {});
  });
}

/** Puts keys 0..count-1 into etcd, then checks that it counts them all under the prefix. */
export async function loadEtcd(
  etcdUrl: string,
  o: { prefix: string; count: number; valueBytes: number },
): Promise<void> {
  await inBatches(o.count, async (from, to) => {
    const pairs: [string, string][] = [];
    for (let i = from; i < to; i++) {
      pairs.push([benchKey(o.prefix, i), benchValue(i, o.valueBytes)]);
    }
    await post(`${etcdUrl}/v3/kv/txn`, etcdPutTxn(pairs), {});
  }, ETCD_MAX_TXN_OPS);
  const answer = await post(`${etcdUrl}/v3/kv/range`, etcdPrefixCount(o.prefix), {});
  const count = countOf(JSON.parse(answer));
  if (count !== o.count) {
    throw new Error(`Cannot load etcd: ${count} keys under "${o.prefix}" after putting ${o.count}`);
  }
}
