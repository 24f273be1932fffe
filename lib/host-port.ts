/** host:port, split: the host without IPv6 brackets (as listen() takes it), the port a number. */
export function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at <= 0 || address.slice(at + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`'${address}' is not host:port`);
  }
  return { host: address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port };
}
