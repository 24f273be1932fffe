/**
 * The fields of a /proc/<pid>/stat text from field 3 (state) on, so field n is at index n - 3. The
 * command name (field 2) may hold spaces and parentheses: fields are counted from its closing
 * parenthesis.
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
