/** Text from the orchestrator (a workspace path, a pod's message) on one line, with no terminal control codes. */
export function printable(text: string): string {
  return text.replace(/[\t\r\n]+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** Rows printed as columns, each as wide as its widest cell; no cell can move the cursor or split its line. */
export function printTable(table: string[][]): void {
  const rows = table.map((row) => row.map(printable));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const row of rows) {
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    );
  }
}
