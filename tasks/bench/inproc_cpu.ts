/**
 * In-process loops of docs/performance-history.md ("CPU per request on the hot paths"): the CPU time per
 * operation (`process.cpuUsage()`, median of 5 rounds after a warm-up round) of one hot path of
 * the checkout at ROOT (default: this one), with no sockets, so a shared host's load moves it
 * much less than requests/s. Run it against two checkouts in turn.
 *
 *     deno run -A tasks/bench/inproc_cpu.ts node-get        # guard + node app, one GET at a time
 *     deno run -A tasks/bench/inproc_cpu.ts node-batch 10   # guard + node app, batch calls of 10 GETs
 *     deno run -A tasks/bench/inproc_cpu.ts paxos-node      # node prepare + accept of 20 entries, real disk
 *     deno run -A tasks/bench/inproc_cpu.ts replicated get|put  # Replicated.run over an instant fake client
 *     deno run -A tasks/bench/inproc_cpu.ts proxy-get 3     # proxy app over 3 in-process nodes, 32 GETs at a time
 *     ROOT=/tmp/old deno run -A --config deno.json tasks/bench/inproc_cpu.ts node-get
 *
 * @module
 */
import process from "node:process";

const root = Deno.env.get("ROOT") ?? new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const load = (path: string) => import(`${root}/${path}`);

/** Median CPU µs per op of 5 rounds of `round` (each doing `ops` operations) after a warm-up. */
async function measure(ops: number, round: () => Promise<void>): Promise<string> {
  const rounds: number[] = [];
  for (let i = 0; i < 6; i++) {
    const before = process.cpuUsage();
    await round();
    const used = process.cpuUsage(before);
    rounds.push((used.user + used.system) / ops);
  }
  const sorted = rounds.slice(1).sort((a, b) => a - b);
  return `median ${sorted[2]!.toFixed(2)} µs (min ${sorted[0]!.toFixed(2)})`;
}

/** A node app over a fake disk holding 1,000 keys of 100 B, behind the guard, as it serves. */
async function guardedNode() {
  const { createNodeApp } = await load("node/http/node_app.ts");
  const { openEngine } = await load("node/engine/open_engine.ts");
  const { createFakeDisk } = await load("tests/doubles/fake_disk.ts");
  const { DEFAULT_LIMITS } = await load("shared/limits.ts");
  const { guard } = await load("shared/guard.ts");
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", log: () => {} });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: "rig" });
  const key = (i: number) => `k${String(i % 1000).padStart(6, "0")}`;
  const value = new TextEncoder().encode("v".repeat(100));
  await engine.write(Array.from({ length: 1000 }, (_, i) => ({
    op: "put",
    key: key(i),
    value,
    contentType: "text/plain",
  })));
  const handler = guard(app.fetch, DEFAULT_LIMITS);
  return { engine, handler, key };
}

async function nodeGet(): Promise<string> {
  const { engine, handler, key } = await guardedNode();
  const headers = { host: "127.0.0.1:4000", authorization: "Bearer rig", "user-agent": "wrk" };
  try {
    return await measure(30_000, async () => {
      for (let i = 0; i < 30_000; i++) {
        const res = await handler(
          new Request(`http://127.0.0.1:4000/kv/${key(i)}`, { headers }),
          {},
        );
        if (res.status !== 200) throw new Error(`Cannot GET ${key(i)}: status ${res.status}`);
        await res.text();
      }
    });
  } finally {
    await engine.close();
  }
}

/** CPU per `POST /internal/batch` call of `size` GETs (the proxy's 1-replica reads). */
async function nodeBatch(size: number): Promise<string> {
  const { engine, handler, key } = await guardedNode();
  const headers = {
    host: "127.0.0.1:4000",
    authorization: "Bearer rig",
    "content-type": "application/json",
    "x-ringkv-epoch": "0",
  };
  let next = 0;
  try {
    const perCall = await measure(3000, async () => {
      for (let c = 0; c < 3000; c++) {
        const ops = Array.from({ length: size }, () => ({ op: "get", key: key(next++) }));
        const body = JSON.stringify({ ops, textValues: true });
        const req = new Request("http://127.0.0.1:4000/internal/batch", {
          method: "POST",
          headers,
          body,
        });
        const res = await handler(req, {});
        if (res.status !== 200) throw new Error(`Cannot run a batch: status ${res.status}`);
        await res.text();
      }
    });
    return `${perCall} per call of ${size}`;
  } finally {
    await engine.close();
  }
}

async function paxosNode(): Promise<string> {
  const { createNodeApp } = await load("node/http/node_app.ts");
  const { openEngine } = await load("node/engine/open_engine.ts");
  const { createDenoDisk } = await load("node/storage/disk.ts");
  const { DEFAULT_LIMITS } = await load("shared/limits.ts");
  const { HybridClock } = await load("shared/version.ts");
  const { hashKey } = await load("shared/ring.ts");
  const dir = await Deno.makeTempDir({ prefix: "ringkv-inproc-" });
  const engine = await openEngine({ disk: await createDenoDisk(dir), id: "n1", log: () => {} });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: "rig" });
  const clock = new HybridClock("p1");
  const headers = { authorization: "Bearer rig", "content-type": "application/json" };
  const points = await Promise.all(Array.from({ length: 2000 }, (_, i) => hashKey(`k${i}`)));
  const v = new TextEncoder().encode("v".repeat(100)).toBase64();
  const call = async (path: string, body: unknown) => {
    const res = await app.request(path, { method: "POST", headers, body: JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`Cannot POST ${path}: ${await res.text()}`);
    await res.json();
  };
  let next = 0;
  try {
    return await measure(500 * 20, async () => {
      for (let n = 0; n < 500; n++) {
        const keys = Array.from({ length: 20 }, () => next++ % 2000);
        const ver = keys.map(() => clock.nextAfter(undefined));
        await call("/internal/prepare", {
          ops: keys.map((i, j) => ({ key: `k${i}`, ballot: ver[j] })),
        });
        const entries = keys.map((i, j) => ({
          k: `k${i}`,
          v,
          t: "text/plain",
          ver: ver[j],
          h: points[i],
        }));
        await call("/internal/accept", { entries });
      }
    });
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function replicated(op: "get" | "put"): Promise<string> {
  const { Replicated } = await load("proxy/replication/caspaxos.ts");
  const { PaxosBatcher } = await load("proxy/replication/paxos_batcher.ts");
  const { FailureDetector } = await load("proxy/replication/failure_detector.ts");
  const { Hints } = await load("proxy/replication/hints.ts");
  const { HybridClock } = await load("shared/version.ts");
  type Entry = { k: string };
  const stores = new Map<string, Map<string, Entry>>();
  const store = (id: string) => stores.get(id) ?? stores.set(id, new Map()).get(id)!;
  const fake = {
    read: (n: { id: string }, _e: number, keys: string[]) =>
      Promise.resolve(keys.map((k) => store(n.id).get(k) ?? null)),
    prepare: (n: { id: string }, _e: number, ops: { key: string }[]) =>
      Promise.resolve(ops.map((o) => ({ ok: true, entry: store(n.id).get(o.key) ?? null }))),
    accept: (n: { id: string }, _e: number, entries: Entry[]) => {
      for (const e of entries) store(n.id).set(e.k, e);
      return Promise.resolve(entries.map(() => ({ ok: true })));
    },
  };
  const r = new Replicated({
    client: new PaxosBatcher(fake),
    ingest: () => Promise.resolve(),
    clock: new HybridClock("p1"),
    detector: new FailureDetector({ probeMs: 1000 }),
    hints: new Hints(),
  });
  const owners = ["n1", "n2", "n3"].map((id) => ({ id, url: `http://${id}` }));
  let next = 0;
  return await measure(30_000, async () => {
    let left = 30_000;
    const worker = async () => {
      while (left-- > 0) {
        const i = next++;
        const key = `k${i % 10_000}`;
        const put = { op, key, value: "dg==", contentType: "text/plain" };
        await r.run(
          { owners, joining: [], key, point: i, epoch: 1 },
          op === "put" ? put : { op, key },
        );
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
  });
}

async function proxyGet(replicas: number): Promise<string> {
  const { startCluster, nodeInfos, TEST_VNODES } = await load("tests/doubles/test_cluster.ts");
  const nodes = nodeInfos(3);
  const map = { epoch: 1, replicas, vnodes: TEST_VNODES, nodes, rebalancing: null };
  const c = await startCluster({ nodes, map });
  for (let i = 0; i < 2000; i++) {
    await (await c.proxy.request(`/kv/k${i}`, { method: "PUT", body: "v".repeat(100) })).text();
  }
  let next = 0;
  try {
    return await measure(10_000, async () => {
      let left = 10_000;
      const worker = async () => {
        while (left-- > 0) {
          const res = await c.proxy.request(`/kv/k${next++ % 2000}`);
          if (res.status !== 200) throw new Error(`Cannot GET: status ${res.status}`);
          await res.arrayBuffer();
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
    });
  } finally {
    await c.close();
  }
}

const [mode, arg] = Deno.args;
const run = mode === "node-get"
  ? nodeGet()
  : mode === "node-batch"
  ? nodeBatch(Number(arg ?? 10))
  : mode === "paxos-node"
  ? paxosNode()
  : mode === "replicated"
  ? replicated(arg === "put" ? "put" : "get")
  : mode === "proxy-get"
  ? proxyGet(Number(arg ?? 3))
  : Promise.reject(
    new Error(
      "usage: inproc_cpu.ts node-get|node-batch N|paxos-node|replicated get|put|proxy-get N",
    ),
  );
console.log(`${root} ${mode}${arg ? " " + arg : ""}: CPU per op ${await run}`);
