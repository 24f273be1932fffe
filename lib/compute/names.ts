import { isDns1123Label } from '../naming';

/**
 * Namespace and volume names become paths (local) and object names (Kubernetes): anything but a
 * DNS-1123 label could escape a directory or address an object the backend does not own.
 */
export function checkLabel(what: string, name: string): string {
  if (!isDns1123Label(name)) throw new Error(`invalid ${what} name '${name}': not a DNS-1123 label`);
  return name;
}
