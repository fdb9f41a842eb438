import { assertEquals } from "@std/assert";
import fc from "fast-check";
import { scanNames } from "./json_names.ts";

const repeatedName = (text: string) => scanNames(text).repeated;

Deno.test("repeatedName() finds a name twice in one object, at any depth", () => {
  const cases: [string, string | undefined][] = [
    ['{"set": {"a": 1}, "set": {"b": 2}}', "set"],
    ['{"set": {"a": 1, "b": 2, "a": 3}}', "a"],
    ['{"set": {"k": {"n": 1, "n": 2}}}', "n"],
    ['[{"x": 1}, {"y": [{"z": 1, "z": 2}]}]', "z"],
    ['{"set": {"a": 1, "\\u0061": 2}}', "a"],
    ['{"set": {"a\\"b": 1, "a\\"b": 2}}', 'a"b'],
    ['{"set": {"a": 1}, "delete": ["a", "a"]}', undefined],
    ['{"set": {"a": {"a": {"a": 1}}}}', undefined],
    ['[{"a": 1}, {"a": 2}]', undefined],
    ['{"set": {"a": "\\"a\\": 1, \\"a\\": 2", "b\\\\": "x"}}', undefined],
    ['{"set": {"a": "}, {\\"a\\": 1", "c": 2}}', undefined],
    ['{"a\\\\": 1, "a\\\\": 2}', "a\\"],
    ['"just a string"', undefined],
    ["{}", undefined],
  ];
  for (const [text, expected] of cases) {
    JSON.parse(text); // every case is valid JSON
    assertEquals(repeatedName(text), expected, text);
  }
});

Deno.test("repeatedName() finds nothing in JSON.stringify's output, which never repeats a name", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      assertEquals(repeatedName(JSON.stringify(value)), undefined);
      assertEquals(repeatedName(JSON.stringify(value, null, 2)), undefined);
    }),
    { numRuns: 300 },
  );
});

Deno.test("repeatedName() finds a name repeated into any object of generated JSON", () => {
  fc.assert(
    fc.property(
      fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1 }),
      fc.nat(),
      (object, pick) => {
        const names = Object.keys(object);
        const name = names[pick % names.length]!;
        const text = JSON.stringify(object);
        // The object again with its chosen member first once more.
        const doubled = `{${JSON.stringify(name)}:null,${text.slice(1)}`;
        assertEquals(repeatedName(`{"set":${doubled}}`), name);
      },
    ),
    { numRuns: 300 },
  );
});
