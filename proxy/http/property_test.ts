/**
 * Property: random keys (control characters, dots, slashes, multi-byte and over-long ones
 * included), values and batches thrown at the proxy app (in-process nodes) answer as a
 * plain Map model says, and the store ends up holding exactly the model.
 */
import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import { DEFAULT_LIMITS, type Limits } from "../../shared/limits.ts";
import { startCluster, type TestCluster } from "../../tests/doubles/test_cluster.ts";

const LIMITS: Limits = { ...DEFAULT_LIMITS, maxKeyBytes: 12, maxValueBytes: 24, maxBatchOps: 6 };
const encoder = new TextEncoder();
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

type Op =
  | { op: "put"; key: string; value: Uint8Array }
  | { op: "get"; key: string }
  | { op: "delete"; key: string }
  | { op: "batch"; set: [string, unknown][]; del: string[] }
  | { op: "list"; prefix: string };

/** Keys that collide often (so writes replace and deletes find), and random ones. */
function keyArb(lone: boolean): fc.Arbitrary<string> {
  const chars = ["a", "b", "/", ".", "%", " ", "?", "#", "é", "€", "😀", "\u0000", "\u007f"];
  if (lone) chars.push("\ud800");
  const random = fc.array(fc.constantFrom(...chars), { maxLength: 8 }).map((c) => c.join(""));
  const common = fc.constantFrom("a", "b", "a/b", "a/./b", "..", "...", "é€", "😀/x", "100%", "?#");
  return fc.oneof({ arbitrary: common, weight: 3 }, { arbitrary: random, weight: 2 });
}

const jsonValue = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.integer(),
  fc.constant(null),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.boolean(), { maxKeys: 3 }),
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("put" as const),
    key: keyArb(false),
    value: fc.uint8Array({ maxLength: 30 }),
  }),
  fc.record({ op: fc.constant("get" as const), key: keyArb(false) }),
  fc.record({ op: fc.constant("delete" as const), key: keyArb(false) }),
  fc.record({
    op: fc.constant("batch" as const),
    set: fc.array(fc.tuple(keyArb(true), jsonValue), { maxLength: 5 }),
    del: fc.array(keyArb(true), { maxLength: 4 }),
  }),
  fc.record({ op: fc.constant("list" as const), prefix: keyArb(false) }),
);

/** Every status the model allows for a bad key (a key can break several rules); empty if fine. */
function keyProblems(key: string): Set<number> {
  const problems = new Set<number>();
  if (key === "" || key === "." || key === ".." || !key.isWellFormed() || CONTROL.test(key)) {
    problems.add(400);
  }
  if (encoder.encode(key).length > LIMITS.maxKeyBytes) problems.add(414);
  return problems;
}

/** Asserts a single-key answer: one of the key's problems, else `ok`. */
function assertStatus(got: number, key: string, ok: number, what: string): boolean {
  const problems = keyProblems(key);
  if (problems.size === 0) assertEquals(got, ok, `${what} ${JSON.stringify(key)}`);
  else assert(problems.has(got), `${what} ${JSON.stringify(key)} got ${got}`);
  return problems.size === 0;
}

/** The key's path: slashes kept unless a segment is `.` or `..` (then every byte encoded). */
function pathOf(key: string): string {
  const segments = key.split("/");
  if (segments.some((s) => s === "." || s === "..")) return encodeURIComponent(key);
  return segments.map(encodeURIComponent).join("/");
}

function storedBytes(value: unknown): Uint8Array {
  return encoder.encode(typeof value === "string" ? value : JSON.stringify(value));
}

/** Statuses the proxy may answer a bad batch with; empty when the batch is good. */
function batchProblems(set: [string, unknown][], del: string[]): Set<number> {
  const problems = new Set<number>();
  const keys = [...new Set(set.map(([k]) => k)), ...del];
  if (new Set(keys).size !== keys.length) problems.add(400);
  if (keys.length > LIMITS.maxBatchOps) problems.add(413);
  for (const key of keys) keyProblems(key).forEach((p) => problems.add(p));
  for (const [, v] of set) if (storedBytes(v).length > LIMITS.maxValueBytes) problems.add(413);
  return problems;
}

async function apply(c: TestCluster, model: Map<string, Uint8Array>, op: Op): Promise<void> {
  const req = (path: string, init: RequestInit = {}) => c.proxy.request(path, init);
  if (op.op === "batch") {
    const set = Object.fromEntries(op.set);
    const res = await req("/kv", {
      method: "POST",
      body: JSON.stringify({ set, delete: op.del }),
    });
    const problems = batchProblems(Object.entries(set), op.del);
    await res.body?.cancel();
    if (problems.size > 0) return assert(problems.has(res.status), `batch got ${res.status}`);
    assertEquals(res.status, 200);
    for (const [k, v] of Object.entries(set)) model.set(k, storedBytes(v));
    for (const k of op.del) model.delete(k);
    return;
  }
  if (op.op === "list") return await checkList(c, model, op.prefix);
  // No URL reaches the keys . and .. (clients resolve them away); batches refuse them.
  if (op.key === "." || op.key === "..") return;
  const path = `/kv/${pathOf(op.key)}`;
  if (op.op === "put") {
    const res = await req(path, { method: "PUT", body: new Uint8Array(op.value) });
    await res.body?.cancel();
    const want = op.value.length > LIMITS.maxValueBytes ? 413 : model.has(op.key) ? 200 : 201;
    if (assertStatus(res.status, op.key, want, "PUT") && want < 300) model.set(op.key, op.value);
  } else if (op.op === "get") {
    const res = await req(path);
    const body = new Uint8Array(await res.arrayBuffer());
    assertStatus(res.status, op.key, model.has(op.key) ? 200 : 404, "GET");
    if (res.status === 200) assertEquals(body, model.get(op.key));
  } else {
    const res = await req(path, { method: "DELETE" });
    await res.body?.cancel();
    assertStatus(res.status, op.key, model.has(op.key) ? 204 : 404, "DELETE");
    model.delete(op.key);
  }
}

async function checkList(c: TestCluster, model: Map<string, Uint8Array>, prefix: string) {
  const res = await c.proxy.request(`/kv?limit=1000&prefix=${encodeURIComponent(prefix)}`);
  const status = encoder.encode(prefix).length > LIMITS.maxKeyBytes ? 400 : 200;
  assertEquals(res.status, status, `listing ${JSON.stringify(prefix)}`);
  if (res.status !== 200) return await res.body?.cancel();
  const want = [...model.keys()].filter((k) => k.startsWith(prefix)).sort();
  assertEquals((await res.json()).keys, want);
}

Deno.test("random keys, values and batches through the proxy behave like a Map", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { maxLength: 25 }), async (ops) => {
      const c = await startCluster({ limits: LIMITS });
      try {
        const model = new Map<string, Uint8Array>();
        for (const op of ops) await apply(c, model, op);
        await checkList(c, model, "");
      } finally {
        await c.close();
      }
    }),
    { numRuns: 200 },
  );
});
