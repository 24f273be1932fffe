import { printTable } from '../../cli/table';

test('a table cell cannot move the cursor, clear the screen or split its row: control codes print as ?', () => {
  const lines: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
  try {
    printTable([
      ['SESSION', 'WORKSPACE'],
      ['s-1', '/home/eve/\u001b[2J\u001b]0;owned\u0007src\nFAKE ROW'],
    ]);
  } finally {
    log.mockRestore();
  }
  expect(lines).toEqual(['SESSION  WORKSPACE', 's-1      /home/eve/?[2J?]0;owned?src FAKE ROW']);
});
