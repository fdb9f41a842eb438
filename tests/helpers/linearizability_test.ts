// Unit tests of the checker beside it (no processes started).
import { assert, assertEquals } from "@std/assert";
import { checkHistory, type Operation } from "./linearizability.ts";

let client = 0;
function op(start: number, end: number, call: Operation["call"], result: Operation["result"]) {
  return { key: "k", client: client++, call, result, start, end } as Operation;
}
const put = (value: string) => ({ op: "put" as const, value });
const get = { op: "get" as const };

Deno.test("checkHistory() accepts sequential put then get of the value", () => {
  const h = [
    op(0, 1, put("a"), { status: 201, version: "v1" }),
    op(2, 3, get, { status: 200, value: "a", version: "v1" }),
  ];
  assertEquals(checkHistory(h), null);
});

Deno.test("checkHistory() refuses a read of an older value after a newer write returned", () => {
  const h = [
    op(0, 1, put("a"), { status: 201, version: "v1" }),
    op(2, 3, put("b"), { status: 200, version: "v2" }),
    op(4, 5, get, { status: 200, value: "a", version: "v1" }),
  ];
  assertEquals(checkHistory(h), "k");
});

Deno.test("checkHistory() lets concurrent writes order either way, but reads must agree", () => {
  const w = [
    op(0, 1, put("z"), { status: 201, version: "v0" }),
    op(2, 10, put("a"), { status: 200, version: "v1" }),
    op(2, 10, put("b"), { status: 200, version: "v2" }),
  ];
  for (const last of ["a", "b"]) {
    const version = last === "a" ? "v1" : "v2";
    assertEquals(
      checkHistory([...w, op(11, 12, get, { status: 200, value: last, version })]),
      null,
    );
  }
  const bad = [
    ...w,
    op(11, 12, get, { status: 200, value: "a", version: "v1" }),
    op(13, 14, get, { status: 200, value: "b", version: "v2" }),
  ];
  assertEquals(checkHistory(bad), "k");
});

Deno.test("checkHistory() refuses two compare-and-sets that both won on one version", () => {
  const h = [
    op(0, 1, put("a"), { status: 201, version: "v1" }),
    op(2, 5, { op: "put", value: "b", ifMatch: "v1" }, { status: 200, version: "v2" }),
    op(2, 5, { op: "put", value: "c", ifMatch: "v1" }, { status: 200, version: "v3" }),
  ];
  assertEquals(checkHistory(h), "k");
  const fair = [h[0]!, h[1]!, op(2, 5, { op: "put", value: "c", ifMatch: "v1" }, { status: 412 })];
  assertEquals(checkHistory(fair), null);
});

Deno.test("checkHistory() lets a failed write take effect late or never", () => {
  const lost = op(0, 1, put("x"), { status: "unknown" });
  const seen = [lost, op(5, 6, get, { status: 200, value: "x", version: "v9" })];
  assertEquals(checkHistory(seen), null);
  const never = [lost, op(5, 6, get, { status: 404 })];
  assertEquals(checkHistory(never), null);
  // Seen, then gone without any delete: not linearizable.
  const flicker = [...seen, op(7, 8, get, { status: 404 })];
  assertEquals(checkHistory(flicker), "k");
});

Deno.test("checkHistory() refuses a 404 delete of a present key and If-None-Match over it", () => {
  const base = op(0, 1, put("a"), { status: 201, version: "v1" });
  assertEquals(checkHistory([base, op(2, 3, { op: "delete" }, { status: 404 })]), "k");
  const inm = op(2, 3, { op: "put", value: "b", ifNoneMatch: true }, {
    status: 201,
    version: "v2",
  });
  assertEquals(checkHistory([base, inm]), "k");
});

Deno.test("checkHistory() allows a re-stamped version only when no write made it and it is newer", () => {
  const base = op(0, 1, put("a"), { status: 201, version: "v1" });
  assertEquals(
    checkHistory([base, op(2, 3, get, { status: 200, value: "a", version: "v5" })]),
    null,
  );
  const inm = { op: "put" as const, value: "x", ifNoneMatch: true };
  const restamped = op(2, 3, inm, { status: 412, version: "v4" });
  const after = op(4, 5, get, { status: 200, value: "a", version: "v4" });
  assertEquals(checkHistory([base, restamped, after]), null);
  const b = op(2, 3, put("b"), { status: 200, version: "v5" });
  const stale = op(4, 5, get, { status: 200, value: "b", version: "v0" });
  assertEquals(checkHistory([base, b, stale]), "k");
});

Deno.test("checkHistory() handles 14 concurrent ops of one key quickly (memoized)", () => {
  const h = Array.from(
    { length: 14 },
    (_, i) =>
      i % 2 === 0
        ? op(0, 100, put(`v${i}`), { status: "unknown" })
        : op(0, 100, get, { status: 404 }),
  );
  const t = performance.now();
  assertEquals(checkHistory(h), null);
  assert(performance.now() - t < 5000);
});

Deno.test("checkHistory() lets If-Match of the old version fail after a write whose answer was lost", () => {
  // A put whose answer was lost took effect; a compare-and-set on the version before it
  // then gets 412 with a re-stamped version (the replicas disagreed).
  const h = [
    op(0, 1, put("a"), { status: 201, version: "v1" }),
    op(2, 3, put("b"), { status: "unknown" }),
    op(4, 5, { op: "put", value: "c", ifMatch: "v1" }, { status: 412, version: "v7" }),
    op(6, 7, get, { status: 200, value: "b", version: "v7" }),
  ];
  assertEquals(checkHistory(h), null);
  // But If-Match of the old version cannot win once that write is seen to have applied.
  const won = [
    ...h.slice(0, 2),
    op(4, 5, get, { status: 200, value: "b", version: "v7" }),
    op(6, 7, { op: "put", value: "c", ifMatch: "v1" }, { status: 200, version: "v8" }),
  ];
  assertEquals(checkHistory(won), "k");
});

Deno.test("checkHistory() lets an operation whose answer was lost re-stamp the version unseen", () => {
  // A read whose answer was lost may have re-stamped "a" (replicas disagreed); If-Match v1
  // then fails, and a later read shows the new version.
  const h = [
    op(0, 1, put("a"), { status: 201, version: "v1" }),
    op(2, 3, get, { status: "unknown" }),
    op(4, 5, { op: "put", value: "c", ifMatch: "v1" }, { status: 412, version: "v5" }),
  ];
  assertEquals(checkHistory(h), null);
  // Without such an operation, If-Match of the current version cannot fail.
  assertEquals(checkHistory([h[0]!, h[2]!]), "k");
});
