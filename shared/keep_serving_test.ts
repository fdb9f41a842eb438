import { assertEquals, assertRejects } from "@std/assert";
import { keepServing, outOfDescriptors } from "./keep_serving.ts";

const emfile = () => new Error("Error: Too many open files (os error 24)");

Deno.test("keepServing() starts again on the picked port after running out of descriptors", async () => {
  const ports: number[] = [];
  const outcomes = [Promise.reject(emfile()), Promise.resolve()];
  await keepServing((port) => {
    ports.push(port);
    return { addr: { port: 7123 }, finished: outcomes.shift()! };
  }, { port: 0, pauseMs: 1 });
  assertEquals(ports, [0, 7123]);
});

Deno.test("keepServing() retries a start that throws for want of descriptors", async () => {
  let starts = 0;
  await keepServing(() => {
    if (++starts < 3) throw emfile();
    return { addr: { port: 1 }, finished: Promise.resolve() };
  }, { port: 1, pauseMs: 1 });
  assertEquals(starts, 3);
});

Deno.test("keepServing() throws any other error", async () => {
  const finished = Promise.reject(new Deno.errors.AddrInUse("Address in use (os error 98)"));
  await assertRejects(
    () => keepServing(() => ({ addr: { port: 1 }, finished }), { port: 1, pauseMs: 1 }),
    Deno.errors.AddrInUse,
  );
});

Deno.test("outOfDescriptors() knows EMFILE and ENFILE only", () => {
  assertEquals(outOfDescriptors(emfile()), true);
  assertEquals(outOfDescriptors(new Error("Too many open files in system (os error 23)")), true);
  assertEquals(outOfDescriptors(new Error("Connection reset (os error 104)")), false);
  assertEquals(outOfDescriptors("os error 24"), false);
});
