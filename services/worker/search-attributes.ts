/**
 * The session workflows set custom search attributes; on a namespace that lacks one, the workflow
 * task that sets it fails for ever, and a session would hang in its last phase (say, ENDED in the
 * store while its workflow never finishes). The worker checks them before it polls.
 */
import * as grpc from '@grpc/grpc-js';
import type { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../../lib/temporal/search-attributes';

/** Throws, naming the missing ones and the command that adds them; a caller that may not list them is warned. */
export async function checkSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
  warn: (message: string) => void,
): Promise<void> {
  let registered: Set<string>;
  try {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    registered = new Set(Object.keys(customAttributes ?? {}));
  } catch (err) {
    if ((err as grpc.ServiceError).code !== grpc.status.PERMISSION_DENIED) throw err;
    warn(
      `cannot list the search attributes of Temporal namespace ${namespace} (${(err as Error).message}): make sure it has ${ALL_SEARCH_ATTRIBUTES.map((k) => k.name).join(', ')}`,
    );
    return;
  }
  const missing = ALL_SEARCH_ATTRIBUTES.filter((key) => !registered.has(key.name)).map((key) => key.name);
  if (missing.length > 0) {
    const flags = missing.map((name) => `--name ${name} --type Keyword`).join(' ');
    throw new Error(
      `Temporal namespace ${namespace} lacks the session workflows' search attributes ${missing.join(', ')}: ` +
        `add them with \`temporal operator search-attribute create --namespace ${namespace} ${flags}\``,
    );
  }
}
