import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { clusterLimits, refuseSmallerLimits } from "./limits_check.ts";

const URL = "http://10.0.0.9:7001";
const OURS = { maxKeyBytes: 1024, maxValueBytes: 1048576 };

Deno.test("refuseSmallerLimits() lets a node with the same or larger limits join", () => {
  refuseSmallerLimits(URL, OURS, OURS);
  refuseSmallerLimits(URL, { maxKeyBytes: 4096, maxValueBytes: 8388608 }, OURS);
});

Deno.test("refuseSmallerLimits() lets a node that does not say its limits join", () => {
  refuseSmallerLimits(URL, undefined, OURS);
});

Deno.test("refuseSmallerLimits() refuses smaller values (409), naming the flag to start it with", () => {
  const err = assertThrows(
    () => refuseSmallerLimits(URL, { ...OURS, maxValueBytes: 1000 }, OURS),
    RingkvError,
  );
  assertEquals(err.code, "conflict");
  assertEquals(
    err.message,
    `Cannot add node ${URL}: it takes values up to 1000 bytes and this cluster 1048576, so the copy ` +
      "of larger ones to it would be refused and the add would never end; start it with " +
      "--max-value-bytes 1048576",
  );
});

Deno.test("refuseSmallerLimits() refuses shorter keys (409)", () => {
  const err = assertThrows(
    () => refuseSmallerLimits(URL, { ...OURS, maxKeyBytes: 100 }, OURS),
    RingkvError,
    "it takes keys up to 100 bytes and this cluster 1024",
  );
  assertEquals(err.code, "conflict");
});

Deno.test("clusterLimits(): no more than the largest-limited member takes, no more than the proxy takes", () => {
  const proxy = { maxKeyBytes: 1024, maxValueBytes: 2_097_152 };
  const node = (maxValueBytes: number) => ({ maxKeyBytes: 1024, maxValueBytes });
  // Found by review: a proxy at 2 MiB over nodes at 1 MiB holds no value over 1 MiB.
  assertEquals(clusterLimits(proxy, [node(1_048_576), node(1_048_576)]).maxValueBytes, 1_048_576);
  assertEquals(clusterLimits(proxy, [node(1_048_576), node(4_194_304)]).maxValueBytes, 2_097_152);
  // A member that does not say, or none at all: the proxy's.
  assertEquals(clusterLimits(proxy, [node(1_000), undefined]), proxy);
  assertEquals(clusterLimits(proxy, []), proxy);
  refuseSmallerLimits(URL, node(1_048_576), clusterLimits(proxy, [node(1_048_576)]));
});
