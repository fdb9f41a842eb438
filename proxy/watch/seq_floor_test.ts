import { assertEquals } from "@std/assert";
import { SeqFloor } from "./seq_floor.ts";

Deno.test("SeqFloor.min() is the lowest position held, through adds and removes in any order", () => {
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const floor = new SeqFloor();
  const held = new Map<number, number>();
  let next = 1;
  for (let step = 0; step < 20_000; step++) {
    const r = rand(10);
    // Mostly rising adds (a log read in order), some out of order and some repeated.
    const seq = r < 5 ? next++ : r < 6 ? rand(next + 1) : -1;
    if (seq >= 0) {
      floor.add(seq);
      held.set(seq, (held.get(seq) ?? 0) + 1);
    } else if (held.size > 0) {
      const keys = [...held.keys()];
      const victim = keys[rand(keys.length)]!;
      floor.remove(victim);
      const n = held.get(victim)!;
      if (n > 1) held.set(victim, n - 1);
      else held.delete(victim);
    }
    const want = held.size === 0 ? undefined : Math.min(...held.keys());
    assertEquals(floor.min(), want, `step ${step}`);
  }
});

Deno.test("SeqFloor.remove() of a position not held changes nothing", () => {
  const floor = new SeqFloor();
  floor.remove(3);
  assertEquals(floor.min(), undefined);
  floor.add(5);
  floor.add(5);
  floor.remove(5);
  assertEquals(floor.min(), 5);
  floor.remove(5);
  assertEquals(floor.min(), undefined);
  floor.add(5);
  assertEquals(floor.min(), 5);
});
