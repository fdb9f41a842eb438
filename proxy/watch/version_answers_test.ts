import { assert, assertEquals } from "@std/assert";
import { KEEP_ANSWER_BYTES, KEEP_POSITIONS, VersionAnswers } from "./version_answers.ts";

/** `n` keys of `length` characters with a version each. */
function answersOf(n: number, length: number, tag: string): Map<string, string | null> {
  return new Map(Array.from({ length: n }, (_, i) => [`${tag}/${i}/`.padEnd(length, "k"), "v1"]));
}

Deno.test("VersionAnswers holds at most KEEP_ANSWER_BYTES of answers with long keys, the newest", () => {
  const answers = new VersionAnswers();
  // 64 positions of 100 keys of 1000 characters: ~13 MB if all were kept.
  for (let at = 0; at < KEEP_POSITIONS; at++) {
    answers.remember(`n1 b ${at}`, answersOf(100, 1000, String(at)));
    assert(answers.bytes <= KEEP_ANSWER_BYTES, `${answers.bytes} bytes at ${at}`);
  }
  assertEquals(answers.get(`n1 b ${KEEP_POSITIONS - 1}`)?.size, 100);
  assertEquals(answers.get("n1 b 0"), undefined);
  // One position over the bound alone is not kept either.
  answers.remember("n1 b huge", answersOf(3000, 1000, "huge"));
  assertEquals([answers.get("n1 b huge"), answers.bytes], [undefined, 0]);
});

Deno.test("VersionAnswers keeps KEEP_POSITIONS positions of short keys, and forgets one node's", () => {
  const answers = new VersionAnswers();
  for (let at = 0; at <= KEEP_POSITIONS; at++) {
    answers.remember(`n${at % 2} b ${at}`, answersOf(25, 7, String(at)));
  }
  assertEquals(answers.get("n0 b 0"), undefined, "the oldest position went");
  assertEquals(answers.get("n1 b 1")?.size, 25);
  answers.forget("n1");
  assertEquals(answers.get("n1 b 1"), undefined);
  assertEquals(answers.get("n0 b 2")?.size, 25);
  answers.forget("n0");
  assertEquals(answers.bytes, 0);
});
