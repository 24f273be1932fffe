/**
 * `rbs admin revoke|unrevoke USER`: operators shut a user out of RBS, or let them back in.
 * `rbs admin pin|unpin VOLUME`: operators keep a volume whatever its retention, or stop keeping it.
 */
import { connect } from '../lib/client-config';
import { UsageError } from './usage';

const ADMIN_USAGE = 'usage: rbs admin revoke|unrevoke USER | rbs admin pin|unpin VOLUME';
const ACTIONS = ['revoke', 'unrevoke', 'pin', 'unpin'];

export async function admin([action, user, ...extra]: string[]): Promise<void> {
  if (!ACTIONS.includes(action) || !user || extra.length > 0) throw new UsageError(ADMIN_USAGE);
  const client = await connect();
  try {
    if (action === 'pin' || action === 'unpin') {
      const volume = await client.pinVolume(user, action === 'pin');
      const kept = volume.pinned ? 'kept until unpinned' : 'removed once unused for the retention period';
      console.log(`volume ${volume.volume} of '${volume.user}' is ${volume.state}: ${kept}`);
    } else if (action === 'revoke') {
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
