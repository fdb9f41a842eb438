import { assert, assertEquals, assertMatch, assertNotEquals } from "@std/assert";
import { createLogger, joinRequestIds, logsAt, requestIdOf } from "./log.ts";

function capture(level?: "error" | "warn" | "info" | "debug", secrets: string[] = []) {
  const lines: string[] = [];
  const log = createLogger({
    level,
    secrets,
    write: (l) => lines.push(l),
    now: () => new Date(0),
  });
  return { log, lines };
}

Deno.test("createLogger() writes one JSON object per line, errors and warnings by default (events with an error are warnings)", () => {
  const { log, lines } = capture();
  log({ level: "error", msg: "broken", node: "n1" });
  log({ level: "warn", msg: "slow" });
  log({ msg: "info by default" });
  log({ msg: "poll failed", error: "refused" });
  log({ level: "debug", msg: "noise" });
  assertEquals(lines.map((l) => JSON.parse(l)), [
    { time: "1970-01-01T00:00:00.000Z", level: "error", msg: "broken", node: "n1" },
    { time: "1970-01-01T00:00:00.000Z", level: "warn", msg: "slow" },
    { time: "1970-01-01T00:00:00.000Z", level: "warn", msg: "poll failed", error: "refused" },
  ]);
});

Deno.test("createLogger() at debug writes every level", () => {
  const { log, lines } = capture("debug");
  for (const level of ["error", "warn", "info", "debug"]) log({ level, msg: level });
  assertEquals(lines.length, 4);
});

Deno.test("createLogger() never writes a secret nor a credential field", () => {
  const { log, lines } = capture("debug", ["tok-123456"]);
  log({
    msg: "call failed: Bearer tok-123456 refused",
    authorization: "Bearer x",
    adminToken: "y",
  });
  const text = lines.join("\n");
  assert(!text.includes("tok-123456") && !text.includes("Bearer x") && !text.includes('"y"'));
  assertMatch(text, /\[redacted\] refused/);
});

Deno.test("requestIdOf() keeps a sane client id and replaces anything else", () => {
  assertEquals(requestIdOf("abc-123_x.y"), "abc-123_x.y");
  for (const bad of [null, "", "a b", "x".repeat(129), "bad\nline", "é"]) {
    const id = requestIdOf(bad);
    assertNotEquals(id, bad);
    assertMatch(id, /^[0-9a-f-]{36}$/);
  }
});

Deno.test("joinRequestIds() lists at most 16 distinct ids, then counts the rest", () => {
  assertEquals(joinRequestIds(["a", "b", "a"]), "a,b");
  const many = Array.from({ length: 20 }, (_, i) => `r${i}`);
  assertMatch(joinRequestIds(many), /^r0,r1,.*,r15,\+4$/);
});

Deno.test("logsAt() says whether a logger writes a level; any other sink takes every level", () => {
  const { log } = capture("warn");
  assertEquals([logsAt(log, "error"), logsAt(log, "warn"), logsAt(log, "debug")], [
    true,
    true,
    false,
  ]);
  assert(logsAt(capture("debug").log, "debug"));
  assert(logsAt(() => {}, "debug"));
});
