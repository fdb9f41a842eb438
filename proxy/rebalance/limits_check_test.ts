import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { refuseSmallerLimits } from "./limits_check.ts";

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
    `Cannot add node ${URL}: it takes values up to 1000 bytes and this proxy 1048576, so the copy ` +
      "of larger ones to it would be refused and the add would never end; start it with " +
      "--max-value-bytes 1048576",
  );
});

Deno.test("refuseSmallerLimits() refuses shorter keys (409)", () => {
  const err = assertThrows(
    () => refuseSmallerLimits(URL, { ...OURS, maxKeyBytes: 100 }, OURS),
    RingkvError,
    "it takes keys up to 100 bytes and this proxy 1024",
  );
  assertEquals(err.code, "conflict");
});
