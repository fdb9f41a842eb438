import { assertEquals } from "@std/assert";
import { relistCommand, resumeCommand } from "./kv_resume.ts";

Deno.test("resumeCommand() repeats the watch's arguments with --after the cursor, quoted for a shell, tokens left out", () => {
  assertEquals(resumeCommand(["watch", "kw/"], "eyJ1_-"), "deno task kv watch kw/ --after eyJ1_-");
  // A previous --after (either form) is replaced; words after -- stay after it.
  assertEquals(
    resumeCommand(["watch", "--after", "old", "--json", "--after=older", "--", "--p"], "c2"),
    "deno task kv watch --json --after c2 -- --p",
  );
  assertEquals(
    resumeCommand(["watch", "it's here", "--url", "http://h:1/x"], "c"),
    "deno task kv watch 'it'\\''s here' --url http://h:1/x --after c",
  );
  const tokens = resumeCommand(["watch", "--client-token", "s3cret", "--token=t0ken", "p"], "c");
  assertEquals(tokens, "deno task kv watch p --after c (with your token flags, left out here)");
  assertEquals(relistCommand(""), "deno task kv ls");
  assertEquals(relistCommand("a b/"), "deno task kv ls --prefix 'a b/'");
});
