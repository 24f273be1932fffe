/**
 * What a command's build event file (--build_event_json_file: one JSON event a line) says it left
 * for the developer: the files of each completed target's output groups, named sets resolved, and
 * each test attempt's outputs (test.log, test.xml, …). Read line by line, so a big build's file is
 * never in memory whole; only the named sets are kept until the end.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

interface NamedSet {
  files: string[];
  sets: string[];
}

interface BuildEvent {
  id?: { namedSet?: { id?: string } };
  namedSetOfFiles?: { files?: { uri?: string }[]; fileSets?: { id?: string }[] };
  completed?: { outputGroup?: { fileSets?: { id?: string }[] }[]; importantOutput?: { uri?: string }[] };
  testResult?: { testActionOutput?: { uri?: string }[] };
}

/** Absolute paths, on this machine, of the outputs the build events name (file:// URIs only). */
export async function outputsInBuildEvents(file: string): Promise<string[]> {
  const sets = new Map<string, NamedSet>();
  const wanted: string[] = [];
  const outputs = new Set<string>();
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    let event: BuildEvent;
    try {
      event = JSON.parse(text) as BuildEvent;
    } catch (err) {
      throw new Error(`${file}:${line}: not a build event: ${(err as Error).message}`);
    }
    const setId = event.id?.namedSet?.id;
    if (setId !== undefined && event.namedSetOfFiles) {
      sets.set(setId, { files: uris(event.namedSetOfFiles.files), sets: ids(event.namedSetOfFiles.fileSets) });
    }
    for (const group of event.completed?.outputGroup ?? []) wanted.push(...ids(group.fileSets));
    for (const uri of uris(event.completed?.importantOutput)) outputs.add(uri);
    for (const uri of uris(event.testResult?.testActionOutput)) outputs.add(uri);
  }
  // Named sets nest (a set names others); each is walked once.
  const seen = new Set<string>();
  while (wanted.length > 0) {
    const id = wanted.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const set = sets.get(id);
    if (!set) throw new Error(`${file}: the named set of files ${id} is referenced but never defined`);
    set.files.forEach((uri) => outputs.add(uri));
    wanted.push(...set.sets);
  }
  return [...outputs].filter((uri) => uri.startsWith('file://')).map((uri) => fileURLToPath(uri));
}

const uris = (files: { uri?: string }[] | undefined) => (files ?? []).flatMap((f) => (f.uri ? [f.uri] : []));
const ids = (sets: { id?: string }[] | undefined) => (sets ?? []).flatMap((s) => (s.id !== undefined ? [s.id] : []));
