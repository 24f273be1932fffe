/** `rbs admin revoke|unrevoke USER`: operators shut a user out of RBS, or let them back in. */
import { connect } from '../lib/client-config';
import { UsageError } from './usage';

const ADMIN_USAGE = 'usage: rbs admin revoke USER | rbs admin unrevoke USER';

export async function admin([action, user, ...extra]: string[]): Promise<void> {
  if ((action !== 'revoke' && action !== 'unrevoke') || !user || extra.length > 0) throw new UsageError(ADMIN_USAGE);
  const client = await connect();
  try {
    if (action === 'revoke') {
      const ended = await client.revokeUser(user);
      console.log(`revoked '${user}': every call is refused; sessions ended: ${ended.length ? ended.join(', ') : 'none'}`);
    } else {
      const wasRevoked = await client.unrevokeUser(user);
      console.log(wasRevoked ? `'${user}' is no longer revoked` : `'${user}' was not revoked`);
    }
  } finally {
    client.close();
  }
}
