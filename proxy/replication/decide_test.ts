import { assertEquals } from "@std/assert";
import { withExpiry } from "../../shared/expiry.ts";
import { formatVersion } from "../../shared/version.ts";
import type { BatchOp, WireEntry } from "../../shared/wire.ts";
import { decide } from "./decide.ts";

const NOW = 1_700_000_000_000;
const AT = { key: "k", point: 7 };
const V = formatVersion(NOW - 5000, 0, "pA");
const BALLOT = formatVersion(NOW, 0, "pB");
/** The key's entry at version V, expiring a second after NOW. */
const ENTRY: WireEntry = {
  k: "k",
  v: btoa("x"),
  t: withExpiry("text/plain", NOW + 1000),
  ver: V,
  h: 7,
};
const REAP: BatchOp = { op: "delete", key: "k", expire: true, ifMatch: V };

Deno.test("decide(): the reaper's delete of an entry whose TTL has not run out is a 412 and writes nothing", () => {
  assertEquals(decide(REAP, ENTRY, BALLOT, AT, NOW), { result: { status: 412, version: V } });
  assertEquals(decide(REAP, ENTRY, BALLOT, AT, NOW + 999), { result: { status: 412, version: V } });
});

Deno.test("decide(): the reaper's delete of an entry past its TTL, still at its version, is a tombstone", () => {
  assertEquals(decide(REAP, ENTRY, BALLOT, AT, NOW + 1000), {
    result: { status: 204, version: BALLOT },
    entry: { k: "k", v: null, ver: BALLOT, h: 7 },
  });
  const other = { ...REAP, ifMatch: formatVersion(NOW - 9000, 0, "pA") };
  assertEquals(decide(other, ENTRY, BALLOT, AT, NOW + 1000), {
    result: { status: 412, version: V },
  });
});
