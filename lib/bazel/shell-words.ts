/**
 * Reads back a command line that Bazel's ShellEscaper wrote (the `sh -c` argument of a `bazel run`
 * exec request): words separated by one space, each made of safe characters, `'…'` quotes and
 * `\'`. Anything else is not what Bazel writes, so it is refused rather than guessed at.
 */

/** ShellEscaper's characters that need no quoting. */
const SAFE = /[A-Za-z0-9@%_+=:,./-]/;

export function parseShellWords(command: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (c === ' ') {
      if (word === null) throw new Error(`two spaces in a row at ${i} of ${JSON.stringify(command)}`);
      words.push(word);
      word = null;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new Error(`an unclosed quote at ${i} of ${JSON.stringify(command)}`);
      word = (word ?? '') + command.slice(i + 1, end);
      i = end;
    } else if (c === '\\' && command[i + 1] === "'") {
      word = (word ?? '') + "'";
      i++;
    } else if (SAFE.test(c)) {
      word = (word ?? '') + c;
    } else {
      throw new Error(`an unquoted ${JSON.stringify(c)} at ${i} of ${JSON.stringify(command)}`);
    }
  }
  if (word === null) throw new Error(`a command that ${command === '' ? 'is empty' : 'ends in a space'}: ${JSON.stringify(command)}`);
  words.push(word);
  return words;
}
