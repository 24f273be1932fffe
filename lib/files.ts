/** File writes that other processes never see half done. */
import { randomBytes } from 'node:crypto';
import { link, rename, unlink, writeFile } from 'node:fs/promises';

/**
 * Puts `data` at `target` all at once, through a temp file in the same directory. With
 * `replace: false` an existing target is kept (and false returned): link(2) refuses to overwrite,
 * which makes creation race-safe between processes.
 */
export async function installFile(target: string, data: string, mode: number, replace: boolean): Promise<boolean> {
  const temp = `${target}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, data, { mode, flag: 'wx' });
  try {
    if (replace) {
      await rename(temp, target);
      return true;
    }
    await link(temp, target);
    return true;
  } catch (e) {
    if (!replace && (e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await unlink(temp).catch(() => undefined); // gone already after a rename
  }
}
