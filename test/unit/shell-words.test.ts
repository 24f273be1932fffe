import { parseShellWords } from '../../lib/bazel/shell-words';

test.each([
  ['/ob/bin/hello a', ['/ob/bin/hello', 'a']],
  ["/ob/bin/hello a 'b c'", ['/ob/bin/hello', 'a', 'b c']],
  ["/ob/bin/hello '' 'it'\\''s' '$HOME;rm'", ['/ob/bin/hello', '', "it's", '$HOME;rm']],
  ["/bin/bash -c '/usr/bin/env /ob/bin/hello y'", ['/bin/bash', '-c', '/usr/bin/env /ob/bin/hello y']],
])('reads back what Bazel wrote: %s', (command, words) => {
  expect(parseShellWords(command)).toEqual(words);
});

test.each([
  ['/ob/bin/hello; touch /tmp/x', 'an unquoted ";"'],
  ['/ob/bin/hello $(id)', 'an unquoted "$"'],
  ["/ob/bin/hello 'open", 'an unclosed quote'],
  ['/ob/bin/hello  a', 'two spaces in a row'],
  ['', 'is empty'],
])('refuses what Bazel does not write: %s', (command, problem) => {
  expect(() => parseShellWords(command)).toThrow(problem);
});
